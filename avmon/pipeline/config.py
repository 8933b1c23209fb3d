"""Every knob of the serverless pipeline, in one typed configuration.

The CDK app turns it into resources (memory sizes, environment variables, the workflow type)
and the local simulation deploys exactly what the CDK app synthesizes, so a setting changed here
changes both. Defaults reproduce the original design: one S3 object per frame, Standard
workflows, one Lambda per detector, one invocation per detector per segment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from avmon.documents import read_document
from avmon.errors import ConfigError

FRAME_LAYOUTS = ("object-per-frame", "object-per-segment")
WORKFLOW_TYPES = ("STANDARD", "EXPRESS")
# the retention periods CloudWatch Logs accepts (PutRetentionPolicy), in days
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)


@dataclass(frozen=True)
class PipelineConfig:
    segment_seconds: float = 2.0          # one workflow execution per segment
    frames_per_invocation: int = 0        # 0: a detector takes the whole segment at once
    frame_layout: str = "object-per-frame"  # or every frame of a segment in one object
    audio_object_seconds: float = 1.0     # audio buffers are written in objects of this length
    workflow_type: str = "STANDARD"
    converter_memory_mb: int = 2048
    detector_memory_mb: int = 1024
    aggregator_memory_mb: int = 512
    ingest_memory_mb: int = 1024
    timeout_s: int = 300
    frames_expire_days: int = 1           # segments, frames, audio, results: intermediate
    reports_expire_days: int = 90         # reports/ and runs/: what `avmon report` reads
    ingest_expire_days: int = 30          # the uploads themselves
    log_retention_days: int = 30          # every function's and the workflow's log group
    ingest_retry_attempts: int = 2        # async redeliveries before the dead-letter queue
    reserved_concurrency: int = 0         # per function; 0: none (a new account's whole limit
                                          # is 10, and reserving needs 100 left unreserved)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def validate(self) -> PipelineConfig:
        """Returns self; raises ConfigError naming the first bad setting."""
        if not 0.5 <= self.segment_seconds <= 60:
            raise ConfigError("segment_seconds must be within [0.5, 60],"
                              f" got {self.segment_seconds}")
        if self.frames_per_invocation < 0:
            raise ConfigError("frames_per_invocation must be 0 (whole segment) or more")
        if self.frame_layout not in FRAME_LAYOUTS:
            raise ConfigError(f"frame_layout must be one of {', '.join(FRAME_LAYOUTS)}")
        if self.workflow_type not in WORKFLOW_TYPES:
            raise ConfigError(f"workflow_type must be one of {', '.join(WORKFLOW_TYPES)}")
        for f in fields(self):
            if f.name.endswith("_mb") and not 128 <= getattr(self, f.name) <= 10240:
                raise ConfigError(f"{f.name} must be within Lambda's 128..10240 MB")
        for f in fields(self):
            if f.name.endswith("_expire_days") and not 1 <= getattr(self, f.name) <= 3650:
                raise ConfigError(f"{f.name} must be within 1..3650 days")
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            raise ConfigError("log_retention_days must be one of CloudWatch Logs' periods: "
                              + ", ".join(map(str, LOG_RETENTION_DAYS)))
        if not 0 <= self.reserved_concurrency <= 1000:
            raise ConfigError("reserved_concurrency must be within 0 (none)..1000")
        if not 0 <= self.ingest_retry_attempts <= 2:
            raise ConfigError("ingest_retry_attempts must be within Lambda's 0..2")
        if self.audio_object_seconds <= 0:
            raise ConfigError("audio_object_seconds must be > 0")
        return self

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> PipelineConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown pipeline setting(s): {', '.join(sorted(unknown))}")
        try:
            return cls(**dict(values)).validate()
        except TypeError as exc:
            raise ConfigError(f"bad pipeline setting: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> PipelineConfig:
        data = read_document(path, "pipeline settings")
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: pipeline settings must be an object of settings")
        return cls.from_mapping(data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)
