"""What a serverless run used: one type for the meter's record, the cost model, the quota model
and the CLI.

The record is counted, never estimated: executions and state transitions from the execution
histories, requests per service and operation from botocore's events, bytes from the bodies,
Lambda invocations and billed milliseconds from the invoker. It is read once, here, and
validated (a saved ``--usage`` file of the wrong shape is one error line, not a traceback).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from avmon.validation import STRICT_OPEN, DefectRecord, check

S3_TIER1 = ("PutObject", "CopyObject", "PostObject", "ListObjectsV2", "ListObjects")
S3_TIER2 = ("GetObject", "SelectObjectContent")
DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
DYNAMODB_READS = ("GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems")

# A count of requests, bytes or milliseconds. The ceiling (10^15) keeps every product the cost
# model forms a finite float; a real run is many orders of magnitude below it.
Tally = Annotated[int, Field(ge=0, le=10**15)]


class FunctionUsage(BaseModel):
    """One Lambda function's invocations and billed time."""

    model_config = STRICT_OPEN

    invocations: Tally
    errors: Tally = 0
    billed_ms: Tally
    memory_mb: int = Field(ge=128, le=10240)

    @property
    def gb_seconds(self) -> float:
        return self.memory_mb / 1024 * self.billed_ms / 1000


class DynamoUsage(BaseModel):
    """DynamoDB request units, worked out from the items each call wrote and read
    (``avmon.pipeline.metering.DynamoUnits``), and those items' bytes."""

    model_config = STRICT_OPEN

    read_units: Annotated[float, Field(ge=0, le=1e15)]
    write_units: Tally
    item_bytes_read: Tally = 0
    item_bytes_written: Tally = 0


class Usage(BaseModel):
    """What one run of the pipeline used, for all its streams."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True, allow_inf_nan=False,
                              populate_by_name=True)

    executions: Tally
    state_transitions: Tally
    requests: dict[str, dict[str, Tally]] = Field(default_factory=dict)
    bytes: dict[str, Tally] = Field(default_factory=dict)
    functions: dict[str, FunctionUsage] = Field(default_factory=dict, alias="lambda")
    dynamodb: DynamoUsage | None = None

    @classmethod
    def from_dict(cls, record: Mapping[str, Any], where: str = "usage") -> Usage:
        """Parse a usage record. Raises ConfigError naming the first bad field."""
        usage: Usage = check(cls, record, where)
        return usage

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
    def dynamodb_write_units(self) -> float:
        """Write request units; a record made before units were metered counts each write
        request at the minimum, one unit."""
        if self.dynamodb is not None:
            return float(self.dynamodb.write_units)
        return float(self.calls("dynamodb", *DYNAMODB_WRITES))

    @property
    def dynamodb_read_units(self) -> float:
        """Read request units; a record made before units were metered counts each read request
        at one unit (a strongly consistent read of up to 4 KB, as the state table's)."""
        if self.dynamodb is not None:
            return self.dynamodb.read_units
        return float(self.calls("dynamodb", *DYNAMODB_READS))

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
                           for n, f in self.functions.items()},
                **({"dynamodb": self.dynamodb.model_dump()} if self.dynamodb else {})}


class SingleProcessUsage(BaseModel):
    """What one process used for a stream (``avmon benchmark``'s single-process design)."""

    model_config = STRICT_OPEN

    cpu_per_stream_second: Annotated[float, Field(gt=0, le=1000)]
    peak_mb: Annotated[float, Field(gt=0, le=1_000_000)]


class SavedDesign(BaseModel):
    """One design of a saved ``avmon benchmark --json``."""

    model_config = STRICT_OPEN

    stream_s: Annotated[float, Field(gt=0)]
    defects: list[DefectRecord]
    usage: dict[str, Any]
    config: dict[str, Any] = Field(default_factory=dict)


class SavedBenchmark(BaseModel):
    """A saved ``avmon benchmark --json``: designs by name."""

    model_config = STRICT_OPEN

    designs: Annotated[dict[str, SavedDesign], Field(min_length=1)]


class SavedSimulation(BaseModel):
    """A saved ``avmon simulate --json``: the report, what it used and the pipeline's settings."""

    model_config = STRICT_OPEN

    duration_s: Annotated[float, Field(gt=0)]
    defects: list[DefectRecord]
    usage: Usage
    pipeline: dict[str, Any] | None = None
