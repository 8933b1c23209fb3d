"""Silence, layout-aware: the programme falls silent, or one channel of a live programme is dead.

One detector, two kinds of finding (``details.kind``), so the pipeline keeps one branch per
detector:

- ``"program"``: the **main channels** are all below ``threshold_dbfs`` (-60 dBFS, 10 ms windows)
  for at least ``min_duration_s`` (1 s). Main channels are every channel of mono and stereo, and
  the front ones (FL, FR, FC and the other front positions) of a surround layout: a 5.1 mix with
  a silent LFE and surrounds at -64 dBFS is a live programme, not silence.
- ``"dead_channel"``: one main channel below ``dead_threshold_dbfs`` (-80 dBFS: digitally
  silent, or stuck at a constant, since the level is measured on the AC power) for
  ``min_duration_s`` while the programme is alive; or **all** the surround channels below
  ``surround_threshold_dbfs`` (-90 dBFS), reported once as a group (surrounds are legitimately
  quiet: Big Buck Bunny's back channels go down to -77.5 dBFS in a 10 ms window, its centre to
  -71). The LFE is not checked unless ``check_lfe`` (a silent LFE is a normal mix).

Windows where the programme is silent are not evidence of a dead channel, so a dead-channel
finding never swallows a programme silence inside it: both are reported. ``details.channels``
names the channels by layout (FL, FR, FC, LFE, BL, BR, SL, SR ...). When the decoder gave no
names, 1 and 2 channels are taken as mono/stereo and 6 and 8 as FFmpeg's 5.1 and 7.1 order.
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

_DEFAULT_NAMES = {
    1: ("FC",),
    2: ("FL", "FR"),
    6: ("FL", "FR", "FC", "LFE", "BL", "BR"),
    8: ("FL", "FR", "FC", "LFE", "BL", "BR", "SL", "SR"),
}
# front positions: the programme lives here in a surround mix
_FRONT = frozenset({"FL", "FR", "FC", "FLC", "FRC", "TFL", "TFR", "TFC", "WL", "WR"})
_LFE = frozenset({"LFE", "LFE2"})


@dataclass(frozen=True)
class SilenceConfig(DetectorConfig):
    threshold_dbfs: float = -60.0          # programme silence: every main channel below this
    dead_threshold_dbfs: float = -80.0     # a dead main channel: AC power below this
    surround_threshold_dbfs: float = -90.0  # dead surrounds: all of them below this
    check_lfe: bool = False                # report a dead LFE (with the surround threshold)
    min_duration_s: float = 1.0
    window_s: float = 0.01


def dbfs(power: np.ndarray) -> np.ndarray:
    """Mean square (full scale = 1.0) to dBFS, with digital silence at -200 dB."""
    level: np.ndarray = 10.0 * np.log10(np.maximum(power, 1e-20))
    return level


def channel_roles(names: Sequence[str], count: int) -> tuple[tuple[str, ...], list[int],
                                                             list[int], list[int]]:
    """Names for ``count`` channels and the row indices of main, surround and LFE channels."""
    named = tuple(names) if len(names) == count else _DEFAULT_NAMES.get(
        count, tuple(f"ch{i}" for i in range(count)))
    if count <= 2 or not any(n in _FRONT for n in named):
        return named, list(range(count)), [], []
    main = [i for i, n in enumerate(named) if n in _FRONT]
    lfe = [i for i, n in enumerate(named) if n in _LFE]
    surround = [i for i in range(count) if i not in main and i not in lfe]
    return named, main, surround, lfe


class SilenceScanner(NoFeed):
    def __init__(self, config: SilenceConfig) -> None:
        self.config = config
        self.windows = AudioWindows(config.window_s)
        self.program = RunTracker(drop_shorter_than=config.min_duration_s)
        self.dead: dict[str, RunTracker] = {}  # channel name (or "BL+BR" group) -> runs

    def feed_audio(self, buf: AudioBuffer) -> None:
        starts, windows = self.windows.push(buf)
        if not len(starts):
            return
        cfg = self.config
        names, main, surround, lfe = channel_roles(buf.channels, windows.shape[1])
        level = dbfs(np.var(windows, axis=2, dtype=np.float64))  # (n, channels), AC power
        loudest_main = level[:, main].max(axis=1)
        silent = loudest_main < cfg.threshold_dbfs
        w = self.windows.window_seconds
        depth = np.clip((cfg.threshold_dbfs - loudest_main) / 20, 0, 1)
        self.program.update_many(silent, starts, w, depth)
        alive = ~silent
        checks: list[tuple[str, np.ndarray, float]] = [
            (names[i], level[:, i], cfg.dead_threshold_dbfs) for i in main if len(main) > 1]
        if surround:
            checks.append(("+".join(names[i] for i in surround),
                           level[:, surround].max(axis=1), cfg.surround_threshold_dbfs))
        if cfg.check_lfe:
            checks += [(names[i], level[:, i], cfg.surround_threshold_dbfs) for i in lfe]
        for key, lv, limit in checks:
            track = self.dead.setdefault(key, RunTracker(drop_shorter_than=cfg.min_duration_s))
            track.update_many((lv < limit) & alive, starts, w, np.clip((limit - lv) / 20, 0, 1))

    def evidence(self) -> Evidence:
        return {"program": self.program.evidence(),
                "dead": {k: t.evidence() for k, t in self.dead.items()}}


@dataclass(frozen=True)
class SilenceDetector:
    config: SilenceConfig = SilenceConfig()
    name: ClassVar[str] = "silence"
    needs: ClassVar[frozenset[str]] = frozenset({"audio"})

    def scanner(self) -> SilenceScanner:
        return SilenceScanner(self.config)

    def finalize(self, evidences: Sequence[Evidence]) -> list[Defect]:
        defects = self._spans("program", [e.get("program", []) for e in evidences], "program")
        keys = sorted({k for e in evidences for k in e.get("dead", {})})
        for key in keys:
            defects += self._spans(key, [e.get("dead", {}).get(key, []) for e in evidences],
                                   "dead_channel")
        return sorted(defects, key=lambda d: (d.start_s, d.end_s))

    def _spans(self, key: str, per_scanner: Sequence[Sequence[Sequence[float]]],
               kind: str) -> list[Defect]:
        # a scanner ends its runs where the signal ended: only a segment boundary joins runs,
        # and there the window straddling the boundary is lost to both scanners (one window
        # of gap, plus what the two segments' audio frames leave between them)
        pairs = [(r, i) for i, runs in enumerate(per_scanner) for r in runs]
        runs = merge_runs((r for r, _ in pairs), self.config.window_s * 1.5,
                          (i for _, i in pairs))
        out = []
        for start, end, score, n in runs:
            if end - start < self.config.min_duration_s - 1e-6:
                continue
            details: dict[str, object] = {"kind": kind}
            if kind == "dead_channel":
                details["channels"] = key.split("+")
            out.append(Defect(self.name, start, end, 0.5 + 0.5 * score / n, details))
        return out
