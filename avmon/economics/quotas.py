"""Quotas and the scaling wall: how many streams a design sustains, and which quota binds.

Per-stream demand comes from a measured run (state transitions, executions, Lambda invocations,
concurrent Lambda time, S3 requests per stream-second); quotas from ``economics/data/quotas.json``
(the case study's period, ``2023``, or today's, ``current``). A time-stepped simulation ramps the
offered load up to the expected number of streams; each quota is a token bucket (or a
concurrency limit) and what it cannot serve queues as backlog, which is what delayed executions
in the real account. Assumptions, stated once here:

- load ramps linearly from 0 to ``expected_streams`` over ``ramp_s`` and then holds;
- demand per stream is steady at its measured average (segment boundaries are not in phase);
- work that is throttled waits and is retried, so it adds to the next second's demand;
- S3 keys carry the stream and segment in their prefix, so per-prefix limits apply per stream;
- the single-process design has no shared per-account data-path quota: it scales by adding
  ECS tasks, which this model does not cap.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, Field

from avmon.documents import packaged_document, read_document
from avmon.errors import ConfigError
from avmon.usage import Usage
from avmon.validation import STRICT_OPEN, check


@dataclass(frozen=True)
class Demand:
    """Per stream-second."""

    transitions: float = 0.0
    executions: float = 0.0
    invocations: float = 0.0
    concurrency: float = 0.0       # Lambda seconds per stream-second = concurrent executions
    s3_put: float = 0.0
    s3_get: float = 0.0
    workflow_type: str = "STANDARD"

    @classmethod
    def from_usage(cls, usage: Usage, stream_seconds: float,
                   workflow_type: str = "STANDARD") -> Demand:
        if stream_seconds <= 0:
            raise ConfigError("usage covers no media (stream_seconds must be > 0)")
        return cls(
            transitions=usage.state_transitions / stream_seconds,
            executions=usage.executions / stream_seconds,
            invocations=usage.invocations / stream_seconds,
            concurrency=usage.lambda_seconds / stream_seconds,
            s3_put=usage.calls("s3", "PutObject") / stream_seconds,
            s3_get=usage.calls("s3", "GetObject") / stream_seconds,
            workflow_type=workflow_type,
        )

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in self.__dict__.items()}


Rate = Annotated[float, Field(gt=0, le=1e9)]


class TokenBucketQuota(BaseModel):
    model_config = STRICT_OPEN

    bucket: Rate
    refill_per_s: Rate


class ConcurrencyQuota(BaseModel):
    model_config = STRICT_OPEN

    limit: Rate
    burst: Rate
    scale_per_minute: Rate


class PrefixQuota(BaseModel):
    model_config = STRICT_OPEN

    put_per_s: Rate
    get_per_s: Rate


class QuotaTable(BaseModel):
    """The shape of one quota table in ``quotas.json`` (and of ``--quotas FILE``)."""

    model_config = STRICT_OPEN

    sfn_transitions: TokenBucketQuota
    sfn_start_execution: TokenBucketQuota
    express_start_execution: TokenBucketQuota
    lambda_concurrency: ConcurrencyQuota
    s3_prefix: PrefixQuota


def load_quotas(name: str = "2023") -> dict[str, Any]:
    """``2023``, ``current`` or a JSON/TOML/YAML file of the same shape (every rate a finite
    number > 0). Raises ConfigError naming the first bad entry."""
    if name in ("2023", "current"):
        data, where = packaged_document("quotas.json", "quotas")[name], f"quotas.json {name}"
    else:
        data, where = read_document(name, "quotas (or 2023, current)"), name
    table: QuotaTable = check(QuotaTable, data, where)
    return {**(data if isinstance(data, dict) else {}), **table.model_dump()}


@dataclass
class Bucket:
    """A token bucket: ``capacity`` tokens, refilled at ``rate`` per second."""

    capacity: float
    rate: float
    tokens: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def take(self, wanted: float) -> float:
        got = min(wanted, self.tokens)
        self.tokens -= got
        return got

    def refill(self, seconds: float = 1.0) -> None:
        self.tokens = min(self.capacity, self.tokens + self.rate * seconds)


@dataclass
class WallResult:
    expected_streams: int
    sustained_streams: float
    binding_quota: dict[str, Any]     # {"quota", "streams", "of_expected"}: see binding()
    capacities: dict[str, float]      # streams each quota alone would sustain
    timeline: list[dict[str, float]]  # per step: offered, served streams, backlog, delay

    @property
    def fraction_of_expected(self) -> float:
        return min(1.0, self.sustained_streams / self.expected_streams)

    def to_dict(self) -> dict[str, Any]:
        return {"expected_streams": self.expected_streams,
                "sustained_streams": round(self.sustained_streams, 1),
                "fraction_of_expected": round(self.fraction_of_expected, 4),
                "binding_quota": self.binding_quota,
                "capacities": {k: round(v, 1) for k, v in self.capacities.items()},
                "timeline": self.timeline}


NO_SHARED_QUOTA = "no shared per-account quota: scales by adding tasks"


def binding(caps: Mapping[str, float], expected_streams: int) -> dict[str, Any]:
    """The quota that binds first: its name, the streams it alone sustains (whole streams) and
    that as a fraction of the expected load (above 1: it does not bind at that load).
    ``quota`` is None when no shared quota applies."""
    if not caps:
        return {"quota": None, "streams": None, "of_expected": None, "why": NO_SHARED_QUOTA}
    name = min(caps, key=lambda k: caps[k])
    streams = math.floor(caps[name])
    return {"quota": name, "streams": streams,
            "of_expected": round(streams / expected_streams, 4)}


def describe_binding(b: Mapping[str, Any]) -> str:
    """One line for tables: ``lambda_concurrency at 2,208 (73.6%)``."""
    if b.get("quota") is None:
        return "none (scales by tasks)"
    text = f"{b['quota']} at {b['streams']:,} ({b['of_expected']:.1%})"
    if "streams_range" in b:
        lo, hi = b["streams_range"]
        text += f", {lo:,}-{hi:,} over repeats"
    return text


def capacities(demand: Demand, quotas: Mapping[str, Any]) -> dict[str, float]:
    """How many streams each quota alone sustains, at its steady refill rate."""
    out: dict[str, float] = {}

    def cap(name: str, limit: float, per_stream: float) -> None:
        if per_stream > 0:
            out[name] = limit / per_stream

    if demand.workflow_type == "STANDARD":
        cap("sfn_transitions", quotas["sfn_transitions"]["refill_per_s"], demand.transitions)
        cap("sfn_start_execution", quotas["sfn_start_execution"]["refill_per_s"],
            demand.executions)
    else:
        cap("express_start_execution", quotas["express_start_execution"]["refill_per_s"],
            demand.executions)
    cap("lambda_concurrency", quotas["lambda_concurrency"]["limit"], demand.concurrency)
    # per prefix, i.e. per stream: a stream alone must not exceed it
    if demand.s3_put > quotas["s3_prefix"]["put_per_s"] or \
            demand.s3_get > quotas["s3_prefix"]["get_per_s"]:
        out["s3_prefix"] = 0.0
    return out


def scaling_wall(demand: Demand, quotas: Mapping[str, Any], expected_streams: int = 3000,
                 ramp_s: int = 1800, hold_s: int = 600) -> WallResult:
    """Ramp the offered load and find where backlog starts to grow, and why."""
    caps = capacities(demand, quotas)
    bind = binding(caps, expected_streams)
    if not caps:  # nothing shared limits it (the single process)
        return WallResult(expected_streams, float(expected_streams), bind, {}, [])
    first = str(bind["quota"])
    buckets: dict[str, Bucket] = {}
    per_stream: dict[str, float] = {}
    if "sfn_transitions" in caps:
        q = quotas["sfn_transitions"]
        buckets["sfn_transitions"] = Bucket(q["bucket"], q["refill_per_s"])
        per_stream["sfn_transitions"] = demand.transitions
    for name in ("sfn_start_execution", "express_start_execution"):
        if name in caps:
            q = quotas[name]
            buckets[name] = Bucket(q["bucket"], q["refill_per_s"])
            per_stream[name] = demand.executions
    backlog = {k: 0.0 for k in buckets}
    lam = quotas["lambda_concurrency"]
    lambda_limit = float(lam["burst"])
    timeline = []
    sustained = 0.0
    for second in range(ramp_s + hold_s):
        offered = expected_streams * min(1.0, (second + 1) / ramp_s)
        served = offered  # throughput, in streams' worth of work per second
        for name, bucket in buckets.items():
            bucket.refill()
            wanted = offered * per_stream[name] + backlog[name]
            got = bucket.take(wanted)
            backlog[name] = wanted - got
            served = min(served, got / per_stream[name])
        lambda_limit = min(float(lam["limit"]),
                           lambda_limit + lam["scale_per_minute"] / 60.0)
        if demand.concurrency > 0:
            served = min(served, lambda_limit / demand.concurrency)
        if all(b <= 1e-6 for b in backlog.values()) and served >= offered - 1e-6:
            sustained = max(sustained, offered)
        worst = max(backlog, key=lambda k: backlog[k] / max(buckets[k].rate, 1e-9))
        delay = backlog[worst] / max(buckets[worst].rate, 1e-9)
        if second % 30 == 29:
            timeline.append({"t_s": second + 1, "offered": round(offered, 1),
                             "served": round(served, 1),
                             "backlog": round(backlog[worst], 1), "delay_s": round(delay, 1)})
    return WallResult(expected_streams, min(sustained, caps[first]) if sustained else
                      caps[first], bind, caps, timeline)
