"""``avmon serve``: live loopback sources in a subprocess, HTTP endpoints, reload, restarts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from avmon.errors import ConfigError
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize
from avmon.monitor.service import Backoff, Service, default_monitor_factory, parse_streams

pytestmark = pytest.mark.functional
ROOT = Path(__file__).resolve().parents[2]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture(scope="module")
def live_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serve") / "live.ts"
    synthesize(SynthRequest(out, 9, tuple(parse_defects("freeze@3:1.5")), 320, 176, seed=5))
    return out


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI")
def test_serve_watches_live_sources_reports_over_http_reloads_and_stops_cleanly(
        live_clip, tmp_path):
    ports = [free_udp_port() for _ in range(3)]
    streams = tmp_path / "streams.yaml"
    streams.write_text("streams:\n" + "".join(
        f"  - id: cam{i}\n    source: udp://127.0.0.1:{p}\n" for i, p in enumerate(ports[:2])))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    serve = subprocess.Popen(
        [sys.executable, "-m", "avmon", "serve", "--streams", str(streams), "--port", "0",
         "--host", "127.0.0.1", "--poll", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    senders: list[subprocess.Popen[bytes]] = []
    try:
        line = serve.stderr.readline() if serve.stderr else ""
        assert "http://127.0.0.1:" in line, line
        base = "http://" + line.split("http://")[1].split("/metrics")[0]
        for p in ports:
            senders.append(subprocess.Popen(
                ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i", str(live_clip),
                 "-c", "copy", "-f", "mpegts", f"udp://127.0.0.1:{p}?pkt_size=1316"]))
        assert get(base + "/healthz") == (200, "ok\n")

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            text = get(base + "/metrics")[1]
            families = {f.name: f for f in text_string_to_metric_families(text)}
            frames = {s.labels["stream"]: s.value for s in families["avmon_stream_frames"].samples
                      if s.name.endswith("_total")}
            if len(frames) == 2 and min(frames.values()) > 25:
                break
            time.sleep(0.3)
        assert set(frames) == {"cam0", "cam1"} and min(frames.values()) > 25, frames
        assert "process_cpu_seconds" in families and "process_resident_memory_bytes" in families
        assert {s.labels["stream"] for s in families["avmon_stream_lag_seconds"].samples} == \
            {"cam0", "cam1"}

        # reload: drop cam1, add cam2
        streams.write_text("streams:\n"
                           f"  - id: cam0\n    source: udp://127.0.0.1:{ports[0]}\n"
                           f"  - id: cam2\n    source: udp://127.0.0.1:{ports[2]}\n"
                           "    detectors: [freeze]\n")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            state = json.loads(get(base + "/streams")[1])
            if {s["id"] for s in state["streams"]} == {"cam0", "cam2"}:
                break
            time.sleep(0.2)
        assert {s["id"] for s in state["streams"]} == {"cam0", "cam2"}, state
        assert state["reloads"] == 1
        assert next(s for s in state["streams"] if s["id"] == "cam2")["detectors"] == ["freeze"]
        for s in senders:
            s.wait(timeout=90)  # the clip has played: its freeze has opened and closed
        time.sleep(1.0)
    finally:
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=90)  # generous: CI machines are shared
        for s in senders:
            s.kill()
    assert serve.returncode == 0, err
    assert "avmon serve: stopped" in err
    # every stream's threads closed their inputs before the interpreter exits (one still in
    # FFmpeg then can crash it after the clean stop)
    assert "threads still running at exit" not in err, err
    events = [json.loads(x) for x in out.splitlines()]
    freeze = {(e["stream"], e["event"]) for e in events if e["detector"] == "freeze"}
    assert {("cam0", "open"), ("cam0", "close"), ("cam2", "open"), ("cam2", "close")} <= freeze
    # every defect opened is closed, by its end or by the shutdown
    opened = {e["defect_id"] for e in events if e["event"] == "open"}
    closed = {e["defect_id"] for e in events if e["event"] == "close"}
    assert opened == closed


class Crashing:
    """A monitor whose events() fails at once, as a bug in a detector would."""

    def __init__(self) -> None:
        self.stats = None

    def events(self):
        raise RuntimeError("detector bug")
        yield

    def stop(self) -> None:
        pass


def test_a_crashing_stream_is_restarted_with_backoff_and_the_others_run_on(tmp_path, clip):
    streams = tmp_path / "streams.json"
    streams.write_text(json.dumps({"streams": [{"id": "good", "source": str(clip)},
                                                {"id": "bad", "source": str(clip)}]}))
    made: dict[str, int] = {"bad": 0}
    lines: list[str] = []

    def factory(spec):
        if spec.id == "bad":
            made["bad"] += 1
            if made["bad"] <= 3:
                return Crashing()
        return default_monitor_factory(spec)

    class Collect:
        def __init__(self) -> None:
            self.events: list = []

        def send(self, event) -> None:
            self.events.append(event)

        def close(self) -> None:
            pass

    sinks: dict[str, Collect] = {}
    service = Service(streams, monitor_factory=factory, poll_s=0.05,
                      sink_factory=lambda spec, sid: sinks.setdefault(sid, Collect()),
                      backoff=Backoff(first_s=0.05, max_s=0.2), log=lines.append)
    stop = threading.Event()
    runner = threading.Thread(target=service.run, args=(stop,))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rs = service.runners
            if all(r.state == "ended" for r in rs.values()) and len(rs) == 2:
                break
            time.sleep(0.1)
        status = {s["id"]: s for s in service.status()["streams"]}
    finally:
        stop.set()
        runner.join(30)
    assert status["bad"]["crashes"] == 3 and status["bad"]["restarts"] == 3
    assert status["good"]["crashes"] == 0 and status["good"]["state"] == "ended"
    assert status["bad"]["state"] == "ended"  # the fourth attempt ran the clip to its end
    assert "RuntimeError: detector bug" in status["bad"]["last_error"]
    assert sum("stream bad crashed" in x for x in lines) == 3
    found = {e.detector for e in sinks["good"].events}
    assert found == {e.detector for e in sinks["bad"].events} and "freeze" in found


def test_an_invalid_reload_keeps_the_running_streams(tmp_path, clip):
    streams = tmp_path / "s.yaml"
    streams.write_text(f"streams: [{{id: a, source: '{clip}'}}]\n")
    lines: list[str] = []
    service = Service(streams, log=lines.append, sink_factory=lambda s, i: _Null())
    try:
        service.reconcile()
        assert set(service.runners) == {"a"}
        time.sleep(0.01)
        streams.write_text("streams: [{id: a}]\n")
        os.utime(streams, ns=(time.time_ns(), time.time_ns() + 10**9))
        service.reconcile()
        assert set(service.runners) == {"a"}
        assert service.config_error == f"{streams}: streams.0.source is missing"
    finally:
        service.shutdown()


class _Null:
    def send(self, event) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("text", "message"), [
    ("streams: [{id: a, source: x, detectors: [frieze]}]",
     "streams.0.detectors = ['frieze']: unknown detector(s) frieze"),
    ("streams: [{id: a, source: x}, {id: a, source: y}]", "stream id 'a' appears twice"),
    ("streams: [{id: a, source: x, sinks: [pager]}]",
     "streams.0.sinks = ['pager']: unknown sink 'pager'"),
    ("streams: [{id: a, source: x, sinks: [\"webhook:ftp://h\"]}]", "unknown sink"),
    ("streams: [{id: 7, source: x}]", "streams.0.id = 7: must be a string"),
    ("streams: [{id: a, source: x, colour: red}]",
     "streams.0.colour = 'red': is not a known setting"),
    ("{streams: [", "not valid YAML"),
    ("[]", "[]: must be a table"),
    ('{"streams": [{"id": "a", "source": "x", "config": {"freeze": {"speed": 1}}}]}',
     "streams.0.config = "),
])
def test_a_bad_streams_file_is_one_line_naming_the_field(text, message):
    with pytest.raises(ConfigError) as exc:
        parse_streams(text, "f.yaml")
    assert str(exc.value).startswith("f.yaml: ") and message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_serve_cli_bad_file_is_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text('{"streams": [{"id": "a"}]}')
    proc = subprocess.run([sys.executable, "-m", "avmon", "serve", "--streams", str(bad),
                           "--port", "0"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == f"avmon: error: {bad}: streams.0.source is missing\n"


def test_events_reach_each_streams_own_sinks(tmp_path, clip):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/events"
    streams = tmp_path / "s.yaml"
    streams.write_text(f"streams:\n  - {{id: hooked, source: '{clip}', detectors: [freeze],"
                       f" sinks: ['webhook:{url}']}}\n")
    service = Service(streams, spool_dir=tmp_path / "spool", log=lambda m: None)
    try:
        service.reconcile()
        assert service.runners["hooked"].join(60)
    finally:
        service.shutdown()
        server.shutdown()
    assert [(e["event"], e["detector"], e["stream"]) for e in received] == \
        [("open", "freeze", "hooked"), ("close", "freeze", "hooked")]


def test_a_stream_whose_sink_cannot_be_made_is_reported_once_and_the_others_run(
        tmp_path, clip, monkeypatch):
    monkeypatch.delenv("AVMON_TOPIC_ARN", raising=False)
    streams = tmp_path / "s.yaml"
    streams.write_text(f"streams:\n  - {{id: ok, source: '{clip}', detectors: [black]}}\n"
                       f"  - {{id: nosns, source: '{clip}', sinks: [sns]}}\n")
    lines: list[str] = []
    service = Service(streams, spool_dir=tmp_path / "spool", log=lines.append)
    try:
        service.reconcile()
        service.reconcile()
        assert set(service.runners) == {"ok"}
        assert "AVMON_TOPIC_ARN" in service.status()["not_started"]["nosns"]
        assert sum("nosns not started" in x for x in lines) == 1
    finally:
        service.shutdown()
