"""The registry: every detector, its settings and how to build it, listed once.

Everything that names detectors derives from ``REGISTRY``: ``NAMES``, the fields of
``AnalysisConfig`` (a test checks them), ``avmon synth``'s defect kinds, the CDK app's
function ids and the ASL's branches (a test checks the ASL has one branch per detector).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from avmon.detectors.avsync import AvSyncDetector
from avmon.detectors.base import Detector, Evidence
from avmon.detectors.black import BlackDetector
from avmon.detectors.blocks import BlockCorruptionDetector
from avmon.detectors.clipping import ClippingDetector
from avmon.detectors.config import AnalysisConfig
from avmon.detectors.freeze import FreezeDetector
from avmon.detectors.silence import SilenceDetector
from avmon.errors import ConfigError
from avmon.model import Defect


@dataclass(frozen=True)
class Entry:
    name: str
    make: Callable[[AnalysisConfig], Detector]

    @property
    def camel(self) -> str:
        """``block_corruption`` -> ``BlockCorruption``: the CDK ids and ASL placeholders."""
        return "".join(part.capitalize() for part in self.name.split("_"))


REGISTRY: tuple[Entry, ...] = (
    Entry("freeze", lambda c: FreezeDetector(c.freeze, c.black)),
    Entry("black", lambda c: BlackDetector(c.black)),
    Entry("block_corruption", lambda c: BlockCorruptionDetector(c.block_corruption)),
    Entry("silence", lambda c: SilenceDetector(c.silence)),
    Entry("clipping", lambda c: ClippingDetector(c.clipping)),
    Entry("av_sync", lambda c: AvSyncDetector(c.av_sync)),
)
NAMES: tuple[str, ...] = tuple(e.name for e in REGISTRY)
CAMEL: dict[str, str] = {e.name: e.camel for e in REGISTRY}


def build(config: AnalysisConfig, names: Iterable[str] | None = None) -> list[Detector]:
    """Detectors for ``names`` (all by default), in registry order. Raises ConfigError for an
    unknown name."""
    wanted = list(NAMES if names is None else names)
    unknown = [n for n in wanted if n not in NAMES]
    if unknown:
        raise ConfigError(f"unknown detector(s): {', '.join(unknown)}; known: {', '.join(NAMES)}")
    return [e.make(config) for e in REGISTRY if e.name in wanted]


def finalize_all(detectors: Sequence[Detector],
                 evidence: Mapping[str, Sequence[Evidence]]) -> list[Defect]:
    """Every detector's defects from its evidence (one entry per scanner: a stream, or each of
    its segments). The one place evidence becomes defects, for every design."""
    return [d for det in detectors for d in det.finalize(list(evidence.get(det.name, [])))]
