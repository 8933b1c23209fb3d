"""``avmon simulate`` (the serverless pipeline on moto) and ``avmon report`` (a deployed
stream's report)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from avmon.cli.common import (
    Subparsers,
    bucket,
    format_report,
    number,
    segments_progress,
    stream_name,
    write_json,
)
from avmon.errors import EXIT_INCOMPLETE
from avmon.localcloud.limits import DEFAULT_MAX_EXECUTIONS

positive = number(float, gt=0, le=1_000_000)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("simulate", help="run the serverless pipeline locally, on moto")
    p.add_argument("input", nargs="+",
                   help="media file(s), several run at once; or one HLS playlist (a path or an"
                        " http(s) URL) fed segment by segment as a packager delivers it")
    p.add_argument("--live", action="store_true",
                   help="a playlist's segments are uploaded at the pace of their durations"
                        " (default: as fast as possible)")
    p.add_argument("--transition-bucket", type=positive,
                   help="enforce a StateTransition token bucket of this many tokens")
    p.add_argument("--transition-refill", type=positive, default=10.0,
                   help="... refilled at this many per second (default 10)")
    p.add_argument("--json", action="store_true", help="the report plus measured usage")
    p.add_argument("--segment-seconds", type=number(float, ge=0.5, le=60),
                   help="segment length, 0.5..60 (default 2)")
    p.add_argument("--frames-per-invocation", type=number(int, ge=0, le=100_000),
                   help="frames per detector invocation (default 0: the whole segment)")
    p.add_argument("--frame-layout", choices=["object-per-frame", "object-per-segment"])
    p.add_argument("--workflow", choices=["standard", "express"])
    p.add_argument("--pipeline-config", type=Path, help="JSON file of PipelineConfig settings")
    p.add_argument("--max-executions", type=number(int, ge=1, le=1000),
                   help="workflow executions evaluated at once, the rest wait (default"
                        f" {DEFAULT_MAX_EXECUTIONS})")
    p.set_defaults(handler=simulate)

    p = sub.add_parser("report", help="a deployed stream's report, from its segment reports in S3")
    p.add_argument("--bucket", required=True, type=bucket, help="the stack's BucketName output")
    p.add_argument("--stream", required=True, type=stream_name,
                   help="the stream: its object key under ingest/ (a live stream: its folder)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=report)


def pipeline_config(args: argparse.Namespace) -> Any:
    """The PipelineConfig from ``--pipeline-config`` with the flags laid over it."""
    from avmon.pipeline.config import PipelineConfig

    base = PipelineConfig.load(args.pipeline_config) if args.pipeline_config else PipelineConfig()
    changes = {k: v for k, v in {
        "segment_seconds": args.segment_seconds,
        "frames_per_invocation": args.frames_per_invocation,
        "frame_layout": args.frame_layout,
        "workflow_type": args.workflow.upper() if args.workflow else None,
    }.items() if v is not None}
    return PipelineConfig.from_mapping({**base.to_dict(), **changes},
                                       str(args.pipeline_config or "pipeline settings"))


def simulate(args: argparse.Namespace) -> int:
    from avmon.errors import ConfigError
    from avmon.localcloud.simulate import is_playlist
    from avmon.media.decode import probe

    config = pipeline_config(args)
    if any(is_playlist(i) for i in args.input):
        if len(args.input) > 1 or args.transition_bucket is not None:
            raise ConfigError("simulate: an HLS playlist runs alone (one input, no"
                              " --transition-bucket)")
        return _simulate_playlist(args, config)
    if args.live:
        raise ConfigError("simulate: --live paces an HLS playlist's segments; the input is a"
                          " media file")
    args.input = [Path(i) for i in args.input]
    for path in args.input:  # bad input fails here, before the deployment is announced
        probe(path)
    if len(args.input) > 1 or args.transition_bucket is not None:
        return _simulate_many(args, config)
    result = run_simulation(args.input[0], config, args.max_executions)
    _print_simulation(args, result)
    return _failures(result.failed_segments)


def _print_simulation(args: argparse.Namespace, result: Any) -> None:
    if args.json:
        write_json(result.to_dict())
        return
    print(format_report(result.report))
    if result.playlist is not None:
        p = result.playlist
        print(f"\nplaylist  {p['location']} -> stream {p['stream']} ({p['folder']}):"
              f" {p['uploaded']} segments uploaded, {len(p['unreadable'])} unreadable"
              + (", ended (EXT-X-ENDLIST)" if p["ended"] else f", stopped: {p['stopped']}"))
        for s in p["unreadable"]:
            print(f"  unreadable: media sequence {s['media_sequence']} {s['segment']}:"
                  f" {s['reason']}")
    print(f"\nalerts    {len(result.alerts)} published to the topic")
    for a in result.alerts:
        if "event" in a:
            from avmon.events import DefectEvent
            print(f"  {DefectEvent.from_dict(a).describe()}")
        else:
            print(f"  {a['subject']}")
    print()
    print(format_usage(result.usage))
    print(format_local(result.local))


def _simulate_playlist(args: argparse.Namespace, config: Any) -> int:
    from avmon.localcloud.simulate import read_playlist, simulate_playlist

    read_playlist(args.input[0])  # bad input fails here, before the deployment is announced
    with segments_progress() as tick:
        result = simulate_playlist(args.input[0], config, live=args.live, progress=tick)
    _print_simulation(args, result)
    return _failures(result.failed_segments)


def format_local(local: dict[str, Any]) -> str:
    """How the simulation held the run (not usage: nothing here is billed)."""
    line = (f"simulation        at most {local['max_executions']} executions at once"
            f" (peak {local['peak_executions']})")
    expired = local.get("expired")
    if expired:
        line += (f"; {expired['objects']:,} working objects deleted once aggregated"
                 " (the lifecycle rule, emulated early)")
    return line


def _failures(failed: list[dict[str, Any]]) -> int:
    """Lists what failed on stderr, one line each (segments a Ctrl-C left unanalysed in one
    line); the exit code says whether anything did."""
    interrupted = [f for f in failed if f.get("status") == "interrupted"]
    if interrupted:
        sys.stderr.write(f"avmon: error: interrupted: {len(interrupted)} segment(s) not"
                         " analysed (their executions never ran)\n")
    for f in failed:
        if f.get("status") == "interrupted":
            continue
        where = f.get("execution") or f"segment {f.get('segment')} {f.get('detector')}"
        if "error" in f:
            where += f" {f.get('status', 'failed')}: {f.get('error')}: {f.get('cause')}"
        sys.stderr.write(f"avmon: error: {where}\n")
    if failed:
        sys.stderr.write(f"avmon: error: analysis incomplete: {len(failed)} failure(s);"
                         " the report covers only what was analysed\n")
        return EXIT_INCOMPLETE
    return 0


def _simulate_many(args: argparse.Namespace, config: Any) -> int:
    from avmon.localcloud.simulate import simulate_many
    from avmon.localcloud.throttle import TransitionThrottle

    throttle = None
    if args.transition_bucket is not None:
        throttle = TransitionThrottle(args.transition_bucket, args.transition_refill)
    with segments_progress() as tick:
        result = simulate_many(args.input, config, throttle, progress=tick,
                               max_executions=args.max_executions or DEFAULT_MAX_EXECUTIONS)
    failed = [f if "execution" in f else
              {**f, "execution": f"{Path(s['source']).name} segment {f.get('segment')}"
                                 f" {f.get('detector')}"}
              for s in result["streams"] for f in s.get("failures", [])]
    if args.json:
        write_json(result)
        return _failures(failed)
    print(f"{'stream':<28}{'segments':>9}{'failed':>7}{'defects':>8}"
          f"{'mean exec s':>12}{'max exec s':>11}")
    for s in result["streams"]:
        print(f"{Path(s['source']).name:<28}{s['segments']:>9}{s['failed']:>7}"
              f"{len(s['defects']):>8}{s['execution_s']['mean']:>12.2f}"
              f"{s['execution_s']['max']:>11.2f}")
    t = result["throttle"]
    if t:
        print(f"\nStateTransition bucket {t['bucket']:g} tokens, refill {t['refill_per_s']:g}/s:"
              f" {t['transitions']} transitions, {t['delayed']} delayed,"
              f" {t['waited_s']:.1f} s spent waiting for tokens")
    return _failures(failed)


def run_simulation(path: Path, config: Any, max_executions: int | None = None) -> Any:
    """The simulation with a progress bar on stderr (segments done, executions running)."""
    from avmon.localcloud.simulate import simulate

    with segments_progress() as tick:
        return simulate(path, config, progress=tick,
                        max_executions=max_executions or DEFAULT_MAX_EXECUTIONS)


def format_usage(record: dict[str, Any]) -> str:
    """What a simulated run used, as text."""
    from avmon.usage import Usage

    u = Usage.from_dict(record)
    s3 = u.requests.get("s3", {})
    lines = [
        f"executions        {u.executions}",
        f"state transitions {u.state_transitions}",
        f"S3 requests       {u.calls('s3')}: " + ", ".join(f"{k} {v}" for k, v in s3.items()),
        f"S3 bytes          put {u.bytes.get('s3_put', 0):,}, get {u.bytes.get('s3_get', 0):,}",
        f"SNS publishes     {u.calls('sns', 'Publish')}",
        f"Lambda            {u.invocations} invocations, {u.gb_seconds:.2f} GB-s",
    ]
    lines += [f"  {n:<24}{f.invocations:>5} x {f.memory_mb} MB, {f.billed_ms:>7} ms billed"
              for n, f in u.functions.items()]
    return "\n".join(lines)


def report(args: argparse.Namespace) -> int:
    from avmon.pipeline.ports import S3Store
    from avmon.pipeline.status import stream_status

    status = stream_status(S3Store(args.bucket), args.stream, f"s3://{args.bucket}/{args.stream}")
    if args.json:
        write_json(status.to_dict())
    else:
        print(format_report(status.result.report.to_dict()))
    return _failures([{"execution": f"run {status.run.run}: {line}"}
                      for line in status.problems()])
