"""``avmon cost``, ``limits`` and ``benchmark``: what each design costs and where it stops."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from avmon.cli.common import Subparsers, names, write_json
from avmon.errors import ConfigError


def _design_inputs(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("input", nargs="?", type=Path, help="a media file: run the designs on it")
    g.add_argument("--usage", type=Path, help="saved 'benchmark --json' or 'simulate --json'")
    p.add_argument("--design", type=names, help="comma-separated subset of designs")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--prices", type=Path, help="a price table of the same shape as"
                   " avmon/economics/data/prices.json")
    p.add_argument("--quotas", default="2023", help="2023, current or a JSON file")
    p.add_argument("--expected-streams", type=int, default=3000)
    p.add_argument("--json", action="store_true")


def register(sub: Subparsers) -> None:
    p = sub.add_parser("cost", help="dollars per stream-hour per design, line by line")
    _design_inputs(p)
    p.add_argument("--streams", type=int, default=1000, help="fleet size for totals")
    p.add_argument("--hours", type=float, default=730.0, help="hours for totals (a month)")
    p.set_defaults(handler=cost)

    p = sub.add_parser("limits", help="the scaling wall: sustained streams, binding quota")
    _design_inputs(p)
    p.set_defaults(handler=limits)

    p = sub.add_parser("benchmark", help="every design on one input: one comparison table")
    _design_inputs(p)
    p.add_argument("--report", type=Path, help="write an HTML page with charts to this folder")
    p.set_defaults(handler=benchmark)


def _comparison(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from tqdm import tqdm

    from avmon.benchmark import ComparisonRequest, comparison
    from avmon.economics.designs import DESIGNS

    req = ComparisonRequest(input=args.input, usage=args.usage,
                            designs=args.design or list(DESIGNS), region=args.region,
                            prices=args.prices, quotas=args.quotas,
                            expected_streams=args.expected_streams)
    bar = tqdm(total=len(req.designs), desc="designs", unit="design", disable=None, leave=False)

    def next_design(name: str) -> None:
        bar.set_postfix_str(name)
        if bar.disable:  # no terminal: say it in plain lines
            sys.stderr.write(f"avmon: running {name} ...\n")

    try:
        return comparison(req, on_design=next_design)
    finally:
        bar.close()


def format_comparison(result: dict[str, Any]) -> str:
    """The designs side by side: cost, ratio, sustained streams, binding quota."""
    lines = [f"{'design':<21}{'USD/stream-h':>13}{'x original':>11}{'sustained':>10}"
             f"{'of expected':>12}  binding quota"]
    for name, d in result["designs"].items():
        lines.append(f"{name:<21}{d['usd_per_stream_hour']:>13.5f}"
                     f"{d.get('cost_ratio_to_original', 1.0):>11.4f}"
                     f"{d['sustained_streams']:>10.0f}{d['fraction_of_expected']:>12.1%}"
                     f"  {d['binding_quota']}")
    lines.append(f"(expected load {result['expected_streams']} streams, {result['quotas']}"
                 f" quotas, {result['region']} prices; same defects in every design:"
                 f" {'yes' if result['defects_identical'] else 'NO'}, av_sync within 0.5 s)")
    return "\n".join(lines)


def cost(args: argparse.Namespace) -> int:
    from avmon.economics.designs import fleet

    if args.streams <= 0 or args.hours <= 0:
        raise ConfigError("--streams and --hours must be positive")
    result, _ = _comparison(args)
    totals = fleet(result, args.streams, args.hours)
    if args.json:
        write_json({**result, "fleet": {"streams": args.streams, "hours": args.hours,
                                        "usd": totals}})
        return 0
    for name, d in result["designs"].items():
        print(f"{name}: ${d['usd_per_stream_hour']:.5f} per stream-hour,"
              f" ${totals[name]:,.2f} for {args.streams} streams x {args.hours:g} h")
        for item, v in d["line_items"].items():
            print(f"  {item:<34}{v['quantity']:>14,.2f} {v['unit'][:28]:<28} ${v['usd']:.5f}")
        if "streams_per_task" in d:
            t = d["task"]
            print(f"  (one Fargate task of {t['vcpu']} vCPU / {t['memory_gb']} GB holds"
                  f" {d['streams_per_task']} streams: measured"
                  f" {d['usage']['cpu_per_stream_second']:.4f} CPU-s per stream-second,"
                  f" {d['usage']['peak_mb']:.0f} MB peak)")
    return 0


def limits(args: argparse.Namespace) -> int:
    result, _ = _comparison(args)
    if args.json:
        write_json(result)
        return 0
    for name, d in result["designs"].items():
        caps = ", ".join(f"{k} {v:,.0f}" for k, v in d["quota_capacities"].items()) or "none"
        print(f"{name}: sustains {d['sustained_streams']:,.0f} of"
              f" {result['expected_streams']} streams ({d['fraction_of_expected']:.1%});"
              f" binds first: {d['binding_quota']}")
        print(f"  streams each quota alone sustains: {caps}")
        if "demand_per_stream_second" in d:
            dm = d["demand_per_stream_second"]
            print(f"  per stream-second: {dm['transitions']} transitions, {dm['executions']}"
                  f" executions, {dm['invocations']} invocations, {dm['concurrency']}"
                  f" concurrent Lambdas, {dm['s3_put']} PUT, {dm['s3_get']} GET")
        if d["timeline"]:
            last = d["timeline"][-1]
            print(f"  at full load: {last['served']:,.0f} streams served, backlog"
                  f" {last['backlog']:,.0f}, delay {last['delay_s']:,.0f} s")
    return 0


def benchmark(args: argparse.Namespace) -> int:
    result, source = _comparison(args)
    if args.report:
        from avmon.economics.report import write_report
        page = write_report(result, source, args.report)
        sys.stderr.write(f"avmon: report written to {page}\n")
    if args.json:
        write_json(result)
    else:
        print(format_comparison(result))
    return 0
