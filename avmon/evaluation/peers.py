"""The reference peers: ffmpeg's own detection filters, run on the same streams.

freezedetect, blackdetect, blockdetect, silencedetect and astats (the usual clipping proxy:
Peak_level at full scale with Flat_factor > 0) in one ffmpeg pass per stream. Each filter gets
avmon's thresholds and minimum durations where it has an equivalent setting and keeps ffmpeg's
defaults otherwise (PEER_SETTINGS lists them). ffmpeg has no A/V sync measurement, so av_sync has
no peer. blockdetect scores every frame and never decides; a frame counts as blocky above
BLOCK_THRESHOLD, the value that leaves ffmpeg no false positives on the corpus's clean controls
(its best case: the highest lavfi.block on the six controls was 13.17, on c360-control).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from avmon.errors import PeerToolError
from avmon.model import Defect

BLOCK_THRESHOLD = 13.2
PEER_SETTINGS = {
    "freeze": "freezedetect=d=0.5 (noise n=0.001, ffmpeg's default)",
    "black": "blackdetect=d=0.25:pic_th=0.98:pix_th=0.10",
    "block_corruption": f"blockdetect (defaults), frames with lavfi.block > {BLOCK_THRESHOLD}",
    "silence": "silencedetect=n=-60dB:d=1 (channels averaged, ffmpeg's default)",
    "clipping": "astats per 5 ms: Peak_level >= -1 dBFS and Flat_factor > 0, >= 20 ms",
}
PEER_DETECTORS = tuple(PEER_SETTINGS)


def ffmpeg_path() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise PeerToolError("the ffmpeg CLI is not installed (Debian package 'ffmpeg')")
    return path


def free_udp_port() -> int:
    """A UDP port on loopback that nothing listens on now (for a live source)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def send_live_udp(clip: Path, port: int) -> subprocess.Popen[bytes]:
    """ffmpeg sending ``clip`` in real time (``-re``) as MPEG-TS over UDP to loopback ``port``,
    as a live encoder would, without re-encoding. Raises PeerToolError if ffmpeg is missing."""
    return subprocess.Popen(
        [ffmpeg_path(), "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-i", str(clip),
         "-c", "copy", "-f", "mpegts", f"udp://127.0.0.1:{port}?pkt_size=1316"],
        stdin=subprocess.DEVNULL)


def run_peers(stream: Path, has_audio: bool = True, has_video: bool = True,
              origin: float = 0.0) -> list[Defect]:
    """Run ffmpeg's filters on ``stream``; times are made relative to ``origin`` (the first
    timestamp, as avmon reports them). Raises PeerToolError if ffmpeg fails."""
    with tempfile.TemporaryDirectory() as tmp:
        vmeta, ameta = Path(tmp) / "v.txt", Path(tmp) / "a.txt"
        cmd = [ffmpeg_path(), "-hide_banner", "-nostats", "-v", "info", "-threads", "1",
               "-i", str(stream)]
        if has_video:
            cmd += ["-vf", "freezedetect=d=0.5,blackdetect=d=0.25:pic_th=0.98:pix_th=0.10,"
                           f"blockdetect,metadata=print:key=lavfi.block:file={vmeta}"]
        else:
            cmd += ["-vn"]
        if has_audio:
            cmd += ["-af", "silencedetect=n=-60dB:d=1,asetnsamples=n=240,"
                           "astats=metadata=1:reset=1,"
                           f"ametadata=print:file={ameta}"]
        else:
            cmd += ["-an"]
        cmd += ["-f", "null", "-"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            raise PeerToolError(f"ffmpeg failed on {stream}: {tail[0]}")
        log = proc.stderr
        defects = _intervals(log, "freeze", r"freeze_start: ([\d.]+)", r"freeze_end: ([\d.]+)")
        defects += _black(log)
        defects += _intervals(log, "silence", r"silence_start: (-?[\d.]+)",
                              r"silence_end: ([\d.]+)")
        if has_video:
            defects += _blocks(vmeta.read_text() if vmeta.exists() else "")
        if has_audio:
            defects += _clipping(ameta.read_text() if ameta.exists() else "")
    return [Defect(d.detector, max(0.0, d.start_s - origin), max(0.0, d.end_s - origin))
            for d in defects]


def _end_of(log: str) -> float:
    times = re.findall(r"time=(\d+):(\d+):([\d.]+)", log)
    if not times:
        return 0.0
    h, m, s = times[-1]
    return int(h) * 3600 + int(m) * 60 + float(s)


def _intervals(log: str, name: str, start_re: str, end_re: str) -> list[Defect]:
    starts = [max(0.0, float(x)) for x in re.findall(start_re, log)]
    ends = [float(x) for x in re.findall(end_re, log)]
    out = []
    for i, s in enumerate(starts):
        # a freeze or silence running to the end of the file gets no end line
        end = ends[i] if i < len(ends) else max(_end_of(log), s)
        out.append(Defect(name, s, end))
    return out


def _black(log: str) -> list[Defect]:
    return [Defect("black", float(a), float(b))
            for a, b in re.findall(r"black_start:([\d.]+) black_end:([\d.]+)", log)]


def _frames(text: str, key: str) -> list[tuple[float, float]]:
    out, t = [], None
    for line in text.splitlines():
        m = re.search(r"pts_time:([-\d.]+)", line)
        if m:
            t = float(m[1])
            continue
        if t is not None and line.startswith(key + "="):
            try:
                out.append((t, float(line.split("=", 1)[1])))
            except ValueError:
                continue
    return out


def _runs(flags: list[tuple[float, bool]], step: float, gap: float) -> list[tuple[float, float]]:
    runs: list[list[float]] = []
    for t, on in flags:
        if not on:
            continue
        if runs and t - runs[-1][1] <= gap:
            runs[-1][1] = t + step
        else:
            runs.append([t, t + step])
    return [(a, b) for a, b in runs]


def _blocks(text: str) -> list[Defect]:
    frames = _frames(text, "lavfi.block")
    step = (frames[1][0] - frames[0][0]) if len(frames) > 1 else 0.04
    return [Defect("block_corruption", a, b)
            for a, b in _runs([(t, v > BLOCK_THRESHOLD) for t, v in frames], step, 0.2)]


def _clipping(text: str) -> list[Defect]:
    peaks = dict(_frames(text, "lavfi.astats.Overall.Peak_level"))
    flats = _frames(text, "lavfi.astats.Overall.Flat_factor")
    flags = [(t, f > 0 and peaks.get(t, 0.0) >= -1.0) for t, f in flats]
    return [Defect("clipping", a, b) for a, b in _runs(flags, 0.005, 0.015) if b - a >= 0.02]
