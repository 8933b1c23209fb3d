"""One typed configuration for the analysis: each detector's frozen settings, together.

Loaded from a JSON, TOML or YAML file (``--config FILE``) whose top-level keys are detector names:
``{"freeze": {"min_duration_s": 1.0}}``. Unknown names and settings are errors, not ignored;
values are checked by the one validation layer (finite, in range for their unit, strictly
typed: see ``DetectorConfig``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avmon.detectors.avsync import AvSyncConfig
from avmon.detectors.black import BlackConfig
from avmon.detectors.blocks import BlockCorruptionConfig
from avmon.detectors.clipping import ClippingConfig
from avmon.detectors.freeze import FreezeConfig
from avmon.detectors.silence import SilenceConfig
from avmon.errors import ConfigError


@dataclass(frozen=True)
class AnalysisConfig:
    freeze: FreezeConfig = field(default_factory=FreezeConfig)
    black: BlackConfig = field(default_factory=BlackConfig)
    block_corruption: BlockCorruptionConfig = field(default_factory=BlockCorruptionConfig)
    silence: SilenceConfig = field(default_factory=SilenceConfig)
    clipping: ClippingConfig = field(default_factory=ClippingConfig)
    av_sync: AvSyncConfig = field(default_factory=AvSyncConfig)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "") -> AnalysisConfig:
        """Raises ConfigError on an unknown detector or setting, or a bad value (one line:
        ``where: detector.setting = value: what is allowed``)."""
        head = f"{where}: " if where else ""
        if not isinstance(values, Mapping):
            raise ConfigError(f"{head}configuration must be an object of detector settings,"
                              f" got {type(values).__name__}")
        defaults = cls()
        parts: dict[str, Any] = {}
        for name, settings in values.items():
            current = getattr(defaults, name, None) if name in cls.__dataclass_fields__ else None
            if current is None:
                raise ConfigError(f"{head}unknown detector {name!r} in configuration; known:"
                                  f" {', '.join(cls.__dataclass_fields__)}")
            parts[name] = type(current).from_mapping(settings, where, name)
        return cls(**parts)

    @classmethod
    def load(cls, path: str | Path) -> AnalysisConfig:
        """Read a JSON, TOML or YAML file. Raises ConfigError naming the file and the problem."""
        from avmon.documents import read_document  # only a --config file needs the readers

        return cls.from_mapping(read_document(Path(path), "detector settings"), str(path))

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name).to_dict() for name in self.__dataclass_fields__}
