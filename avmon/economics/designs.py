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

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avmon.documents import read_document
from avmon.economics.prices import PriceTable, TaskSize, serverless_cost, single_process_cost, total
from avmon.economics.quotas import Demand, scaling_wall
from avmon.errors import ConfigError
from avmon.evaluation.matching import match, same_defect_tolerance
from avmon.model import Defect
from avmon.pipeline.config import PipelineConfig
from avmon.usage import Usage

ORIGINAL, TUNED, SINGLE = "serverless-original", "serverless-tuned", "single-process"
DESIGNS = (ORIGINAL, TUNED, SINGLE)
SERVERLESS: dict[str, PipelineConfig] = {
    ORIGINAL: PipelineConfig(),
    TUNED: PipelineConfig(frame_layout="object-per-segment", workflow_type="EXPRESS",
                          segment_seconds=10.0, audio_object_seconds=10.0),
}


def runs_from_file(path: Path) -> dict[str, dict[str, Any]]:
    """Runs saved by ``avmon benchmark --json`` or ``avmon simulate --json``.

    Raises ConfigError if the file is neither."""
    data = read_document(path, "usage")
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
            metered = Usage.from_dict(usage, f"{design} usage")
            items = serverless_cost(metered, stream_s, prices, workflow,
                                    float(config.get("frames_expire_days", 1)))
            demand = Demand.from_usage(metered, stream_s, workflow)
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


def _identical(designs: Mapping[str, Any]) -> bool:
    """Same defects in every design: each pairs with one in the first design, onsets and ends
    within ``same_defect_tolerance`` (50 ms; 0.5 s for av_sync, whose cues depend on segment
    boundaries)."""
    lists = [[Defect.from_dict(x) for x in d["defects"]] for d in designs.values()]
    return all(match(lists[0], other, same_defect_tolerance, ends_too=True).exact
               for other in lists[1:])


def fleet(result: Mapping[str, Any], streams: int, hours: float) -> dict[str, float]:
    return {name: round(d["usd_per_stream_hour"] * streams * hours, 2)
            for name, d in result["designs"].items()}

