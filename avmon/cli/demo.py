"""``avmon demo``: a stream with known defects through every design, compared."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from avmon.cli.common import Subparsers, number, segments_progress, size

if TYPE_CHECKING:
    from avmon.evaluation.matching import Matching


def register(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="make a stream with known defects, analyse it, compare")
    p.add_argument("--out", type=Path, default=Path("out"), help="folder for the demo stream")
    p.add_argument("--duration", type=number(float, ge=29, le=3600, what="seconds"),
                   default=30.0, help="seconds, 29..3600 (the injected defects need 29)")
    p.add_argument("--size", type=size, default=(640, 360), help="WxH (default 640x360)")
    p.set_defaults(handler=demo)


def demo(args: argparse.Namespace) -> int:
    from avmon.cli.economics import format_comparison
    from avmon.cli.pipeline import format_usage
    from avmon.demo import run_demo
    from avmon.validation import writable_dir

    writable_dir(args.out, "the demo's output")
    with segments_progress() as tick:
        r = run_demo(args.out, args.duration, args.size, on_step=print, simulate_progress=tick)
    print(f"\n{'detector':<17}{'injected':>16}{'found':>16}  {'conf':>5}  details")
    found_for = {id(p.expected): p.found for p in r.against_truth.pairs}
    for t in r.truth:
        m = found_for.get(id(t))
        got = f"{m.start_s:6.2f}-{m.end_s:6.2f}" if m else "missed"
        conf = f"{m.confidence:5.2f}" if m else ""
        details = ", ".join(f"{k}={v}" for k, v in (m.details if m else {}).items())
        print(f"{t.detector:<17}{t.start_s:7.2f}-{t.end_s:6.2f}   {got:>13}  {conf:>5}  {details}")
    for d in r.against_truth.extra:
        print(f"{d.detector:<17}{'(none)':>16}{d.start_s:7.2f}-{d.end_s:6.2f}  false positive")
    print(f"\n{len(r.against_truth.pairs)} of {len(r.truth)} injected defects found by the"
          f" pipeline, {len(r.against_truth.extra)} false positives")
    print("single process vs pipeline: " + agreement_text(r.agreement))
    print("\nwhat the serverless pipeline used for this stream (measured):")
    print(format_usage(r.usage))
    print("(counts as counted; Lambda ms as timed in-process under moto on this machine: the"
          " cost table below\n prices Lambda time from the calibrated model instead)")
    print("\n" + format_comparison(r.comparison))
    print(f"\nthe comparison with charts: {r.page}")
    print("the same for any input: avmon benchmark INPUT --report DIR")
    live_demo(args.out)
    return 0


def live_demo(out: Path) -> None:
    """Two live UDP sources watched in one process: each alert as it arrives, with latency."""
    from avmon.demo import LiveAlert, run_live_demo

    print("\n5. live monitoring: two sources sent in real time over UDP (ffmpeg -re), watched"
          " by one process;\n   each alert printed as it arrives, with its latency (after the"
          " defect's minimum duration, or its end)")

    def show(a: LiveAlert) -> None:
        print(f"   {a.event.describe()}   [{a.latency_s:.2f} s]", flush=True)

    alerts = run_live_demo(out, show)
    opened = [a.latency_s for a in alerts if a.event.event == "open"
              and a.event.detector not in ("input_loss",)]
    if opened:
        print(f"   {len(opened)} defects alerted, latency max {max(opened):.2f} s"
              " (target: 2 s over UDP); the same with: avmon watch udp://... --json")


def agreement_text(m: Matching) -> str:
    """How the single process's defects compare with the pipeline's, per detector."""
    same = [p.expected.detector for p in m.pairs if p.gap_s <= 0.001]
    differ = [f"{p.expected.detector} by {p.gap_s:.2f} s" for p in m.pairs if p.gap_s > 0.001]
    unmatched = [f"{d.detector} only in the pipeline" for d in m.missed]
    unmatched += [f"{d.detector} only in the single process" for d in m.extra]
    parts = []
    if same:
        parts.append(f"identical intervals for {', '.join(same)}")
    if differ:
        parts.append("different: " + ", ".join(differ)
                     + " (a segment's first frame has no previous frame to show a cut)")
    if unmatched:
        parts.append("unmatched: " + ", ".join(unmatched))
    return "; ".join(parts) or "no defects in either"
