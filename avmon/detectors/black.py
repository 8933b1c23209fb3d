"""Black: at least 98% of the picture near black for at least 0.25 s, and no texture.

"Near black" is a luma at or below ``luma_max`` (32 in 8-bit video range, where black is 16). A
dark scene with texture is not black: the picture must also be flat (its standard deviation at
most ``max_texture`` levels), which grain on a black insert passes and shadow detail does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from avmon.detectors.base import DetectorConfig, Evidence, NoFeed, RunTracker, interval_defects
from avmon.frames import VideoFrame
from avmon.model import Defect


@dataclass(frozen=True)
class BlackConfig(DetectorConfig):
    luma_max: int = 32
    min_fraction: float = 0.98
    max_texture: float = 4.0
    min_duration_s: float = 0.25


def black_fraction(grid: np.ndarray, config: BlackConfig) -> float:
    """Fraction of the picture near black, or 0.0 if the picture is textured (not black)."""
    fraction = float(np.count_nonzero(grid <= config.luma_max)) / grid.size
    if fraction < config.min_fraction:
        return 0.0
    if float(grid.std()) > config.max_texture:
        return 0.0
    return fraction


def frame_black_fraction(frame: VideoFrame, config: BlackConfig) -> float:
    """``black_fraction`` of ``frame``'s grid, made once per picture and config: the freeze
    scanner leaves black pictures to this detector, so it makes the same test."""
    kept = frame.black_test
    if kept is not None and kept[0] is config:
        return kept[1]
    fraction = black_fraction(frame.grid, config)
    frame.black_test = (config, fraction)
    return fraction


class BlackScanner(NoFeed):
    def __init__(self, config: BlackConfig) -> None:
        self.config = config
        self.runs = RunTracker()

    def feed_video(self, frame: VideoFrame) -> None:
        fraction = frame_black_fraction(frame, self.config)
        self.runs.update(fraction > 0.0, frame.t, frame.t + frame.duration, fraction)

    def evidence(self) -> Evidence:
        return {"runs": self.runs.evidence()}


@dataclass(frozen=True)
class BlackDetector:
    config: BlackConfig = BlackConfig()
    name: ClassVar[str] = "black"
    needs: ClassVar[frozenset[str]] = frozenset({"video"})

    def scanner(self) -> BlackScanner:
        return BlackScanner(self.config)

    def finalize(self, evidences: Sequence[Evidence]) -> list[Defect]:
        return interval_defects(self.name, evidences, gap=0.05,
                                min_duration=self.config.min_duration_s)
