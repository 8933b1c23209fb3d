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
  predicted from it. Per-pixel counts see what cell means average away: a dark still slowly
  zooming (2% of pixels change by more than 10 levels in 0.5 s) is motion, not a string of
  freezes.
- **cells**: the mean change of 16x16-pixel cell means exceeds 1.5 levels plus 0.3 per level of
  noise (a fade, a global low-contrast change).
- **strong cells**: more than 0.2% of cells changed by 20 levels (a small object moving).

Grain that hides motion also hides it from the viewer: a dark zoom under heavy grain (sigma 12)
still reads as frozen stretches (README, "freeze"). Black pictures are left to the black detector.
Runs shorter than the minimum duration that end inside the stream are dropped as the stream
advances, so memory does not grow with the stream's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from avmon.detectors.base import DetectorConfig, Evidence, NoFeed, RunTracker, interval_defects
from avmon.detectors.black import BlackConfig, black_fraction
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


def noise_level(frame: VideoFrame, prev: VideoFrame, config: FreezeConfig) -> tuple[float, float]:
    """The pixel change (luma levels) that noise alone reaches between ``prev`` and ``frame``,
    and the noise's sigma (for the cell test).

    The tail is the 99.8th percentile of the frame-to-frame change, but at most five times its
    90th percentile: grain is everywhere (tail/90th percentile measured 2.0 for ffmpeg's noise
    filter after x264, 3.2-4.3 for the synthetic grain), while a small object moving fast fills
    the tail alone (ratio 22 on the synthetic dark scenes) and must not pass for noise.
    """
    step = np.abs(frame.grid[::2, ::2] - prev.grid[::2, ::2]).ravel()
    n = step.size - 1
    k50, k90 = n // 2, int(n * 0.9)
    k_tail = min(n, int(step.size * (1.0 - config.max_changed_fraction)))
    # the changes are whole levels 0..255: the k-th smallest is where the running count of a
    # histogram passes k (exactly what a partition gives, at a fraction of its cost)
    below = np.cumsum(np.bincount(step, minlength=256))
    median, q90, tail = (float(v) for v in np.searchsorted(below, [k50, k90, k_tail],
                                                            side="right"))
    tail = min(tail, config.max_tail_ratio * q90)
    # |N(0, s)| has its median at 0.674 s
    return max(config.pixel_floor, config.noise_margin * tail), median / 0.674


def change(frame: VideoFrame, ref: VideoFrame, level: float, sigma: float,
           config: FreezeConfig) -> float:
    """How much ``frame`` changed since ``ref``: 0 is identical, 1 or more is a change.

    ``level`` and ``sigma`` come from ``noise_level``.
    """
    diff = np.abs(frame.grid[::2, ::2] - ref.grid[::2, ::2])
    changed = np.count_nonzero(diff > level) / diff.size
    cells = np.abs(frame.cells - ref.cells)
    threshold = config.mean_threshold + config.noise_factor * sigma
    strong = np.count_nonzero(cells > config.strong_change) / cells.size
    return float(max(float(cells.mean()) / threshold, strong / config.max_strong_fraction,
                     changed / config.max_changed_fraction))


class FreezeScanner(NoFeed):
    def __init__(self, config: FreezeConfig, black: BlackConfig) -> None:
        self.config = config
        self.black = black
        self.runs = RunTracker(drop_shorter_than=config.min_duration_s)
        self._ref: VideoFrame | None = None
        self._prev: VideoFrame | None = None
        self._keyframe_level = 0.0  # noise level an intra picture brought into the candidate

    def feed_video(self, frame: VideoFrame) -> None:
        ref, prev, self._prev = self._ref, self._prev, frame
        if black_fraction(frame.grid, self.black) > 0.0:
            self.runs.update(False, frame.t, frame.t)
            self._ref = None
            return
        if ref is None or prev is None or ref.cells.shape != frame.cells.shape \
                or prev.grid.shape != frame.grid.shape:
            self._ref, self._keyframe_level = frame, 0.0
            return
        level, sigma = noise_level(frame, prev, self.config)
        if frame.keyframe:
            self._keyframe_level = max(self._keyframe_level, level)
        amount = change(frame, ref, max(level, self._keyframe_level), sigma, self.config)
        static = amount < 1.0
        self.runs.update(static, frame.t, frame.t + frame.duration, 1.0 - 0.5 * amount)
        if static:
            self.runs.extend_start(ref.t)
        else:
            self._ref, self._keyframe_level = frame, 0.0

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
