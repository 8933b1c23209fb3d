"""Clipping: audio flat-topped at or near full scale for at least 20 ms.

A clipped waveform dwells at its ceiling. After lossy coding the flat tops are no longer exactly
flat (AAC rings around them, overshooting full scale), so ffmpeg's astats Flat_factor, which
counts identical consecutive samples, sees nothing, and the crest factor no longer tells a
clipped wave from a sine (measured: RMS/peak 0.67 clipped vs 0.69 clean after AAC). This detector
measures dwell: in each 5 ms window, the fraction of samples at or above ``level`` (-1 dBFS).
Content driven into the ceiling dwells there for 11-80% of a window (median 47%); a programme
with headroom never does. A clean tone mastered above -1 dBFS is flagged too: decoded, it
overshoots full scale and clips at the converter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from avmon.detectors.base import (
    AudioWindows,
    DetectorConfig,
    Evidence,
    NoFeed,
    RunTracker,
    interval_defects,
)
from avmon.frames import AudioBuffer
from avmon.model import Defect


@dataclass(frozen=True)
class ClippingConfig(DetectorConfig):
    level: float = 0.89            # -1 dBFS: "at or near full scale"
    min_dwell_fraction: float = 0.1
    min_duration_s: float = 0.02
    window_s: float = 0.005


class ClippingScanner(NoFeed):
    def __init__(self, config: ClippingConfig) -> None:
        self.config = config
        self.windows = AudioWindows(config.window_s)
        self.runs = RunTracker()

    def feed_audio(self, buf: AudioBuffer) -> None:
        starts, windows = self.windows.push(buf)
        if not len(starts):
            return
        dwell = np.mean(np.abs(windows) >= self.config.level, axis=2)  # (n, channels)
        clipped = dwell >= self.config.min_dwell_fraction
        active = clipped.any(axis=1)
        score = np.where(clipped, dwell, 0.0).max(axis=1)
        self.runs.update_many(active, starts, self.windows.window_seconds, score)

    def evidence(self) -> Evidence:
        return {"runs": self.runs.evidence()}


@dataclass(frozen=True)
class ClippingDetector:
    config: ClippingConfig = ClippingConfig()
    name: ClassVar[str] = "clipping"
    needs: ClassVar[frozenset[str]] = frozenset({"audio"})

    def scanner(self) -> ClippingScanner:
        return ClippingScanner(self.config)

    def finalize(self, evidences: Sequence[Evidence]) -> list[Defect]:
        # gaps of a few windows happen at zero crossings of low tones: still one clipped passage
        return interval_defects(self.name, evidences, gap=3 * self.config.window_s,
                                min_duration=self.config.min_duration_s)
