"""Silence: a channel below -60 dBFS (RMS over 10 ms windows) for at least 1 s.

Measured per channel, so one dead channel of a stereo pair is a defect (ffmpeg's silencedetect
averages channels unless mono=1 and misses it). Channels silent at overlapping times come out as
one defect whose ``details.channels`` lists them.
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
    merge_runs,
)
from avmon.frames import AudioBuffer
from avmon.model import Defect


@dataclass(frozen=True)
class SilenceConfig(DetectorConfig):
    threshold_dbfs: float = -60.0
    min_duration_s: float = 1.0
    window_s: float = 0.01


def dbfs(power: np.ndarray) -> np.ndarray:
    """Mean square (full scale = 1.0) to dBFS, with digital silence at -200 dB."""
    level: np.ndarray = 10.0 * np.log10(np.maximum(power, 1e-20))
    return level


class SilenceScanner(NoFeed):
    def __init__(self, config: SilenceConfig) -> None:
        self.config = config
        self.windows = AudioWindows(config.window_s)
        self.tracks: list[RunTracker] = []

    def feed_audio(self, buf: AudioBuffer) -> None:
        starts, windows = self.windows.push(buf)
        if not len(starts):
            return
        while len(self.tracks) < windows.shape[1]:
            self.tracks.append(RunTracker())
        level = dbfs(np.mean(np.square(windows, dtype=np.float64), axis=2))  # (n, channels)
        quiet = level < self.config.threshold_dbfs
        w = self.windows.window_seconds
        depth = np.clip((self.config.threshold_dbfs - level) / 20, 0, 1)
        for ch, track in enumerate(self.tracks[: windows.shape[1]]):
            track.update_many(quiet[:, ch], starts, w, depth[:, ch])

    def evidence(self) -> Evidence:
        return {"channels": [t.evidence() for t in self.tracks]}


@dataclass(frozen=True)
class SilenceDetector:
    config: SilenceConfig = SilenceConfig()
    name: ClassVar[str] = "silence"
    needs: ClassVar[frozenset[str]] = frozenset({"audio"})

    def scanner(self) -> SilenceScanner:
        return SilenceScanner(self.config)

    def finalize(self, evidences: Sequence[Evidence]) -> list[Defect]:
        n_channels = max((len(e.get("channels", [])) for e in evidences), default=0)
        spans: list[tuple[float, float, float, int]] = []
        for ch in range(n_channels):
            runs = merge_runs((r for e in evidences if ch < len(e["channels"])
                               for r in e["channels"][ch]), gap=self.config.window_s * 1.5)
            spans += [(a, b, 0.5 + 0.5 * s / n, ch) for a, b, s, n in runs
                      if b - a >= self.config.min_duration_s - 1e-6]
        spans.sort()
        defects: list[Defect] = []
        group: list[tuple[float, float, float, int]] = []
        for span in [*spans, (np.inf, np.inf, 0.0, -1)]:
            if group and span[0] >= max(g[1] for g in group):
                start, end = min(g[0] for g in group), max(g[1] for g in group)
                channels = sorted({g[3] for g in group})
                conf = float(np.mean([g[2] for g in group]))
                details = {"channels": channels} if len(channels) < n_channels else {}
                defects.append(Defect(self.name, start, end, conf, details))
                group = []
            group.append(span)
        return defects
