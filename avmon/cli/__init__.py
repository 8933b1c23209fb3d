"""The ``avmon`` command: thin argument parsing over the core functions.

Every failure the user can cause ends as one line on stderr (``avmon: error: ...``) and a
non-zero exit; work already finished (a partial report) is still printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from avmon import __version__
from avmon.errors import AvmonError, ConfigError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other avmon error."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"avmon: error: {self.prog.removeprefix('avmon ')}: {message}"
                         f" (see '{self.prog} --help')\n")
        raise SystemExit(2)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, got {text!r}") from None


def _detectors(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="avmon", description="Audio/video defect monitoring.")
    parser.add_argument("--version", action="version", version=f"avmon {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("analyze", help="run every detector on one input, in one process")
    p.add_argument("input", help="file path or URL (HLS, MPEG-TS, anything ffmpeg opens)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--detectors", type=_detectors, help="comma-separated subset of detectors")
    p.add_argument("--config", type=Path, help="JSON or TOML file of detector settings")
    p.add_argument("--threads", type=int, default=1,
                   help="decoder threads: 1 uses the least CPU (default), 0 = auto (fastest)")

    p = sub.add_parser("synth", help="write a labelled test stream and its truth file")
    p.add_argument("out", type=Path, help="output file (.mp4, .ts or .mkv)")
    p.add_argument("--duration", type=float, required=True, help="seconds")
    p.add_argument("--defects", default="", help="e.g. freeze@10:2,av_sync@50:10=+200ms")
    p.add_argument("--size", type=_size, default=(640, 360), help="WxH (default 640x360)")
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--content", default="patterns", help="patterns, noisy, dark or calm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-audio", action="store_true", help="video track only")
    p.add_argument("--no-video", action="store_true", help="audio track only")

    p = sub.add_parser("simulate", help="run the serverless pipeline locally, on moto")
    p.add_argument("input", type=Path, nargs="+", help="media file(s); several run at once")
    p.add_argument("--transition-bucket", type=float,
                   help="enforce a StateTransition token bucket of this many tokens")
    p.add_argument("--transition-refill", type=float, default=10.0,
                   help="... refilled at this many per second (default 10)")
    p.add_argument("--json", action="store_true", help="the report plus measured usage")
    p.add_argument("--segment-seconds", type=float, help="segment length (default 2)")
    p.add_argument("--frames-per-invocation", type=int,
                   help="frames per detector invocation (default 0: the whole segment)")
    p.add_argument("--frame-layout", choices=["object-per-frame", "object-per-segment"])
    p.add_argument("--workflow", choices=["standard", "express"])
    p.add_argument("--pipeline-config", type=Path, help="JSON file of PipelineConfig settings")

    def design_inputs(p: argparse.ArgumentParser) -> None:
        g = p.add_mutually_exclusive_group(required=True)
        g.add_argument("input", nargs="?", type=Path, help="a media file: run the designs on it")
        g.add_argument("--usage", type=Path, help="saved 'benchmark --json' or 'simulate --json'")
        p.add_argument("--design", type=_detectors, help="comma-separated subset of designs")
        p.add_argument("--region", default="us-east-1")
        p.add_argument("--prices", type=Path, help="a price table of the same shape as"
                       " avmon/economics/data/prices.json")
        p.add_argument("--quotas", default="2023", help="2023, current or a JSON file")
        p.add_argument("--expected-streams", type=int, default=3000)
        p.add_argument("--json", action="store_true")

    p = sub.add_parser("cost", help="dollars per stream-hour per design, line by line")
    design_inputs(p)
    p.add_argument("--streams", type=int, default=1000, help="fleet size for totals")
    p.add_argument("--hours", type=float, default=730.0, help="hours for totals (a month)")

    p = sub.add_parser("limits", help="the scaling wall: sustained streams, binding quota")
    design_inputs(p)

    p = sub.add_parser("benchmark", help="every design on one input: one comparison table")
    design_inputs(p)
    p.add_argument("--report", type=Path, help="write an HTML page with charts to this folder")

    p = sub.add_parser("report", help="a deployed stream's report, from its segment reports in S3")
    p.add_argument("--bucket", required=True, help="the stack's BucketName output")
    p.add_argument("--stream", required=True,
                   help="the stream: its object key under ingest/ (a live stream: its folder)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("demo", help="make a stream with known defects, analyse it, compare")
    p.add_argument("--out", type=Path, default=Path("out"), help="folder for the demo stream")
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--size", type=_size, default=(640, 360), help="WxH (default 640x360)")

    p = sub.add_parser("corpus", help="write the evaluation corpus (22 labelled streams)")
    p.add_argument("out", type=Path)

    p = sub.add_parser("evaluate", help="score detectors on every labelled stream in DIR")
    p.add_argument("dir", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument("--vs-ffmpeg", action="store_true", help="score ffmpeg's filters too")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        handler = globals()[f"_cmd_{args.command}"]
        return int(handler(args))
    except AvmonError as exc:
        sys.stderr.write(f"avmon: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("avmon: interrupted\n")
        return 130
    except BrokenPipeError:
        return 141


def _progress(total: float | None, desc: str) -> Any:
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="s", leave=False, disable=None,
                bar_format="{desc}: {n:.0f}/{total:.0f} s media {bar} {elapsed}")


def _cmd_analyze(args: argparse.Namespace) -> int:
    from avmon.detectors.config import AnalysisConfig
    from avmon.monitor.analysis import analyze

    config = AnalysisConfig.load(args.config) if args.config else AnalysisConfig()
    bar = _progress(None, "analyze")
    last = [0.0]

    def tick(t: float) -> None:
        bar.update(t - last[0])
        last[0] = t

    try:
        if args.threads < 0:
            raise ConfigError(f"--threads must be 0 (auto) or more, got {args.threads}")
        result = analyze(args.input, config, args.detectors, progress=tick, threads=args.threads)
    finally:
        bar.close()
    report = result.report
    for name, why in report.skipped.items():
        sys.stderr.write(f"avmon: note: skipped {name}: {why}\n")
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report.to_dict()))
    if result.truncated is not None:
        sys.stderr.write(f"avmon: error: {result.truncated} (defects up to there reported)\n")
        return result.truncated.exit_code
    return 0


def format_report(r: dict[str, Any]) -> str:
    lines = [f"source    {r['source']}", f"duration  {r['duration_s']:.2f} s"]
    if r["video"]:
        v = r["video"]
        lines.append(f"video     {v['codec']} {v['width']}x{v['height']} {v['fps']:g} fps,"
                     f" {v['frames']} frames, {v['decode_errors']} with decode errors")
    if r["audio"]:
        a = r["audio"]
        lines.append(f"audio     {a['codec']} {a['sample_rate']} Hz, {a['channels']} channels")
    lines.append("")
    if not r["defects"]:
        lines.append("no defects found")
        return "\n".join(lines)
    lines.append(f"{'detector':<17}{'start s':>9}{'end s':>9}{'dur s':>8}{'conf':>6}  details")
    for d in r["defects"]:
        details = ", ".join(f"{k}={v}" for k, v in d["details"].items())
        lines.append(f"{d['detector']:<17}{d['start_s']:>9.3f}{d['end_s']:>9.3f}"
                     f"{d['end_s'] - d['start_s']:>8.3f}{d['confidence']:>6.2f}  {details}")
    lines.append(f"{len(r['defects'])} defect(s)")
    return "\n".join(lines)


def pipeline_config(args: argparse.Namespace) -> Any:
    from avmon.pipeline.config import PipelineConfig

    base = PipelineConfig.load(args.pipeline_config) if args.pipeline_config else PipelineConfig()
    changes = {k: v for k, v in {
        "segment_seconds": args.segment_seconds,
        "frames_per_invocation": args.frames_per_invocation,
        "frame_layout": args.frame_layout,
        "workflow_type": args.workflow.upper() if args.workflow else None,
    }.items() if v is not None}
    return PipelineConfig.from_mapping({**base.to_dict(), **changes})


def _cmd_simulate(args: argparse.Namespace) -> int:
    config = pipeline_config(args)
    if len(args.input) > 1 or args.transition_bucket is not None:
        return _simulate_many(args, config)
    result = run_simulation(args.input[0], config)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_report(result.report))
        print()
        print(format_usage(result.usage))
    for f in result.failed_segments:
        what = f.get("detector") or f["status"]
        sys.stderr.write(f"avmon: note: segment {f['segment']}: {what}: {f['error']}:"
                         f" {f['cause']}\n")
    return int(result.exit_code)


def _simulate_many(args: argparse.Namespace, config: Any) -> int:

    from avmon.localcloud.simulate import simulate_many
    from avmon.localcloud.throttle import TransitionThrottle

    throttle = None
    if args.transition_bucket is not None:
        throttle = TransitionThrottle(args.transition_bucket, args.transition_refill)
    from avmon.media.decode import MediaReader
    for path in args.input:  # bad input fails here, before the deployment is announced
        with MediaReader(path):
            pass
    with segments_progress() as tick:
        result = simulate_many(args.input, config, throttle, progress=tick)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
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
    return 0


@contextlib.contextmanager
def segments_progress() -> Iterator[Callable[[int, int, int], None]]:
    """Says the deployment starts, then shows segments done and executions running (stderr)."""
    from tqdm import tqdm

    sys.stderr.write("avmon: deploying the synthesized CDK app into moto ...\n")
    bar = tqdm(total=0, desc="segments", unit="seg", leave=False, disable=None)

    def tick(done: int, total: int, running: int) -> None:
        bar.total, bar.n = total, done
        bar.set_postfix_str(f"{running} executions running", refresh=True)

    try:
        yield tick
    finally:
        bar.close()


def run_simulation(path: Path, config: Any) -> Any:
    """The simulation with a progress bar on stderr (segments done, executions running)."""
    from avmon.localcloud.simulate import simulate
    from avmon.media.decode import MediaReader

    with MediaReader(path):  # bad input fails here, before the deployment is announced
        pass
    with segments_progress() as tick:
        return simulate(path, config, progress=tick)


def format_usage(u: dict[str, Any]) -> str:
    req = u["requests"]
    s3, lam = req.get("s3", {}), u["lambda"]
    lines = [
        f"executions        {u['executions']}",
        f"state transitions {u['state_transitions']}",
        f"S3 requests       {sum(s3.values())}: " + ", ".join(f"{k} {v}" for k, v in s3.items()),
        f"S3 bytes          put {u['bytes'].get('s3_put', 0):,},"
        f" get {u['bytes'].get('s3_get', 0):,}",
        f"SNS publishes     {req.get('sns', {}).get('Publish', 0)}",
        f"Lambda            {sum(f['invocations'] for f in lam.values())} invocations,"
        f" {sum(f['gb_seconds'] for f in lam.values()):.2f} GB-s",
    ]
    lines += [f"  {n:<24}{f['invocations']:>5} x {f['memory_mb']} MB, {f['billed_ms']:>7} ms billed"
              for n, f in lam.items()]
    return "\n".join(lines)


def _comparison(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    from tqdm import tqdm

    from avmon.economics.designs import DESIGNS, compare, run_designs, runs_from_file
    from avmon.economics.prices import PriceTable
    from avmon.economics.quotas import load_quotas

    if args.expected_streams <= 0:
        raise ConfigError("--expected-streams must be at least 1")
    prices = PriceTable.load(args.region, args.prices)
    quotas = load_quotas(args.quotas)
    designs = args.design or list(DESIGNS)
    if args.usage:
        runs = runs_from_file(args.usage)
        runs = {k: v for k, v in runs.items() if k in designs}
        if not runs:
            raise ConfigError(f"{args.usage}: has none of the designs {', '.join(designs)}")
        source = str(args.usage)
    else:
        from avmon.media.decode import MediaReader
        with MediaReader(args.input):
            pass
        bar = tqdm(total=len(designs), desc="designs", unit="design", disable=None, leave=False)

        def next_design(name: str) -> None:
            bar.set_postfix_str(name)
            if bar.disable:  # no terminal: say it in plain lines
                sys.stderr.write(f"avmon: running {name} ...\n")

        try:
            runs = run_designs(args.input, designs, on_design=next_design)
        finally:
            bar.close()
        source = str(args.input)
    return compare(runs, prices, quotas, args.quotas, args.expected_streams), source


def format_comparison(result: dict[str, Any]) -> str:
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


def _cmd_cost(args: argparse.Namespace) -> int:
    from avmon.economics.designs import fleet

    if args.streams <= 0 or args.hours <= 0:
        raise ConfigError("--streams and --hours must be positive")
    result, _ = _comparison(args)
    totals = fleet(result, args.streams, args.hours)
    if args.json:
        print(json.dumps({**result, "fleet": {"streams": args.streams, "hours": args.hours,
                                              "usd": totals}}, indent=2))
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


def _cmd_limits(args: argparse.Namespace) -> int:
    result, _ = _comparison(args)
    if args.json:
        print(json.dumps({k: v for k, v in result.items()}, indent=2))
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


def _cmd_benchmark(args: argparse.Namespace) -> int:
    result, source = _comparison(args)
    if args.report:
        from avmon.economics.report import write_report
        page = write_report(result, source, args.report)
        sys.stderr.write(f"avmon: report written to {page}\n")
    print(json.dumps(result, indent=2) if args.json else format_comparison(result))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from avmon.errors import EXIT_INCOMPLETE
    from avmon.pipeline.ports import S3Store
    from avmon.pipeline.status import stream_status

    status = stream_status(S3Store(args.bucket), args.stream, f"s3://{args.bucket}/{args.stream}")
    report = status.result.report.to_dict()
    print(json.dumps(status.to_dict(), indent=2) if args.json else format_report(report))
    for line in status.problems():
        sys.stderr.write(f"avmon: note: run {status.run.run}: {line}\n")
    return 0 if status.finished else EXIT_INCOMPLETE


def _cmd_synth(args: argparse.Namespace) -> int:
    from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize

    if args.no_audio and args.no_video:
        raise ConfigError("--no-audio and --no-video leave nothing to write")
    width, height = args.size
    req = SynthRequest(args.out, args.duration, tuple(parse_defects(args.defects)), width,
                       height, args.fps, args.content, args.seed, video=not args.no_video,
                       audio=not args.no_audio)
    truth = synthesize(req)
    print(f"wrote {args.out} and {truth}")
    return 0


DEMO_DEFECTS = ("freeze@3:2,black@7:1,block_corruption@10:1,silence@13:1.5,clipping@16:0.5,"
                "av_sync@19:9=+200ms")


def _cmd_demo(args: argparse.Namespace) -> int:
    from avmon.evaluation.scoring import score
    from avmon.evaluation.synth import SynthRequest, load_truth, parse_defects, synthesize
    from avmon.monitor.analysis import analyze

    if args.duration < 29:
        raise ConfigError("demo --duration must be at least 29 s (the injected defects need it)")
    from avmon.model import Defect
    from avmon.pipeline.config import PipelineConfig

    stream = args.out / "demo.mp4"
    print(f"1. writing a {args.duration:g} s test stream with injected defects: {stream}")
    w, h = args.size
    truth_file = synthesize(SynthRequest(stream, args.duration, tuple(parse_defects(DEMO_DEFECTS)),
                                         w, h, seed=7))
    print("2. running it through the original serverless pipeline, locally: the synthesized CDK"
          " app on moto\n   (S3, Lambda handlers in-process, Step Functions executing the ASL)")
    sim = run_simulation(stream, PipelineConfig())
    found = sorted((Defect.from_dict(d) for d in sim.report["defects"]), key=lambda d: d.start_s)
    print("3. the same stream in one process (decode once, detectors on frames in memory)")
    single = sorted(analyze(stream).report.defects, key=lambda d: d.start_s)
    truth = load_truth(truth_file)
    print(f"\n{'detector':<17}{'injected':>16}{'found':>16}  {'conf':>5}  details")
    for t in truth:
        match = next((d for d in found if d.detector == t.detector
                      and d.start_s < t.end_s and t.start_s < d.end_s), None)
        got = f"{match.start_s:6.2f}-{match.end_s:6.2f}" if match else "missed"
        conf = f"{match.confidence:5.2f}" if match else ""
        details = ", ".join(f"{k}={v}" for k, v in (match.details if match else {}).items())
        print(f"{t.detector:<17}{t.start_s:7.2f}-{t.end_s:6.2f}   {got:>13}  {conf:>5}  {details}")
    extra = [d for d in found if not any(d.detector == t.detector and d.start_s < t.end_s
                                          and t.start_s < d.end_s for t in truth)]
    for d in extra:
        print(f"{d.detector:<17}{'(none)':>16}{d.start_s:7.2f}-{d.end_s:6.2f}  false positive")
    scores = score(truth, found, {t.detector for t in truth})
    hits = sum(s.tp for s in scores.values())
    print(f"\n{hits} of {len(truth)} injected defects found by the pipeline,"
          f" {len(extra)} false positives")
    print("single process vs pipeline: " + agreement(single, found))
    print("\nwhat the serverless pipeline used for this stream (measured):")
    print(format_usage(sim.usage))

    from avmon.economics.designs import (
        ORIGINAL,
        SERVERLESS,
        SINGLE,
        TUNED,
        compare,
        measure_single_process,
    )
    from avmon.economics.prices import PriceTable
    from avmon.economics.quotas import load_quotas
    from avmon.economics.report import write_report

    print("\n4. the same stream through the tuned serverless design (frames batched per segment,"
          " Express, 10 s segments),\n   and the single process measured for CPU and memory")
    tuned = run_simulation(stream, SERVERLESS[TUNED])
    runs = {ORIGINAL: {"report": sim.report, "usage": sim.usage, "config": sim.config},
            TUNED: {"report": tuned.report, "usage": tuned.usage, "config": tuned.config},
            SINGLE: measure_single_process(stream)}
    result = compare(runs, PriceTable.load(), load_quotas("2023"), "2023")
    print("\n" + format_comparison(result))
    page = write_report(result, str(stream), args.out / "report")
    print(f"\nthe comparison with charts: {page}")
    print("the same for any input: avmon benchmark INPUT --report DIR")
    return 0


def agreement(single: Any, served: Any) -> str:
    """How the single-process defects compare with the pipeline's, per detector."""
    a = {d.detector: d for d in single}
    b = {d.detector: d for d in served}
    if len(a) != len(single) or len(b) != len(served) or set(a) != set(b):
        return f"{len(single)} vs {len(served)} defects: " + ", ".join(
            sorted(set(a) ^ set(b)) or ["different counts"])
    same: list[str] = []
    differ: list[str] = []
    for name in a:
        gap = max(abs(a[name].start_s - b[name].start_s), abs(a[name].end_s - b[name].end_s))
        if gap <= 0.001:
            same.append(name)
        else:
            differ.append(f"{name} by {gap:.2f} s")
    text = f"identical intervals for {', '.join(same)}" if same else ""
    if differ:
        text += ("; " if text else "") + "different: " + ", ".join(differ) + \
            " (a segment's first frame has no previous frame to show a cut)"
    return text


def _cmd_corpus(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from avmon.evaluation.corpus import STREAMS, build_corpus

    with tqdm(total=len(STREAMS), desc="corpus", unit="stream", disable=None) as bar:
        paths = build_corpus(args.out, on_stream=lambda _: bar.update(1))
    print(f"wrote {len(paths)} labelled streams to {args.out}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from avmon.evaluation.runs import evaluate_dir, format_scores

    result = evaluate_dir(args.dir, vs_ffmpeg=args.vs_ffmpeg)
    print(json.dumps(result, indent=2) if args.json else format_scores(result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
