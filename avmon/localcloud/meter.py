"""Counting what the pipeline uses: requests from botocore events, Lambda time from the invoker.

Requests are counted per service and operation on ``after-call`` (one per logical call, retries
not counted twice), bytes from the request and response bodies, DynamoDB request units from the
items each call writes and reads (``pipeline.metering.DynamoUnits``). Lambda invocations, billed
milliseconds (rounded up to 1 ms, as Lambda bills) and memory come from the local invoker.
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from avmon.pipeline.metering import (
    DynamoUnits,
    bytes_metric,
    call_counts,
    flatten,
    put_body_size,
)


@dataclass
class FunctionUsage:
    invocations: int = 0
    errors: int = 0
    throttled: int = 0  # invocations the Lambda service refused (429): not run, not billed
    billed_ms: int = 0
    memory_mb: int = 128

    @property
    def gb_seconds(self) -> float:
        return self.memory_mb / 1024 * self.billed_ms / 1000

    def to_dict(self) -> dict[str, Any]:
        return {"invocations": self.invocations, "errors": self.errors,
                "throttled": self.throttled,
                "billed_ms": self.billed_ms, "memory_mb": self.memory_mb,
                "gb_seconds": round(self.gb_seconds, 4)}


@dataclass
class Meter:
    requests: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    bytes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    functions: dict[str, FunctionUsage] = field(default_factory=dict)
    dynamodb: DynamoUnits = field(default_factory=DynamoUnits)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Forget what was counted (the deployment's own calls, before a run starts)."""
        with self._lock:
            self.requests.clear()
            self.bytes.clear()
            self.functions.clear()
        self.dynamodb.reset()

    def attach(self, boto_session: Any) -> None:
        """Count every call of every client the session makes from now on."""
        boto_session.events.register("before-parameter-build.s3.PutObject", self._put)
        boto_session.events.register("before-parameter-build.dynamodb", self._keep_params)
        boto_session.events.register("after-call", self._after_call)

    @staticmethod
    def _keep_params(params: Any, context: Any, **kwargs: Any) -> None:
        # after-call sees the response, not the request: a DynamoDB call's units need both
        context["avmon_params"] = params

    def _put(self, params: Any, **kwargs: Any) -> None:
        size = put_body_size(params)
        with self._lock:
            self.bytes["s3_put"] += size

    def _after_call(self, model: Any, parsed: Any, event_name: str, context: Any = None,
                    **kwargs: Any) -> None:
        service = event_name.split(".")[1]
        if service == "dynamodb" and isinstance(parsed, dict):
            self.dynamodb.call(model.name, (context or {}).get("avmon_params", {}), parsed)
        got = call_counts(service, model.name, parsed)[bytes_metric("s3_get")]
        with self._lock:
            self.requests[service][model.name] += 1
            if got:
                self.bytes["s3_get"] += got

    def invoked(self, function: str, memory_mb: int, seconds: float, errored: bool) -> None:
        with self._lock:
            usage = self.functions.setdefault(function, FunctionUsage())
            usage.memory_mb = memory_mb
            usage.invocations += 1
            usage.errors += int(errored)
            usage.billed_ms += max(1, math.ceil(seconds * 1000))
            self.requests["lambda"]["Invoke"] += 1

    def throttled(self, function: str) -> None:
        with self._lock:
            self.functions.setdefault(function, FunctionUsage()).throttled += 1

    def metrics(self) -> dict[str, int]:
        """The counts under the names the deployed handlers publish (``pipeline.metering``)."""
        return flatten(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": {s: dict(sorted(ops.items()))
                             for s, ops in sorted(self.requests.items())},
                "bytes": dict(sorted(self.bytes.items())),
                "lambda": {n: u.to_dict() for n, u in sorted(self.functions.items())},
                **({"dynamodb": self.dynamodb.to_dict()} if "dynamodb" in self.requests else {}),
            }
