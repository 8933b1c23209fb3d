"""Freeze: the picture does not change for at least 0.5 s.

Each frame is compared with the first frame of the candidate freeze (as ffmpeg's freezedetect
does, so slow motion accumulates and is not mistaken for a freeze), but on 16x16-pixel cell means
rather than pixels: grain and encoder noise average out inside a cell while real changes do not.
A frame is unchanged when the mean cell change stays under a threshold that grows with the noise
measured in the difference itself (a robust MAD estimate), and almost no cell changed strongly
(a small object moving on a still background). So a frozen picture under fresh film grain still
counts as frozen, where freezedetect's fixed threshold misses it; the re-encoding flicker of a
frozen picture (x264 moved some cells by up to 13 levels on a fresh I-frame, mean 0.77) does not
end a freeze. Black pictures are left to the black detector.
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


def change(frame: VideoFrame, ref: VideoFrame, config: FreezeConfig) -> float:
    """How much ``frame`` changed since ``ref``: 0 is identical, 1 or more is a change."""
    diff = frame.grid[::2, ::2] - ref.grid[::2, ::2]
    # Grain is white: it survives a horizontal high-pass, smooth motion mostly does not. So the
    # MAD of the high-passed difference estimates the noise even when everything moves a little.
    sigma = 1.4826 * float(np.median(np.abs(diff[:, 1:] - diff[:, :-1]))) / np.sqrt(2)
    cells = np.abs(frame.cells - ref.cells)
    threshold = config.mean_threshold + config.noise_factor * sigma
    strong = np.count_nonzero(cells > config.strong_change) / cells.size
    return float(max(float(cells.mean()) / threshold, float(strong) / config.max_strong_fraction))


class FreezeScanner(NoFeed):
    def __init__(self, config: FreezeConfig, black: BlackConfig) -> None:
        self.config = config
        self.black = black
        self.runs = RunTracker()
        self._ref: VideoFrame | None = None

    def feed_video(self, frame: VideoFrame) -> None:
        if black_fraction(frame.grid, self.black) > 0.0:
            self.runs.update(False, frame.t, frame.t)
            self._ref = None
            return
        ref = self._ref
        if ref is None or ref.cells.shape != frame.cells.shape:
            self._ref = frame
            return
        amount = change(frame, ref, self.config)
        static = amount < 1.0
        self.runs.update(static, frame.t, frame.t + frame.duration, 1.0 - 0.5 * amount)
        if static:
            self.runs.extend_start(ref.t)
        else:
            self._ref = frame

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
