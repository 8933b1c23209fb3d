"""Scoring detections against truth: precision, recall, F1 and onset error per detector.

A detection matches a truth when the detector is the same, the intervals overlap and the onsets
are within ``onset_tolerance_s`` (0.5 s). Each truth matches at most one detection (the closest
onset) and vice versa.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from avmon.model import Defect

ONSET_TOLERANCE_S = 0.5


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    onset_errors: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None and r is None:
            return None
        if not p or not r:
            return 0.0
        return 2 * p * r / (p + r)

    @property
    def mean_onset_error_ms(self) -> float | None:
        if not self.onset_errors:
            return None
        return 1000 * sum(self.onset_errors) / len(self.onset_errors)

    def add(self, other: Score) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn
        self.onset_errors += other.onset_errors

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None, n: int = 3) -> float | None:
            return None if x is None else round(x, n)
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": r(self.precision),
                "recall": r(self.recall), "f1": r(self.f1),
                "mean_onset_error_ms": r(self.mean_onset_error_ms, 1)}


def score(truth: Sequence[Defect], found: Sequence[Defect], detectors: Iterable[str],
          tolerance: float = ONSET_TOLERANCE_S) -> dict[str, Score]:
    """Per-detector scores of ``found`` against ``truth`` for one stream."""
    out: dict[str, Score] = {}
    for name in detectors:
        s = Score()
        truths = sorted((d for d in truth if d.detector == name), key=lambda d: d.start_s)
        pool = [d for d in found if d.detector == name]
        for t in truths:
            candidates = [d for d in pool if d.start_s < t.end_s and t.start_s < d.end_s
                          and abs(d.start_s - t.start_s) <= tolerance]
            if not candidates:
                s.fn += 1
                continue
            best = min(candidates, key=lambda d: abs(d.start_s - t.start_s))
            pool.remove(best)
            s.tp += 1
            s.onset_errors.append(abs(best.start_s - t.start_s))
        s.fp += len(pool)
        out[name] = s
    return out
