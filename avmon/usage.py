"""What a serverless run used: one type for the meter's record, the cost model, the quota model
and the CLI.

The record is counted, never estimated: executions and state transitions from the execution
histories, requests per service and operation from botocore's events, bytes from the bodies,
Lambda invocations and billed milliseconds from the invoker. It is read once, here, and
validated (a saved ``--usage`` file of the wrong shape is one error line, not a traceback).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from avmon.errors import ConfigError

S3_TIER1 = ("PutObject", "CopyObject", "PostObject", "ListObjectsV2", "ListObjects")
S3_TIER2 = ("GetObject", "SelectObjectContent")


class FunctionUsage(BaseModel):
    """One Lambda function's invocations and billed time."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    invocations: int = Field(ge=0)
    errors: int = Field(default=0, ge=0)
    billed_ms: int = Field(ge=0)
    memory_mb: int = Field(ge=128, le=10240)

    @property
    def gb_seconds(self) -> float:
        return self.memory_mb / 1024 * self.billed_ms / 1000


class Usage(BaseModel):
    """What one run of the pipeline used, for all its streams."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    executions: int = Field(ge=0)
    state_transitions: int = Field(ge=0)
    requests: dict[str, dict[str, int]] = Field(default_factory=dict)
    bytes: dict[str, int] = Field(default_factory=dict)
    functions: dict[str, FunctionUsage] = Field(default_factory=dict, alias="lambda")

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], where: str = "usage") -> Usage:
        """Parse a usage record. Raises ConfigError naming the first bad field."""
        try:
            return cls.model_validate(record)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "record"
            raise ConfigError(f"{where}: {field}: {err['msg']}") from None

    def calls(self, service: str, *operations: str) -> int:
        ops = self.requests.get(service, {})
        return sum(ops.get(o, 0) for o in operations) if operations else sum(ops.values())

    @property
    def s3_tier1(self) -> int:
        return self.calls("s3", *S3_TIER1)

    @property
    def s3_tier2(self) -> int:
        return self.calls("s3", *S3_TIER2)

    @property
    def invocations(self) -> int:
        return sum(f.invocations for f in self.functions.values())

    @property
    def gb_seconds(self) -> float:
        return sum(f.gb_seconds for f in self.functions.values())

    @property
    def lambda_seconds(self) -> float:
        return sum(f.billed_ms for f in self.functions.values()) / 1000

    def to_dict(self) -> dict[str, Any]:
        return {"executions": self.executions, "state_transitions": self.state_transitions,
                "requests": self.requests, "bytes": self.bytes,
                "lambda": {n: {**f.model_dump(), "gb_seconds": round(f.gb_seconds, 4)}
                           for n, f in self.functions.items()}}
