"""Workflow executions in moto, bounded as an account bounds them, and forgotten once read.

moto's Step Functions interpreter starts every execution in its own thread the moment
StartExecution returns, and keeps every execution's full event history (each state's input and
output) for as long as the process lives. An hour of 2 s segments is 1,800 executions: about
70,000 threads at once and gigabytes of history. On AWS neither happens to the caller: the
account's Lambda concurrency makes the executions beyond it wait (throttled invocations, retried
by the workflow), and the history lives in the service, not in the client.

``ExecutionPool`` replaces ``ExecutionWorker.start`` of moto's interpreter (pinned moto; tested):

- StartExecution is answered and counted exactly as before (the execution is RUNNING from that
  moment, as on AWS, where a throttled execution is running too), but its interpreter runs in one
  of ``limit`` worker threads, in start order: at most ``limit`` executions evaluate states at
  once and the threads stay flat however long the stream is.
- When an execution ends, the state transitions in its history are counted (what the simulation
  reports), and then, unless ``keep_histories``, the interpreter's environment (the history and
  every state's data) is dropped: ``DescribeExecution`` and ``ListExecutions`` still answer from
  the execution record; ``GetExecutionHistory`` answers with no events.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from avmon.errors import ConfigError
from avmon.localcloud.patching import MethodPatch

_log = logging.getLogger(__name__)


@dataclass
class ExecutionPool:
    limit: int
    keep_histories: bool = False
    transitions: dict[str, int] = field(default_factory=dict)  # execution ARN -> states entered
    started: int = 0       # executions handed to the pool
    peak: int = 0          # most executions evaluating at once
    _running: int = 0
    _queue: queue.SimpleQueue[Any] = field(default_factory=queue.SimpleQueue)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    _patch: MethodPatch | None = None

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ConfigError(f"at most {self.limit} executions at once: must be at least 1")

    @property
    def running(self) -> int:
        """Executions evaluating states now (started ones beyond the limit wait)."""
        return self._running

    def install(self) -> None:
        from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

        pool = self

        def start(worker: Any) -> None:
            pool.submit(worker)

        # SyncExecutionWorker (StartSyncExecution, Express) overrides start: left as it is
        self._patch = MethodPatch(ExecutionWorker, "start", start)
        self._patch.install()
        self._threads = [threading.Thread(target=self._serve, daemon=True,
                                          name=f"avmon-execution-{n}")
                         for n in range(self.limit)]
        for thread in self._threads:
            thread.start()

    def uninstall(self, timeout_s: float = 60.0) -> None:
        """Restore moto's start, abandon the executions still waiting (the simulation is over)
        and wait up to ``timeout_s`` for the workers to finish what they run.

        They are waited for, not left behind: an execution runs the handlers, which decode
        with PyAV, and a thread still inside FFmpeg when the process exits re-enters a
        finalizing interpreter from PyAV's I/O callbacks and can crash it."""
        if self._patch is not None:
            self._patch.uninstall()
            self._patch = None
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                _log.warning("%s still runs an execution after %.0f s", thread.name, timeout_s)
        self._threads = []

    def submit(self, worker: Any) -> None:
        with self._lock:
            self.started += 1
        self._queue.put(worker)

    def _serve(self) -> None:
        while True:
            worker = self._queue.get()
            if worker is None:
                return
            with self._lock:
                self._running += 1
                self.peak = max(self.peak, self._running)
            try:
                worker._execution_logic()
            except Exception:  # what moto's own thread would do: the execution stays RUNNING
                _log.exception("workflow execution crashed in moto's interpreter")
            finally:
                self._settle(worker)
                with self._lock:
                    self._running -= 1

    def _settle(self, worker: Any) -> None:
        """Count the ended execution's transitions; drop its interpreter state."""
        env = worker.env
        arn = worker._evaluation_details.execution_details.arn
        # no environment: the interpreter failed before its first state (counted as ended)
        entered = 0 if env is None else sum(
            1 for e in env.event_manager.get_event_history()
            if str(e["type"]).endswith("StateEntered"))
        with self._lock:
            self.transitions[arn] = entered
        if not self.keep_histories:
            worker.env = None
            _forget_finished_threads()


def _forget_finished_threads() -> None:
    """moto appends every thread its interpreter starts (a Parallel's branches, a Map's
    iterations) to a module list it never empties; finished ones are dropped."""
    from moto.stepfunctions.parser import utils

    utils.TMP_THREADS[:] = [t for t in utils.TMP_THREADS if t.is_alive()]
