"""In-memory fakes of the pipeline's ports: what unit tests hand the steps and handlers."""

from __future__ import annotations

from typing import Any

from avmon.errors import MissingResourceError, StorageThrottledError
from avmon.pipeline.ports import Notifier, ObjectStore, Starter


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
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def publish(self, subject: str, message: dict[str, Any]) -> None:
        self.messages.append((subject, message))
