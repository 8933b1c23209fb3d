"""What a design costs per stream-hour, line by line, from measured usage and dated prices.

Serverless designs are priced from what ``avmon simulate`` counted (requests, state
transitions, Lambda GB-seconds, bytes written, DynamoDB request units); the single process from
what ``avmon analyze`` used (CPU seconds per stream-second and peak memory), which sizes the ECS
task on Fargate and the number of streams one task holds. Prices come from
``avmon/economics/data/prices.json`` (or ``--prices FILE``), each line dated and sourced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from avmon.documents import packaged_document, read_document
from avmon.errors import ConfigError
from avmon.usage import Usage
from avmon.validation import STRICT_OPEN, check

HOUR = 3600.0
DAYS_PER_MONTH = 730.0 / 24  # AWS prices a GB-month as 730 hours


@dataclass(frozen=True)
class Price:
    usd: float
    per: float
    unit: str
    source: str
    checked: str

    @property
    def unit_price(self) -> float:
        return self.usd / self.per


@dataclass(frozen=True)
class PriceTable:
    region: str
    items: Mapping[str, Price]

    def __getitem__(self, name: str) -> Price:
        try:
            return self.items[name]
        except KeyError:
            raise ConfigError(f"price table for {self.region} has no {name!r}") from None

    @classmethod
    def load(cls, region: str = "us-east-1", path: str | Path | None = None) -> PriceTable:
        """Raises ConfigError for a missing file, a table of the wrong shape (each price a
        finite ``usd`` >= 0 ``per`` a quantity > 0, with its unit, source and date), or an
        unknown region."""
        where = str(path) if path else "prices.json"
        data = (read_document(path, "prices") if path
                else packaged_document("prices.json", "prices"))
        table: PriceFile = check(PriceFile, data, where)
        if region not in table.regions:
            raise ConfigError(f"{where}: no prices for region {region!r};"
                              f" known: {', '.join(table.regions)}")
        items = {k: Price(v.usd, v.per, v.unit, v.source, v.checked)
                 for k, v in table.regions[region].items()}
        return cls(region, items)


class PriceEntry(BaseModel):
    """One line of a price table: ``usd`` per ``per`` ``unit``, where it was read and when."""

    model_config = STRICT_OPEN

    usd: Annotated[float, Field(ge=0, le=1e6)]
    per: Annotated[float, Field(gt=0, le=1e12)]
    unit: str
    source: str
    checked: str


class PriceFile(BaseModel):
    """The shape of ``prices.json`` (and of ``--prices FILE``): prices by region and name."""

    model_config = STRICT_OPEN

    regions: Annotated[dict[str, dict[str, PriceEntry]], Field(min_length=1)]


@dataclass(frozen=True)
class LineItem:
    name: str
    quantity: float          # per stream-hour
    unit: str
    usd: float               # per stream-hour

    def to_dict(self) -> dict[str, Any]:
        return {"quantity": round(self.quantity, 4), "unit": self.unit,
                "usd": round(self.usd, 6)}


def _item(name: str, quantity: float, price: Price) -> LineItem:
    return LineItem(name, quantity, price.unit, quantity * price.unit_price)


def serverless_cost(usage: Usage, stream_seconds: float, prices: PriceTable,
                    workflow_type: str = "STANDARD", storage_days: float = 1.0,
                    express_memory_gb: float = 0.064) -> list[LineItem]:
    """Line items per stream-hour for a measured serverless run of ``stream_seconds`` of media.

    Express workflows are billed per execution and for their duration at 64 MB: the duration is
    taken as the critical path of each execution (converter, the slowest detector, aggregator),
    from the measured Lambda time, rounded up to 100 ms. Objects stay ``storage_days`` (the
    lifecycle rule), so an hour of writes is stored for that long.
    """
    if stream_seconds <= 0:
        raise ConfigError("usage covers no media (stream_seconds must be > 0)")
    scale = HOUR / stream_seconds
    items = []
    executions = usage.executions
    if workflow_type == "EXPRESS":
        items.append(_item("Step Functions Express requests", executions * scale,
                           prices["sfn_express_request"]))
        per_exec = _critical_path_s(usage)
        billed = math.ceil(per_exec * 10) / 10
        items.append(_item("Step Functions Express GB-s",
                           executions * billed * express_memory_gb * scale,
                           prices["sfn_express_gb_second"]))
    else:
        items.append(_item("Step Functions state transitions",
                           usage.state_transitions * scale,
                           prices["sfn_standard_transition"]))
    items += [
        _item("S3 Tier-1 requests (PUT, LIST)", usage.s3_tier1 * scale, prices["s3_tier1_request"]),
        _item("S3 Tier-2 requests (GET)", usage.s3_tier2 * scale, prices["s3_tier2_request"]),
        _item("S3 storage", usage.bytes.get("s3_put", 0) / 1e9 * scale
              * storage_days / DAYS_PER_MONTH, prices["s3_storage"]),
        _item("Lambda requests", usage.invocations * scale, prices["lambda_request"]),
        _item("Lambda GB-s", usage.gb_seconds * scale, prices["lambda_gb_second"]),
        _item("SNS publishes", usage.calls("sns", "Publish") * scale,
              prices["sns_publish"]),
    ]
    if usage.calls("dynamodb"):
        # the stream-state table, on demand: billed in request units, which the meter works out
        # from the sizes of the items written and read. Its storage (a few KB per stream and
        # run until the TTL) and point-in-time recovery of it are not priced: millionths of a
        # dollar a month.
        items += [
            _item("DynamoDB write request units", usage.dynamodb_write_units * scale,
                  prices["dynamodb_write_request_unit"]),
            _item("DynamoDB read request units", usage.dynamodb_read_units * scale,
                  prices["dynamodb_read_request_unit"]),
        ]
    return items


def _critical_path_s(usage: Usage) -> float:
    if usage.executions <= 0:
        return 0.0

    def per_exec(name: str) -> float:
        f = usage.functions.get(name)
        return f.billed_ms / 1000 / usage.executions if f else 0.0
    detectors = [per_exec(n) for n in usage.functions if n.endswith("Detector")]
    return per_exec("Converter") + max(detectors, default=0.0) + per_exec("Aggregator")


@dataclass(frozen=True)
class TaskSize:
    """One ECS task on Fargate running the single-process design for several streams."""

    vcpu: float = 2.0
    memory_gb: float = 4.0
    target_cpu: float = 0.7     # leave headroom for bursts (scene cuts, keyframes)
    memory_reserve: float = 0.1  # for the runtime and the router in front

    def streams(self, cpu_per_stream_second: float, peak_mb_per_stream: float,
                base_mb: float = 0.0) -> int:
        """How many streams one task holds (at least one): the tighter of CPU and memory."""
        return max(1, self.holds(cpu_per_stream_second, peak_mb_per_stream, base_mb)[0])

    def holds(self, cpu_per_stream_second: float, mb_per_stream: float,
              base_mb: float = 0.0, base_cpu: float = 0.0) -> tuple[int, str]:
        """Streams one task holds and what bounds it (``cpu`` or ``memory``): CPU at
        ``target_cpu`` of its vCPUs, memory at ``1 - memory_reserve`` of it, with what the
        process needs whatever its streams (``base_mb`` of memory: interpreter, libraries;
        ``base_cpu`` cores: a service's own loop) paid once. Raises ConfigError for a
        measurement without CPU time or memory."""
        if cpu_per_stream_second <= 0 or mb_per_stream <= 0:
            raise ConfigError("single-process measurement must have CPU time and memory")
        by_cpu = math.floor((self.vcpu * self.target_cpu - base_cpu) / cpu_per_stream_second)
        by_memory = math.floor((self.memory_gb * 1024 * (1 - self.memory_reserve) - base_mb)
                               / mb_per_stream)
        n = max(0, min(by_cpu, by_memory))
        return n, "cpu" if by_cpu <= by_memory else "memory"


def single_process_cost(cpu_per_stream_second: float, peak_mb: float, prices: PriceTable,
                        task: TaskSize | None = None,
                        base_mb: float = 0.0) -> tuple[list[LineItem], int]:
    """Line items per stream-hour and the streams one task holds. ``peak_mb`` is memory per
    stream; ``base_mb`` what the process needs once, whatever the streams."""
    task = task or TaskSize()
    n = task.streams(cpu_per_stream_second, peak_mb, base_mb)
    return [
        _item("Fargate vCPU", task.vcpu / n, prices["fargate_vcpu_hour"]),
        _item("Fargate memory", task.memory_gb / n, prices["fargate_gb_hour"]),
    ], n


def total(items: list[LineItem]) -> float:
    return sum(i.usd for i in items)
