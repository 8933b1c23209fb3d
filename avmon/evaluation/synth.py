"""Labelled test streams: synthetic content with defects injected the way they happen in the field.

``avmon synth OUT --duration S --defects SPEC`` writes OUT and OUT.truth.json (the injected
defects, in the report's schema). Content kinds:

- ``patterns``: moving gratings and textured objects, scene cuts and white flashes, each cut or
  flash with a sound event (a tone burst) at the same instant: the cues A/V sync is measured by.
- ``noisy``: ``patterns`` with film grain that changes every frame (also during a freeze).
- ``dark``: low-key, textured, moving content between black and dark grey: not black.
- ``calm``: slow continuous motion and a steady audio bed: no cuts, no sound events, so no A/V cues.

Defects: frozen pictures repeat the content frame (grain keeps moving); black is a black insert;
block corruption damages the encoded packets (see ``avmon.media.encode``); silence mutes the audio
(all channels or one); clipping drives the audio into full scale; A/V offset shifts the audio track
against the video. Everything is deterministic for a given seed.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, field_validator

from avmon.detectors.registry import NAMES
from avmon.documents import read_document
from avmon.errors import ConfigError, DefectSpecError
from avmon.model import Defect
from avmon.validation import STRICT_OPEN, DefectRecord, check

KINDS = ("patterns", "noisy", "dark", "calm")
DEFECT_KINDS = NAMES  # synth can inject every registered kind of defect
AUDIO_CHUNK = 1024
CHANNELS = 2              # the synthetic programme is stereo
MAX_OFFSET_MS = 10_000.0  # an A/V offset beyond 10 s is not a sync defect but a different stream
MAX_GAIN_DB = 60.0        # 60 dB of drive already turns any programme into a square wave
MAX_WIDTH, MAX_HEIGHT = 3840, 2160  # UHD: a picture and its encoder must fit in memory
BLACK_Y, NEUTRAL_C = 16, 128


@dataclass(frozen=True)
class DefectSpec:
    kind: str
    start_s: float
    duration_s: float
    offset_ms: float = 0.0                   # av_sync: + means audio late, - audio early
    gain_db: float = 30.0                    # clipping: drive into full scale by this much
    channels: tuple[int, ...] | None = None  # silence: None = every channel

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    def covers(self, t: float) -> bool:
        return self.start_s <= t < self.end_s

    def truth(self) -> Defect:
        details: dict[str, object] = {}
        if self.kind == "av_sync":
            details["offset_ms"] = self.offset_ms
        if self.kind == "clipping":
            details["gain_db"] = self.gain_db
        if self.kind == "silence" and self.channels is not None:
            details["channels"] = list(self.channels)
        return Defect(self.kind, self.start_s, self.end_s, 1.0, details)


_SPEC_ITEM = re.compile(
    r"^(?P<kind>[a-z_]+)@(?P<start>\d+(?:\.\d+)?):(?P<dur>\d+(?:\.\d+)?)(?:=(?P<opt>\S+))?$")


def parse_defects(spec: str) -> list[DefectSpec]:
    """Parse ``freeze@10:2,silence@30:2=ch1,av_sync@50:10=+200ms`` (start:duration in seconds).

    Options: ``av_sync`` needs ``=+Nms`` (audio late) or ``=-Nms`` (early); ``silence`` takes
    ``=chN`` to mute one channel (0-based); ``clipping`` takes ``=+NdB`` of drive (default 30).

    Raises DefectSpecError naming the item that does not parse.
    """
    out: list[DefectSpec] = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        m = _SPEC_ITEM.match(item)
        if not m:
            raise DefectSpecError(f"bad defect {item!r}: expected KIND@START:DURATION[=OPTION]")
        kind, opt = m["kind"], m["opt"]
        if kind not in DEFECT_KINDS:
            raise DefectSpecError(f"unknown defect {kind!r} in {item!r}; "
                                  f"known: {', '.join(DEFECT_KINDS)}")
        start, dur = float(m["start"]), float(m["dur"])
        if dur <= 0:
            raise DefectSpecError(f"defect {item!r} has no duration")
        offset, channels, gain = 0.0, None, 30.0
        if kind == "av_sync":
            om = re.fullmatch(r"([+-]?\d+(?:\.\d+)?)ms", opt or "")
            if not om or float(om[1]) == 0:
                raise DefectSpecError(f"{item!r}: av_sync needs an offset like =+200ms or =-80ms")
            offset = float(om[1])
            if abs(offset) > MAX_OFFSET_MS:
                raise DefectSpecError(f"{item!r}: offset {offset:+g} ms is not allowed: at most"
                                      f" {MAX_OFFSET_MS:g} ms either way")
        elif kind == "silence" and opt:
            cm = re.fullmatch(r"ch(\d+)", opt)
            if not cm or int(cm[1]) >= CHANNELS:
                raise DefectSpecError(f"{item!r}: silence option must be a channel of the"
                                      f" stereo track: =ch0 or =ch1")
            channels = (int(cm[1]),)
        elif kind == "clipping" and opt:
            gm = re.fullmatch(r"\+?(\d+(?:\.\d+)?)dB", opt)
            if not gm or not 0 < float(gm[1]) <= MAX_GAIN_DB:
                raise DefectSpecError(f"{item!r}: clipping option must be a gain like =+30dB,"
                                      f" more than 0 and at most {MAX_GAIN_DB:g} dB")
            gain = float(gm[1])
        elif opt:
            raise DefectSpecError(f"{item!r}: {kind} takes no option")
        out.append(DefectSpec(kind, start, dur, offset, gain, channels))
    out.sort(key=lambda d: d.start_s)
    return out


@dataclass(frozen=True)
class _Scene:
    start: float
    kx: float
    ky: float
    speed: float         # radians per second of the grating's phase
    mid: float
    amp: float
    chroma: tuple[int, int]
    shapes: tuple[tuple[float, float, float, float, float, float, int, int, int], ...]
    # each shape: x0, y0, vx, vy (px/s), w, h (px), cell (px), lo, hi (luma)


@dataclass
class Content:
    """Deterministic synthetic programme: pictures, an audio bed, and A/V cue events."""

    kind: str
    width: int
    height: int
    fps: int
    duration: float
    seed: int = 0
    sample_rate: int = 48000
    cues: list[tuple[float, str]] = field(default_factory=list)
    _scenes: list[_Scene] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown content kind {self.kind!r}; known: {', '.join(KINDS)}")
        rng = np.random.default_rng(self.seed)
        self._x = np.arange(self.width, dtype=np.float32)
        self._y = np.arange(self.height, dtype=np.float32)
        self._scenes = [self._new_scene(0.0, rng)]
        if self.kind != "calm":
            t = float(rng.uniform(0.4, 1.0))
            while t < self.duration - 0.2:
                t = round(t * self.fps) / self.fps  # cues fall on frame times
                if rng.random() < 0.25:
                    self.cues.append((t, "flash"))
                else:
                    self.cues.append((t, "cut"))
                    self._scenes.append(self._new_scene(t, rng))
                t += float(rng.uniform(0.45, 1.2))
        self._scene_starts = [s.start for s in self._scenes]
        self._flash_frames = {round(t * self.fps) for t, k in self.cues if k == "flash"}
        self._cue_times = np.array([t for t, _ in self.cues], dtype=np.float64)
        self._cue_freqs = np.array([2000.0 if k == "flash" else 1000.0 for _, k in self.cues])
        self._grain = [rng.standard_normal((self.height + 16, self.width + 16)).astype(np.float32)
                       for _ in range(4)] if self.kind == "noisy" else []
        self._rng_frames = np.random.default_rng(self.seed + 1)

    def _new_scene(self, start: float, rng: np.random.Generator) -> _Scene:
        scale = self.width / 1280
        period = rng.uniform(160, 420) * scale
        angle = rng.uniform(0, 2 * math.pi)
        k = 2 * math.pi / period
        calm = self.kind == "calm"
        px_per_s = rng.uniform(40, 90) * scale * (0.4 if calm else 1.0)
        dark = self.kind == "dark"
        mid, amp = (34.0, 12.0)
        if not dark:
            mid, amp = float(rng.uniform(90, 150)), float(rng.uniform(35, 60))
        shapes = []
        for _ in range(int(rng.integers(3, 6))):
            w = rng.uniform(0.12, 0.3) * self.width
            h = rng.uniform(0.15, 0.35) * self.height
            lo, hi = (int(rng.integers(18, 30)), int(rng.integers(45, 70))) if dark else \
                (int(rng.integers(20, 110)), int(rng.integers(140, 235)))
            speed = rng.uniform(60, 180) * scale * (0.3 if calm else 1.0)
            heading = rng.uniform(0, 2 * math.pi)
            shapes.append((rng.uniform(0, self.width - w), rng.uniform(0, self.height - h),
                           speed * math.cos(heading), speed * math.sin(heading), w, h,
                           int(rng.integers(6, 24) * max(scale, 0.5)), lo, hi))
        chroma = (int(rng.integers(100, 156)), int(rng.integers(100, 156)))
        return _Scene(start, k * math.cos(angle), k * math.sin(angle), k * px_per_s, mid, amp,
                      chroma, tuple(shapes))

    def scene_at(self, t: float) -> _Scene:
        return self._scenes[bisect.bisect_right(self._scene_starts, t) - 1]

    def picture(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The clean picture of frame ``index`` as (Y, U, V) uint8 planes (4:2:0)."""
        t = index / self.fps
        if index in self._flash_frames:
            y = np.full((self.height, self.width), 235, np.uint8)
            c = np.full((self.height // 2, self.width // 2), NEUTRAL_C, np.uint8)
            return y, c, c
        s = self.scene_at(t)
        a = self._x * s.kx - s.speed * t
        b = self._y * s.ky
        grating = np.outer(np.sin(b), np.cos(a)) + np.outer(np.cos(b), np.sin(a))
        y = (s.mid + s.amp * grating).astype(np.float32)
        for x0, y0, vx, vy, w, h, cell, lo, hi in s.shapes:
            px = _bounce(x0 + vx * (t - s.start), self.width - w)
            py = _bounce(y0 + vy * (t - s.start), self.height - h)
            c0, r0 = int(px), int(py)
            c1, r1 = min(self.width, int(px + w)), min(self.height, int(py + h))
            cols = ((np.arange(c0, c1) - c0) // cell) % 2
            rows = ((np.arange(r0, r1) - r0) // cell) % 2
            y[r0:r1, c0:c1] = np.where((rows[:, None] ^ cols[None, :]) == 1, hi, lo)
        y8 = np.clip(y, 16, 235).astype(np.uint8)
        u = np.full((self.height // 2, self.width // 2), s.chroma[0], np.uint8)
        v = np.full((self.height // 2, self.width // 2), s.chroma[1], np.uint8)
        return y8, u, v

    def add_grain(self, y: np.ndarray) -> np.ndarray:
        """Film grain, fresh every call: strongest in mid-tones, faint in the blacks."""
        if not self._grain:
            return y
        bank = self._grain[int(self._rng_frames.integers(len(self._grain)))]
        dy, dx = self._rng_frames.integers(0, 16, size=2)
        noise = bank[dy:dy + self.height, dx:dx + self.width]
        yf = y.astype(np.float32)
        sigma = 7.0 * (0.25 + 0.75 * np.clip((yf - 16) / 180, 0, 1))
        return np.clip(yf + sigma * noise, 16, 235).astype(np.uint8)

    def audio(self, start: int, n: int) -> np.ndarray:
        """Samples [start, start+n) of the programme audio as (2, n) float32."""
        t = (start + np.arange(n)) / self.sample_rate
        swell = 1.0 + 0.3 * np.sin(2 * math.pi * 0.5 * t)
        left = 0.05 * swell * (np.sin(2 * math.pi * 220 * t) + np.sin(2 * math.pi * 277.18 * t + 1)
                               + np.sin(2 * math.pi * 329.63 * t + 2))
        right = 0.045 * swell * (np.sin(2 * math.pi * 220 * t + 0.5)
                                 + np.sin(2 * math.pi * 329.63 * t + 1.3))
        # start < 0 for audio shifted late from the stream's start; seeds must not be negative
        seed = [self.seed, abs(start), int(start < 0)]
        hiss = np.random.default_rng(seed).standard_normal((2, n)) * 0.004
        out = np.stack([left, right]) + hiss
        if self._cue_times.size:
            lo = bisect.bisect_left(self._cue_times, t[0] - 0.3)
            hi = bisect.bisect_right(self._cue_times, t[-1])
            for c, f in zip(self._cue_times[lo:hi], self._cue_freqs[lo:hi], strict=True):
                dt = t - c
                on = (dt >= 0) & (dt < 0.3)
                if on.any():
                    burst = 0.6 * np.exp(-dt[on] / 0.05) * np.sin(2 * math.pi * f * dt[on])
                    out[:, on] += burst
        return out.astype(np.float32)


def _bounce(pos: float, span: float) -> float:
    if span <= 0:
        return 0.0
    period = 2 * span
    p = pos % period
    return p if p <= span else period - p


@dataclass(frozen=True)
class SynthRequest:
    out: Path
    duration: float
    defects: tuple[DefectSpec, ...] = ()
    width: int = 640
    height: int = 360
    fps: int = 25
    content: str = "patterns"
    seed: int = 0
    video: bool = True
    audio: bool = True

    def validate(self) -> None:
        """Raises ConfigError for parameters no stream can be made from."""
        if not (0 < self.duration <= 24 * 3600):
            raise ConfigError(f"--duration must be in (0, 86400] seconds, got {self.duration}")
        if self.width < 32 or self.height < 32 or self.width % 2 or self.height % 2:
            raise ConfigError(f"--size {self.width}x{self.height}: width and height must be even"
                              " and at least 32 (4:2:0 video)")
        if self.width > MAX_WIDTH or self.height > MAX_HEIGHT:
            raise ConfigError(f"--size {self.width}x{self.height} is not allowed: at most"
                              f" {MAX_WIDTH}x{MAX_HEIGHT}")
        if not (1 <= self.fps <= 120):
            raise ConfigError(f"--fps must be 1..120, got {self.fps}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"--seed must be within 0..{2**32 - 1}, got {self.seed}")
        if self.content not in KINDS:
            raise ConfigError(f"--content {self.content!r}: unknown content kind;"
                              f" known: {', '.join(KINDS)}")
        if not (self.video or self.audio):
            raise ConfigError("a stream needs video or audio")
        for d in self.defects:
            if d.end_s > self.duration:
                raise DefectSpecError(
                    f"{d.kind}@{d.start_s:g}:{d.duration_s:g} ends after the stream "
                    f"({self.duration:g} s)")
            needs_audio = d.kind in ("silence", "clipping", "av_sync")
            if (needs_audio and not self.audio) or (not needs_audio and not self.video):
                raise DefectSpecError(f"{d.kind} needs the track this stream does not have")


def truth_path(stream: Path) -> Path:
    return stream.with_name(stream.name + ".truth.json")


def synthesize(req: SynthRequest) -> Path:
    """Write the stream and its truth file; return the truth file's path.

    Raises ConfigError (or DefectSpecError) for bad parameters.
    """
    from avmon.media.encode import Corruption, EncodeSettings, write_stream

    req.validate()
    content = Content(req.content, req.width, req.height, req.fps, req.duration, req.seed)
    n_frames = round(req.duration * req.fps)
    freezes = [d for d in req.defects if d.kind == "freeze"]
    blacks = [d for d in req.defects if d.kind == "black"]
    corrupt = [d for d in req.defects if d.kind == "block_corruption"]

    def pictures() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        for i in range(n_frames):
            t = i / req.fps
            if any(d.covers(t) for d in blacks):
                y = np.full((req.height, req.width), BLACK_Y, np.uint8)
                c = np.full((req.height // 2, req.width // 2), NEUTRAL_C, np.uint8)
                yield content.add_grain(y), c, c
                continue
            frozen = next((d for d in freezes if d.covers(t)), None)
            y, u, v = content.picture(round(frozen.start_s * req.fps) if frozen else i)
            yield content.add_grain(y), u, v

    def sounds() -> Iterator[np.ndarray]:
        total = round(req.duration * content.sample_rate)
        sr = content.sample_rate
        for start in range(0, total, AUDIO_CHUNK):
            n = min(AUDIO_CHUNK, total - start)
            chunk = content.audio(start, n)
            t = (start + np.arange(n)) / sr
            for d in req.defects:
                on = (t >= d.start_s) & (t < d.end_s)
                if not on.any():
                    continue
                if d.kind == "av_sync":
                    shifted = content.audio(start - round(d.offset_ms / 1000 * sr), n)
                    chunk[:, on] = shifted[:, on]
                elif d.kind == "silence":
                    rows = list(d.channels) if d.channels is not None else slice(None)
                    chunk[rows, on] = 0.0
                elif d.kind == "clipping":
                    gain = 10 ** (d.gain_db / 20)
                    chunk[:, on] = np.clip(chunk[:, on] * gain, -1.0, 1.0)
            yield chunk

    boundaries = {round(d.start_s * req.fps) for d in corrupt} | \
                 {round(d.end_s * req.fps) for d in corrupt}
    req.out.parent.mkdir(parents=True, exist_ok=True)
    write_stream(
        req.out,
        EncodeSettings(req.width, req.height, req.fps, content.sample_rate),
        pictures() if req.video else None,
        sounds() if req.audio else None,
        keyframes=lambda i: i in boundaries,
        corruption=Corruption(tuple((d.start_s, d.end_s) for d in corrupt), seed=req.seed)
        if corrupt else None,
    )
    truth = truth_path(req.out)
    record = {
        "source": os.fspath(req.out),
        "duration_s": req.duration,
        "kind": "synthetic",
        "content": req.content,
        "seed": req.seed,
        "size": [req.width, req.height],
        "fps": req.fps,
        "cues": len(content.cues),
        "defects": [d.truth().to_dict() for d in req.defects],
    }
    truth.write_text(json.dumps(record, indent=2) + "\n")
    return truth


class TruthFile(BaseModel):
    """The shape of a truth file as ``synthesize`` writes it (other keys are descriptive)."""

    model_config = STRICT_OPEN

    defects: list[DefectRecord]

    @field_validator("defects")
    @classmethod
    def _known_detectors(cls, defects: list[DefectRecord]) -> list[DefectRecord]:
        # a misspelt detector would be scored against nothing: every detection a false positive
        for d in defects:
            if d.detector not in NAMES:
                raise ValueError(f"unknown detector {d.detector!r}; known: {', '.join(NAMES)}")
        return defects


def load_truth(path: Path) -> list[Defect]:
    """The defects of a truth file. Raises ConfigError if it is not one (one line naming the
    first bad entry)."""
    truth: TruthFile = check(TruthFile, read_document(path, "a truth file"), str(path))
    return [Defect.from_dict(d.model_dump()) for d in truth.defects]
