"""``avmon analyze``: every detector on one input, in one process."""

from __future__ import annotations

import argparse
import sys

from avmon.cli.common import (
    MAX_THREADS,
    Subparsers,
    analysis_config,
    detector_options,
    format_report,
    media_progress,
    threads,
    write_json,
)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("analyze", help="run every detector on one input, in one process")
    p.add_argument("input", help="file path or URL (HLS, MPEG-TS, anything ffmpeg opens)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    detector_options(p)
    p.add_argument("--threads", type=threads, default=1,
                   help="decoder threads: 1 uses the least CPU (default), 0 = auto (fastest),"
                   f" at most {MAX_THREADS}")
    p.set_defaults(handler=analyze)


def analyze(args: argparse.Namespace) -> int:
    from avmon.monitor.analysis import analyze

    config = analysis_config(args)
    bar = media_progress("analyze")
    try:
        result = analyze(args.input, config, args.detectors,
                         progress=lambda t: bar.update(t - bar.n), threads=args.threads)
    finally:
        bar.close()
    report = result.report
    for name, why in report.skipped.items():
        sys.stderr.write(f"avmon: note: skipped {name}: {why}\n")
    if args.json:
        write_json(report.to_dict())
    else:
        print(format_report(report.to_dict()))
    if result.truncated is not None:
        sys.stderr.write(f"avmon: error: {result.truncated} (defects up to there reported)\n")
        return result.truncated.exit_code
    return 0
