"""Alert latency, CPU and memory of ``avmon watch`` on a live source made by ``ffmpeg -re``.

    .venv/bin/python benchmarks/watch_live.py --mode udp --seconds 180 [--size 640x360]
    .venv/bin/python benchmarks/watch_live.py --mode hls --seconds 180

Makes (once) a 60 s stream with a freeze, black, silence, clipping and block corruption, and
plays it in a loop in real time: over UDP as MPEG-TS (``-c copy``), or as HLS with 2 s
segments (re-encoded with a keyframe every 2 s, as a live encoder would, with
EXT-X-PROGRAM-DATE-TIME) served by a loopback HTTP server. ``avmon watch --json`` runs as a
child process; each event line is timestamped on arrival.

- Latency of an ``open``: arrival minus (``start_utc`` + the detector's minimum duration); of a
  ``close``: arrival minus ``end_utc``. For HLS the UTC is the segments' program date-time,
  written by ffmpeg from its own clock; for UDP it is the watcher's receive clock anchored on
  the first frame (the sender paces in real time), so network and demuxer buffering before the
  first frame are not counted.
- CPU: user + system seconds of the watcher (all threads, from /proc) over the run after a
  10 s warm-up, as a share of one core. Memory: resident set size sampled every 10 s.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import run  # noqa: E402

DEFECTS = "freeze@5:2,black@15:1,silence@25:1.5,clipping@35:0.5,block_corruption@45:1"
MIN_S = {"freeze": 0.5, "black": 0.25, "silence": 1.0, "clipping": 0.02,
         "block_corruption": 0.0}


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _watch_playlist(path: Path, published: list[tuple[float, float, float]]) -> None:
    """Note when each segment appears in the playlist, against its program date-time + length."""
    seen: set[str] = set()
    while True:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            lines = []
        pdt = length = None
        for ln in lines:
            if ln.startswith("#EXTINF:"):
                length = float(ln[8:].split(",")[0])
            elif ln.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
                text = ln.split(":", 1)[1]
                pdt = _epoch(f"{text[:-2]}:{text[-2:]}" if text[-5] in "+-" else text)
            elif ln and not ln.startswith("#") and ln not in seen:
                seen.add(ln)
                if pdt is not None and length is not None:
                    published.append((pdt, length, time.time()))
        time.sleep(0.05)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=["udp", "hls", "long-file"], default="udp")
    ap.add_argument("--loops", type=int, default=60,
                    help="long-file: the clip repeated this many times (minutes of media)")
    ap.add_argument("--seconds", type=float, default=180.0)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    clip = args.out / f"live-60s-{args.size}.ts"
    if not clip.exists():
        subprocess.run([sys.executable, "-m", "avmon", "synth", str(clip), "--duration", "60",
                        "--size", args.size, "--defects", DEFECTS], check=True, env=env,
                       stdout=subprocess.DEVNULL)
    if args.mode == "long-file":
        return long_file(clip, args.loops, env)
    work = Path(tempfile.mkdtemp(prefix="watch-bench-"))
    server = None
    if args.mode == "udp":
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        source = f"udp://127.0.0.1:{port}"
        out = ["-c", "copy", "-f", "mpegts", f"{source}?pkt_size=1316"]
    else:
        server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(work)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        source = f"http://127.0.0.1:{server.server_address[1]}/live.m3u8"
        out = ["-c:v", "libx264", "-preset", "veryfast", "-force_key_frames",
               "expr:gte(t,n_forced*2)", "-c:a", "aac", "-f", "hls", "-hls_time", "2",
               "-hls_list_size", "6", "-hls_flags", "program_date_time+delete_segments",
               str(work / "live.m3u8")]
    # the clip's corrupted packets make a re-encoding sender log every concealed block
    sender = subprocess.Popen(["ffmpeg", "-nostdin", "-loglevel", "fatal", "-re",
                               "-stream_loop", "-1", "-i", str(clip), *out])
    published: list[tuple[float, float, float]] = []  # HLS: (program time, length, appeared)
    if args.mode == "hls":
        threading.Thread(target=_watch_playlist, args=(work / "live.m3u8", published),
                         daemon=True).start()
    watcher = subprocess.Popen([sys.executable, "-m", "avmon", "watch", source, "--json",
                                "--spool-dir", str(work / "spool")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    arrivals: list[tuple[float, dict[str, object]]] = []

    def read() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            arrivals.append((time.time(), json.loads(line)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    start = time.time()
    load0 = os.getloadavg()[0]
    time.sleep(10)
    cpu0, t0 = _proc_cpu(watcher.pid), time.time()
    rss: list[float] = []
    while time.time() - start < args.seconds:
        rss.append(_proc_rss_mib(watcher.pid))
        time.sleep(min(10.0, max(0.0, args.seconds - (time.time() - start))))
    cpu = (_proc_cpu(watcher.pid) - cpu0) / (time.time() - t0)
    rss.append(_proc_rss_mib(watcher.pid))
    watcher.send_signal(signal.SIGINT)
    _, err = watcher.communicate(timeout=20)
    reader.join(timeout=5)
    sender.terminate()
    sender.wait()
    if server is not None:
        server.shutdown()

    lat: dict[tuple[str, str], list[float]] = {}
    own: list[float] = []  # HLS: from the segment holding the due moment appearing to the alert
    for wall, e in arrivals:
        name, kind = str(e["detector"]), str(e["event"])
        if name not in MIN_S or (kind == "close" and "closed_by" in dict(e["details"])):  # type: ignore[call-overload]
            continue
        due = (_epoch(str(e["start_utc"])) + MIN_S[name] if kind == "open"
               else _epoch(str(e["end_utc"])) if kind == "close" else None)
        if due is not None:
            lat.setdefault((name, kind), []).append(wall - due)
            seg = next((p for p in published if p[0] <= due < p[0] + p[1]), None)
            if seg is not None:
                own.append(wall - max(seg[2], due))
    print(f"avmon watch, {args.mode}, {args.size} 25 fps H.264 + AAC, {args.seconds:.0f} s"
          f" ({args.seconds / 60:.1f} loops of the 60 s clip)")
    print(f"{'detector':17} {'event':6} {'n':>3} {'median s':>9} {'max s':>7}")
    for (name, kind), xs in sorted(lat.items()):
        print(f"{name:17} {kind:6} {len(xs):3d} {statistics.median(xs):9.2f} {max(xs):7.2f}")
    others = sorted({str(e["detector"]) for _, e in arrivals} - set(MIN_S))
    print(f"other findings: {', '.join(others) or 'none'}")
    if published:
        late = [appeared - (pdt + length) for pdt, length, appeared in published]
        print(f"HLS segments appeared in the playlist {statistics.median(late):.2f} s"
              f" (median), {max(late):.2f} s (max) after their media ended"
              f" ({len(late)} segments)")
    if own:
        print(f"from the segment appearing to the event: median {statistics.median(own):.2f} s,"
              f" max {max(own):.2f} s ({len(own)} events)")
    print(f"load average {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end"
          f" ({os.cpu_count()} cores)")
    print(f"CPU {100 * cpu:.1f}% of one core; RSS MiB first {rss[0]:.0f}, last {rss[-1]:.0f},"
          f" max {max(rss):.0f} ({len(rss)} samples)")
    print(err.strip().splitlines()[0] if err.strip() else "(no summary)")
    return 0


def long_file(clip: Path, loops: int, env: dict[str, str]) -> int:
    """Memory over a long stream, at decode speed: the clip repeated ``loops`` times."""
    long = clip.with_name(f"{clip.stem}-x{loops}.ts")
    if not long.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-stream_loop",
                        str(loops - 1), "-i", str(clip), "-c", "copy", str(long)], check=True)
    watcher = subprocess.Popen([sys.executable, "-m", "avmon", "watch", str(long), "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    samples: list[tuple[float, float]] = []
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(watcher.stdout or []), daemon=True).start()
    start = time.time()
    while watcher.poll() is None:
        try:
            samples.append((time.time() - start, _proc_rss_mib(watcher.pid)))
        except OSError:
            break
        if len(samples) % 15 == 1:  # progress that survives an interrupted run
            print(f"  {samples[-1][0]:5.0f} s: RSS {samples[-1][1]:.0f} MiB,"
                  f" {len(lines)} events so far", flush=True)
        time.sleep(2)
    _, err = watcher.communicate()
    print(f"avmon watch on {loops} min of media ({long.name}), at decode speed:"
          f" {time.time() - start:.0f} s, {len(lines)} events")
    n = len(samples)
    for label, (t, rss) in (("first", samples[min(2, n - 1)]), ("middle", samples[n // 2]),
                            ("last", samples[-1])):
        print(f"RSS {label:6} sample at {t:5.0f} s: {rss:.0f} MiB")
    print(f"RSS max {max(r for _, r in samples):.0f} MiB over {n} samples")
    print(err.strip().splitlines()[0] if err.strip() else "(no summary)")
    return 0


if __name__ == "__main__":
    run(main)
