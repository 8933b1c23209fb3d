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

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avmon.documents import read_document
from avmon.economics.prices import PriceTable, TaskSize, serverless_cost, single_process_cost, total
from avmon.economics.quotas import Demand, scaling_wall
from avmon.errors import AvmonError, ConfigError
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


class DesignsDisagreeError(AvmonError):
    """The designs did not find the same defects on the same input: their costs and walls are
    not comparable until they do."""

    exit_code = 4


def runs_from_file(path: Path) -> dict[str, dict[str, Any]]:
    """Runs saved by ``avmon benchmark --json`` or ``avmon simulate --json``.

    Raises ConfigError if the file is neither."""
    from avmon.usage import SavedBenchmark, SavedSimulation, SingleProcessUsage
    from avmon.validation import check

    data = read_document(path, "usage")
    where = str(path)
    if isinstance(data, dict) and "designs" in data:
        saved: SavedBenchmark = check(SavedBenchmark, data, where)
        for name, d in saved.designs.items():  # each design's usage has its own shape
            model = SingleProcessUsage if name == SINGLE else Usage
            check(model, d.usage, where, f"designs.{name}.usage")
        raw = data["designs"]
        return {name: {"report": {"duration_s": d.stream_s,
                                  "defects": [x.model_dump() for x in d.defects]},
                       "usage": d.usage, "config": d.config,
                       **{k: raw[name][k] for k in ("lambda_model", "sizing") if k in raw[name]}}
                for name, d in saved.designs.items()}
    if isinstance(data, dict) and "usage" in data and "duration_s" in data:
        sim: SavedSimulation = check(SavedSimulation, data, where)
        config = sim.pipeline or {}
        name = TUNED if config.get("workflow_type") == "EXPRESS" else ORIGINAL
        return {name: {"report": {"duration_s": sim.duration_s,
                                  "defects": [x.model_dump() for x in sim.defects]},
                       "usage": data["usage"], "config": config}}
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
                                                  usage["peak_mb"], prices, task,
                                                  float(usage.get("base_mb", 0.0)))
            wall = scaling_wall(Demand(workflow_type="NONE"), quotas, expected_streams)
            extra = {"streams_per_task": per_task, "task": (task or TaskSize()).__dict__,
                     **({"sizing": run["sizing"]} if "sizing" in run else {})}
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
            if "lambda_model" in run:
                extra["lambda_model"] = run["lambda_model"]
                _add_range(wall.binding_quota, run["lambda_model"], metered)
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
    differences = disagreements(designs)
    return {"expected_streams": expected_streams, "quotas": quotas_name,
            "quota_set": {k: quotas[k] for k in ("description", "source", "checked")
                          if k in quotas},
            "region": prices.region, "prices_checked": _checked(prices),
            "defects_identical": not differences, "defect_differences": differences,
            "designs": designs}


def _checked(prices: PriceTable) -> str:
    """The date the prices were checked (the latest of the lines used)."""
    return max((p.checked for p in prices.items.values()), default="")


def _add_range(binding: dict[str, Any], model: Mapping[str, Any], usage: Usage) -> None:
    """Where Lambda concurrency binds, the streams it allows at the slowest and the fastest
    repeat of the calibration (it scales inversely with Lambda seconds)."""
    seconds = model.get("lambda_seconds", {})
    used = seconds.get(seconds.get("estimate", "median"))
    if binding.get("quota") != "lambda_concurrency" or not used:
        return
    streams = float(binding["streams"])
    binding["streams_range"] = [math.floor(streams * used / seconds["max"]),
                                math.floor(streams * used / seconds["min"])]


def disagreements(designs: Mapping[str, Any]) -> list[str]:
    """Where designs found different defects, one line each naming the detector and why (empty
    when they agree). The same defect: same detector, onsets and ends within
    ``same_defect_tolerance`` (50 ms; 0.5 s for av_sync, whose cues depend on segment
    boundaries). Compared against the single process when it ran, else the first design."""
    if len(designs) < 2:
        return []
    ref = SINGLE if SINGLE in designs else next(iter(designs))
    expected = [Defect.from_dict(x) for x in designs[ref]["defects"]]
    out = []
    for name, d in designs.items():
        if name == ref:
            continue
        found = [Defect.from_dict(x) for x in d["defects"]]
        m = match(expected, found, same_defect_tolerance, ends_too=True)
        cited = []
        for e in m.missed:
            near = [d for d in m.extra if d.detector == e.detector]
            nearest = min(near, key=lambda d: abs(d.start_s - e.start_s)) if near else None
            cited.append(nearest)
            out.append(f"{name}: {e.detector} {e.start_s:.2f}-{e.end_s:.2f} s (found by {ref})"
                       f" {_why(e, nearest)}")
        for x in m.extra:
            if x in cited:
                continue
            out.append(f"{name}: {x.detector} {x.start_s:.2f}-{x.end_s:.2f} s found only by"
                       f" {name}, not by {ref}")
    return out


def _why(e: Defect, d: Defect | None) -> str:
    if d is None:
        return "is missing"
    return (f"is {d.start_s:.2f}-{d.end_s:.2f} s: onsets {abs(d.start_s - e.start_s):.2f} s and"
            f" ends {abs(d.end_s - e.end_s):.2f} s apart, beyond the"
            f" {same_defect_tolerance(e.detector):g} s tolerance")


def fleet(result: Mapping[str, Any], streams: int, hours: float) -> dict[str, float]:
    return {name: round(d["usd_per_stream_hour"] * streams * hours, 2)
            for name, d in result["designs"].items()}

