"""The spool: a receiver that is down loses nothing, and nothing is sent twice."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from avmon.errors import ConfigError
from avmon.events import DefectEvent
from avmon.monitor.sinks import RejectedEventError, SpooledSink, StdoutSink, build_sinks


def _events(n: int) -> list[DefectEvent]:
    return [DefectEvent("open", "s", "black", float(i), None, None, None, 1.0) for i in range(n)]


class FlakyReceiver:
    """Fails while ``down``; records what it accepted."""

    def __init__(self) -> None:
        self.down = True
        self.got: list[str] = []
        self.attempts = 0

    def __call__(self, event: DefectEvent) -> None:
        self.attempts += 1
        if self.down:
            raise ConnectionRefusedError("receiver down")
        self.got.append(event.id)


def _wait(cond: object, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not cond() and time.monotonic() < end:  # type: ignore[operator]
        time.sleep(0.02)


def test_receiver_down_then_up_gets_every_event_once_in_order(tmp_path: Path) -> None:
    rx = FlakyReceiver()
    sink = SpooledSink("hook", rx, tmp_path, backoff=(0.02, 0.1))
    events = _events(5)
    for e in events:
        sink.send(e)
    sink.send(events[0])  # the same event again is not sent twice
    _wait(lambda: rx.attempts >= 3)
    assert rx.got == [] and sink.stats.pending == 5
    rx.down = False
    _wait(lambda: len(rx.got) == 5)
    sink.close(timeout=1)
    assert rx.got == [e.id for e in events]
    assert sink.stats.delivered == 5 and sink.stats.pending == 0
    assert (tmp_path / "hook.jsonl").read_text() == ""  # the spool is emptied once delivered


def test_pending_events_survive_a_restart(tmp_path: Path) -> None:
    rx = FlakyReceiver()
    first = SpooledSink("hook", rx, tmp_path, backoff=(0.02, 0.05))
    events = _events(3)
    for e in events:
        first.send(e)
    first.close(timeout=0.2)
    assert first.stats.pending == 3
    rx.down = False
    second = SpooledSink("hook", rx, tmp_path, backoff=(0.02, 0.05))
    for e in events:  # a restarted watcher announcing the same defects again
        second.send(e)
    _wait(lambda: len(rx.got) == 3)
    second.close(timeout=1)
    assert rx.got == [e.id for e in events]


def test_a_rejected_event_is_dropped_not_retried(tmp_path: Path) -> None:
    calls: list[str] = []

    def reject(event: DefectEvent) -> None:
        calls.append(event.id)
        raise RejectedEventError("HTTP 400")

    sink = SpooledSink("bad", reject, tmp_path)
    sink.send(_events(1)[0])
    _wait(lambda: sink.stats.rejected == 1)
    sink.close(timeout=0.5)
    assert calls == [_events(1)[0].id] and sink.stats.pending == 0


def test_stdout_sink_writes_one_flushed_line_per_event() -> None:
    out = io.StringIO()
    StdoutSink(True, out).send(_events(1)[0])
    StdoutSink(False, out).send(_events(1)[0])
    first, second = out.getvalue().splitlines()
    assert json.loads(first)["detector"] == "black"
    assert second.startswith("OPEN") and "black" in second


def test_unknown_sink_spec_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown sink"):
        build_sinks(["kafka:topic"], spool_dir=tmp_path)
