"""``avmon serve`` under load: CPU and memory per stream, alert latency, streams per task.

    .venv/bin/python benchmarks/serve.py [--plan 360p:16,720p:4,1080p50:2] [--duration 20]
                                         [--out bench-out]

For each ``PROFILE:N`` of the plan: a labelled clip (``avmon synth``, freeze, black and silence
injected) is sent live by ``ffmpeg -re`` over UDP on loopback, once to a serve process watching
1 stream and once to one watching N; CPU time (``/proc``) over the window when every stream is
live, peak RSS, and each injected defect's open/close latency. The two runs split the process's
fixed cost from the per-stream cost; from those, streams per vCPU and per Fargate task size.
Writes ``OUT/serve.json``. Never run beside another benchmark: the machine has 2 cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from avmon.economics.service_load import PROFILES, run_load  # noqa: E402
from benchmarks import run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plan", default="360p:16,720p:4,1080p50:2")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out")
    args = ap.parse_args()
    plan = []
    for item in args.plan.split(","):
        name, _, n = item.partition(":")
        if name not in PROFILES or not n.isdigit() or int(n) < 2:
            ap.error(f"bad plan item {item!r}: PROFILE:N with N >= 2, PROFILE in"
                     f" {', '.join(PROFILES)}")
        plan.append((name, int(n)))
    args.out.mkdir(parents=True, exist_ok=True)
    result = run_load(args.out, plan, args.duration, log=lambda m: print(m, file=sys.stderr))
    (args.out / "serve.json").write_text(json.dumps(result, indent=1))
    print(format_result(result))
    return 0


def format_result(result: dict) -> str:
    lines = [f"{'profile':8} {'N':>3} {'CPU s/stream-s':>14} {'MB/stream':>9} {'base MB':>7}"
             f" {'streams/vCPU':>12} {'open lat p50/max s':>18} {'close max s':>11}"
             f" {'missed':>6} {'load':>5}"]
    for name, p in result["profiles"].items():
        many = p["runs"][1]
        f = p["fit"]
        lat = many["latencies_open_s"]
        lines.append(
            f"{name:8} {many['streams']:>3} {f['cpu_per_stream']:>14.4f}"
            f" {f['mb_per_stream']:>9.1f} {f['base_mb']:>7.0f} {p['streams_per_vcpu']:>12.1f}"
            f" {statistics.median(lat) if lat else float('nan'):>8.2f}/"
            f"{max(lat, default=float('nan')):<9.2f}"
            f" {max(many['latencies_close_s'], default=float('nan')):>11.2f}"
            f" {len(many['missed']):>6} {many.get('load_avg') or float('nan'):>5.1f}")
    sizes = list(next(iter(result["profiles"].values()))["streams_per_task"])
    lines.append("")
    lines.append("streams per Fargate task (70% CPU target, 10% memory reserve):")
    lines.append(f"{'profile':8} " + " ".join(f"{s:>16}" for s in sizes))
    for name, p in result["profiles"].items():
        lines.append(f"{name:8} " + " ".join(f"{p['streams_per_task'][s]:>16}" for s in sizes))
    return "\n".join(lines)


if __name__ == "__main__":
    run(main)
