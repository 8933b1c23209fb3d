"""A/V sync: the audio runs ahead of or behind the picture, measured from shared events.

Cues are events visible in both tracks: a cut or flash is a jump in the picture (mean change of
16x16 cell means, far above its recent level), a sound event is an onset in the audio (5 ms
energy jumping well above the preceding 50 ms). For each video cue the detector looks for audio
onsets within ``search_ms``; the offset that most cues nearby agree on (audio time minus video
time; + means audio late) is that cue's offset. Runs of cues whose offset lies outside ITU-R
BT.1359's detectability window (audio early by more than 45 ms, late by more than 125 ms) and
that last at least 5 s are reported with the median ``offset_ms`` and a confidence. Content
without usable cues (no cuts, no sound events) yields no report rather than a guess.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from avmon.detectors.base import AudioWindows, DetectorConfig, Evidence
from avmon.frames import AudioBuffer, VideoFrame
from avmon.model import Defect


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


class AvSyncScanner:
    def __init__(self, config: AvSyncConfig) -> None:
        self.config = config
        self.video_cues: list[float] = []
        self.audio_cues: list[float] = []
        self._prev: VideoFrame | None = None
        self._recent: deque[float] = deque(maxlen=25)
        self._last_video_cue = -np.inf
        self.windows = AudioWindows(config.window_s)
        self._history: deque[float] = deque(maxlen=10)  # 50 ms of 5 ms mean powers
        self._last_audio_cue = -np.inf

    def feed_video(self, frame: VideoFrame) -> None:
        prev, self._prev = self._prev, frame
        if prev is None or prev.cells.shape != frame.cells.shape:
            return
        change = float(np.mean(np.abs(frame.cells - prev.cells)))
        level = float(np.median(self._recent)) if self._recent else 0.0
        self._recent.append(change)
        # a cut in a dark scene moves the picture by a few levels only: what makes it a cue is
        # the jump against the recent frame-to-frame change, with a small absolute floor
        if (change >= self.config.video_jump
                and change >= self.config.video_jump_ratio * level
                and frame.t - self._last_video_cue > 0.2):
            self.video_cues.append(round(frame.t, 4))
            self._last_video_cue = frame.t

    def feed_audio(self, buf: AudioBuffer) -> None:
        starts, windows = self.windows.push(buf)
        if not len(starts):
            return
        power = np.maximum(np.mean(np.square(windows, dtype=np.float64), axis=(1, 2)), 1e-20)
        cfg = self.config
        depth = self._history.maxlen or 1
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
            if t - self._last_audio_cue > 0.2:
                self.audio_cues.append(round(t, 4))
                self._last_audio_cue = t
        self._history.extend(power[-depth:].tolist())

    def evidence(self) -> Evidence:
        return {"video_cues": self.video_cues, "audio_cues": self.audio_cues}


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

    def finalize(self, evidences: Sequence[Evidence]) -> list[Defect]:
        video = np.unique(np.array([t for e in evidences for t in e.get("video_cues", [])]))
        audio = np.unique(np.array([t for e in evidences for t in e.get("audio_cues", [])]))
        if len(video) < self.config.min_votes or len(audio) < self.config.min_votes:
            return []
        cues = self.cue_offsets(video, audio)
        cfg = self.config

        def side(offset: float) -> int:
            return -1 if offset < -cfg.early_ms else (1 if offset > cfg.late_ms else 0)

        defects = []
        i = 0
        while i < len(cues):
            s = side(cues[i][1])
            j = i
            while j + 1 < len(cues) and side(cues[j + 1][1]) == s:
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
                        "offset_ms": round(float(np.median(offsets)), 1),
                        "cues": len(offsets),
                    }))
            i = j + 1
        return defects
