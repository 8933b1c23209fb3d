"""In-memory fakes of the pipeline's ports: what unit tests hand the steps and handlers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from avmon.errors import MissingResourceError, StorageThrottledError
from avmon.events import DefectEvent
from avmon.pipeline.ports import Notifier, ObjectStore, Starter, StateStore


class FakeStore(ObjectStore):
    """A bucket in a dict; counts requests like the meter does."""

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})
        self.gets = 0
        self.puts = 0

    def get(self, key: str) -> bytes:
        self.gets += 1
        try:
            return self.objects[key]
        except KeyError:
            raise MissingResourceError(f"fake://{key}: not found (NoSuchKey)") from None

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.puts += 1
        self.objects[key] = bytes(data)

    def list(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))


class FakeStarter(Starter):
    """Step Functions' StartExecution: names are unique; ``throttle`` calls are refused first."""

    def __init__(self, throttle: int = 0) -> None:
        self.executions: dict[str, dict[str, Any]] = {}
        self.throttle = throttle
        self.calls = 0

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        self.calls += 1
        if self.throttle > 0:
            self.throttle -= 1
            raise StorageThrottledError(f"start execution {name}: throttled (ThrottlingException)")
        if name in self.executions:
            return False
        self.executions[name] = payload
        return True


class FakeNotifier(Notifier):
    def __init__(self, fail: int = 0) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.events: list[DefectEvent] = []
        self.fail = fail  # the next ``fail`` announcements raise (SNS down)

    def publish(self, subject: str, message: dict[str, Any]) -> None:
        self.messages.append((subject, message))

    def announce(self, event: DefectEvent) -> None:
        if self.fail > 0:
            self.fail -= 1
            raise StorageThrottledError("sns: throttled (Throttling)")
        self.events.append(event)


class FakeStateStore(StateStore):
    """DynamoDB's conditional PutItem on a dict. ``before_save`` runs before each save (a test
    makes another aggregator write there, to lose the race)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], tuple[str, int]] = {}
        self.saves = 0
        self.conflicts = 0
        self.before_save: Callable[[], None] | None = None

    def load(self, stream: str, run: str) -> tuple[dict[str, Any], int] | None:
        found = self.items.get((stream, run))
        return None if found is None else (json.loads(found[0]), found[1])

    def save(self, stream: str, run: str, document: dict[str, Any], expected_version: int,
             expires_at: int) -> bool:
        hook, self.before_save = self.before_save, None
        if hook is not None:
            hook()
        self.saves += 1
        current = self.items.get((stream, run), ("", 0))[1]
        if current != expected_version:
            self.conflicts += 1
            return False
        self.items[(stream, run)] = (json.dumps(document), expected_version + 1)
        return True
