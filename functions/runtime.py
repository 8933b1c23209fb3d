"""What every handler needs: its adapters (the seam tests hand fakes through), its settings from
the environment, and a structured logger."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import weakref
from collections import Counter
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from avmon.errors import ConfigError
from avmon.pipeline.config import PipelineConfig
from avmon.pipeline.metering import INVOKE, NAMESPACE, bytes_metric, call_counts, put_body_size
from avmon.pipeline.ports import (
    DynamoStateStore,
    Notifier,
    ObjectStore,
    S3Store,
    SnsNotifier,
    Starter,
    StateStore,
    StepFunctionsStarter,
    on_session,
)

# The function's environment. On Lambda it is os.environ. The local runtime runs every function
# in one process and hands each invocation its own through this variable, never by rewriting
# os.environ, which other threads (botocore creating a client) read meanwhile.
ENVIRONMENT: ContextVar[Mapping[str, str] | None] = ContextVar("avmon_lambda_environment",
                                                               default=None)


def environment() -> Mapping[str, str]:
    """The running function's environment variables."""
    return ENVIRONMENT.get() or os.environ


@dataclass(frozen=True)
class Settings:
    bucket: str
    pipeline: PipelineConfig
    topic_arn: str = ""
    state_machine_arn: str = ""
    detector: str = ""
    state_table: str = ""

    @classmethod
    def from_environment(cls) -> Settings:
        """Raises ConfigError if a required variable is missing."""
        env = environment()
        bucket = env.get("AVMON_BUCKET")
        if not bucket:
            raise ConfigError("AVMON_BUCKET is not set")
        raw = env.get("AVMON_PIPELINE_CONFIG")
        try:
            pipeline = PipelineConfig.from_mapping(json.loads(raw)) if raw else PipelineConfig()
        except ValueError:
            raise ConfigError("AVMON_PIPELINE_CONFIG is not valid JSON") from None
        return cls(bucket, pipeline, env.get("AVMON_TOPIC_ARN", ""),
                   env.get("AVMON_STATE_MACHINE_ARN", ""),
                   env.get("AVMON_DETECTOR", ""), env.get("AVMON_STATE_TABLE", ""))


class Dependencies:
    """A handler's settings and adapters: the real AWS ones made on first use, or the ones a
    test (or another runtime) hands in. The composition root of every handler."""

    def __init__(self, settings: Settings, *, store: ObjectStore | None = None,
                 notifier: Notifier | None = None, starter: Starter | None = None,
                 states: StateStore | None = None) -> None:
        self.settings = settings
        self._store, self._notifier, self._starter = store, notifier, starter
        self._states = states

    @classmethod
    def from_environment(cls) -> Dependencies:
        """Raises ConfigError if a required variable is missing."""
        return cls(Settings.from_environment())

    def store(self, bucket: str | None = None) -> ObjectStore:
        """The object store (of ``bucket``: an S3 event names its own)."""
        return self._store or S3Store(bucket or self.settings.bucket)

    @property
    def notifier(self) -> Notifier:
        return self._notifier or SnsNotifier(self.settings.topic_arn)

    @property
    def states(self) -> StateStore:
        """The stream-state table. Raises ConfigError if AVMON_STATE_TABLE is not set."""
        if self._states is not None:
            return self._states
        if not self.settings.state_table:
            raise ConfigError("AVMON_STATE_TABLE is not set")
        return DynamoStateStore(self.settings.state_table)

    @property
    def starter(self) -> Starter:
        return self._starter or StepFunctionsStarter(self.settings.state_machine_arn)


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at the time: on Lambda the runtime's log stream; in
    the local simulation, the invocation's captured log."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@functools.cache
def logger(service: str) -> Any:
    """Powertools' structured JSON logger, made on first use rather than at import."""
    from aws_lambda_powertools import Logger
    return Logger(service=service, logger_handler=logging.StreamHandler(_CurrentStdout()))


# -- metrics and tracing ----------------------------------------------------------------------
# The calls of the invocation running in this thread (context), counted by botocore hooks on the
# handlers' session; None outside an instrumented handler (a hook then counts nothing).
_CALLS: ContextVar[Counter[str] | None] = ContextVar("avmon_calls", default=None)
_hooked: weakref.WeakSet[Any] = weakref.WeakSet()


def _count_put(params: Any, **kwargs: Any) -> None:
    calls = _CALLS.get()
    if calls is not None:
        calls[bytes_metric("s3_put")] += put_body_size(params)


def _count_call(model: Any, parsed: Any, event_name: str, **kwargs: Any) -> None:
    calls = _CALLS.get()
    if calls is not None:
        calls.update(call_counts(event_name.split(".")[1], model.name, parsed))


def _hook(boto_session: Any) -> None:
    if boto_session not in _hooked:
        boto_session.events.register("before-parameter-build.s3.PutObject", _count_put)
        boto_session.events.register("after-call", _count_call)
        _hooked.add(boto_session)


on_session(_hook)  # every client the handlers make counts its calls (for the metrics below)


@functools.cache
def _metrics() -> Any:
    from aws_lambda_powertools import Metrics
    return Metrics(namespace=NAMESPACE)


@functools.cache
def _tracer() -> Any:
    # outside Lambda (tests, the local simulation) Powertools disables the tracer itself
    from aws_lambda_powertools import Tracer
    return Tracer(service="avmon")


Handler = Callable[..., dict[str, Any]]


def instrumented(function: str) -> Callable[[Handler], Handler]:
    """A handler with Powertools Tracer (the handler's subsegment, cold start annotated; its
    boto3 calls traced) and Metrics: one EMF record per invocation in the ``avmon`` namespace,
    dimension ``function``, with the counts named as the local simulation's meter names them
    (``avmon.pipeline.metering``). ``POWERTOOLS_METRICS_DISABLED=true`` (the local simulation
    sets it) keeps the record out of the log."""
    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def run(event: Any, context: Any, deps: Dependencies | None = None) -> dict[str, Any]:
            calls: Counter[str] = Counter({INVOKE: 1})
            token = _CALLS.set(calls)
            try:
                # the response is a manifest of every frame: too big for X-Ray's metadata
                traced = _tracer().capture_lambda_handler(handler, capture_response=False)
                result: dict[str, Any] = traced(event, context, deps=deps)
                return result
            finally:
                _CALLS.reset(token)
                _publish(function, calls)
        return run
    return wrap


def _publish(function: str, calls: Counter[str]) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    metrics = _metrics()
    metrics.clear_metrics()  # Powertools keeps metrics process-wide (per namespace)
    metrics.add_dimension(name="function", value=function)
    detector = environment().get("AVMON_DETECTOR")
    if detector:  # one Detector function per detector: which one
        metrics.add_dimension(name="detector", value=detector)
    for name, value in sorted(calls.items()):
        unit = MetricUnit.Bytes if name.startswith("bytes.") else MetricUnit.Count
        metrics.add_metric(name=name, unit=unit, value=value)
    metrics.flush_metrics()  # prints the EMF record, unless metrics are disabled
    metrics.clear_metrics()
