"""Faults rehearsed in the local cloud, injected where AWS would produce them.

- ``ServiceFault``: an AWS API answers with an error (S3 ``SlowDown`` 503 on a GET or PUT,
  ``NoSuchKey`` for an object deleted mid-run, Step Functions ``ThrottlingException`` on
  StartExecution). Injected through botocore's own ``before-call`` event on the pipeline's boto3
  session: the request never reaches moto, the client raises the ClientError it would raise on
  AWS, and the adapters translate it exactly as they would there.
- ``LambdaFault``: the Lambda service throttles an invocation (HTTP 429
  ``TooManyRequestsException``, which Step Functions names ``Lambda.TooManyRequestsException``)
  or the function's runtime crashes (``Runtime.ExitError``, as when it runs out of memory).
  Applied by the in-process Lambda runtime (``deploy.InProcessLambda``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote


@dataclass
class ServiceFault:
    """``operation`` ("s3.GetObject") answers ``code`` with HTTP ``status`` for requests whose
    path contains ``key`` ("" for any), ``times`` times (None: every time)."""

    operation: str
    code: str
    status: int
    key: str = ""
    times: int | None = 1
    hits: int = 0

    def matches(self, service: str, operation: str, path: str) -> bool:
        return (f"{service}.{operation}" == self.operation and self.key in path
                and (self.times is None or self.hits < self.times))


@dataclass
class LambdaFault:
    """Invocations of the function with role ``role`` ("Converter", "ClippingDetector") whose
    event satisfies ``when`` are throttled (``kind="throttle"``) or crash (``kind="crash"``),
    ``times`` times (None: every time)."""

    role: str
    kind: str  # "throttle" | "crash"
    times: int | None = 1
    when: Callable[[Any], bool] = field(default=lambda event: True)
    hits: int = 0

    def matches(self, role: str, event: Any) -> bool:
        return (role == self.role and (self.times is None or self.hits < self.times)
                and bool(self.when(event)))


class _Response:
    """The HTTP response botocore's ``before-call`` short-circuit expects (status and headers)."""

    def __init__(self, status: int, code: str) -> None:
        self.status_code = status
        self.headers = {"x-amzn-ErrorType": code}
        self.content = b""
        self.raw = None


class Faults:
    """The faults in force; attach once to the pipeline's boto3 session."""

    def __init__(self) -> None:
        self.service: list[ServiceFault] = []
        self.lambdas: list[LambdaFault] = []
        self._lock = threading.Lock()

    def attach(self, boto_session: Any) -> None:
        boto_session.events.register("before-call", self._before_call)

    @contextmanager
    def injected(self, *faults: ServiceFault | LambdaFault) -> Iterator[None]:
        with self._lock:
            for f in faults:
                (self.service if isinstance(f, ServiceFault) else self.lambdas).append(f)  # type: ignore[arg-type]
        try:
            yield
        finally:
            with self._lock:
                self.service = [f for f in self.service if f not in faults]
                self.lambdas = [f for f in self.lambdas if f not in faults]

    def lambda_fault(self, role: str, event: Any) -> LambdaFault | None:
        """The fault that applies to this invocation (counted), if any."""
        with self._lock:
            for f in self.lambdas:
                if f.matches(role, event):
                    f.hits += 1
                    return f
        return None

    def _before_call(self, model: Any, params: Any, event_name: str,
                     **kwargs: Any) -> tuple[_Response, dict[str, Any]] | None:
        _, service, operation = event_name.split(".")[:3]
        path = unquote(str(params.get("url_path", "")))
        with self._lock:
            fault = next((f for f in self.service if f.matches(service, operation, path)), None)
            if fault is None:
                return None
            fault.hits += 1
        return _Response(fault.status, fault.code), {
            "Error": {"Code": fault.code, "Message": f"injected: {fault.code}"},
            "ResponseMetadata": {"HTTPStatusCode": fault.status}}
