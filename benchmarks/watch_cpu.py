"""CPU of one live watch against ``analyze`` of the same file, in one process.

    .venv/bin/python benchmarks/watch_cpu.py [--clip FILE.ts] [--out bench-out]

A 60 s 640x360 25 fps clip (``avmon synth``: two freezes, blacks and silences; made once in
OUT unless ``--clip`` is given) is sent by ``ffmpeg -re`` as MPEG-TS over UDP on loopback to a
``Monitor`` with all six detectors, until the sender ends; then ``analyze`` reads the same
file. Each figure is CPU seconds of this process (all threads, ``time.process_time``, imports
not counted) per second of media. Run it from two checkouts in turn (``PYTHONPATH``) to
compare them; the ratio of the two figures is what survives a shared machine, not either
figure alone. Never run beside another benchmark: the machine has 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from avmon.evaluation.peers import free_udp_port, send_live_udp  # noqa: E402
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize  # noqa: E402
from avmon.monitor.analysis import analyze  # noqa: E402
from avmon.monitor.live import Monitor  # noqa: E402
from benchmarks import run  # noqa: E402

DEFECTS = "freeze@5:2,black@10:1,silence@14:1.5,freeze@30:2,black@40:1,silence@50:1.5"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clip", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "bench-out")
    args = ap.parse_args()
    clip = args.clip
    if clip is None:
        args.out.mkdir(parents=True, exist_ok=True)
        clip = args.out / "watch-cpu-360p-60s.ts"
        if not clip.exists():
            synthesize(SynthRequest(clip, 60, tuple(parse_defects(DEFECTS)), 640, 360, 25,
                                    seed=3))
    load = os.getloadavg()[0]
    port = free_udp_port()
    monitor = Monitor(f"udp://127.0.0.1:{port}", stream_id="cpu", input_timeout=3.0,
                      reconnect=False)
    start = time.process_time()
    sender = send_live_udp(clip, port)
    events = sum(1 for _ in monitor.events())
    sender.wait()
    media = monitor.stats.media_time_s or 0.0
    if media <= 0:
        print("avmon: error: the watch received no media", file=sys.stderr)
        return 1
    watch = (time.process_time() - start) / media
    start = time.process_time()
    report = analyze(clip).report
    offline = (time.process_time() - start) / report.stream.duration_s
    print(f"watch udp {watch:.4f} CPU s per media second ({events} events), analyze"
          f" {offline:.4f}, ratio {watch / offline:.2f}, load average {load:.1f} ->"
          f" {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    run(main)
