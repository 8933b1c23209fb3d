"""``avmon serve``: the single-process design as a service, many live streams in one process.

One thread per stream runs a ``Monitor`` (PyAV decodes with the GIL released, so the streams
share the cores); its events go to the stream's sinks. The streams file is polled and applied
when it changes: a stream added starts, one removed stops (closing its open defects), one whose
settings changed restarts. A stream that crashes is restarted with exponential backoff, alone.
With a ``LeaseManager`` the process watches only the streams it holds a lease on, so several
tasks share one streams file (``avmon/monitor/leases.py``).

HTTP (``ServiceHttp``): ``/healthz``, ``/metrics`` (Prometheus text: per stream and per
process) and ``/streams`` (JSON).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any, Protocol

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from pydantic import BaseModel, Field, field_validator

from avmon.detectors.config import AnalysisConfig
from avmon.detectors.registry import NAMES
from avmon.documents import parse_document, read_document
from avmon.errors import ConfigError
from avmon.events import DefectEvent
from avmon.monitor.leases import LeaseManager
from avmon.validation import STRICT, check

# -- the streams file --------------------------------------------------------------------------


class StreamSpec(BaseModel):
    """One stream of the streams file."""

    model_config = STRICT

    id: str = Field(min_length=1, max_length=200, pattern=r"^[^\s/]+$")
    source: str = Field(min_length=1)
    detectors: list[str] | None = None
    sinks: list[str] = Field(default_factory=lambda: ["stdout"])
    config: dict[str, dict[str, Any]] | None = None

    @field_validator("detectors")
    @classmethod
    def _known_detectors(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            unknown = [n for n in v if n not in NAMES]
            if unknown:
                raise ValueError(f"unknown detector(s) {', '.join(unknown)};"
                                 f" known: {', '.join(NAMES)}")
            if not v:
                raise ValueError("an empty list watches nothing; omit it for every detector")
        return v

    @field_validator("sinks")
    @classmethod
    def _known_sinks(cls, v: list[str]) -> list[str]:
        for s in v:
            kind, _, target = s.partition(":")
            ok = (s == "stdout" or (kind == "sns" and (not target or target.startswith("arn:")))
                  or (kind == "webhook" and target.startswith(("http://", "https://"))))
            if not ok:
                raise ValueError(f"unknown sink {s!r}; use stdout, webhook:http(s)://URL,"
                                 " sns:TOPIC_ARN or sns (the topic in AVMON_TOPIC_ARN)")
        return v

    @field_validator("config")
    @classmethod
    def _valid_config(cls, v: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]] | None:
        if v is not None:
            try:
                AnalysisConfig.from_mapping(v)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return v

    def analysis_config(self) -> AnalysisConfig:
        return AnalysisConfig.from_mapping(self.config) if self.config else AnalysisConfig()


class StreamsFile(BaseModel):
    """``{"streams": [...]}``: ids are unique."""

    model_config = STRICT

    streams: list[StreamSpec]

    @field_validator("streams")
    @classmethod
    def _unique_ids(cls, v: list[StreamSpec]) -> list[StreamSpec]:
        seen: set[str] = set()
        for s in v:
            if s.id in seen:
                raise ValueError(f"stream id {s.id!r} appears twice")
            seen.add(s.id)
        return v


def parse_streams(text: str, name: str = "streams.yaml") -> StreamsFile:
    """Parse a streams file's text (JSON if ``name`` ends in .json, else YAML, which JSON also
    is). Raises ConfigError in one line naming the first bad field, e.g.
    ``streams.yaml: streams.1.source is missing``."""
    suffix = ".json" if name.endswith(".json") else ".yaml"
    return validate_streams(parse_document(text, suffix, name, "a streams list"), name)


def load_streams(path: Path) -> StreamsFile:
    """Read and parse a streams file (``.json`` as JSON, anything else as YAML).

    Raises ConfigError (unreadable, not JSON/YAML, or invalid)."""
    if path.suffix.lower() in (".json", ".yaml", ".yml"):
        data = read_document(path, "a streams list")
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not a text file"
            raise ConfigError(f"{path}: cannot read a streams list ({reason})") from None
        data = parse_document(text, ".yaml", str(path), "a streams list")
    return validate_streams(data, str(path))


def validate_streams(data: Any, name: str) -> StreamsFile:
    """Raises ConfigError naming the first bad field (``avmon.validation``'s one-line form)."""
    parsed: StreamsFile = check(StreamsFile, data, name)
    return parsed


# -- sinks ---------------------------------------------------------------------------------------

class Sink(Protocol):
    def send(self, event: DefectEvent) -> None: ...
    def close(self, timeout: float = 5.0) -> None: ...


class LineSink:
    """``watch --json`` lines on a text stream, one flushed write per event (thread-safe)."""

    _lock = threading.Lock()  # one lock for every LineSink: lines of two streams never mix

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out

    def send(self, event: DefectEvent) -> None:
        out = self.out or sys.stdout
        with self._lock:
            try:
                out.write(event.to_json_line() + "\n")
                out.flush()
            except (BrokenPipeError, ValueError):
                pass  # a closed reader must not stop the monitoring

    def close(self, timeout: float = 5.0) -> None:
        pass


SinkFactory = Callable[[str, str], Sink]   # (sink spec, stream id) -> Sink


def make_sink_factory(spool_dir: Path) -> SinkFactory:
    """Sinks as ``avmon watch`` makes them (``avmon.monitor.sinks``: webhook and SNS spooled to
    disk under ``spool_dir/<stream>``), stdout shared by every stream. ``sns`` alone means the
    topic in ``AVMON_TOPIC_ARN`` (the deployed service's). The factory raises ConfigError."""

    def make(spec: str, stream: str) -> Sink:
        if spec == "stdout":
            return LineSink()
        if spec == "sns":
            topic = os.environ.get("AVMON_TOPIC_ARN")
            if not topic:
                raise ConfigError(f"stream {stream}: sink 'sns' needs AVMON_TOPIC_ARN set,"
                                  " or name the topic: sns:TOPIC_ARN")
            spec = f"sns:{topic}"
        from avmon.monitor.sinks import build_sinks
        (sink,) = build_sinks([spec], spool_dir=spool_dir / stream)
        return sink

    return make


# -- one stream ----------------------------------------------------------------------------------


class LiveMonitor(Protocol):
    """What the service needs of ``avmon.monitor.live.Monitor``."""

    def events(self) -> Iterator[DefectEvent]: ...
    def stop(self) -> None: ...
    @property
    def stats(self) -> Any: ...


MonitorFactory = Callable[[StreamSpec], LiveMonitor]


def default_monitor_factory(spec: StreamSpec) -> LiveMonitor:
    from avmon.monitor.live import Monitor
    return Monitor(spec.source, spec.analysis_config(), stream_id=spec.id,
                   detectors=list(spec.detectors) if spec.detectors else None)


@dataclass(frozen=True)
class Backoff:
    first_s: float = 1.0
    max_s: float = 60.0
    healthy_s: float = 60.0  # a run this long resets the delay


class StreamRunner:
    """A thread that runs one stream's Monitor and restarts it, with backoff, if it crashes."""

    def __init__(self, spec: StreamSpec, sinks: Sequence[Sink], factory: MonitorFactory,
                 backoff: Backoff = Backoff(), log: Callable[[str], None] = print) -> None:
        self.spec, self.sinks, self.factory, self.backoff, self.log = (
            spec, list(sinks), factory, backoff, log)
        self.state = "starting"
        self.restarts = 0
        self.crashes = 0
        self.last_error: str | None = None
        self.started_at = time.time()
        self.events_sent = 0
        self.sink_errors = 0
        self._monitor: LiveMonitor | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-{spec.id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the monitor to end (it closes its open defects); ``join`` waits for it."""
        self._stop.set()
        if self._monitor is not None:
            self._monitor.stop()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def stats(self) -> Any:
        m = self._monitor
        return m.stats if m is not None else None

    def _run(self) -> None:
        delay = self.backoff.first_s
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self._monitor = self.factory(self.spec)
                if self._stop.is_set():  # stopped while it was being made
                    self._monitor.stop()
                self.state = "running"
                for event in self._monitor.events():
                    self._dispatch(event)
                self.state = "stopped" if self._stop.is_set() else "ended"
                return
            except Exception as exc:  # one stream's failure must never reach the others
                self.crashes += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.state = "restarting"
                if time.monotonic() - began >= self.backoff.healthy_s:
                    delay = self.backoff.first_s
                self.log(f"avmon serve: stream {self.spec.id} crashed ({self.last_error});"
                         f" restarting in {delay:.1f} s")
                if self._stop.wait(delay):
                    break
                delay = min(self.backoff.max_s, delay * 2)
                self.restarts += 1
        self.state = "stopped"

    def _dispatch(self, event: DefectEvent) -> None:
        self.events_sent += 1
        for sink in self.sinks:
            try:
                sink.send(event)
            except Exception as exc:  # a sink that fails must not stop the monitoring
                self.sink_errors += 1
                self.log(f"avmon serve: stream {self.spec.id}: sink failed ({exc})")

    def status(self) -> dict[str, Any]:
        stats = self.stats
        return {"id": self.spec.id, "source": self.spec.source, "state": self.state,
                "detectors": list(self.spec.detectors or NAMES), "sinks": list(self.spec.sinks),
                "restarts": self.restarts, "crashes": self.crashes,
                "last_error": self.last_error, "events": self.events_sent,
                "sink_errors": self.sink_errors,
                "monitor": stats.to_dict() if hasattr(stats, "to_dict") else None}


# -- the service ---------------------------------------------------------------------------------


class Service:
    """Many streams in one process, as the streams file and the leases say.

    ``run(stop)`` blocks until ``stop`` is set, then shuts down: every monitor closes its open
    defects, sinks are closed, leases given back. Raises ConfigError if the streams file is
    invalid at start (later invalid versions are reported and the running set is kept).
    """

    def __init__(self, streams_path: Path, *, monitor_factory: MonitorFactory | None = None,
                 sink_factory: SinkFactory | None = None, leases: LeaseManager | None = None,
                 spool_dir: Path | None = None,
                 poll_s: float = 1.0, backoff: Backoff = Backoff(),
                 log: Callable[[str], None] | None = None) -> None:
        self.path = streams_path
        self.monitor_factory = monitor_factory or default_monitor_factory
        self.sink_factory = sink_factory or make_sink_factory(
            spool_dir or Path(tempfile.gettempdir()) / "avmon-spool")
        self.leases = leases
        self.poll_s = poll_s
        self.backoff = backoff
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.runners: dict[str, StreamRunner] = {}
        self.config_error: str | None = None
        self.reloads = 0
        self.last_loop = time.monotonic()
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._specs: dict[str, StreamSpec] = {}
        self._owned: frozenset[str] | None = None
        self._next_lease_tick = 0.0
        self._start_errors: dict[str, tuple[StreamSpec, str]] = {}
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.registry.register(_StreamCollector(self))
        self._load(initial=True)

    # -- configuration -------------------------------------------------------------------------
    def _load(self, initial: bool = False) -> bool:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as exc:
            if initial:
                raise ConfigError(f"{self.path}: cannot read the streams file"
                                  f" ({exc.strerror})") from None
            return False
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            parsed = load_streams(self.path)
        except ConfigError as exc:
            if initial:
                raise
            self.config_error = str(exc)
            self.log(f"avmon serve: {exc}; keeping the running streams")
            return False
        self.config_error = None
        self._specs = {s.id: s for s in parsed.streams}
        if self.leases is not None:
            self.leases.set_streams(self._specs)
        if not initial:
            self.reloads += 1
            self.log(f"avmon serve: reloaded {self.path} ({len(self._specs)} streams)")
        return True

    def wanted(self) -> dict[str, StreamSpec]:
        """The streams this process should watch now: all of them, or those it holds leases on."""
        if self.leases is None:
            return dict(self._specs)
        now = time.monotonic()
        if self._owned is None or now >= self._next_lease_tick:
            try:
                self._owned = self.leases.tick()
            except Exception as exc:  # the lease table unreachable: watch nothing rather
                self.log(f"avmon serve: lease renewal failed ({exc})")  # than twice
                self._owned = frozenset()
            self._next_lease_tick = now + self.leases.interval_s
        return {k: v for k, v in self._specs.items() if k in self._owned}

    def reconcile(self) -> None:
        """Start, stop and restart runners so they match ``wanted()``."""
        self._load()
        wanted = self.wanted()
        with self._lock:
            leaving = {sid: r for sid, r in self.runners.items() if wanted.get(sid) != r.spec}
        for runner in leaving.values():
            runner.stop()
        # joined without the lock: a stopping stream may wait for its input's read timeout
        # (live.py), and /metrics and /streams read the runners meanwhile
        gone = [sid for sid, runner in leaving.items() if runner.join(10.0)]
        with self._lock:
            for sid in gone:
                self._close_sinks(self.runners.pop(sid))
            for sid, spec in wanted.items():
                if sid not in self.runners:
                    self._start(spec)

    def _start(self, spec: StreamSpec) -> None:
        failed = self._start_errors.get(spec.id)
        if failed is not None and failed[0] == spec:
            return  # said once; tried again when its entry in the streams file changes
        try:
            sinks = [self.sink_factory(s, spec.id) for s in spec.sinks]
        except ConfigError as exc:
            self._start_errors[spec.id] = (spec, str(exc))
            self.log(f"avmon serve: stream {spec.id} not started: {exc}")
            return
        self._start_errors.pop(spec.id, None)
        runner = StreamRunner(spec, sinks, self.monitor_factory, self.backoff, self.log)
        self.runners[spec.id] = runner
        runner.start()

    def _close_sinks(self, runner: StreamRunner) -> None:
        for sink in runner.sinks:
            try:
                sink.close()
            except Exception as exc:
                self.log(f"avmon serve: stream {runner.spec.id}: closing a sink failed ({exc})")

    # -- running -------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.last_loop = time.monotonic()
                self.reconcile()
                stop.wait(self.poll_s)
        finally:
            self.shutdown()

    def shutdown(self, timeout: float = 15.0) -> None:
        with self._lock:
            runners = list(self.runners.values())
        for r in runners:
            r.stop()
        deadline = time.monotonic() + timeout
        for r in runners:
            if not r.join(max(0.1, deadline - time.monotonic())):
                self.log(f"avmon serve: stream {r.spec.id} did not stop in {timeout:.0f} s")
            self._close_sinks(r)
        with self._lock:
            self.runners.clear()
        if self.leases is not None:
            try:
                self.leases.release_all()
            except Exception as exc:
                self.log(f"avmon serve: giving the leases back failed ({exc})")

    def healthy(self) -> bool:
        return time.monotonic() - self.last_loop < max(10.0, 5 * self.poll_s)

    def status(self) -> dict[str, Any]:
        with self._lock:
            runners = list(self.runners.values())
        return {"streams": [r.status() for r in runners],
                "configured": sorted(self._specs), "config_error": self.config_error,
                "not_started": {sid: why for sid, (_, why) in self._start_errors.items()},
                "reloads": self.reloads,
                "owner": self.leases.owner if self.leases is not None else None}


class _StreamCollector(Collector):
    """Per-stream metrics, read from the monitors at scrape time."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Any]:
        with self.service._lock:
            runners = list(self.service.runners.values())
        lag = GaugeMetricFamily("avmon_stream_lag_seconds",
                                "how far the last decoded media is behind the live edge",
                                labels=["stream"])
        frames = CounterMetricFamily("avmon_stream_frames", "video frames decoded",
                                     labels=["stream"])
        errors = CounterMetricFamily("avmon_stream_decode_errors",
                                     "pictures concealed and packets rejected by the decoder",
                                     labels=["stream"])
        open_ = GaugeMetricFamily("avmon_stream_open_defects", "defects open now",
                                  labels=["stream"])
        events = CounterMetricFamily("avmon_stream_events", "events sent to the sinks",
                                     labels=["stream"])
        restarts = CounterMetricFamily("avmon_stream_restarts",
                                       "times the stream's monitor crashed and was restarted",
                                       labels=["stream"])
        up = GaugeMetricFamily("avmon_stream_up", "1 while the stream's monitor is running",
                               labels=["stream"])
        for r in runners:
            sid = [r.spec.id]
            s = r.stats
            if s is not None:
                if s.lag_s is not None:
                    lag.add_metric(sid, s.lag_s)
                frames.add_metric(sid, s.frames)
                errors.add_metric(sid, s.decode_errors)
                open_.add_metric(sid, s.open_defects)
            events.add_metric(sid, r.events_sent)
            restarts.add_metric(sid, r.restarts)
            up.add_metric(sid, 1.0 if r.state == "running" and r.alive else 0.0)
        streams = GaugeMetricFamily("avmon_streams", "streams this process watches")
        streams.add_metric([], len(runners))
        yield from (lag, frames, errors, open_, events, restarts, up, streams)


# -- HTTP ----------------------------------------------------------------------------------------


class ServiceHttp:
    """``/healthz``, ``/metrics`` and ``/streams`` on a ThreadingHTTPServer, in a thread."""

    def __init__(self, service: Service, host: str = "0.0.0.0", port: int = 8080) -> None:
        svc = service

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    ok = svc.healthy()
                    self._reply(200 if ok else 503, "text/plain; charset=utf-8",
                                b"ok\n" if ok else b"service loop stalled\n")
                elif path == "/metrics":
                    self._reply(200, CONTENT_TYPE_LATEST, generate_latest(svc.registry))
                elif path == "/streams":
                    self._reply(200, "application/json",
                                json.dumps(svc.status(), indent=1).encode())
                else:
                    self._reply(404, "text/plain; charset=utf-8",
                                b"not found: try /healthz, /metrics or /streams\n")

            def _reply(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes every few seconds would drown the events on stdout

        try:
            self.server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="http",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
