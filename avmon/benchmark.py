"""Runs every design on one input and compares them: the benchmark's workflow.

The designs themselves, their costs and quotas are models in ``avmon.economics``; running the
serverless ones needs the local cloud (moto), so the run lives here, outside the core, and is
what ``avmon benchmark``, ``cost`` and ``limits`` call.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avmon.economics.designs import DESIGNS, SERVERLESS, SINGLE, compare, runs_from_file
from avmon.economics.prices import PriceTable
from avmon.economics.quotas import load_quotas
from avmon.errors import AvmonError, ConfigError


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


@dataclass(frozen=True)
class ComparisonRequest:
    """What to compare: a media file to run the designs on, or a saved run to re-price."""

    input: Path | None = None
    usage: Path | None = None
    designs: Sequence[str] = DESIGNS
    region: str = "us-east-1"
    prices: Path | None = None
    quotas: str = "2023"
    expected_streams: int = 3000


def comparison(req: ComparisonRequest,
               on_design: Callable[[str], None] | None = None) -> tuple[dict[str, Any], str]:
    """The comparison of ``req`` and the name of its source. Raises ConfigError for bad
    settings, MediaOpenError for an input that is not media."""
    from avmon.media.decode import probe

    if req.expected_streams <= 0:
        raise ConfigError("--expected-streams must be at least 1")
    prices = PriceTable.load(req.region, req.prices)
    quotas = load_quotas(req.quotas)
    if req.usage is not None:
        runs = {k: v for k, v in runs_from_file(req.usage).items() if k in req.designs}
        if not runs:
            raise ConfigError(f"{req.usage}: has none of the designs {', '.join(req.designs)}")
        source = str(req.usage)
    elif req.input is not None:
        probe(req.input)
        runs = run_designs(req.input, req.designs, on_design=on_design)
        source = str(req.input)
    else:
        raise ConfigError("give an input file or --usage FILE")
    return compare(runs, prices, quotas, req.quotas, req.expected_streams), source
