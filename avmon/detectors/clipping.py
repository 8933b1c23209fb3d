"""Clipping: audio flat-topped at or near full scale, one event per clipping episode.

A clipped waveform dwells at its ceiling. After lossy coding the flat tops are no longer exactly
flat (AAC rings around them, overshooting full scale), so ffmpeg's astats Flat_factor, which
counts identical consecutive samples, sees nothing, and the crest factor no longer tells a
clipped wave from a sine (measured: RMS/peak 0.67 clipped vs 0.69 clean after AAC). This detector
measures dwell: a 5 ms window is *hot* when at least 2% of its samples (5 at 48 kHz) sit at or
above ``level`` (-1 dBFS) on some channel. A programme with headroom never dwells there; a clean
master peaking at -0.5 dBFS has an isolated hot window about once a second (measured on Big Buck
Bunny's 5.1 mix raised to a -0.5 dBFS peak).

Hot windows less than ``merge_gap_s`` (250 ms) apart are one episode: a listener does not hear
two distortions a quarter of a second apart as separate events, and lossy coding leaves holes in
a clipped passage (after a second AAC generation only about half of the 5 ms windows of a
passage driven 30 dB into the ceiling stay above -1 dBFS for 2% of their samples; at the former
10% criterion, one in five). An episode is reported when its hot windows add up to at least
``min_duration_s`` (20 ms), with its extent from the first to the last hot window and
``details.clipped_s``, the hot time inside it. A clean tone mastered above -1 dBFS is flagged
too: decoded, it overshoots full scale and clips at the converter.

Memory is bounded: a finished episode (nothing hot for ``merge_gap_s``) too short to report is
dropped as the stream advances, unless it touches the start of the scanner's audio (it may
continue the previous segment's episode).
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
    iter_true_runs,
    merge_runs,
)
from avmon.frames import AudioBuffer
from avmon.model import Defect


@dataclass(frozen=True)
class ClippingConfig(DetectorConfig):
    level: float = 0.89              # -1 dBFS: "at or near full scale"
    min_dwell_fraction: float = 0.02  # of a window's samples at or above level: a hot window
    min_duration_s: float = 0.02     # hot time an episode needs to be reported
    merge_gap_s: float = 0.25        # hot windows closer than this are one episode
    window_s: float = 0.005


class ClippingScanner(NoFeed):
    def __init__(self, config: ClippingConfig) -> None:
        self.config = config
        self.windows = AudioWindows(config.window_s)
        self.episodes: list[list[float]] = []  # [start, end, dwell sum, hot windows]
        self._first: float | None = None

    def feed_audio(self, buf: AudioBuffer) -> None:
        starts, windows = self.windows.push(buf)
        if not len(starts):
            return
        if self._first is None:
            self._first = float(starts[0])
        dwell = np.mean(np.abs(windows) >= self.config.level, axis=2).max(axis=1)  # (n,)
        hot = dwell >= self.config.min_dwell_fraction
        w = self.windows.window_seconds
        for a, b in iter_true_runs(hot):
            start, end = float(starts[a]), float(starts[b - 1]) + w
            score, n = float(dwell[a:b].sum()), float(b - a)
            last = self.episodes[-1] if self.episodes else None
            if last is not None and start - last[1] <= self.config.merge_gap_s + 1e-9:
                last[1], last[2], last[3] = end, last[2] + score, last[3] + n
            else:
                self._drop_if_short()  # the last episode is over: nothing can join it now
                self.episodes.append([start, end, score, n])

    def _drop_if_short(self) -> None:
        if not self.episodes or self._first is None:
            return
        start, _, _, n = self.episodes[-1]
        leading = start - self._first <= self.config.merge_gap_s
        if not leading and n * self.config.window_s < self.config.min_duration_s - 1e-9:
            self.episodes.pop()

    def evidence(self) -> Evidence:
        return {"runs": [[round(a, 6), round(b, 6), round(s, 6), n]
                         for a, b, s, n in self.episodes]}


@dataclass(frozen=True)
class ClippingDetector:
    config: ClippingConfig = ClippingConfig()
    name: ClassVar[str] = "clipping"
    needs: ClassVar[frozenset[str]] = frozenset({"audio"})

    def scanner(self) -> ClippingScanner:
        return ClippingScanner(self.config)

    def finalize(self, evidences: Sequence[Evidence]) -> list[Defect]:
        runs = merge_runs((r for e in evidences for r in e.get("runs", [])),
                          self.config.merge_gap_s + 1e-9)
        defects = []
        for start, end, _dwell, n in runs:
            hot = n * self.config.window_s
            if hot < self.config.min_duration_s - 1e-9:
                continue
            # confidence: how densely the episode is hot, 0.5 for sparse to 1.0 for solid
            density = min(1.0, hot / max(end - start, 1e-9))
            defects.append(Defect(self.name, start, end, 0.5 + 0.5 * density,
                                  {"clipped_s": round(hot, 3)}))
        return defects
