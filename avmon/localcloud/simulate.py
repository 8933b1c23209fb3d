"""``avmon simulate``: one input through the deployed serverless pipeline on moto.

The input goes in as it would on AWS (a PutObject under ``ingest/``), every execution is waited
for, and the report is assembled from the segment reports the aggregator stored. Usage is what
was measured: requests counted on the clients (botocore events), state transitions counted in
the execution histories, Lambda time measured around each handler.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avmon.errors import AvmonError
from avmon.localcloud.deploy import LocalCloud
from avmon.media.decode import MediaReader
from avmon.pipeline import keys
from avmon.pipeline.config import PipelineConfig
from avmon.pipeline.steps import assemble

Progress = Callable[[int, int, int], None]  # segments done, total, executions running


@dataclass
class Simulation:
    report: dict[str, Any]
    usage: dict[str, Any]
    failed_segments: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.report, "usage": self.usage,
                "segments": {"total": self.usage["executions"],
                             "failed": self.failed_segments},
                "pipeline": self.config}


def stream_name(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", path.stem)[:40] or "stream"


def simulate(path: Path, config: PipelineConfig | None = None,
             progress: Progress | None = None, cloud: LocalCloud | None = None,
             timeout_s: float = 3600.0) -> Simulation:
    """Run ``path`` through the pipeline. Pass ``cloud`` to reuse a deployment (re-runs).

    Raises MediaOpenError for input that is not media (the same check and message as analyze),
    AvmonError if the ingest step fails.
    """
    with MediaReader(path):  # fail fast, with analyze's message, before deploying anything
        pass
    if cloud is None:
        with LocalCloud(config) as fresh:
            return _run(fresh, path, progress, timeout_s)
    return _run(cloud, path, progress, timeout_s)


def _run(cloud: LocalCloud, path: Path, progress: Progress | None,
         timeout_s: float) -> Simulation:
    stream = stream_name(path)
    cloud.meter.reset()
    before = {e["executionArn"] for e in cloud.executions()}
    total = _ingest(cloud, path, stream)
    executions = _wait(cloud, before, total, progress, timeout_s)
    transitions = sum(sum(1 for h in cloud.history(e["executionArn"])
                          if h["type"].endswith("StateEntered")) for e in executions)
    collected = _collect(cloud, stream, path, executions)
    usage = {"executions": len(executions), "state_transitions": transitions,
             **cloud.meter.to_dict()}
    return Simulation(collected.report, usage, collected.failed, cloud.object_keys(),
                      cloud.config.to_dict())


@dataclass
class _Collected:
    report: dict[str, Any]
    failed: list[dict[str, Any]]
    durations: list[float]


def _collect(cloud: LocalCloud, stream: str, path: Path,
             executions: list[dict[str, Any]]) -> _Collected:
    """A stream's report from this run's executions: failures with their causes, and only the
    segments that succeeded now (a report left by an earlier run must not stand in)."""
    failed: list[dict[str, Any]] = []
    succeeded: set[int] = set()
    durations: list[float] = []
    sfn = cloud.client("stepfunctions")
    for e in executions:
        d = sfn.describe_execution(executionArn=e["executionArn"])
        if d.get("stopDate") and d.get("startDate"):
            durations.append((d["stopDate"] - d["startDate"]).total_seconds())
        if e["status"] == "SUCCEEDED":
            succeeded.add(int(e["name"].rsplit("-", 1)[-1]))
        else:
            failed.append({"execution": e["name"], "status": e["status"],
                           "error": d.get("error", ""), "cause": _short(d.get("cause", ""))})
    reports = [r for r in cloud.segment_reports(stream) if int(r["segment"]) in succeeded]
    result = assemble(reports, str(path))
    for seg, detectors in sorted(result.failed_detectors.items()):
        for detector, failure in detectors.items():
            failed.append({"segment": seg, "detector": detector, **failure})
    return _Collected(result.report.to_dict(), failed, durations)


def simulate_many(paths: list[Path], config: PipelineConfig | None = None,
                  throttle: Any = None, progress: Progress | None = None,
                  timeout_s: float = 3600.0) -> dict[str, Any]:
    """Several streams at once through one deployment, optionally under a StateTransition
    bucket (a TransitionThrottle): what each stream found and how long its segments took.

    Raises MediaOpenError for an input that is not media, before deploying anything.
    """
    for path in paths:
        with MediaReader(path):
            pass
    names = [stream_name(p) for p in paths]
    if len(set(names)) != len(names):
        raise AvmonError("two inputs have the same stream name; rename one")
    with LocalCloud(config) as cloud:
        if throttle is not None:
            throttle.install()
        try:
            cloud.meter.reset()
            before = {e["executionArn"] for e in cloud.executions()}
            # all in flight together: each upload starts its executions, none is waited for
            expected = sum(_ingest(cloud, p, n) for p, n in zip(paths, names, strict=True))
            executions = _wait(cloud, before, expected, progress, timeout_s)
        finally:
            if throttle is not None:
                throttle.uninstall()
        streams = []
        for path, name in zip(paths, names, strict=True):
            mine = [e for e in executions if e["name"].startswith(f"{name}-")]
            c = _collect(cloud, name, path, mine)
            streams.append({
                "source": str(path), "segments": len(mine),
                "failed": sum(1 for e in mine if e["status"] != "SUCCEEDED"),
                "failures": c.failed,
                "defects": c.report["defects"],
                "execution_s": {"mean": round(sum(c.durations) / max(len(c.durations), 1), 2),
                                "max": round(max(c.durations, default=0.0), 2)},
            })
        usage = {"executions": len(executions), **cloud.meter.to_dict()}
    return {"streams": streams, "usage": usage,
            "throttle": throttle.to_dict() if throttle is not None else None}


def _ingest(cloud: LocalCloud, path: Path, stream: str) -> int:
    """Upload ``path`` under ingest/ (the notification runs the ingest Lambda); return how many
    executions it started. Raises AvmonError with the ingest step's cause if it failed."""
    calls = len(cloud.invoker.invocations)
    cloud.upload(path.read_bytes(), f"{keys.INGEST}{stream}/{path.name}")
    ingest = [i for i in cloud.invoker.invocations[calls:] if i.function == "Ingest"]
    if not ingest or ingest[-1].error:
        why = cloud.invoker.failures[-1] if cloud.invoker.failures else "it never ran"
        raise AvmonError(f"{path}: the ingest step failed: {why.split(': ', 1)[-1]}")
    return len(ingest[-1].result["started"])


def _wait(cloud: LocalCloud, before: set[str], total: int, progress: Progress | None,
          timeout_s: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        mine = [e for e in cloud.executions() if e["executionArn"] not in before]
        running = sum(1 for e in mine if e["status"] == "RUNNING")
        done = len(mine) - running
        if progress is not None:
            progress(done, total, running)
        if len(mine) >= total and running == 0:
            return mine
        if time.monotonic() > deadline:
            raise AvmonError(f"{running} execution(s) still running after {timeout_s:.0f} s")
        time.sleep(0.2)


def _short(cause: str) -> str:
    import json
    try:
        parsed = json.loads(cause)
        if isinstance(parsed, dict):
            return str(parsed.get("errorMessage") or parsed.get("Cause") or cause)
    except ValueError:
        pass
    return cause

