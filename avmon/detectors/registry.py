"""Assembles the detectors from one AnalysisConfig, in a fixed order."""

from __future__ import annotations

from collections.abc import Iterable

from avmon.detectors import NAMES
from avmon.detectors.avsync import AvSyncDetector
from avmon.detectors.base import Detector
from avmon.detectors.black import BlackDetector
from avmon.detectors.blocks import BlockCorruptionDetector
from avmon.detectors.clipping import ClippingDetector
from avmon.detectors.config import AnalysisConfig
from avmon.detectors.freeze import FreezeDetector
from avmon.detectors.silence import SilenceDetector
from avmon.errors import ConfigError


def build(config: AnalysisConfig, names: Iterable[str] | None = None) -> list[Detector]:
    """Detectors for ``names`` (all by default). Raises ConfigError for an unknown name."""
    wanted = list(NAMES if names is None else names)
    unknown = [n for n in wanted if n not in NAMES]
    if unknown:
        raise ConfigError(f"unknown detector(s): {', '.join(unknown)}; known: {', '.join(NAMES)}")
    every: dict[str, Detector] = {
        "freeze": FreezeDetector(config.freeze, config.black),
        "black": BlackDetector(config.black),
        "block_corruption": BlockCorruptionDetector(config.block_corruption),
        "silence": SilenceDetector(config.silence),
        "clipping": ClippingDetector(config.clipping),
        "av_sync": AvSyncDetector(config.av_sync),
    }
    return [every[n] for n in NAMES if n in wanted]
