"""``avmon watch SOURCE``: monitor one live source until stopped, one line per event."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from types import FrameType

from avmon.cli.common import Subparsers, analysis_config, detector_options, seconds


def _default_spool() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(state) / "avmon" / "spool"


def register(sub: Subparsers) -> None:
    p = sub.add_parser("watch", help="monitor one live source until stopped (Ctrl-C)")
    p.add_argument("source", help="udp://, srt://, http(s):// MPEG-TS or .m3u8 HLS, or a file")
    p.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    detector_options(p)
    p.add_argument("--sink", action="append", default=[], metavar="SPEC",
                   help="stdout (default), webhook:URL or sns:TOPIC_ARN; repeatable")
    p.add_argument("--input-timeout", type=seconds, default=5.0, metavar="S",
                   help="seconds without media before input_loss (default 5)")
    p.add_argument("--stream-id", help="the stream's name in events (default: from SOURCE)")
    p.add_argument("--spool-dir", type=Path, default=None,
                   help="where undelivered events wait (default ~/.local/state/avmon/spool)")
    p.set_defaults(handler=run_watch)


def run_watch(args: argparse.Namespace) -> int:
    """Parse, run the Monitor into the sinks until a signal or the source's clean end."""
    from avmon.monitor.live import Monitor
    from avmon.monitor.sinks import SpooledSink, build_sinks

    config = analysis_config(args)
    sinks = build_sinks(args.sink, spool_dir=args.spool_dir or _default_spool(),
                        json_lines=args.json)
    monitor = Monitor(args.source, config, stream_id=args.stream_id, detectors=args.detectors,
                      input_timeout=args.input_timeout)

    def stop(signum: int, frame: FrameType | None) -> None:
        monitor.stop()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    started = time.monotonic()
    counts: Counter[str] = Counter()
    try:
        for event in monitor.events():
            counts[event.event] += 1
            for sink in sinks:
                sink.send(event)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for sink in sinks:
            sink.close(timeout=5.0)
    stats = monitor.stats
    media = "-" if stats.media_time_s is None else f"{stats.media_time_s:.2f} s"
    lines = [f"avmon watch: {stats.stream}: {stats.state} after {time.monotonic() - started:.1f} s;"
             f" {stats.frames} frames, last media time {media}, {stats.decode_errors} decode"
             f" errors, {stats.reconnects} reconnects, {stats.gaps} gaps; events: "
             + ", ".join(f"{counts[k]} {k}" for k in ("open", "update", "close"))]
    for sink in sinks:
        if isinstance(sink, SpooledSink):
            st = sink.stats
            lines.append(f"  sink {st.name}: {st.delivered} delivered, {st.pending} spooled for"
                         f" later, {st.rejected} rejected"
                         + (f" (last error: {st.last_error})" if st.last_error else ""))
    sys.stderr.write("\n".join(lines) + "\n")
    return 0
