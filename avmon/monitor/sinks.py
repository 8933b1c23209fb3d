"""Where live events go: stdout, a webhook, SNS; a sink that is down never stops monitoring.

``send`` never raises and never waits on the network. Remote sinks (webhook, SNS) are a
:class:`SpooledSink`: each event is appended to a spool file on disk first, then a delivery
thread sends the spool in order, retrying with backoff while the receiver is down, and records
how far it got; a restarted watcher resumes from the spool. Every event carries its ``id``
(also sent as the ``Idempotency-Key`` header of a webhook), so a receiver can drop the
duplicate that an unacknowledged-but-delivered retry may cause; the spool itself never sends an
acknowledged event again, nor the same id twice.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from avmon.errors import ConfigError
from avmon.events import DefectEvent

Deliver = Callable[[DefectEvent], None]


class Sink(Protocol):
    name: str

    def send(self, event: DefectEvent) -> None: ...
    def close(self, timeout: float = 5.0) -> None: ...


class RejectedEventError(Exception):
    """The receiver refused this event for good (a 4xx): retrying cannot help."""


class StdoutSink:
    """One line per event on a text stream, flushed at once: JSON, or a readable line."""

    def __init__(self, json_lines: bool = True, stream: IO[str] | None = None) -> None:
        self.name = "stdout"
        self.json_lines = json_lines
        self.stream = stream

    def send(self, event: DefectEvent) -> None:
        out = self.stream or sys.stdout
        try:
            out.write((event.to_json_line() if self.json_lines else event.describe()) + "\n")
            out.flush()
        except (BrokenPipeError, ValueError):
            pass  # a closed reader (``| head``) must not stop the watch

    def close(self, timeout: float = 5.0) -> None:
        return None


@dataclass(frozen=True)
class SinkStats:
    name: str
    delivered: int
    pending: int
    rejected: int
    failures: int
    last_error: str | None


class SpooledSink:
    """Delivers events in order through ``deliver``, from a spool file, retrying until it works.

    ``deliver`` raises on failure (any exception: retried with exponential backoff from
    ``backoff[0]`` to ``backoff[1]`` seconds) or RejectedEventError (dropped, counted). Events
    still pending at ``close`` stay in the spool and are sent by the next sink on the same
    ``spool_dir`` and ``name``.
    """

    def __init__(self, name: str, deliver: Deliver, spool_dir: str | Path, *,
                 backoff: tuple[float, float] = (0.5, 30.0)) -> None:
        self.name = name
        self._deliver = deliver
        self.backoff = backoff
        directory = Path(spool_dir)
        directory.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:120]
        self._spool = directory / f"{safe}.jsonl"
        self._acked_file = directory / f"{safe}.acked"
        self._lock = threading.Condition()
        self._pending: deque[DefectEvent] = deque()
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._acked = 0
        self._delivered = self._rejected = self._failures = 0
        self._last_error: str | None = None
        self._closing = False
        self._load()
        self._thread = threading.Thread(target=self._run, name=f"sink-{safe}", daemon=True)
        self._thread.start()

    # -- spool on disk -------------------------------------------------------------------------
    def _load(self) -> None:
        if not self._spool.exists():
            return
        try:
            self._acked = int(self._acked_file.read_text() or 0)
        except (OSError, ValueError):
            self._acked = 0
        lines = self._spool.read_text().splitlines()
        for line in lines[self._acked:]:
            try:
                event = DefectEvent.from_dict(json.loads(line))
            except (ValueError, ConfigError):
                continue  # a line torn by a crash mid-write
            self._pending.append(event)
            self._remember(event.id)

    def _remember(self, event_id: str) -> None:
        self._recent[event_id] = None
        while len(self._recent) > 4096:
            self._recent.popitem(last=False)

    def _ack(self) -> None:
        """One more event of the spool is done; an empty spool is truncated (bounded disk)."""
        self._acked += 1
        if not self._pending:
            self._spool.write_text("")
            self._acked = 0
        self._acked_file.write_text(str(self._acked))

    # -- public --------------------------------------------------------------------------------
    def send(self, event: DefectEvent) -> None:
        with self._lock:
            if event.id in self._recent:
                return
            self._remember(event.id)
            with self._spool.open("a") as f:
                f.write(event.to_json_line() + "\n")
            self._pending.append(event)
            self._lock.notify_all()

    @property
    def stats(self) -> SinkStats:
        with self._lock:
            return SinkStats(self.name, self._delivered, len(self._pending), self._rejected,
                             self._failures, self._last_error)

    def close(self, timeout: float = 5.0) -> None:
        """Try to deliver what is pending for up to ``timeout`` s; the rest stays spooled."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending and time.monotonic() < deadline:
                self._lock.wait(min(0.1, max(0.0, deadline - time.monotonic())))
            self._closing = True
            self._lock.notify_all()
        self._thread.join(timeout=1.0)

    # -- delivery thread -----------------------------------------------------------------------
    def _run(self) -> None:
        delay = self.backoff[0]
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._lock.wait(0.5)
                if self._closing:
                    return
                event = self._pending[0]
            try:
                self._deliver(event)
            except RejectedEventError as exc:
                with self._lock:
                    self._rejected += 1
                    self._last_error = str(exc)
                    self._pending.popleft()
                    self._ack()
                    self._lock.notify_all()
                continue
            except Exception as exc:  # any failure of the receiver: retry later
                with self._lock:
                    self._failures += 1
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    self._lock.wait(delay)  # close() wakes this up
                delay = min(self.backoff[1], delay * 2)
                continue
            delay = self.backoff[0]
            with self._lock:
                self._delivered += 1
                self._pending.popleft()
                self._ack()
                self._lock.notify_all()


def webhook_deliverer(url: str, timeout: float = 5.0) -> Deliver:
    """POST each event as JSON to ``url``. 2xx is delivered; other 4xx (but 408/429) rejected."""

    def deliver(event: DefectEvent) -> None:
        body = event.to_json_line().encode()
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "Idempotency-Key": event.id,
            "User-Agent": "avmon-watch"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise RejectedEventError(f"{url}: HTTP {exc.code}") from None
            raise

    return deliver


def build_sinks(specs: Sequence[str], *, spool_dir: str | Path, json_lines: bool = True,
                stream: IO[str] | None = None) -> list[Sink]:
    """Sinks from ``stdout``, ``webhook:URL`` and ``sns:TOPIC_ARN`` specs (stdout if none).

    Raises ConfigError for an unknown or malformed spec.
    """
    sinks: list[Sink] = []
    for spec in specs or ["stdout"]:
        kind, _, target = spec.partition(":")
        if spec == "stdout":
            sinks.append(StdoutSink(json_lines, stream))
        elif kind == "webhook" and target.startswith(("http://", "https://")):
            sinks.append(SpooledSink(f"webhook-{target}", webhook_deliverer(target), spool_dir))
        elif kind == "sns" and target.startswith("arn:"):
            from avmon.monitor.aws import sns_deliverer  # boto3 only when SNS is used
            sinks.append(SpooledSink(f"sns-{target}", sns_deliverer(target), spool_dir))
        else:
            raise ConfigError(f"unknown sink {spec!r}: use stdout, webhook:http(s)://URL"
                              " or sns:TOPIC_ARN")
    return sinks
