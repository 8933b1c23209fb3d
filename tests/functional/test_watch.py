"""``avmon watch`` on live sources made by ``ffmpeg -re``: MPEG-TS over UDP and HLS over HTTP.

Latency is measured from the media clock of the source: for HLS from the segments'
EXT-X-PROGRAM-DATE-TIME (written by ffmpeg's hls muxer from its own wall clock), for UDP from
the receive clock anchored on the first frame (the sender paces in real time with ``-re``).
A defect is due once it has lasted its minimum duration: ``start_utc + min_duration``.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import ClassVar

import pytest

from avmon.detectors.config import AnalysisConfig
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize
from avmon.events import DefectEvent
from avmon.monitor.live import Monitor

pytestmark = [pytest.mark.functional,
              pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI")]

MIN = {name: getattr(AnalysisConfig(), name).min_duration_s
       for name in ("freeze", "black", "silence")}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def live_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 s, 320x176: a freeze, a silence and a black insert, as MPEG-TS."""
    out = tmp_path_factory.mktemp("live") / "live.ts"
    synthesize(SynthRequest(out, 12, tuple(parse_defects("freeze@2:2,silence@5:1.5,black@8:1")),
                            320, 176, seed=5))
    return out


@pytest.fixture(scope="module")
def long_freeze(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("live") / "freeze.ts"
    synthesize(SynthRequest(out, 12, tuple(parse_defects("freeze@1:10")), 320, 176, seed=6))
    return out


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def send_udp(clip: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i", str(clip),
                             "-c", "copy", "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"])


def stop_process(p: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if p.poll() is None:
        p.send_signal(sig)
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


class Watch:
    """Runs a Monitor in a thread; ``seen`` holds (wall time received, event)."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.seen: list[tuple[float, DefectEvent]] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.monitor.events():
                self.seen.append((time.time(), event))
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def wait_for(self, cond: Callable[[DefectEvent], bool], timeout: float) -> float:
        end = time.time() + timeout
        while time.time() < end:
            for wall, e in list(self.seen):
                if cond(e):
                    return wall
            time.sleep(0.05)
        raise AssertionError(f"no such event within {timeout} s; seen: "
                             f"{[e.to_dict() for _, e in self.seen]}")

    def finish(self) -> list[DefectEvent]:
        self.monitor.stop()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive() and self.error is None
        return [e for _, e in self.seen]


def epoch(iso: str | None) -> float:
    assert iso is not None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def latency(wall: float, event: DefectEvent) -> float:
    """Seconds from when the event was due to when it arrived."""
    if event.event == "open":
        return wall - (epoch(event.start_utc) + MIN[event.detector])
    return wall - epoch(event.end_utc)


def check_pairs(events: list[DefectEvent]) -> None:
    """Every open has exactly one close, after it, with the same start and id."""
    opened = [e.defect_id for e in events if e.event == "open"]
    closed = [e.defect_id for e in events if e.event == "close"]
    assert sorted(opened) == sorted(closed) and len(set(opened)) == len(opened)
    for e in events:
        if e.event == "close":
            assert e.end_s is not None and e.end_s >= e.start_s


def test_udp_alerts_within_two_seconds_and_input_loss_within_five(live_clip: Path) -> None:
    port = free_udp_port()
    watch = Watch(Monitor(f"udp://127.0.0.1:{port}", stream_id="udp", input_timeout=2.0))
    sender = send_udp(live_clip, port)
    try:
        for name in ("freeze", "silence", "black"):
            wall = watch.wait_for(lambda e, n=name: e.detector == n and e.event == "open", 15)
            event = next(e for w, e in watch.seen if w == wall and e.detector == name)
            assert latency(wall, event) <= 2.0, (name, latency(wall, event))
        sender.wait(timeout=15)
        stopped = time.time()
        loss = watch.wait_for(lambda e: e.detector == "input_loss" and e.event == "open", 6)
        assert loss - stopped <= 5.0
    finally:
        stop_process(sender)
    events = watch.finish()
    check_pairs(events)
    by = {(e.detector, e.event): (w, e) for w, e in watch.seen}
    for name, truth_len in (("freeze", 2), ("silence", 1.5), ("black", 1)):
        wall, close = by[(name, "close")]
        assert close.end_s is not None
        assert close.end_s - close.start_s == pytest.approx(truth_len, abs=0.15)
        assert latency(wall, close) <= 2.0
    freeze = by[("freeze", "open")][1]
    # times are the stream's own clock (MPEG-TS PTS start at 1.4 s here), not from the join
    assert freeze.start_s > 2.5
    assert watch.monitor.stats.frames > 250


@pytest.mark.parametrize("sending", [False, True], ids=["silent", "sending"])
def test_a_stopped_watch_returns_only_once_its_input_is_closed(live_clip: Path,
                                                               sending: bool) -> None:
    """events() ends with the ingest thread gone: stopped while FFmpeg waits on a silent UDP
    input (the open blocks up to the 2 s read timeout) or while it decodes one. A thread left
    in FFmpeg re-enters Python from PyAV's interrupt callback; if the process exits meanwhile,
    that crashes it (SIGSEGV after a clean stop, seen from ``avmon serve``)."""
    port = free_udp_port()
    monitor = Monitor(f"udp://127.0.0.1:{port}", stream_id=f"stop-{sending}", input_timeout=2.0)
    sender = send_udp(live_clip, port) if sending else None
    watch = Watch(monitor)
    try:
        if sending:
            watch.wait_for(lambda e: e.detector == "freeze", 15)
        else:
            time.sleep(0.5)  # inside the open, which waits for packets that never come
        began = time.monotonic()
        watch.finish()
        took = time.monotonic() - began
    finally:
        if sender is not None:
            stop_process(sender)
    assert [t.name for t in threading.enumerate() if t.name == f"ingest-stop-{sending}"] == []
    assert took < 2.0 + 3.0  # bounded by the read timeout, plus the decoding of a batch
    assert monitor.stats.state == "stopped"


def test_a_source_not_reopened_ends_the_watch_with_an_input_loss(live_clip: Path) -> None:
    """``reconnect=False`` (the live demo's watchers): a UDP source that stops is an
    ``input_loss`` before the watch ends, even when the read timeout comes before the
    watchdog's (here the watchdog's clock runs ten times slow). The read timeout and the
    input timeout are both 2 s, and whichever came first decided: the watch could end as if
    the source had ended cleanly, without saying it was lost (``make demo``'s live part
    failed on that in a clean-clone run)."""
    port = free_udp_port()
    t0 = time.time()
    monitor = Monitor(f"udp://127.0.0.1:{port}", stream_id="once", input_timeout=2.0,
                      reconnect=False, clock=lambda: t0 + (time.time() - t0) / 10)
    sender = send_udp(live_clip, port)
    try:
        events = list(monitor.events())  # ends by itself: the source is not reopened
    finally:
        stop_process(sender)
    loss = [(e.event, e.details.get("closed_by")) for e in events if e.detector == "input_loss"]
    assert [e for e, _ in loss] == ["open", "close"]
    assert str(loss[1][1]).startswith("source lost, not reopened (")
    assert monitor.stats.state == "ended"


def test_udp_sender_that_dies_and_returns_is_one_loss_then_resumed(live_clip: Path) -> None:
    port = free_udp_port()
    watch = Watch(Monitor(f"udp://127.0.0.1:{port}", stream_id="back", input_timeout=2.0,
                          backoff=(0.2, 1.0)))
    first = send_udp(live_clip, port)
    try:
        watch.wait_for(lambda e: e.detector == "freeze" and e.event == "open", 10)
        stop_process(first, signal.SIGKILL)  # mid-freeze: the picture stops with the input
        killed = time.time()
        lost = watch.wait_for(lambda e: e.detector == "input_loss" and e.event == "open", 6)
        assert lost - killed <= 5.0
        time.sleep(1.0)
        second = send_udp(live_clip, port)  # the encoder restarts: its clock starts again
        try:
            watch.wait_for(lambda e: e.detector == "input_loss" and e.event == "close", 10)
            watch.wait_for(lambda e: e.detector == "freeze" and e.event == "open"
                           and e.start_s < 5 and e.defect_id != _first_freeze(watch), 10)
        finally:
            stop_process(second)
    finally:
        stop_process(first)
    events = watch.finish()
    check_pairs(events)
    freeze_close = next(e for e in events if e.detector == "freeze" and e.event == "close")
    assert freeze_close.details["closed_by"] == "input_loss"
    # one cause, one alert: nothing but the loss is raised for the missing media
    lost_at = next(i for i, e in enumerate(events) if e.detector == "input_loss")
    back_at = next(i for i, e in enumerate(events)
                   if e.detector == "input_loss" and e.event == "close")
    during = [e.detector for e in events[lost_at + 1:back_at] if e.event == "open"]
    assert during == [], "\n".join(e.describe() for e in events)
    resumed = events[back_at].details["resumed_at_s"]  # the encoder's clock started again
    assert resumed < events[back_at].start_s
    assert watch.monitor.stats.reconnects >= 1


def _first_freeze(watch: Watch) -> str:
    return next(e.defect_id for _, e in watch.seen if e.detector == "freeze")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_hls_alerts_within_a_segment_plus_two_seconds_then_stale_and_loss(
        live_clip: Path, http_dir: tuple[Path, str]) -> None:
    directory, base = http_dir
    encoder = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-i", str(live_clip),
         # a live encoder's regular 2 s segments (the clip's own keyframes are irregular)
         "-c:v", "libx264", "-preset", "veryfast", "-force_key_frames", "expr:gte(t,n_forced*2)",
         "-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_list_size", "6",
         "-hls_flags", "program_date_time+delete_segments", str(directory / "live.m3u8")])
    watch = Watch(Monitor(f"{base}/live.m3u8", stream_id="hls", input_timeout=3.0))
    try:
        for name in ("freeze", "silence"):
            wall = watch.wait_for(lambda e, n=name: e.detector == n and e.event == "open", 15)
            event = next(e for w, e in watch.seen if w == wall and e.detector == name)
            assert latency(wall, event) <= 2.0 + 2.0, (name, latency(wall, event))
        close_wall = watch.wait_for(lambda e: e.detector == "freeze" and e.event == "close", 5)
        close = next(e for w, e in watch.seen if w == close_wall and e.event == "close")
        assert latency(close_wall, close) <= 4.0
        # the origin's encoder dies: no end tag, the playlist stops growing
        stop_process(encoder, signal.SIGKILL)
        killed = time.time()
        assert watch.wait_for(lambda e: e.detector == "input_loss", 6) - killed <= 5.0
        # one cause, one alert: the stale playlist is the loss's cause, not a second alert
        watch.wait_for(lambda e: e.detector == "input_loss"
                       and e.details.get("cause") == "stale_playlist", 8)
    finally:
        stop_process(encoder, signal.SIGKILL)
    events = watch.finish()
    check_pairs(events)
    assert all(e.start_utc and e.start_utc.endswith("Z") for e in events)
    # (the watch may start before the encoder's first segments: a loss then too, closed)
    after = [e for w, e in watch.seen if w >= killed]
    assert next(e.event for e in after if e.detector == "input_loss") == "open"
    assert [e.detector for e in after if e.event == "open"] == ["input_loss"]
    assert not [e for e in events if e.detector in ("stale_playlist", "origin_unreachable")]


class Origin:
    """An HTTP origin serving ``directory`` on a fixed loopback port, stopped and restarted."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self.server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> str:
        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", self.port), functools.partial(_Quiet, directory=str(self.directory)))
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def wait_until(cond: Callable[[], bool], timeout: float) -> None:
    end = time.time() + timeout
    while not cond():
        assert time.time() < end, "timed out"
        time.sleep(0.05)


def test_hls_origin_that_goes_away_is_one_input_loss_closed_when_it_returns(
        live_clip: Path, tmp_path: Path) -> None:
    origin = Origin(tmp_path)
    base = origin.start()
    encoder = subprocess.Popen(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "2",
         "-i", str(live_clip), "-c:v", "libx264", "-preset", "veryfast",
         "-force_key_frames", "expr:gte(t,n_forced*1)", "-c:a", "aac", "-f", "hls",
         "-hls_time", "1", "-hls_list_size", "30", "-hls_flags", "program_date_time",
         str(tmp_path / "live.m3u8")])
    watch = Watch(Monitor(f"{base}/live.m3u8", stream_id="origin", input_timeout=3.0,
                          detectors=["freeze", "black", "silence"]))
    try:
        wait_until(lambda: watch.monitor.stats.frames > 50, 20)
        origin.stop()  # the origin goes away; the encoder behind it goes on
        stopped = time.time()
        lost = watch.wait_for(lambda e: e.detector == "input_loss" and e.event == "open", 10)
        assert lost - stopped <= 5.0
        time.sleep(4.0)
        origin.start()  # back on the same address, with the segments made meanwhile
        watch.wait_for(lambda e: e.detector == "input_loss" and e.event == "close", 10)
        time.sleep(1.0)
    finally:
        stop_process(encoder)
        origin.stop()
    events = watch.finish()
    check_pairs(events)
    # (a watch that starts before the encoder's first segments sees a loss then too, closed)
    after = [e for w, e in watch.seen if w >= stopped]
    loss = [e for e in after if e.detector == "input_loss"]
    assert [e.event for e in loss] == ["open", "close"], [e.to_dict() for e in after]
    assert loss[0].details["cause"] == "origin_unreachable"
    assert loss[0].details["reason"]  # connection refused, or reset by the closing server
    assert "closed_by" not in loss[1].details  # closed by the media coming back
    assert not [e for e in events if e.detector in ("stale_playlist", "origin_unreachable")]
    opened, closed = events.index(loss[0]), events.index(loss[1])
    assert [e for e in events[opened + 1:closed] if e.event == "open"] == []


@pytest.mark.parametrize("path", ["live.m3u8", "live.ts"], ids=["hls", "mpegts-over-http"])
def test_refused_origin_is_one_input_loss_naming_its_cause(path: str) -> None:
    with socket.socket() as s:  # a port nobody listens on: connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    watch = Watch(Monitor(f"http://127.0.0.1:{port}/{path}", stream_id="refused",
                          input_timeout=2.0, backoff=(0.2, 1.0)))
    started = time.time()
    assert watch.wait_for(lambda e: e.detector == "input_loss", 6) - started <= 3.0
    time.sleep(2.0)  # reconnection attempts go on: they raise nothing new
    events = watch.finish()
    assert [(e.detector, e.event) for e in events] == [("input_loss", "open"),
                                                       ("input_loss", "close")]
    assert events[0].details["cause"] == "origin_unreachable"
    assert "refused" in events[0].details["reason"].lower()
    assert events[1].details["closed_by"] == "watch stopped"


def test_hls_segment_that_fails_to_load_is_a_gap(live_clip: Path,
                                                 http_dir: tuple[Path, str]) -> None:
    directory, base = http_dir
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(live_clip), "-c",
                    "copy", "-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
                    "-hls_flags", "program_date_time", str(directory / "vod.m3u8")], check=True)
    lines = (directory / "vod.m3u8").read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("#EXT") and not ln.startswith(
        ("#EXTINF", "#EXT-X-PROGRAM-DATE-TIME", "#EXT-X-ENDLIST"))]
    entries = []  # (tag lines, uri)
    tags: list[str] = []
    for ln in lines:
        if ln.startswith(("#EXTINF", "#EXT-X-PROGRAM-DATE-TIME")):
            tags.append(ln)
        elif ln and not ln.startswith("#"):
            entries.append((tags, ln))
            tags = []
    (directory / entries[4][1]).unlink()  # segment 4 (about 4-5 s) will answer 404

    def publish(n: int, ended: bool) -> None:  # a live playlist growing one segment at a time
        body = header + [t for tags_, uri in entries[:n] for t in (*tags_, uri)]
        tmp = directory / "live.tmp"
        tmp.write_text("\n".join(body + (["#EXT-X-ENDLIST"] if ended else [])) + "\n")
        tmp.replace(directory / "live.m3u8")

    publish(1, False)
    watch = Watch(Monitor(f"{base}/live.m3u8", stream_id="gap", input_timeout=5.0))
    for n in range(2, len(entries) + 1):
        time.sleep(0.4)
        publish(n, n == len(entries))
    watch.thread.join(timeout=20)
    events = watch.finish()
    gaps = [e for e in events if e.detector == "gap"]
    assert [e.event for e in gaps] == ["open", "close"]
    assert gaps[1].details["media_sequence"] == 4
    assert "failed to load" in gaps[1].details["reason"]
    assert gaps[1].end_s is not None and gaps[1].end_s - gaps[1].start_s >= 0.5
    assert watch.monitor.stats.state == "ended"  # the end tag: a clean end, no input_loss
    assert not [e for e in events if e.detector == "input_loss"]


def test_hls_encoder_that_restarts_its_media_sequence_is_followed(
        live_clip: Path, http_dir: tuple[Path, str]) -> None:
    directory, base = http_dir
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(live_clip), "-c",
                    "copy", "-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
                    str(directory / "vod.m3u8")], check=True)
    lines = (directory / "vod.m3u8").read_text().splitlines()
    header = [ln for ln in lines if ln.startswith("#EXT") and not ln.startswith(
        ("#EXTINF", "#EXT-X-ENDLIST"))]
    entries = [(lines[i], lines[i + 1]) for i, ln in enumerate(lines) if ln.startswith("#EXTINF")]
    assert len(entries) >= 8

    def publish(n: int, ended: bool) -> None:  # MEDIA-SEQUENCE 0, segments 0..n-1
        body = header + [t for pair in entries[:n] for t in pair]
        tmp = directory / "live.tmp"
        tmp.write_text("\n".join(body + (["#EXT-X-ENDLIST"] if ended else [])) + "\n")
        tmp.replace(directory / "live.m3u8")

    publish(1, False)
    watch = Watch(Monitor(f"{base}/live.m3u8", stream_id="restart", input_timeout=5.0))
    for n in range(2, len(entries)):
        time.sleep(0.4)
        publish(n, False)
    watch.wait_for(lambda e: e.detector == "freeze" and e.event == "close", 10)
    time.sleep(1.0)
    frames_before = watch.monitor.stats.frames
    # the encoder restarts: its playlist numbers from 0 again, its timestamps start again
    for n in range(1, 6):
        publish(n, n == 5)
        time.sleep(0.4)
    watch.thread.join(timeout=20)
    events = watch.finish()
    back = [e for e in events if e.detector == "gap" and e.event == "close"]
    assert back and back[0].details["reason"] == "timestamps went back"
    assert watch.monitor.stats.frames > frames_before + 50  # the restarted segments were read
    assert watch.monitor.stats.state == "ended"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "avmon", "watch", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_closes_open_defects_and_exits_zero(long_freeze: Path, tmp_path: Path,
                                                   sig: signal.Signals) -> None:
    port = free_udp_port()
    watcher = subprocess.Popen(_cli(f"udp://127.0.0.1:{port}", "--json", "--stream-id", "cli",
                                    "--spool-dir", str(tmp_path)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    sender = send_udp(long_freeze, port)
    try:
        assert watcher.stdout is not None
        first = json.loads(watcher.stdout.readline())  # blocks until the freeze opens
        assert (first["event"], first["detector"], first["end_s"]) == ("open", "freeze", None)
        watcher.send_signal(sig)
        out, err = watcher.communicate(timeout=10)
    finally:
        stop_process(sender)
        stop_process(watcher, signal.SIGKILL)
    assert watcher.returncode == 0, err
    closes = [json.loads(ln) for ln in out.decode().splitlines()]
    assert [(c["event"], c["detector"]) for c in closes] == [("close", "freeze")]
    assert closes[0]["details"]["closed_by"] == "watch stopped"
    assert closes[0]["id"] != first["id"] and closes[0]["defect_id"] == first["defect_id"]
    assert "avmon watch: cli: stopped" in err.decode() and "Traceback" not in err.decode()


def test_ctrl_c_in_a_terminal_stops_cleanly(long_freeze: Path, tmp_path: Path) -> None:
    port = free_udp_port()
    sender = send_udp(long_freeze, port)
    pid, fd = pty.fork()
    if pid == 0:  # the child: avmon watch on the terminal
        os.environ["PYTHONPATH"] = str(ROOT)
        os.execv(sys.executable, _cli(f"udp://127.0.0.1:{port}", "--spool-dir", str(tmp_path)))
    output = b""
    try:
        deadline = time.time() + 15
        while b"OPEN" not in output and time.time() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                output += os.read(fd, 4096)
        assert b"OPEN" in output, output
        os.write(fd, b"\x03")  # Ctrl-C: the terminal sends SIGINT to the watcher
        deadline = time.time() + 10
        status = None
        while time.time() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                with contextlib.suppress(OSError):  # the child closed the terminal
                    output += os.read(fd, 4096)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
        assert status is not None and os.waitstatus_to_exitcode(status) == 0, output
    finally:
        stop_process(sender)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    text = output.decode(errors="replace")
    assert "CLOSE" in text and "stopped after" in text and "Traceback" not in text


class _Collector(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def test_webhook_down_then_up_loses_and_duplicates_nothing(live_clip: Path,
                                                           tmp_path: Path) -> None:
    # the receiver's port is held from the start, bound but not listening (connections are
    # refused, as by a receiver that is down): a port picked and freed could be taken by
    # another process before the receiver came back (EADDRINUSE in a CI run)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Collector,
                                             bind_and_activate=False)
    serving = False
    try:
        server.server_bind()
        hook = f"webhook:http://127.0.0.1:{server.server_address[1]}/events"
        args = _cli(str(live_clip), "--json", "--sink", "stdout", "--sink", hook,
                    "--spool-dir", str(tmp_path))
        down = subprocess.run(args, capture_output=True, env=_env(), timeout=30)
        assert down.returncode == 0, down.stderr
        printed = [json.loads(ln)["id"] for ln in down.stdout.decode().splitlines()]
        assert len(printed) == 6 and "6 spooled for later" in down.stderr.decode()
        _Collector.received = []
        server.server_activate()
        threading.Thread(target=server.serve_forever, daemon=True).start()
        serving = True
        # the receiver is back: the next watch delivers the spool, then its own events
        up = subprocess.run(args, capture_output=True, env=_env(), timeout=30)
    finally:
        if serving:
            server.shutdown()
        server.server_close()
    assert up.returncode == 0, up.stderr
    ids = [str(r["id"]) for r in _Collector.received]
    assert ids == printed  # every event once, in order: the re-announced ones were duplicates


class LossyRelay:
    """A UDP relay on loopback that drops the datagrams numbered in ``drop`` on the way."""

    def __init__(self, to_port: int, drop: set[int]) -> None:
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.bind(("127.0.0.1", 0))
        self.rx.settimeout(0.2)
        self.port = int(self.rx.getsockname()[1])
        self.to = ("127.0.0.1", to_port)
        self.drop = drop
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            while not self._stop.is_set():
                try:
                    data = self.rx.recv(65536)
                except TimeoutError:
                    continue
                if self.count not in self.drop:
                    tx.sendto(data, self.to)
                self.count += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.rx.close()


@pytest.mark.parametrize("lost", [0, 2], ids=["clean", "two-losses"])
def test_transport_packets_lost_on_the_way_are_gaps(live_clip: Path, lost: int) -> None:
    port = free_udp_port()
    datagrams = live_clip.stat().st_size // 1316  # ffmpeg sends 7 TS packets per datagram
    drop = {int(datagrams * f) + i for f in (0.35, 0.7)[:lost] for i in range(3)}
    relay = LossyRelay(port, drop)
    watch = Watch(Monitor(f"udp://127.0.0.1:{port}", stream_id="lossy", input_timeout=2.0,
                          detectors=["freeze"]))
    sender = send_udp(live_clip, relay.port)
    try:
        sender.wait(timeout=20)
        watch.wait_for(lambda e: e.detector == "input_loss" and e.event == "open", 6)
    finally:
        stop_process(sender)
        relay.close()
    events = watch.finish()
    gaps = [e for e in events if e.detector == "gap" and e.event == "close"]
    assert len(gaps) == lost, [e.to_dict() for e in events]
    for gap in gaps:
        assert gap.details["reason"] == "continuity errors: transport packets lost"
        assert gap.details["packets"] >= 1
    if lost:  # two separate places inside the 12 s clip (whose clock starts at 1.4 s)
        assert 1.4 < gaps[0].start_s < gaps[0].end_s < gaps[1].start_s - 1.0 < 13.4
