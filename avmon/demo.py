"""The demo's workflow: a stream with known defects through every design, compared.

Writes a labelled stream, runs it through the original serverless pipeline on the local cloud,
analyses it in one process, pairs what each found with what was injected, runs the tuned
pipeline, measures the single process, and prices and sizes all three. ``avmon demo`` renders
the result; each step is announced through ``on_step`` as it starts (the whole takes about a
minute).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avmon.errors import ConfigError
from avmon.evaluation.matching import Matching, match, same_defect_tolerance
from avmon.model import Defect

DEMO_DEFECTS = ("freeze@3:2,black@7:1,block_corruption@10:1,silence@13:1.5,clipping@16:0.5,"
                "av_sync@19:9=+200ms")
MIN_DURATION_S = 29.0  # the injected defects need it


@dataclass(frozen=True)
class DemoResult:
    stream: Path
    truth: tuple[Defect, ...]
    against_truth: Matching     # the pipeline's defects paired with the injected ones
    agreement: Matching         # the single process's defects paired with the pipeline's
    usage: dict[str, Any]       # what the original pipeline used
    comparison: dict[str, Any]  # the three designs priced and sized
    page: Path                  # the HTML report


def run_demo(out: Path, duration: float = 30.0, size: tuple[int, int] = (640, 360),
             on_step: Callable[[str], None] = lambda _: None,
             simulate_progress: Any = None) -> DemoResult:
    """Run the demo into folder ``out``. Raises ConfigError for a duration too short."""
    from avmon.benchmark import measure_single_process, serverless_run
    from avmon.economics.designs import ORIGINAL, SERVERLESS, SINGLE, TUNED, compare
    from avmon.economics.lambda_model import calibrate
    from avmon.economics.prices import PriceTable
    from avmon.economics.quotas import load_quotas
    from avmon.economics.report import write_report
    from avmon.evaluation.synth import SynthRequest, load_truth, parse_defects, synthesize
    from avmon.localcloud.simulate import simulate
    from avmon.monitor.analysis import analyze

    if duration < MIN_DURATION_S:
        raise ConfigError(f"demo --duration must be at least {MIN_DURATION_S:g} s"
                          " (the injected defects need it)")
    stream = out / "demo.mp4"
    on_step(f"1. writing a {duration:g} s test stream with injected defects: {stream}")
    w, h = size
    truth_file = synthesize(SynthRequest(stream, duration, tuple(parse_defects(DEMO_DEFECTS)),
                                         w, h, seed=7))
    on_step("2. running it through the original serverless pipeline, locally: the synthesized"
            " CDK app on moto\n   (S3, Lambda handlers in-process, Step Functions executing the"
            " ASL)")
    sim = simulate(stream, SERVERLESS[ORIGINAL], progress=simulate_progress)
    found = [Defect.from_dict(d) for d in sim.report["defects"]]
    on_step("3. the same stream in one process (decode once, detectors on frames in memory)")
    single = list(analyze(stream).report.defects)
    truth = load_truth(truth_file)
    on_step("4. the same stream through the tuned serverless design (frames batched per"
            " segment, Express, 10 s segments),\n   and the single process measured for CPU"
            " and memory")
    tuned = simulate(stream, SERVERLESS[TUNED], progress=simulate_progress)
    calibration = calibrate(stream)
    runs = {ORIGINAL: serverless_run(sim, calibration),
            TUNED: serverless_run(tuned, calibration),
            SINGLE: measure_single_process(stream)}
    result = compare(runs, PriceTable.load(), load_quotas("2023"), "2023")
    page = write_report(result, str(stream), out / "report")
    return DemoResult(stream, tuple(truth), match(truth, found),
                      match(found, single, same_defect_tolerance, ends_too=True),
                      sim.usage, result, page)


# -- live monitoring --------------------------------------------------------------------------
LIVE_STREAMS = (("live-1", "freeze@3:2,black@8:1"), ("live-2", "silence@3:1.5,clipping@8:0.5"))
LIVE_DURATION_S = 12.0


@dataclass(frozen=True)
class LiveAlert:
    event: Any          # avmon.events.DefectEvent
    latency_s: float    # arrival after the defect had lasted its minimum duration (open) or
                        # after it ended (close)


def run_live_demo(out: Path, on_alert: Callable[[LiveAlert], None] = lambda _: None,
                  ) -> list[LiveAlert]:
    """Two live sources (``ffmpeg -re`` sending MPEG-TS over UDP on loopback), each with
    injected defects, watched by one process as ``avmon serve`` watches them: a Monitor per
    stream in its own thread. Returns every alert with its latency.

    Raises PeerToolError when the ffmpeg CLI is missing."""
    import threading
    import time
    from datetime import datetime

    from avmon.detectors.config import AnalysisConfig
    from avmon.detectors.registry import NAMES
    from avmon.evaluation.peers import ffmpeg_path, free_udp_port, send_live_udp
    from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize
    from avmon.monitor.live import Monitor

    ffmpeg_path()  # the senders are the ffmpeg CLI: say so before any work
    config = AnalysisConfig()
    alerts: list[LiveAlert] = []
    lock = threading.Lock()

    def watch(monitor: Monitor) -> None:
        for event in monitor.events():
            anchor = event.end_utc if event.event == "close" else event.start_utc
            if anchor is None:
                continue
            due = datetime.fromisoformat(anchor.replace("Z", "+00:00")).timestamp()
            if event.event == "open" and event.detector in NAMES:
                due += getattr(config, event.detector).min_duration_s
            alert = LiveAlert(event, max(0.0, time.time() - due))
            with lock:
                alerts.append(alert)
                on_alert(alert)

    clips = []
    for name, defects in LIVE_STREAMS:
        clips.append((name, out / f"{name}.ts"))
        synthesize(SynthRequest(clips[-1][1], LIVE_DURATION_S, tuple(parse_defects(defects)),
                                320, 180, seed=11))
    senders, monitors, threads, procs = [], [], [], []
    input_timeout_s = 3.0
    try:
        for name, clip in clips:
            port = free_udp_port()
            monitor = Monitor(f"udp://127.0.0.1:{port}", config, stream_id=name,
                              input_timeout=input_timeout_s, reconnect=False)
            monitors.append(monitor)
            threads.append(threading.Thread(target=watch, args=(monitor,), daemon=True))
            threads[-1].start()
            senders.append((port, clip))
        time.sleep(0.5)  # the watchers are listening before the senders start
        procs = [send_live_udp(clip, port) for port, clip in senders]
        for p in procs:
            p.wait(timeout=LIVE_DURATION_S * 4)
        # the end of each source is an input_loss after the input timeout: wait for them (on
        # a busy machine a fixed wait once stopped a watcher before it said so)
        deadline = time.monotonic() + input_timeout_s + 15.0
        while time.monotonic() < deadline:
            with lock:
                lost = {a.event.stream for a in alerts
                        if a.event.detector == "input_loss" and a.event.event == "open"}
            if lost >= {name for name, _ in clips}:
                break
            time.sleep(0.1)
    finally:
        for p in procs:
            p.kill()  # only still running when interrupted
            p.wait()
        for m in monitors:
            m.stop()
        for t in threads:
            t.join(timeout=10)
    return alerts
