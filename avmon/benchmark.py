"""Runs every design on one input and compares them: the benchmark's workflow.

The designs themselves, their costs and quotas are models in ``avmon.economics``; running the
serverless ones needs the local cloud (moto), so the run lives here, outside the core, and is
what ``avmon benchmark``, ``cost`` and ``limits`` call.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avmon.economics.designs import DESIGNS, SERVERLESS, SINGLE, compare, runs_from_file
from avmon.economics.lambda_model import Calibration, calibrate, model_usage
from avmon.economics.prices import PriceTable
from avmon.economics.quotas import load_quotas
from avmon.errors import AvmonError, ConfigError
from avmon.pipeline.config import PipelineConfig

LOAD_STREAMS = 4  # streams one process runs at once when measured (threads, one per stream)


def streams_in_one_process(path: str, streams: int) -> dict[str, Any]:
    """Run ``streams`` analyses of ``path`` at once in this process (one thread each) and measure
    what they add: process CPU seconds over the run and peak resident memory above the process's
    own after imports and a warm-up decode (start-up excluded). Called in a fresh child process
    by ``measure_single_process``. Raises MediaOpenError for input that is not media."""
    import threading
    import time

    from avmon.media.decode import MediaReader
    from avmon.monitor.analysis import analyze

    with MediaReader(path) as reader:  # loads the codecs: start-up, not per-stream work
        next(reader.frames(), None)
    base = _rss_mb()
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mb())
            time.sleep(0.01)

    reports: list[Any] = [None] * streams
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            reports[i] = analyze(path).report
        except BaseException as exc:
            errors.append(exc)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    workers = [threading.Thread(target=one, args=(i,)) for i in range(streams)]
    cpu0, wall0 = time.process_time(), time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    done.set()
    sampler.join()
    if errors:
        raise errors[0]
    report = reports[0]
    stream_s = float(report.stream.duration_s)
    return {"report": report.to_dict(), "usage": {
        "streams_in_process": streams, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
        "stream_s": stream_s,
        "cpu_per_stream_second": round(cpu / (stream_s * streams), 5),
        "base_mb": round(base, 1), "peak_mb_process": round(peak, 1),
        "peak_mb": round(max(peak - base, 1.0) / streams, 1),
        "what": f"{streams} analyses at once in one process (a thread each); CPU of the run,"
                " memory above the process after imports and a warm-up decode: start-up"
                " excluded, paid once per task as base_mb"}}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure_single_process(path: Path, streams: int = LOAD_STREAMS,
                           repeats: int = 3) -> dict[str, Any]:
    """The single-process design on ``path``: ``streams`` copies at once in one fresh process
    (``streams_in_one_process``), ``repeats`` times; the figures are the fastest run's CPU and
    the largest memory, every run's CPU kept. Raises AvmonError if the analysis fails."""
    code = ("import json,sys;from avmon.benchmark import streams_in_one_process as m;"
            "print(json.dumps(m(sys.argv[1],int(sys.argv[2]))))")
    runs = []
    for _ in range(max(1, repeats)):
        proc = subprocess.run([sys.executable, "-c", code, str(path), str(streams)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise AvmonError(f"single-process analysis failed: {last}")
        runs.append(json.loads(proc.stdout))
    best = min(runs, key=lambda r: r["usage"]["cpu_per_stream_second"])
    usage = dict(best["usage"])
    usage["cpu_per_stream_second_runs"] = [r["usage"]["cpu_per_stream_second"] for r in runs]
    for key in ("peak_mb", "base_mb", "peak_mb_process"):
        usage[key] = max(r["usage"][key] for r in runs)
    usage["what"] += (f"; {len(runs)} runs: the fastest run's CPU (other work on the machine"
                      " only adds to it), the largest memory")
    return {"report": best["report"], "usage": usage}


# Resolutions the single process is sized at, and the Fargate task sizes (vCPU, GB) it is sized
# for: each vCPU count with the smallest memory the ECS developer guide's "Task size" table
# allows for it (checked Nov 2026).
PROFILES: dict[str, tuple[int, int, int]] = {
    "360p": (640, 360, 25), "720p": (1280, 720, 25), "1080p50": (1920, 1080, 50)}
FARGATE_SIZES: tuple[tuple[float, float], ...] = (
    (0.25, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, 16.0), (16.0, 32.0))
PROFILE_SECONDS = 4.0
PROFILE_DEFECTS = "freeze@1:1,black@2.2:0.5,silence@2:1.2"


def size_profiles(names: Sequence[str], cache: Path, streams: int = LOAD_STREAMS,
                  log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """For each profile: a labelled clip (``avmon synth``, cached in ``cache``), the single
    process measured on ``streams`` copies of it at once, and how many streams each Fargate
    task size holds, with what bounds it. Raises ConfigError for an unknown profile."""
    from avmon.economics.prices import TaskSize
    from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize

    unknown = [n for n in names if n not in PROFILES]
    if unknown:
        raise ConfigError(f"unknown profile(s): {', '.join(unknown)}; known:"
                          f" {', '.join(PROFILES)}")
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    for name in names:
        w, h, fps = PROFILES[name]
        clip = cache / f"load-{name}-{PROFILE_SECONDS:g}s.mp4"
        if not clip.exists():
            if log:
                log(f"making the {name} clip (avmon synth, {PROFILE_SECONDS:g} s)")
            synthesize(SynthRequest(clip, PROFILE_SECONDS, tuple(parse_defects(PROFILE_DEFECTS)),
                                    w, h, fps, seed=3))
        if log:
            log(f"measuring {streams} {name} streams in one process")
        usage = measure_single_process(clip, streams)["usage"]
        tasks = {}
        for vcpu, gb in FARGATE_SIZES:
            n, bound = TaskSize(vcpu, gb).holds(usage["cpu_per_stream_second"],
                                                usage["peak_mb"], usage["base_mb"])
            tasks[f"{vcpu:g} vCPU / {gb:g} GB"] = {"streams": n, "bound": bound}
        out[name] = {"size": f"{w}x{h} {fps} fps", "usage": usage, "tasks": tasks}
    return out


def sizing_from_service_load(path: Path) -> dict[str, Any]:
    """The single process sized from ``avmon serve`` measured with live sources: the
    ``serve.json`` that ``benchmarks/serve.py`` writes (a 1-stream and an N-stream run per
    profile, fitted as base + N x per stream). Same shape as ``size_profiles``. Raises
    ConfigError for a file of another shape."""
    from avmon.documents import read_document
    from avmon.economics.prices import TaskSize

    data = read_document(path, "service load")
    try:
        profiles = data["profiles"]
        out: dict[str, Any] = {}
        for name, p in profiles.items():
            fit, many = p["fit"], p["runs"][-1]
            w, h, fps = PROFILES.get(name, (0, 0, 0))
            cpu, mb = float(fit["cpu_per_stream"]), float(fit["mb_per_stream"])
            base_mb, base_cpu = float(fit["base_mb"]), float(fit["base_cpu"])
            usage = {"cpu_per_stream_second": cpu, "peak_mb": mb, "base_mb": base_mb,
                     "base_cpu": base_cpu,
                     "what": f"avmon serve with 1 and {many['streams']} live sources"
                             f" (ffmpeg -re over UDP), fitted as base + N x per stream;"
                             f" {path.name}"}
            tasks = {}
            for vcpu, gb in FARGATE_SIZES:
                n, bound = TaskSize(vcpu, gb).holds(cpu, mb, base_mb, base_cpu)
                tasks[f"{vcpu:g} vCPU / {gb:g} GB"] = {"streams": n, "bound": bound}
            out[name] = {"size": f"{w}x{h} {fps} fps" if w else name, "usage": usage,
                         "tasks": tasks, "source": "avmon serve"}
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ConfigError(f"{path}: not the serve.json of benchmarks/serve.py ({exc})") from None
    return out


def run_designs(path: Path, designs: Sequence[str] = DESIGNS,
                on_design: Callable[[str], None] | None = None,
                progress: Any = None, repeats: int = 3) -> dict[str, dict[str, Any]]:
    """Run each design on ``path``: {design: {"report": ..., "usage": ...}}. Serverless Lambda
    time comes from the duration model calibrated once on ``path`` (``repeats`` passes)."""
    from avmon.localcloud.simulate import simulate

    calibration: Calibration | None = None
    unknown = set(designs) - set(DESIGNS)
    if unknown:
        raise ConfigError(f"unknown design(s): {', '.join(sorted(unknown))};"
                          f" known: {', '.join(DESIGNS)}")
    out: dict[str, dict[str, Any]] = {}
    for design in designs:
        if on_design is not None:
            on_design(design)
        if design == SINGLE:
            out[design] = measure_single_process(path)
            continue
        sim = simulate(path, SERVERLESS[design], progress=progress)
        if calibration is None:
            calibration = calibrate(path, repeats)
        out[design] = serverless_run(sim, calibration)
    return out


def serverless_run(sim: Any, calibration: Calibration) -> dict[str, Any]:
    """A simulation's run for ``compare``: its counts as counted, its Lambda time from the
    duration model (the moto-timed value kept beside it)."""
    config = PipelineConfig.from_mapping(sim.config)
    modelled = model_usage(sim.usage, float(sim.report["duration_s"]), config, calibration)
    return {"report": sim.report, "usage": modelled["usage"],
            "lambda_model": modelled["lambda_model"], "failed": sim.failed_segments,
            "config": sim.config}


@dataclass(frozen=True)
class ComparisonRequest:
    """What to compare: a media file to run the designs on, or a saved run to re-price."""

    input: Path | None = None
    usage: Path | None = None
    designs: Sequence[str] = DESIGNS
    region: str = "us-east-1"
    prices: Path | None = None
    quotas: str = "2023"
    expected_streams: int = 3000
    profiles: Sequence[str] = ()     # resolutions to size the single process at
    cache: Path = Path(".avmon-cache")  # where the profiles' clips are kept between runs
    service_load: Path | None = None  # benchmarks/serve.py's serve.json: size from avmon serve


def comparison(req: ComparisonRequest,
               on_design: Callable[[str], None] | None = None) -> tuple[dict[str, Any], str]:
    """The comparison of ``req`` and the name of its source. Raises ConfigError for bad
    settings, MediaOpenError for an input that is not media."""
    from avmon.media.decode import probe

    if req.expected_streams <= 0:
        raise ConfigError("--expected-streams must be at least 1")
    prices = PriceTable.load(req.region, req.prices)
    quotas = load_quotas(req.quotas)
    if req.usage is not None:
        runs = {k: v for k, v in runs_from_file(req.usage).items() if k in req.designs}
        if not runs:
            raise ConfigError(f"{req.usage}: has none of the designs {', '.join(req.designs)}")
        source = str(req.usage)
    elif req.input is not None:
        probe(req.input)
        runs = run_designs(req.input, req.designs, on_design=on_design)
        if SINGLE in runs and req.service_load is not None:
            runs[SINGLE]["sizing"] = sizing_from_service_load(req.service_load)
        elif SINGLE in runs and req.profiles:
            if on_design is not None:
                on_design(f"{SINGLE} at {', '.join(req.profiles)}")
            runs[SINGLE]["sizing"] = size_profiles(req.profiles, req.cache)
        source = str(req.input)
    else:
        raise ConfigError("give an input file or --usage FILE")
    return compare(runs, prices, quotas, req.quotas, req.expected_streams), source
