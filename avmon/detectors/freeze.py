"""Freeze: the picture does not change for at least 0.5 s.

Each frame is compared with the first frame of the candidate freeze (as ffmpeg's freezedetect
does, so slow motion accumulates and is not mistaken for a freeze). Three tests, any of which
means the picture moved:

- **pixels**: more than 0.2% of the pixels of the analysis grid (every other grid pixel: 160
  wide) changed by more than a noise level. The noise level is measured in the same frames: the
  99.8th percentile of the frame-to-frame change (at most 5x its 90th percentile, so a small
  fast object does not pass for noise), times two (a frozen picture under fresh grain
  changes as much from one frame to the next as from the first frozen frame; slow motion
  accumulates against the first frame and not between neighbours), and never below 8 levels
  (codec flicker). At an intra picture the level is kept for the rest of the candidate: the
  re-encoding flicker of a frozen picture comes with the keyframe and stays in every frame
  predicted from it (an intra picture's noise may sit on a few pixels only, 0.8% of them with
  x264 at crf 45, so there the tail is not capped: it is not a small object moving). That
  kept level also hides motion as large as the flicker, so each later picture is compared
  with the keyframe too, at its own noise level: a coder may still refine a frozen picture
  after an intra picture (measured up to 0.23% of the pixels by more than 8 levels on the live
  MPEG-TS test stream, 1.40% with MPEG-4 part 2 at q 20), so more than 1.5% changed is motion.
  (Measured on ``bbb-dark-zoom``: ffmpeg's zoompan moves its crop in whole-pixel steps; where a
  keyframe fell on a step, the step set the kept level, 34 levels, and four 1.0-1.4 s
  stretches of motion read as freezes; each next step moved 1.9-3.6% of the pixels away from
  the keyframe.) Per-pixel counts see what cell means average away: a dark still slowly
  zooming (2% of pixels change by more than 10 levels in 0.5 s) is motion, not a string of
  freezes. A coder starved so far that a frozen picture visibly pumps back into shape after
  each intra picture (MPEG-2 at 300 kb/s, 640x360, GOP 15: 2.65% of the pixels) reads as
  motion. A scanner's first picture, when it is intra (a segment's first, in the pipeline),
  has no previous picture to measure its noise against: the pictures in the 0.2 s after it
  may differ from it by the same refinement allowance, then are compared with the last of
  them as usual (a freeze crossing a segment boundary of an HLS stream cut by ffmpeg ended at
  the boundary: the coder refined the segment's first picture over the next two).
- **cells**: the mean change of 16x16-pixel cell means exceeds 1.5 levels plus 0.3 per level of
  noise (a fade, a global low-contrast change); a keyframe's noise is kept for this test too.
- **strong cells**: more than 0.2% of cells changed by 20 levels (a small object moving).

Grain that hides motion also hides it from the viewer: a dark zoom under heavy grain (sigma 12)
still reads as frozen stretches (README, "freeze"). Black pictures are left to the black detector.
Runs shorter than the minimum duration that end inside the stream are dropped as the stream
advances, so memory does not grow with the stream's length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from avmon.detectors.base import DetectorConfig, Evidence, NoFeed, RunTracker, interval_defects
from avmon.detectors.black import BlackConfig, frame_black_fraction
from avmon.frames import VideoFrame
from avmon.model import Defect


@dataclass(frozen=True)
class FreezeConfig(DetectorConfig):
    min_duration_s: float = 0.5
    mean_threshold: float = 1.5      # mean cell change (luma levels) of an unchanged picture
    noise_factor: float = 0.3        # ... plus this much per level of pixel noise (sigma)
    strong_change: float = 20.0      # a cell changed by this much is real change ...
    max_strong_fraction: float = 0.002  # ... and more than this fraction of them is motion
    pixel_floor: float = 8.0         # a pixel change below this is never motion (codec flicker)
    noise_margin: float = 2.0        # ... nor below this times the frame-to-frame noise tail
    max_changed_fraction: float = 0.002  # more changed pixels than this is motion
    max_tail_ratio: float = 5.0      # noise tail at most this times the 90th percentile
    max_refined_fraction: float = 0.015  # pixels a frozen picture's coding may still refine
    refine_window_s: float = 0.2     # ... after a scanner's first picture, for this long


def noise_level(frame: VideoFrame, prev: VideoFrame, config: FreezeConfig) -> tuple[float, float]:
    """The pixel change (luma levels) that noise alone reaches between ``prev`` and ``frame``,
    and the noise's sigma (for the cell test)."""
    return noise_of(change_counts(frame, prev), frame.keyframe, config)


def change_counts(frame: VideoFrame, prev: VideoFrame) -> npt.NDArray[np.intp]:
    """How many half-grid pixels changed by at most 0, 1, ... 255 levels since ``prev``."""
    # the changes are whole levels 0..255: a histogram's running count gives every quantile
    # exactly (what a partition gives, at a fraction of its cost) and every count above a level
    below: npt.NDArray[np.intp] = np.cumsum(np.bincount(frame.pixel_change(prev).ravel(),
                                                        minlength=256))
    return below


def noise_of(below: npt.NDArray[np.intp], keyframe: bool,
             config: FreezeConfig) -> tuple[float, float]:
    """``noise_level`` from the frame-to-frame ``change_counts``.

    The tail is the 99.8th percentile of the frame-to-frame change, but at most five times its
    90th percentile: grain is everywhere (tail/90th percentile measured 2.0 for ffmpeg's noise
    filter after x264, 3.2-4.3 for the synthetic grain), while a small object moving fast fills
    the tail alone (ratio 22 on the synthetic dark scenes) and must not pass for noise. At an
    intra picture the tail is not capped: a coder's fresh noise may sit on few pixels.
    """
    size = int(below[-1])
    n = size - 1
    k_tail = min(n, int(size * (1.0 - config.max_changed_fraction)))
    # the 50th, 90th and tail percentiles: whole levels
    median, q90, tail = below.searchsorted((n // 2, int(n * 0.9), k_tail), side="right").tolist()
    if not keyframe:
        tail = min(tail, config.max_tail_ratio * q90)
    # |N(0, s)| has its median at 0.674 s
    return max(config.pixel_floor, config.noise_margin * tail), median / 0.674


def changed_fraction(frame: VideoFrame, ref: VideoFrame, level: float) -> float:
    """The fraction of the analysis grid's pixels that changed by more than ``level``."""
    diff = frame.pixel_change(ref)
    # whole levels: above ``level`` is above its floor, and an integer keeps numpy from
    # converting the differences to float64 to compare them
    return int(np.count_nonzero(diff > math.floor(level))) / int(diff.size)


def fraction_above(below: npt.NDArray[np.intp], level: float) -> float:
    """``changed_fraction`` from the ``change_counts`` of the same two pictures."""
    size = int(below[-1])
    return (size - int(below[min(math.floor(level), 255)])) / size


def change(frame: VideoFrame, ref: VideoFrame, changed: float, allowed: float, sigma: float,
           config: FreezeConfig) -> float:
    """How much ``frame`` changed since ``ref``: 0 is identical, 1 or more is a change.

    ``changed`` is the fraction of pixels that changed by more than the noise level
    (``changed_fraction``), of which ``allowed`` may; ``sigma`` is the noise's (``noise_level``).
    """
    cells, mean = frame.cell_change(ref)
    threshold = config.mean_threshold + config.noise_factor * sigma
    strong = np.count_nonzero(cells > config.strong_change) / cells.size
    return float(max(mean / threshold, strong / config.max_strong_fraction,
                     changed / allowed))


class FreezeScanner(NoFeed):
    def __init__(self, config: FreezeConfig, black: BlackConfig) -> None:
        self.config = config
        self.black = black
        self.runs = RunTracker(drop_shorter_than=config.min_duration_s)
        self._ref: VideoFrame | None = None
        self._prev: VideoFrame | None = None
        # what an intra picture brought into the candidate: its noise level and sigma, and
        # the picture itself (a frozen picture's later frames are predicted from it)
        self._keyframe_noise = (0.0, 0.0)
        self._anchor: VideoFrame | None = None

    def _restart(self, frame: VideoFrame) -> None:
        self._ref, self._keyframe_noise, self._anchor = frame, (0.0, 0.0), None

    def feed_video(self, frame: VideoFrame) -> None:
        ref, prev, self._prev = self._ref, self._prev, frame
        if frame_black_fraction(frame, self.black) > 0.0:
            self.runs.update(False, frame.t, frame.t)
            self._ref = None
            return
        if ref is None or prev is None or ref.cells.shape != frame.cells.shape \
                or prev.grid.shape != frame.grid.shape:
            self._restart(frame)
            if prev is None and frame.keyframe:
                # the scanner's first picture (a segment's, in the pipeline): its coding noise
                # cannot be measured; the pictures just after it may still refine it
                self._anchor = frame
            return
        counts = change_counts(frame, prev)
        level, sigma = noise_of(counts, frame.keyframe, self.config)
        if frame.keyframe:
            kept_level, kept_sigma = self._keyframe_noise
            self._keyframe_noise = (max(kept_level, level), max(kept_sigma, sigma))
        kept_level, kept_sigma = self._keyframe_noise
        refining = self._anchor is ref
        if refining:
            level_now, sigma_now, allowed = level, sigma, self.config.max_refined_fraction
        else:
            level_now, sigma_now = max(level, kept_level), max(sigma, kept_sigma)
            allowed = self.config.max_changed_fraction
        # in motion the reference is the picture before: its counts are at hand
        changed = (fraction_above(counts, level_now) if ref is prev
                   else changed_fraction(frame, ref, level_now))
        amount = change(frame, ref, changed, allowed, sigma_now, self.config)
        if refining and amount < 1.0 and frame.t - ref.t >= self.config.refine_window_s - 1e-6:
            # refined by now: later pictures are compared with this one, as usual (a slow
            # zoom from the first picture on is motion, not refinement)
            self._ref, self._anchor = frame, None
        if self._anchor is not None and self._anchor is not ref:
            # the kept level hides the keyframe's flicker and also motion as large as it (a
            # zoom stepping on the keyframe): pixels that moved away from the keyframe itself,
            # beyond what a coder still refines in a frozen picture, are motion
            refined = changed_fraction(frame, self._anchor, level)
            amount = max(amount, refined / self.config.max_refined_fraction)
        static = amount < 1.0
        self.runs.update(static, frame.t, frame.t + frame.duration, 1.0 - 0.5 * amount)
        if static:
            self.runs.extend_start(ref.t)
            if frame.keyframe:
                self._anchor = frame
        else:
            self._restart(frame)

    def evidence(self) -> Evidence:
        return {"runs": self.runs.evidence()}


@dataclass(frozen=True)
class FreezeDetector:
    config: FreezeConfig = FreezeConfig()
    black: BlackConfig = field(default_factory=BlackConfig)
    name: ClassVar[str] = "freeze"
    needs: ClassVar[frozenset[str]] = frozenset({"video"})

    def scanner(self) -> FreezeScanner:
        return FreezeScanner(self.config, self.black)

    def finalize(self, evidences: Sequence[Evidence]) -> list[Defect]:
        # each run already spans the frames equal to its reference; two runs of one scanner
        # that touch compared against different references, so they are different pictures
        return interval_defects(self.name, evidences, gap=0.05,
                                min_duration=self.config.min_duration_s, join_within=False)
