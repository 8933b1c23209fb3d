"""The single-process design measured as it runs: ``avmon serve`` with N live sources at once.

Each source is ``ffmpeg -re`` sending a labelled clip (``avmon synth``) as MPEG-TS over UDP on
loopback, so every stream arrives at its real rate, as from an encoder. The serve process is a
child: its CPU time comes from ``/proc/PID/stat`` over a window in the middle of the run (all
streams live), its memory from ``VmRSS`` sampled through the run. Two runs per resolution, with
1 and N streams, separate what is paid once per process (interpreter, imports, shared
libraries, HTTP) from what each stream adds: ``rss(N) = base + N * per_stream``.

Every event is timestamped when it reaches the measuring process, and every injected defect
is matched to its ``open`` and ``close``: alert latency is the receive time minus the moment
the defect had lasted its detector's minimum duration on air (``open``), or had ended
(``close``). An injected defect without its open and close on a stream is a missed event.

Linux only (``/proc``); needs the ffmpeg CLI. Raises PeerToolError without it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from avmon.detectors.config import AnalysisConfig
from avmon.errors import AvmonError, PeerToolError
from avmon.evaluation.peers import free_udp_port, send_live_udp
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize

# Fargate task sizes (vCPU, GB), the smallest memory each allows, as listed in the ECS
# developer guide's "Task size" table (checked Nov 2026).
FARGATE_SIZES: tuple[tuple[float, float], ...] = (
    (0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0), (16.0, 32.0))
DEFECTS = "freeze@5:2,black@10:1,silence@14:1.5"
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Profile:
    name: str
    width: int
    height: int
    fps: int


PROFILES = {p.name: p for p in (Profile("360p", 640, 360, 25), Profile("720p", 1280, 720, 25),
                                Profile("1080p50", 1920, 1080, 50))}


@dataclass
class RunResult:
    """One serve run with ``streams`` live sources."""

    profile: str
    streams: int
    window_s: float
    cpu_s: float
    peak_rss_mb: float
    latencies_open_s: list[float] = field(default_factory=list)
    latencies_close_s: list[float] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    lag_s_max: float | None = None
    stream_s: float = 0.0   # media seconds the streams advanced in the window, summed
    load_avg: float | None = None  # the machine's 1-minute load average at the window's end

    @property
    def cpu_per_stream_second(self) -> float:
        """CPU seconds per second of media watched (a starved process watches less)."""
        return self.cpu_s / (self.stream_s or self.window_s * self.streams)

    @property
    def live_streams(self) -> float:
        """Streams' worth of media processed per second of the window (N when keeping up)."""
        return self.stream_s / self.window_s if self.stream_s else float(self.streams)


def make_clip(folder: Path, profile: Profile, duration: float = 20.0,
              defects: str = DEFECTS) -> Path:
    """A labelled MPEG-TS clip for ``profile`` (cached in ``folder``)."""
    out = folder / f"load-{profile.name}-{duration:g}s.ts"
    if not out.exists() or not out.with_suffix(".ts.truth.json").exists():
        synthesize(SynthRequest(out, duration, tuple(parse_defects(defects)), profile.width,
                                profile.height, profile.fps, seed=3))
    return out


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure_serve(clip: Path, streams: int, profile: str = "", *,
                  python: str = sys.executable, log: Callable[[str], None] | None = None
                  ) -> RunResult:
    """Run ``avmon serve`` on ``streams`` live copies of ``clip`` and measure it.

    Raises PeerToolError if ffmpeg is missing, AvmonError if serve fails to start.
    """
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        raise PeerToolError("the ffmpeg CLI (ffmpeg, ffprobe) is needed for live sources")
    record = json.loads(clip.with_suffix(".ts.truth.json").read_text())
    truth = record["defects"]
    duration = float(record.get("duration_s", 0)) or _duration(clip)
    minimum = {k: v.get("min_duration_s", 0.0) for k, v in AnalysisConfig().to_dict().items()}
    ports = [free_udp_port() for _ in range(streams)]
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "streams.json"
        spec.write_text(json.dumps({"streams": [
            {"id": f"s{i:02d}", "source": f"udp://127.0.0.1:{p}"} for i, p in enumerate(ports)]}))
        serve = subprocess.Popen(
            [python, "-m", "avmon", "serve", "--streams", str(spec), "--port", "0",
             "--host", "127.0.0.1", "--spool-dir", str(Path(tmp) / "spool")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        received: list[tuple[float, dict[str, Any]]] = []
        reader = threading.Thread(target=_read_events, args=(serve.stdout, received),
                                  daemon=True)
        reader.start()
        banner = serve.stderr.readline() if serve.stderr else ""
        if "http://" not in banner:
            serve.kill()
            raise AvmonError(f"avmon serve did not start: {banner.strip()}")
        base_url = "http://" + banner.split("http://")[1].split("/metrics")[0]
        _wait_running(base_url, streams)
        # each stream's clock starts when its sender does (16 senders take a while to start)
        senders, started = [], []
        for p in ports:
            started.append(time.time())
            senders.append(send_live_udp(clip, p))
        # the window: from when every stream has media until just before the first sender ends
        time.sleep(1.0)
        while len(_media(base_url)) < streams and time.time() < started[0] + duration / 2:
            time.sleep(0.2)
        cpu0, t0, media0 = _cpu_s(serve.pid), time.monotonic(), _media(base_url)
        peak, lag_max = 0.0, None
        while time.time() < started[0] + duration - 1.0:
            peak = max(peak, _rss_mb(serve.pid))
            lag_max = _max_lag(base_url, lag_max)
            time.sleep(0.5)
        cpu1, t1, media1 = _cpu_s(serve.pid), time.monotonic(), _media(base_url)
        load = os.getloadavg()[0]
        for s in senders:
            s.wait(timeout=duration + 30)
        # a process that fell behind is still working through its queues: wait for it
        deadline, last = time.monotonic() + 30, None
        while time.monotonic() < deadline:
            now = _media(base_url)
            if now == last:
                break
            last = now
            peak = max(peak, _rss_mb(serve.pid))
            time.sleep(1.0)
        time.sleep(1.5)  # the last closes
        serve.terminate()
        serve.wait(timeout=60)
        reader.join(10)
    stream_s = sum(media1[k] - media0[k] for k in media1 if k in media0)
    result = RunResult(profile=profile, streams=streams, window_s=round(t1 - t0, 3),
                       cpu_s=round(cpu1 - cpu0, 3), peak_rss_mb=round(peak, 1), lag_s_max=lag_max,
                       stream_s=round(stream_s, 3), load_avg=round(load, 1))
    _score(result, received, truth, started, _origin(received, truth), minimum, streams)
    if log:
        log(f"{profile or clip.name}: {streams} streams, {result.cpu_per_stream_second:.4f}"
            f" CPU s per stream-second, peak {result.peak_rss_mb:.0f} MB, missed"
            f" {len(result.missed)}, open latency max"
            f" {max(result.latencies_open_s, default=float('nan')):.2f} s, load average"
            f" {result.load_avg}")
    return result


def _duration(clip: Path) -> float:
    proc = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                           "-of", "csv=p=0", str(clip)], capture_output=True, text=True,
                          check=True)
    return float(proc.stdout.strip())


def _read_events(out: IO[str] | None, received: list[tuple[float, dict[str, Any]]]) -> None:
    if out is None:
        return
    for line in out:
        try:
            received.append((time.time(), json.loads(line)))
        except ValueError:
            continue


def _wait_running(base_url: str, streams: int, timeout: float = 60.0) -> None:
    import urllib.request
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(base_url + "/streams", timeout=5) as r:
            state = json.loads(r.read())
        if sum(s["state"] == "running" for s in state["streams"]) == streams:
            time.sleep(1.0)  # the monitors open their sockets
            return
        time.sleep(0.2)
    raise AvmonError(f"avmon serve did not start {streams} streams in {timeout:.0f} s")


def _media(base_url: str) -> dict[str, float]:
    """Each stream's media time now (seconds on its clock)."""
    import urllib.request
    with urllib.request.urlopen(base_url + "/streams", timeout=5) as r:
        state = json.loads(r.read())
    return {s["id"]: float(s["monitor"]["media_time_s"]) for s in state["streams"]
            if s.get("monitor") and s["monitor"].get("media_time_s") is not None}


def _max_lag(base_url: str, current: float | None) -> float | None:
    import urllib.request
    try:
        with urllib.request.urlopen(base_url + "/streams", timeout=5) as r:
            state = json.loads(r.read())
    except OSError:
        return current
    lags = [float(s["monitor"]["lag_s"]) for s in state["streams"]
            if s.get("monitor") and s["monitor"].get("lag_s") is not None]
    if not lags:
        return current
    return float(max(max(lags), current if current is not None else -math.inf))


def _origin(received: Sequence[tuple[float, dict[str, Any]]],
            truth: Sequence[dict[str, Any]]) -> float:
    """Where the clip's 0 lies on the stream's clock: the sender re-muxes (MPEG-TS adds its
    own offset), so it is read from the events: the median distance from each injected defect to
    the first event of its detector opening within 3 s after it."""
    offsets = []
    for _, e in received:
        if e.get("event") != "open":
            continue
        for d in truth:
            if e["detector"] == d["detector"] and 0 <= e["start_s"] - d["start_s"] < 3:
                offsets.append(e["start_s"] - d["start_s"])
    offsets.sort()
    return offsets[len(offsets) // 2] if offsets else 0.0


def _score(result: RunResult, received: Sequence[tuple[float, dict[str, Any]]],
           truth: Sequence[dict[str, Any]], started: Sequence[float], origin: float,
           minimum: dict[str, float], streams: int) -> None:
    for i in range(streams):
        sid = f"s{i:02d}"
        mine = [(t, e) for t, e in received if e.get("stream") == sid]
        for d in truth:
            start = d["start_s"] + origin
            opened = [(t, e) for t, e in mine if e["event"] == "open"
                      and e["detector"] == d["detector"] and abs(e["start_s"] - start) < 0.5]
            if not opened:
                result.missed.append(f"{sid} {d['detector']}@{d['start_s']} open")
                continue
            t_open, ev = opened[0]
            on_air_min = started[i] + d["start_s"] + minimum.get(d["detector"], 0.0)
            result.latencies_open_s.append(round(t_open - on_air_min, 3))
            closed = [t for t, e in mine if e["event"] == "close"
                      and e["defect_id"] == ev["defect_id"]]
            if not closed:
                result.missed.append(f"{sid} {d['detector']}@{d['start_s']} close")
                continue
            result.latencies_close_s.append(round(closed[0] - (started[i] + d["end_s"]), 3))


@dataclass(frozen=True)
class Fit:
    """``base + streams * per_stream`` for CPU (s per second) and memory (MB)."""

    profile: str
    base_cpu: float
    cpu_per_stream: float
    base_mb: float
    mb_per_stream: float

    def streams_per_task(self, vcpu: float, memory_gb: float, target_cpu: float = 0.7,
                         memory_reserve: float = 0.1) -> int:
        """Streams one task holds at ``target_cpu`` of its vCPUs and ``1 - memory_reserve``
        of its memory, the process's base paid once."""
        by_cpu = (vcpu * target_cpu - self.base_cpu) / self.cpu_per_stream
        by_mem = (memory_gb * 1024 * (1 - memory_reserve) - self.base_mb) / self.mb_per_stream
        return max(0, math.floor(min(by_cpu, by_mem)))

    def streams_per_vcpu(self, target_cpu: float = 0.7) -> float:
        return round(target_cpu / self.cpu_per_stream, 1)


def fit(one: RunResult, many: RunResult) -> Fit:
    """The per-process and per-stream parts from a 1-stream and an N-stream run: cores used and
    peak memory against the streams' worth of media each run processed per second."""
    if many.streams <= one.streams:
        raise AvmonError("fit needs runs with different stream counts")

    def cores(r: RunResult) -> float:
        return r.cpu_s / r.window_s

    per_cpu = (cores(many) - cores(one)) / (many.live_streams - one.live_streams)
    per_mb = (many.peak_rss_mb - one.peak_rss_mb) / (many.streams - one.streams)
    return Fit(many.profile, round(max(0.0, cores(one) - per_cpu * one.live_streams), 4),
               round(per_cpu, 5), round(one.peak_rss_mb - per_mb * one.streams, 1),
               round(per_mb, 1))


def usage_for_designs(f: Fit, vcpu: float = 2.0, memory_gb: float = 4.0) -> dict[str, float]:
    """The ``single-process`` usage that ``avmon.economics.designs.compare`` prices, from a fit:
    CPU per stream-second with the process's base shared by a full task's streams, and memory
    per stream likewise (so TaskSize.streams gives the same count as ``streams_per_task``)."""
    n = max(1, f.streams_per_task(vcpu, memory_gb))
    return {"cpu_per_stream_second": round(f.cpu_per_stream + f.base_cpu / n, 5),
            "peak_mb": round(f.mb_per_stream + f.base_mb / n, 1),
            "streams_per_task": n}


def run_load(folder: Path, plan: Sequence[tuple[str, int]], duration: float = 20.0,
             log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """For each (profile, N): a 1-stream and an N-stream run, the fit, and streams per task."""
    out: dict[str, Any] = {"profiles": {}, "fargate_sizes": FARGATE_SIZES,
                           "duration_s": duration, "defects": DEFECTS}
    for name, n in plan:
        profile = PROFILES[name]
        clip = make_clip(folder, profile, duration)
        one = measure_serve(clip, 1, name, log=log)
        many = measure_serve(clip, n, name, log=log)
        f = fit(one, many)
        out["profiles"][name] = {
            "runs": [asdict(r) | {"cpu_per_stream_second": round(r.cpu_per_stream_second, 5),
                                  "live_streams": round(r.live_streams, 2)} for r in (one, many)],
            "fit": asdict(f), "streams_per_vcpu": f.streams_per_vcpu(),
            "streams_per_task": {f"{v:g} vCPU / {g:g} GB": f.streams_per_task(v, g)
                                 for v, g in FARGATE_SIZES}}
    return out
