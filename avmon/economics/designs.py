"""Every design on the same input: what each found, used, costs and sustains.

- ``serverless-original``: the pipeline's defaults (one S3 object per frame, Standard workflows,
  one Lambda per detector, 2 s segments), run by the local simulation.
- ``serverless-tuned``: each problem fixed separately, as a team would before giving up on the
  design: a segment's frames (and audio) in one object, Express workflows, 10 s segments, so
  fewer and larger invocations. Same simulation, same handlers.
- ``single-process``: ``avmon analyze`` in one process, frames in memory, measured for CPU
  seconds per stream-second and peak memory; priced as ECS tasks on Fargate.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from avmon.economics.prices import PriceTable, TaskSize, serverless_cost, single_process_cost, total
from avmon.economics.quotas import Demand, scaling_wall
from avmon.errors import AvmonError, ConfigError
from avmon.pipeline.config import PipelineConfig

ORIGINAL, TUNED, SINGLE = "serverless-original", "serverless-tuned", "single-process"
DESIGNS = (ORIGINAL, TUNED, SINGLE)
SERVERLESS: dict[str, PipelineConfig] = {
    ORIGINAL: PipelineConfig(),
    TUNED: PipelineConfig(frame_layout="object-per-segment", workflow_type="EXPRESS",
                          segment_seconds=10.0, audio_object_seconds=10.0),
}


def measure_single_process(path: Path) -> dict[str, Any]:
    """CPU seconds and peak memory of ``avmon analyze`` in its own process (interpreter, imports
    and audio included). Raises AvmonError if analyze fails."""
    code = ("import json,resource,subprocess,sys;"
            "p=subprocess.run([sys.executable,'-m','avmon','analyze',sys.argv[1],'--json'],"
            "capture_output=True,text=True);"
            "r=resource.getrusage(resource.RUSAGE_CHILDREN);"
            "print(json.dumps({'rc':p.returncode,'out':p.stdout,'err':p.stderr,"
            "'cpu':r.ru_utime+r.ru_stime,'rss':r.ru_maxrss}))")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, check=True)
    m = json.loads(proc.stdout)
    if m["rc"] != 0:
        raise AvmonError(f"single-process analysis failed: {m['err'].strip()}")
    report = json.loads(m["out"])
    stream_s = float(report["duration_s"])
    return {"report": report, "usage": {
        "cpu_s": round(m["cpu"], 3), "stream_s": stream_s,
        "cpu_per_stream_second": round(m["cpu"] / stream_s, 5),
        "peak_mb": round(m["rss"] / 1024, 1)}}


def run_designs(path: Path, designs: Sequence[str] = DESIGNS,
                on_design: Callable[[str], None] | None = None,
                progress: Any = None) -> dict[str, dict[str, Any]]:
    """Run each design on ``path``: {design: {"report": ..., "usage": ...}}."""
    from avmon.localcloud.simulate import simulate

    unknown = set(designs) - set(DESIGNS)
    if unknown:
        raise ConfigError(f"unknown design(s): {', '.join(sorted(unknown))};"
                          f" known: {', '.join(DESIGNS)}")
    out: dict[str, dict[str, Any]] = {}
    for design in designs:
        if on_design is not None:
            on_design(design)
        if design == SINGLE:
            out[design] = measure_single_process(path)
        else:
            sim = simulate(path, SERVERLESS[design], progress=progress)
            out[design] = {"report": sim.report, "usage": sim.usage,
                           "failed": sim.failed_segments,
                           "config": SERVERLESS[design].to_dict()}
    return out


def runs_from_file(path: Path) -> dict[str, dict[str, Any]]:
    """Runs saved by ``avmon benchmark --json`` or ``avmon simulate --json``.

    Raises ConfigError if the file is neither."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read usage ({exc.strerror})") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, dict) and "designs" in data:
        return {name: {"report": {"duration_s": d["stream_s"], "defects": d["defects"]},
                       "usage": d["usage"], "config": d.get("config", {})}
                for name, d in data["designs"].items()}
    if isinstance(data, dict) and "usage" in data and "duration_s" in data:
        config = data.get("pipeline") or {}
        name = TUNED if config.get("workflow_type") == "EXPRESS" else ORIGINAL
        return {name: {"report": data, "usage": data["usage"], "config": config}}
    raise ConfigError(f"{path}: not the output of 'avmon benchmark --json' or"
                      " 'avmon simulate --json'")


def compare(runs: Mapping[str, Mapping[str, Any]], prices: PriceTable,
            quotas: Mapping[str, Any], quotas_name: str, expected_streams: int = 3000,
            task: TaskSize | None = None) -> dict[str, Any]:
    """Cost per stream-hour with line items, sustained streams and ratios, for every run."""
    designs: dict[str, Any] = {}
    for design, run in runs.items():
        usage = run["usage"]
        if design == SINGLE:
            items, per_task = single_process_cost(usage["cpu_per_stream_second"],
                                                  usage["peak_mb"], prices, task)
            wall = scaling_wall(Demand(workflow_type="NONE"), quotas, expected_streams)
            extra = {"streams_per_task": per_task, "task": (task or TaskSize()).__dict__}
        else:
            config = run.get("config", {})
            workflow = config.get("workflow_type", "STANDARD")
            stream_s = float(run["report"]["duration_s"])
            items = serverless_cost(usage, stream_s, prices, workflow,
                                    float(config.get("frames_expire_days", 1)))
            demand = Demand.from_usage(usage, stream_s, workflow)
            wall = scaling_wall(demand, quotas, expected_streams)
            extra = {"demand_per_stream_second": demand.to_dict()}
        designs[design] = {
            "usd_per_stream_hour": float(f"{total(items):.6g}"),
            "line_items": {i.name: i.to_dict() for i in items},
            "sustained_streams": round(wall.sustained_streams, 1),
            "fraction_of_expected": round(wall.fraction_of_expected, 4),
            "binding_quota": wall.binding_quota,
            "quota_capacities": {k: round(v, 1) for k, v in wall.capacities.items()},
            "timeline": wall.timeline,
            "defects": run["report"]["defects"],
            "stream_s": float(run["report"]["duration_s"]),
            "config": run.get("config", {}),
            "usage": usage,
            **extra,
        }
    base = designs.get(ORIGINAL)
    for d in designs.values():
        if base and base["usd_per_stream_hour"] > 0:
            ratio = d["usd_per_stream_hour"] / base["usd_per_stream_hour"]
            d["cost_ratio_to_original"] = float(f"{ratio:.6g}")
    return {"expected_streams": expected_streams, "quotas": quotas_name,
            "region": prices.region, "defects_identical": _identical(designs),
            "designs": designs}


AV_SYNC_TOLERANCE_S = 0.5  # a cue on a segment's first frame can be lost (README)


def _identical(designs: Mapping[str, Any]) -> bool:
    """Same defects in every design: same detectors and counts; intervals within 0.05 s, or
    within AV_SYNC_TOLERANCE_S for av_sync, whose cues depend on segment boundaries."""
    lists = [sorted(d["defects"], key=lambda x: (x["detector"], x["start_s"]))
             for d in designs.values()]
    for other in lists[1:]:
        if [x["detector"] for x in other] != [x["detector"] for x in lists[0]]:
            return False
        for a, b in zip(lists[0], other, strict=True):
            tol = AV_SYNC_TOLERANCE_S if a["detector"] == "av_sync" else 0.05
            if abs(a["start_s"] - b["start_s"]) > tol or abs(a["end_s"] - b["end_s"]) > tol:
                return False
    return True


def fleet(result: Mapping[str, Any], streams: int, hours: float) -> dict[str, float]:
    return {name: round(d["usd_per_stream_hour"] * streams * hours, 2)
            for name, d in result["designs"].items()}

