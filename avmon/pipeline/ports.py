"""Ports (small abstract classes) and their AWS adapters.

Each adapter takes an optional boto3 client (``client or session().client(...)``), so tests and
the local simulation can hand in instrumented clients. Clients come from one process-wide boto3
session, created on first use, never at import: the simulation's meter registers on that
session's events, and counts every request the handlers make.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from avmon.errors import AvmonError, MissingResourceError, StorageThrottledError
from avmon.events import DefectEvent
from avmon.monitor.aws import sns_message

_session: Any = None
_lock = threading.Lock()
_THROTTLE_CODES = {"SlowDown", "503", "ServiceUnavailable", "RequestLimitExceeded",
                   "ThrottlingException", "TooManyRequestsException", "Throttling",
                   "ProvisionedThroughputExceededException", "TransactionConflictException"}


_session_hooks: list[Callable[[Any], None]] = []


def session() -> Any:
    """The process-wide boto3 session (created on first call)."""
    global _session
    with _lock:
        if _session is None:
            import boto3
            _session = boto3.session.Session()
            for hook in _session_hooks:
                hook(_session)
        return _session


def on_session(hook: Callable[[Any], None]) -> None:
    """Call ``hook`` with the session now (if there is one) and with every session made from
    now on: how event handlers reach every client (a client copies its session's handlers
    when it is made, so a handler registered later would miss the clients made before)."""
    with _lock:
        _session_hooks.append(hook)
        current = _session
    if current is not None:
        hook(current)


def reset_session() -> None:
    """Forget the session and its clients (the simulation starts each run with a fresh one)."""
    global _session
    with _lock:
        _session = None
    _clients.clear()


_clients: dict[str, Any] = {}


def client(service: str) -> Any:
    """A cached client of the shared session."""
    with _lock:
        found = _clients.get(service)
    if found is None:
        found = session().client(service)
        with _lock:
            _clients[service] = found
    return found


def error_code(exc: Exception) -> str:
    """The AWS error code of a botocore ClientError ("" for any other exception)."""
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _translate(exc: Exception, what: str) -> AvmonError:
    """A botocore error as the contract's error: throttling is retryable, a missing resource
    terminal; anything else an AvmonError carrying the AWS error code."""
    code = error_code(exc)
    if code in _THROTTLE_CODES:
        return StorageThrottledError(f"{what}: throttled ({code})")
    if code in {"NoSuchKey", "404", "NoSuchBucket", "NotFound", "ResourceNotFoundException"}:
        return MissingResourceError(f"{what}: not found ({code})")
    return AvmonError(f"{what}: {code or exc}")


class ObjectStore(ABC):
    @abstractmethod
    def get(self, key: str) -> bytes:
        """Raises MissingResourceError if absent, StorageThrottledError when throttled."""

    @abstractmethod
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Raises StorageThrottledError when throttled."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Every key under ``prefix``, sorted."""

    def get_json(self, key: str) -> Any:
        return json.loads(self.get(key))

    def put_json(self, key: str, value: Any) -> None:
        self.put(key, json.dumps(value, separators=(",", ":")).encode(), "application/json")


class S3Store(ObjectStore):
    def __init__(self, bucket: str, s3: Any = None) -> None:
        self.bucket = bucket
        self.s3 = s3 or client("s3")

    def get(self, key: str) -> bytes:
        try:
            body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            return body
        except Exception as exc:  # botocore's ClientError, translated to the contract
            raise _translate(exc, f"s3://{self.bucket}/{key}") from None

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        except Exception as exc:
            raise _translate(exc, f"s3://{self.bucket}/{key}") from None

    def list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=prefix):
                keys += [o["Key"] for o in page.get("Contents", [])]
        except Exception as exc:
            raise _translate(exc, f"s3://{self.bucket}/{prefix}") from None
        return sorted(keys)


class Notifier(ABC):
    @abstractmethod
    def publish(self, subject: str, message: dict[str, Any]) -> None: ...

    @abstractmethod
    def announce(self, event: DefectEvent) -> None:
        """Publish one defect event (the schema of ``avmon.events``).
        Raises StorageThrottledError when throttled, AvmonError for other failures."""


def subject_of(event: DefectEvent) -> str:
    """A short SNS subject: ASCII (SNS refuses other characters there), at most 100."""
    text = f"avmon {event.event} {event.detector} {event.stream} at {event.start_s:.3f}s"
    return text.encode("ascii", "replace").decode()[:100]


class SnsNotifier(Notifier):
    def __init__(self, topic_arn: str, sns: Any = None) -> None:
        self.topic_arn = topic_arn
        self.sns = sns or client("sns")

    def publish(self, subject: str, message: dict[str, Any]) -> None:
        try:
            self.sns.publish(TopicArn=self.topic_arn, Subject=subject[:100],
                             Message=json.dumps(message))
        except Exception as exc:
            raise _translate(exc, f"sns {self.topic_arn}") from None

    def announce(self, event: DefectEvent) -> None:
        # the live service's message (same body and attributes), with a subject for e-mail
        try:
            self.sns.publish(**sns_message(self.topic_arn, event), Subject=subject_of(event))
        except Exception as exc:
            raise _translate(exc, f"sns {self.topic_arn}") from None


class Starter(ABC):
    @abstractmethod
    def start(self, name: str, payload: dict[str, Any]) -> bool:
        """Start one workflow execution named ``name``: True if it started now, False if an
        execution of that name already exists (a redelivered event: already started is done).
        Raises StorageThrottledError when throttled."""


class StepFunctionsStarter(Starter):
    def __init__(self, state_machine_arn: str, sfn: Any = None) -> None:
        self.arn = state_machine_arn
        self.sfn = sfn or client("stepfunctions")

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        try:
            self.sfn.start_execution(stateMachineArn=self.arn, name=name,
                                     input=json.dumps(payload))
            return True
        except Exception as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                return False
            raise _translate(exc, f"start execution {name}") from None


class StateStore(ABC):
    """One versioned JSON document per (stream, run): the stream's state across segments."""

    @abstractmethod
    def load(self, stream: str, run: str) -> tuple[dict[str, Any], int] | None:
        """The document and its version, or None if there is none yet (strongly consistent).
        Raises StorageThrottledError when throttled."""

    @abstractmethod
    def save(self, stream: str, run: str, document: dict[str, Any], expected_version: int,
             expires_at: int) -> bool:
        """Write ``document`` as version ``expected_version + 1`` if the stored version is still
        ``expected_version`` (0: none stored); False if another writer came first. Raises
        StorageThrottledError when throttled."""


class DynamoStateStore(StateStore):
    """StateStore on a DynamoDB table: partition key ``stream``, sort key ``run`` (strings);
    ``version`` (number) guards every write, ``expires_at`` (number) is the table's TTL, the
    document is the string attribute ``state`` (JSON: kept far below the 400 KB item limit by
    holding indices and times, never evidence)."""

    def __init__(self, table: str, dynamodb: Any = None) -> None:
        self.table = table
        self.dynamodb = dynamodb or client("dynamodb")

    def load(self, stream: str, run: str) -> tuple[dict[str, Any], int] | None:
        try:
            item = self.dynamodb.get_item(TableName=self.table, ConsistentRead=True,
                                          Key={"stream": {"S": stream}, "run": {"S": run}})
        except Exception as exc:
            raise _translate(exc, f"dynamodb {self.table} {stream}/{run}") from None
        found = item.get("Item")
        if not found:
            return None
        return json.loads(found["state"]["S"]), int(found["version"]["N"])

    def save(self, stream: str, run: str, document: dict[str, Any], expected_version: int,
             expires_at: int) -> bool:
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(#v)",
             "ExpressionAttributeNames": {"#v": "version"}} if expected_version == 0 else
            {"ConditionExpression": "#v = :v", "ExpressionAttributeNames": {"#v": "version"},
             "ExpressionAttributeValues": {":v": {"N": str(expected_version)}}})
        item = {"stream": {"S": stream}, "run": {"S": run},
                "version": {"N": str(expected_version + 1)},
                "expires_at": {"N": str(expires_at)},
                "state": {"S": json.dumps(document, separators=(",", ":"))}}
        try:
            self.dynamodb.put_item(TableName=self.table, Item=item, **condition)
        except Exception as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise _translate(exc, f"dynamodb {self.table} {stream}/{run}") from None
        return True
