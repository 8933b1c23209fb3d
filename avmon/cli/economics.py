"""``avmon cost``, ``limits`` and ``benchmark``: what each design costs and where it stops."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from avmon.cli.common import MAX_STREAMS, Subparsers, hours, names, streams, write_json
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
    p.add_argument("--expected-streams", type=streams, default=3000,
                   help=f"the load to sustain (default 3000, at most {MAX_STREAMS:,})")
    p.add_argument("--json", action="store_true")


def register(sub: Subparsers) -> None:
    p = sub.add_parser("cost", help="dollars per stream-hour per design, line by line")
    _design_inputs(p)
    p.add_argument("--streams", type=streams, default=1000, help="fleet size for totals")
    p.add_argument("--hours", type=hours, default=730.0, help="hours for totals (a month)")
    p.set_defaults(handler=cost)

    p = sub.add_parser("limits", help="the scaling wall: sustained streams, binding quota")
    _design_inputs(p)
    p.set_defaults(handler=limits)

    p = sub.add_parser("benchmark", help="every design on one input: one comparison table")
    _design_inputs(p)
    p.add_argument("--report", type=Path, help="write an HTML page with charts to this folder")
    p.add_argument("--profiles", default="360p,720p,1080p50",
                   help="resolutions to size the single process at (comma-separated, or"
                        " 'none'); their clips are made once and kept in --cache")
    p.add_argument("--cache", type=Path, default=Path(".avmon-cache"))
    p.add_argument("--service-load", type=Path,
                   help="size the single process from avmon serve measured with live sources"
                        " (the serve.json of benchmarks/serve.py) instead of --profiles")
    p.set_defaults(handler=benchmark)


def _comparison(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from tqdm import tqdm

    from avmon.benchmark import ComparisonRequest, comparison
    from avmon.economics.designs import DESIGNS

    unknown = sorted(set(args.design or ()) - set(DESIGNS))
    if unknown:
        raise ConfigError(f"--design {','.join(unknown)}: unknown design;"
                          f" known: {', '.join(DESIGNS)}")
    if getattr(args, "report", None) is not None:
        from avmon.validation import writable_dir

        writable_dir(args.report, "the report")
    req = ComparisonRequest(input=args.input, usage=args.usage,
                            designs=args.design or list(DESIGNS), region=args.region,
                            prices=args.prices, quotas=args.quotas,
                            expected_streams=args.expected_streams,
                            profiles=_profiles(getattr(args, "profiles", "none")),
                            cache=getattr(args, "cache", Path(".avmon-cache")),
                            service_load=getattr(args, "service_load", None))
    bar = tqdm(total=len(req.designs), desc="designs", unit="design", disable=None, leave=False)

    def next_design(name: str) -> None:
        bar.set_postfix_str(name)
        if bar.disable:  # no terminal: say it in plain lines
            sys.stderr.write(f"avmon: running {name} ...\n")

    try:
        return comparison(req, on_design=next_design)
    finally:
        bar.close()


def _profiles(text: str) -> list[str]:
    return [] if text.strip().lower() in ("", "none") else names(text)


def format_comparison(result: dict[str, Any]) -> str:
    """The designs side by side: cost, ratio, sustained streams, binding quota; then the Lambda
    model's spread and the single process's sizing per resolution."""
    from avmon.economics.quotas import describe_binding

    lines = [f"{'design':<21}{'USD/stream-h':>13}{'x original':>11}{'sustained':>10}"
             f"{'of expected':>12}  binding quota (streams it alone sustains)"]
    for name, d in result["designs"].items():
        lines.append(f"{name:<21}{d['usd_per_stream_hour']:>13.5f}"
                     f"{d.get('cost_ratio_to_original', 1.0):>11.4f}"
                     f"{d['sustained_streams']:>10.0f}{d['fraction_of_expected']:>12.1%}"
                     f"  {describe_binding(d['binding_quota'])}")
    lines.append(f"(expected load {result['expected_streams']} streams, {result['quotas']}"
                 f" quotas, {result['region']} prices checked"
                 f" {result.get('prices_checked', '?')}; same defects in every design:"
                 f" {'yes' if result['defects_identical'] else 'NO'}, av_sync within 0.5 s)")
    for name, d in result["designs"].items():
        model = d.get("lambda_model")
        if model:
            sec = model["lambda_seconds"]
            lines.append(f"{name}: Lambda time modelled, {sec[sec.get('estimate', 'median')]:.2f}"
                         f" s for the stream ({sec['min']:.2f}-{sec['max']:.2f} over"
                         f" {len(model['calibration']['decode'])} calibration passes)")
    sizing = result["designs"].get("single-process", {}).get("sizing")
    if sizing:
        lines.append("single process, streams one Fargate task holds"
                     " (c: CPU-bound, m: memory-bound):")
        tasks = list(next(iter(sizing.values()))["tasks"])
        lines.append(f"  {'profile':<9}{'CPU s/stream-s':>15}{'MB/stream':>10}"
                     + "".join(f"{t.replace(' vCPU / ', '/'):>12}" for t in tasks))
        for prof, p in sizing.items():
            u = p["usage"]
            lines.append(f"  {prof:<9}{u['cpu_per_stream_second']:>15.4f}{u['peak_mb']:>10.1f}"
                         + "".join(f"{str(c['streams']) + c['bound'][0]:>12}"
                                   for c in p["tasks"].values()))
    return "\n".join(lines)


def cost(args: argparse.Namespace) -> int:
    from avmon.economics.designs import fleet

    result, _ = _comparison(args)
    totals = fleet(result, args.streams, args.hours)
    if args.json:
        write_json({**result, "fleet": {"streams": args.streams, "hours": args.hours,
                                        "usd": totals}})
        return 0
    for name, d in result["designs"].items():
        print(f"{name}: ${d['usd_per_stream_hour']:.5f} per stream-hour,"
              f" ${totals[name]:,.2f} for {args.streams} streams x {args.hours:g} h")
        for item, v in sorted(d["line_items"].items(), key=lambda kv: -kv[1]["usd"]):
            print(f"  {item:<34}{v['quantity']:>14,.2f} {v['unit'][:28]:<28} ${v['usd']:.5f}")
        if "streams_per_task" in d:
            t = d["task"]
            print(f"  (one Fargate task of {t['vcpu']} vCPU / {t['memory_gb']} GB holds"
                  f" {d['streams_per_task']} streams: measured"
                  f" {d['usage']['cpu_per_stream_second']:.4f} CPU-s per stream-second,"
                  f" {d['usage']['peak_mb']:.0f} MB per stream"
                  f" + {d['usage'].get('base_mb', 0):.0f} MB per process)")
    return 0


def limits(args: argparse.Namespace) -> int:
    from avmon.economics.quotas import describe_binding

    result, _ = _comparison(args)
    if args.json:
        write_json(result)
        return 0
    for name, d in result["designs"].items():
        caps = ", ".join(f"{k} {v:,.0f}" for k, v in d["quota_capacities"].items()) or "none"
        print(f"{name}: sustains {d['sustained_streams']:,.0f} of"
              f" {result['expected_streams']} streams ({d['fraction_of_expected']:.1%});"
              f" binds first: {describe_binding(d['binding_quota'])}")
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
    """Raises DesignsDisagreeError (after printing the comparison) when the designs found
    different defects: then their figures are not comparable."""
    from avmon.economics.designs import DesignsDisagreeError

    result, source = _comparison(args)
    if args.report:
        from avmon.economics.report import write_report
        page = write_report(result, source, args.report)
        sys.stderr.write(f"avmon: report written to {page}\n")
    if args.json:
        write_json(result)
    else:
        print(format_comparison(result))
    if result["defect_differences"]:
        raise DesignsDisagreeError("the designs found different defects: "
                                   + "; ".join(result["defect_differences"]))
    return 0
