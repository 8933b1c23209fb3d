"""Every knob of the serverless pipeline, in one typed configuration.

The CDK app turns it into resources (memory sizes, environment variables, the workflow type)
and the local simulation deploys exactly what the CDK app synthesizes, so a setting changed here
changes both. Defaults reproduce the original design: one S3 object per frame, Standard
workflows, one Lambda per detector, one invocation per detector per segment.

Every value is checked by the one validation layer (``avmon.validation``, pydantic) with the
ranges below, wherever it comes from (a file, ``avmon simulate``'s flags, ``cdk deploy -c
avmon_config=FILE``, a Lambda's environment): a bad value is one error line and can neither be
simulated nor synthesized into a template.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field

from avmon.documents import read_document
from avmon.errors import ConfigError

FRAME_LAYOUTS = ("object-per-frame", "object-per-segment")
WORKFLOW_TYPES = ("STANDARD", "EXPRESS")

# Lambda's limits: 128 MB to 10,240 MB of memory, at most 900 s per invocation.
MemoryMb = Annotated[int, Field(ge=128, le=10240)]
# the retention periods CloudWatch Logs accepts (PutRetentionPolicy), in days
LogRetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                           1827, 2192, 2557, 2922, 3288, 3653]


@dataclass(frozen=True)
class PipelineConfig:
    # one workflow execution per segment
    segment_seconds: Annotated[float, Field(ge=0.5, le=60)] = 2.0
    # 0: a detector takes the whole segment at once; otherwise a Map over batches of this many
    frames_per_invocation: Annotated[int, Field(ge=0, le=100_000)] = 0
    # one S3 object per frame, or every frame of a segment in one object
    frame_layout: Literal["object-per-frame", "object-per-segment"] = "object-per-frame"
    # audio buffers are written in objects of this length
    audio_object_seconds: Annotated[float, Field(gt=0, le=60)] = 1.0
    workflow_type: Literal["STANDARD", "EXPRESS"] = "STANDARD"
    converter_memory_mb: MemoryMb = 2048
    detector_memory_mb: MemoryMb = 1024
    aggregator_memory_mb: MemoryMb = 512
    ingest_memory_mb: MemoryMb = 1024
    timeout_s: Annotated[int, Field(ge=1, le=900)] = 300
    # S3 lifecycle expiration of frames and audio: whole days, at least 1
    frames_expire_days: Annotated[int, Field(ge=1, le=3650)] = 1  # also segments/, results/
    # reports/ and runs/: what `avmon report` reads
    reports_expire_days: Annotated[int, Field(ge=1, le=3650)] = 90
    ingest_expire_days: Annotated[int, Field(ge=1, le=3650)] = 30  # the uploads themselves
    # every function's and the workflow's log group: one of CloudWatch Logs' periods
    log_retention_days: LogRetentionDays = 30
    # Lambda's asynchronous retries of an ingest event before the dead-letter queue
    ingest_retry_attempts: Annotated[int, Field(ge=0, le=2)] = 2
    # per function; 0: none (a new account's whole limit is 10, and reserving needs 100 left
    # unreserved)
    reserved_concurrency: Annotated[int, Field(ge=0, le=1000)] = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def validate(self) -> PipelineConfig:
        """Returns self; raises ConfigError naming the first bad setting (for a config made in
        code: one read from a file or flags is checked as it is made)."""
        PipelineConfig.from_mapping(self.to_dict())
        return self

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "") -> PipelineConfig:
        """Raises ConfigError for an unknown setting, a wrong type, NaN or infinity, or a value
        out of range: one line naming the setting, the value and what is allowed."""
        from avmon.validation import build_dataclass

        if not isinstance(values, Mapping):
            raise ConfigError(f"{where or 'pipeline settings'}: must be an object of settings"
                              f" ({', '.join(cls.__dataclass_fields__)}),"
                              f" got {type(values).__name__}")
        config: PipelineConfig = build_dataclass(cls, values, where)
        return config

    @classmethod
    def load(cls, path: str | Path) -> PipelineConfig:
        """Read a JSON, TOML or YAML file. Raises ConfigError naming the file and the problem."""
        return cls.from_mapping(read_document(path, "pipeline settings"), str(path))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)
