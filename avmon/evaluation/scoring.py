"""Scoring detections against truth: precision, recall, F1 and onset error per detector.

Detections are paired with truth by ``avmon.evaluation.matching.match`` (same detector,
overlapping, onsets within 0.5 s, each used once).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from avmon.evaluation.matching import ONSET_TOLERANCE_S, match
from avmon.model import Defect


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
        m = match([d for d in truth if d.detector == name],
                  [d for d in found if d.detector == name], tolerance)
        out[name] = Score(tp=len(m.pairs), fp=len(m.extra), fn=len(m.missed),
                          onset_errors=[p.onset_error_s for p in m.pairs])
    return out
