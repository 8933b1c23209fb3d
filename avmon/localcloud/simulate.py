"""``avmon simulate``: one input through the deployed serverless pipeline on moto.

The input goes in as it would on AWS (a PutObject under ``ingest/``), every execution is waited
for, and the report is assembled from the segment reports the aggregator stored. Usage is what
was measured: requests counted on the clients (botocore events), state transitions counted in
the execution histories, Lambda time measured around each handler.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avmon.errors import EXIT_INCOMPLETE, AvmonError
from avmon.localcloud.deploy import LocalCloud
from avmon.localcloud.limits import DEFAULT_MAX_EXECUTIONS
from avmon.media.decode import probe
from avmon.pipeline import keys, ports
from avmon.pipeline.config import PipelineConfig
from avmon.pipeline.status import StreamStatus, stream_status

Progress = Callable[[int, int, int], None]  # segments done, total, executions running


@dataclass
class Simulation:
    report: dict[str, Any]
    usage: dict[str, Any]
    failed_segments: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    run: str = ""
    # what the lifecycle emulation deleted (not usage: expirations are neither requests nor
    # billed) and how many executions ran at once
    local: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 when every segment was analysed by every detector; EXIT_INCOMPLETE otherwise
        (what was found is still reported, and ``failed_segments`` lists what failed)."""
        return EXIT_INCOMPLETE if self.failed_segments else 0

    def to_dict(self) -> dict[str, Any]:
        return {**self.report, "usage": self.usage, "run": self.run,
                "segments": {"total": self.usage["executions"],
                             "failed": self.failed_segments},
                "pipeline": self.config, "local": self.local}


def ingest_key(path: Path) -> str:
    """Where ``simulate`` uploads ``path``: its stream is its file name."""
    return f"{keys.INGEST}{path.name}"


def simulate(path: Path, config: PipelineConfig | None = None,
             progress: Progress | None = None, cloud: LocalCloud | None = None,
             timeout_s: float = 3600.0, key: str | None = None,
             max_executions: int = DEFAULT_MAX_EXECUTIONS) -> Simulation:
    """Run ``path`` through the pipeline, uploaded to ``key`` (default ``ingest/<file name>``).
    Pass ``cloud`` to reuse a deployment (a re-upload is a new run of the same stream);
    ``max_executions`` applies to a fresh one.

    Raises MediaOpenError for input that is not media (the same check and message as analyze),
    AvmonError if the ingest step fails.
    """
    probe(path)  # fail fast, with analyze's message, before deploying anything
    if cloud is None:
        with LocalCloud(config, max_executions=max_executions) as fresh:
            return _run(fresh, path, key or ingest_key(path), progress, timeout_s)
    return _run(cloud, path, key or ingest_key(path), progress, timeout_s)


def _run(cloud: LocalCloud, path: Path, key: str, progress: Progress | None,
         timeout_s: float) -> Simulation:
    cloud.meter.reset()
    run = _ingest(cloud, path, key)
    executions = _wait(cloud, run["started"], progress, timeout_s)
    transitions = sum(cloud.transitions(e["executionArn"]) for e in executions)
    collected = _collect(cloud, keys.stream_id_of(run["key"]), path, run["run"], executions)
    usage = {"executions": len(executions), "state_transitions": transitions,
             **cloud.meter.to_dict()}
    return Simulation(collected.report, usage, collected.failed, cloud.object_keys(),
                      cloud.config.to_dict(), run["run"], _local(cloud))


def _local(cloud: LocalCloud) -> dict[str, Any]:
    """How the simulation held the run: executions at once, objects the emulated lifecycle
    rule deleted."""
    pool = cloud.executions_pool
    return {"max_executions": pool.limit, "peak_executions": pool.peak,
            "expired": cloud.lifecycle.to_dict() if cloud.lifecycle else None}


@dataclass
class _Collected:
    report: dict[str, Any]
    failed: list[dict[str, Any]]
    durations: list[float]
    status: StreamStatus


def _collect(cloud: LocalCloud, stream: str, path: Path, run: str,
             executions: list[dict[str, Any]]) -> _Collected:
    """The stream's status (what ``avmon report`` shows) once this run's executions ended:
    every segment not analysed in full is listed, with its cause."""
    assert cloud.deployment is not None
    durations: list[float] = []
    sfn = cloud.client("stepfunctions")
    for e in executions:
        d = sfn.describe_execution(executionArn=e["executionArn"])
        if d.get("stopDate") and d.get("startDate"):
            durations.append((d["stopDate"] - d["startDate"]).total_seconds())
    status = stream_status(ports.S3Store(cloud.deployment.bucket, cloud.client("s3")), stream,
                           str(path))
    if status.run.run != run:
        raise AvmonError(f"{path}: the latest run of {stream} is {status.run.run}, not {run}")
    names = {keys.segment_of_execution(e["name"]): e["name"] for e in executions}
    failed: list[dict[str, Any]] = []
    for seg in status.missing:
        failed.append({"segment": seg, "execution": names.get(seg, ""), "status": "missing",
                       "error": "", "cause": "no segment report"})
    for seg, why in status.failed.items():
        failed.append({"segment": seg, "execution": names.get(seg, ""), "status": "failed",
                       **why.to_dict()})
    for seg, dets in status.incomplete.items():
        for detector, why in dets.items():
            failed.append({"segment": seg, "detector": detector, "status": "incomplete",
                           **why.to_dict()})
    failed.sort(key=lambda f: (f["segment"], f.get("detector", "")))
    return _Collected(status.result.report.to_dict(), failed, durations, status)


def simulate_many(paths: list[Path], config: PipelineConfig | None = None,
                  throttle: Any = None, progress: Progress | None = None,
                  timeout_s: float = 3600.0,
                  max_executions: int = DEFAULT_MAX_EXECUTIONS) -> dict[str, Any]:
    """Several streams at once through one deployment, optionally under a StateTransition
    bucket (a TransitionThrottle): what each stream found and how long its segments took.

    Raises MediaOpenError for an input that is not media, before deploying anything.
    """
    for path in paths:
        probe(path)
    if len({p.name for p in paths}) != len(paths):
        raise AvmonError("two inputs have the same file name (the stream's name); rename one")
    with LocalCloud(config, max_executions=max_executions) as cloud:
        if throttle is not None:
            throttle.install()
        try:
            cloud.meter.reset()
            # all in flight together: each upload starts its executions, none is waited for
            runs = [_ingest(cloud, p, ingest_key(p)) for p in paths]
            executions = _wait(cloud, [n for r in runs for n in r["started"]], progress,
                               timeout_s)
        finally:
            if throttle is not None:
                throttle.uninstall()
        streams = []
        for path, run in zip(paths, runs, strict=True):
            mine = [e for e in executions if e["name"] in set(run["started"])]
            c = _collect(cloud, keys.stream_id_of(run["key"]), path, run["run"], mine)
            streams.append({
                "source": str(path), "segments": len(mine),
                "failed": len({f["segment"] for f in c.failed}),
                "failures": c.failed,
                "defects": c.report["defects"],
                "execution_s": {"mean": round(sum(c.durations) / max(len(c.durations), 1), 2),
                                "max": round(max(c.durations, default=0.0), 2)},
            })
        usage = {"executions": len(executions), **cloud.meter.to_dict()}
        local = _local(cloud)
    return {"streams": streams, "usage": usage, "local": local,
            "throttle": throttle.to_dict() if throttle is not None else None}


def _ingest(cloud: LocalCloud, path: Path, key: str) -> dict[str, Any]:
    """Upload ``path`` to ``key`` (the notification runs the ingest Lambda); return the run the
    ingest step made of it. Raises AvmonError with the ingest step's cause if it failed."""
    before = cloud.invoker.latest.get("Ingest")
    cloud.upload(path.read_bytes(), key)
    ingest = cloud.invoker.latest.get("Ingest")
    if ingest is None or ingest is before or ingest.error:
        why = cloud.invoker.failures[-1] if cloud.invoker.failures else "it never ran"
        raise AvmonError(f"{path}: the ingest step failed: {why.split(': ', 1)[-1]}")
    run: dict[str, Any] = ingest.result["runs"][0]
    return run


def _wait(cloud: LocalCloud, names: list[str], progress: Progress | None,
          timeout_s: float) -> list[dict[str, Any]]:
    """The executions named ``names`` once every one has ended (watched in the execution
    pool, which costs nothing; ListExecutions over thousands would, five times a second)."""
    deadline = time.monotonic() + timeout_s
    wanted = set(names)
    assert cloud.deployment is not None
    prefix = cloud.deployment.state_machine_arn.replace(":stateMachine:", ":execution:", 1)
    arns = {f"{prefix}:{n}" for n in wanted}
    ended = cloud.executions_pool.transitions
    while True:
        done = sum(1 for a in arns if a in ended)
        running = len(wanted) - done
        if progress is not None:
            progress(done, len(wanted), running)
        if running == 0:
            return [e for e in cloud.executions() if e["name"] in wanted]
        if time.monotonic() > deadline:
            raise AvmonError(f"{running} execution(s) still running after {timeout_s:.0f} s")
        time.sleep(0.2)
