"""One way to pair two lists of defects, used wherever two lists are compared.

Scoring detections against truth (``evaluate``), the demo's table and the designs' agreement
(``benchmark``) all pair defects the same way: same detector, overlapping intervals, onsets
within a tolerance, each defect used at most once (the closest onset wins). Only the tolerance
differs, and each is named here once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from avmon.model import Defect

# Against truth: a detection counts when its onset is within half a second of the injected one.
ONSET_TOLERANCE_S = 0.5
# Between designs running the same detectors on the same frames: the same defect, to 50 ms ...
SAME_DEFECT_TOLERANCE_S = 0.05
# ... except A/V sync, whose cues depend on where segments are cut (README: a cue on a
# segment's first frame can be lost), so its interval may move by up to this much.
AV_SYNC_SAME_DEFECT_TOLERANCE_S = 0.5

Tolerance = float | Callable[[str], float]


def same_defect_tolerance(detector: str) -> float:
    """The tolerance for "the same defect" found by two designs."""
    return AV_SYNC_SAME_DEFECT_TOLERANCE_S if detector == "av_sync" else SAME_DEFECT_TOLERANCE_S


@dataclass(frozen=True)
class Pair:
    expected: Defect
    found: Defect

    @property
    def onset_error_s(self) -> float:
        return abs(self.found.start_s - self.expected.start_s)

    @property
    def gap_s(self) -> float:
        """The larger of the onset and end differences."""
        return max(self.onset_error_s, abs(self.found.end_s - self.expected.end_s))


@dataclass(frozen=True)
class Matching:
    pairs: tuple[Pair, ...]
    missed: tuple[Defect, ...]   # expected, with nothing found
    extra: tuple[Defect, ...]    # found, matching nothing expected

    @property
    def exact(self) -> bool:
        return not self.missed and not self.extra


def match(expected: Sequence[Defect], found: Sequence[Defect],
          tolerance: Tolerance = ONSET_TOLERANCE_S, *, ends_too: bool = False) -> Matching:
    """Pair ``found`` with ``expected``: same detector, overlapping, onsets (and with
    ``ends_too`` also ends) within ``tolerance`` seconds (a number, or a function of the
    detector's name)."""
    tol = tolerance if callable(tolerance) else (lambda _name, t=float(tolerance): t)
    expected = [d for d in expected if not d.unmeasured]  # "could not measure" is no defect
    pool = [d for d in found if not d.unmeasured]
    pairs: list[Pair] = []
    missed: list[Defect] = []
    for e in sorted(expected, key=lambda d: (d.detector, d.start_s)):
        limit = tol(e.detector)
        candidates = [d for d in pool if d.detector == e.detector
                      and d.start_s <= e.end_s and e.start_s <= d.end_s
                      and abs(d.start_s - e.start_s) <= limit
                      and (not ends_too or abs(d.end_s - e.end_s) <= limit)]
        if not candidates:
            missed.append(e)
            continue
        best = min(candidates, key=lambda d: abs(d.start_s - e.start_s))
        pool.remove(best)
        pairs.append(Pair(e, best))
    return Matching(tuple(pairs), tuple(missed), tuple(pool))
