"""What a pipeline function counts of its own AWS calls, named once for both places that count:
the handlers' Powertools metrics on AWS (namespace ``avmon``) and the local simulation's meter.
A deployed run's CloudWatch sums and a simulated run's usage therefore use the same names:

- ``<service>.<Operation>`` (``s3.PutObject``, ``s3.GetObject``, ``sfn.StartExecution``,
  ``sns.Publish``): calls, one per logical call (botocore's ``after-call``, retries not
  counted twice); ``lambda.Invoke``: the function's own invocations (on AWS the caller is S3 or
  Step Functions, not a client the handler could count);
- ``bytes.s3_put`` and ``bytes.s3_get``: the bodies written and read.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

NAMESPACE = "avmon"
INVOKE = "lambda.Invoke"


def request_metric(service: str, operation: str) -> str:
    return f"{service}.{operation}"


def bytes_metric(kind: str) -> str:
    """``kind``: ``s3_put`` or ``s3_get``."""
    return f"bytes.{kind}"


def put_body_size(params: Any) -> int:
    """The bytes a PutObject sends (its ``Body``), from its request parameters."""
    body = params.get("Body") if isinstance(params, dict) else None
    return len(body) if isinstance(body, (bytes, bytearray)) else 0


def call_counts(service: str, operation: str, parsed: Any) -> Counter[str]:
    """What one completed call adds: itself, and for GetObject the bytes it read."""
    counts: Counter[str] = Counter({request_metric(service, operation): 1})
    if operation == "GetObject" and isinstance(parsed, dict):
        counts[bytes_metric("s3_get")] += int(parsed.get("ContentLength") or 0)
    return counts


def flatten(usage: dict[str, Any]) -> dict[str, int]:
    """The meter's ``requests``/``bytes`` as metric names and values."""
    out = {request_metric(s, op): n for s, ops in usage.get("requests", {}).items()
           for op, n in ops.items()}
    out |= {bytes_metric(k): n for k, n in usage.get("bytes", {}).items()}
    return out
