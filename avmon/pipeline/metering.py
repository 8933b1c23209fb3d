"""What a pipeline function counts of its own AWS calls, named once for both places that count:
the handlers' Powertools metrics on AWS (namespace ``avmon``) and the local simulation's meter.
A deployed run's CloudWatch sums and a simulated run's usage therefore use the same names:

- ``<service>.<Operation>`` (``s3.PutObject``, ``s3.GetObject``, ``sfn.StartExecution``,
  ``sns.Publish``): calls, one per logical call (botocore's ``after-call``, retries not
  counted twice); ``lambda.Invoke``: the function's own invocations (on AWS the caller is S3 or
  Step Functions, not a client the handler could count);
- ``bytes.s3_put`` and ``bytes.s3_get``: the bodies written and read.

DynamoDB bills on-demand tables in request units, which depend on item sizes, not per request:
``DynamoUnits`` works them out from the items each call writes and reads, by the rules of the
DynamoDB Developer Guide ("DynamoDB item sizes and formats"; "DynamoDB read and write
operations"). The local meter records them in the usage (``dynamodb``); the handlers do not
publish them (on AWS the table's own ``ConsumedReadCapacityUnits`` and
``ConsumedWriteCapacityUnits`` metrics are the billed figure).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
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


# -- DynamoDB request units ---------------------------------------------------------------------
WRITE_UNIT_BYTES = 1024  # one write request unit: a standard write of up to 1 KB
READ_UNIT_BYTES = 4096   # one read request unit: a strongly consistent read of up to 4 KB


def _number_size(text: str) -> int:
    """A number's size: 1 byte per two significant digits, plus 1 (leading and trailing zeros
    are not stored)."""
    try:
        digits = "".join(map(str, Decimal(text).normalize().as_tuple().digits))
    except InvalidOperation:
        digits = "".join(c for c in text if c.isdigit())
    significant = digits.strip("0") or "0"
    return math.ceil(len(significant) / 2) + 1


def value_size(value: Mapping[str, Any]) -> int:
    """The size of one AttributeValue (``{"S": ...}``, ``{"N": ...}``, ...), name excluded."""
    (kind, v), = value.items()
    if kind == "S":
        return len(str(v).encode())
    if kind == "N":
        return _number_size(str(v))
    if kind == "B":
        return len(v) if isinstance(v, (bytes, bytearray)) else len(str(v).encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(x).encode()) for x in v)
    if kind == "NS":
        return sum(_number_size(str(x)) for x in v)
    if kind == "BS":
        return sum(len(x) for x in v)
    if kind == "L":  # 3 bytes for the list, 1 per element
        return 3 + sum(1 + value_size(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(x) for k, x in v.items())
    raise ValueError(f"not a DynamoDB attribute value type: {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]]) -> int:
    """The size DynamoDB bills an item at: the UTF-8 bytes of each attribute name plus the size
    of its value. Raises ValueError for a value that is not a DynamoDB AttributeValue."""
    return sum(len(name.encode()) + value_size(v) for name, v in item.items())


def write_units(size: int) -> int:
    """Write request units for one standard write of an item of ``size`` bytes: rounded up to
    the next 1 KB, at least 1."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def read_units(size: int, consistent: bool) -> float:
    """Read request units for reading ``size`` bytes: rounded up to the next 4 KB, at least 4 KB;
    one unit per 4 KB strongly consistent, half a unit eventually consistent."""
    units = max(1, math.ceil(size / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


@dataclass
class DynamoUnits:
    """Request units of the DynamoDB calls it is shown, from their items.

    ``GetItem`` bills the item read (an item not found: the minimum); ``Scan`` the sum of the
    items it returns, rounded once; ``PutItem`` the larger of the item written and the item it
    replaces, and a put whose condition failed the item that stays; ``DeleteItem`` the item
    deleted. The replaced item's size is the last one this tracker saw for that key (read or
    written): a table's key names are learned from the ``Key`` of a ``GetItem`` or
    ``DeleteItem``; before that, or for a key never seen, a put counts as a new item. Other
    operations count the minimum (avmon makes none). Throttled or rejected calls are not billed
    and count nothing; a failed condition is billed."""

    read: float = 0.0
    write: int = 0
    item_bytes_read: int = 0
    item_bytes_written: int = 0
    _keys: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    _sizes: dict[tuple[str, tuple[Any, ...]], int] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        """Forget the units counted (the sizes of the items in the tables are kept)."""
        with self._lock:
            self.read, self.write = 0.0, 0
            self.item_bytes_read = self.item_bytes_written = 0

    def call(self, operation: str, params: Mapping[str, Any], parsed: Mapping[str, Any]) -> None:
        """Count one completed call: its request parameters and botocore's parsed response."""
        error = (parsed.get("Error") or {}).get("Code")
        if error and error != "ConditionalCheckFailedException":
            return
        table = str(params.get("TableName", ""))
        with self._lock:
            if operation == "GetItem":
                key = self._key(table, params.get("Key", {}), learn=True)
                size = item_size(parsed.get("Item") or {})
                if parsed.get("Item"):
                    self._sizes[key] = size
                self.read += read_units(size, bool(params.get("ConsistentRead")))
                self.item_bytes_read += size
            elif operation == "Scan":
                size = sum(item_size(i) for i in parsed.get("Items", []))
                self.read += read_units(size, bool(params.get("ConsistentRead")))
                self.item_bytes_read += size
            elif operation == "PutItem":
                item = params.get("Item", {})
                key = self._key(table, item)
                old = self._sizes.get(key, 0)
                if error:
                    self.write += write_units(old)
                    return
                new = item_size(item)
                self.write += write_units(max(old, new))
                self.item_bytes_written += new
                self._sizes[key] = new
            elif operation == "DeleteItem":
                key = self._key(table, params.get("Key", {}), learn=True)
                self.write += write_units(self._sizes.get(key, 0) if error
                                          else self._sizes.pop(key, 0))
            elif operation in ("UpdateItem", "BatchWriteItem", "TransactWriteItems"):
                self.write += 1
            elif operation in ("Query", "BatchGetItem", "TransactGetItems"):
                self.read += read_units(0, bool(params.get("ConsistentRead")))

    def _key(self, table: str, attrs: Mapping[str, Any],
             learn: bool = False) -> tuple[str, tuple[Any, ...]]:
        if learn:
            self._keys[table] = tuple(sorted(attrs))
        names = self._keys.get(table)
        if names is None:  # key names not known yet: every attribute, so never a match
            names = tuple(sorted(attrs))
        return table, tuple((n, repr(attrs.get(n))) for n in names)

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"read_units": self.read, "write_units": self.write,
                    "item_bytes_read": self.item_bytes_read,
                    "item_bytes_written": self.item_bytes_written}
