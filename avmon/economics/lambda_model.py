"""Lambda duration from a stated model, calibrated on the input, instead of timed under moto.

The local simulation runs every handler in-process under moto, where 85-90% of a detector's
time is botocore and moto: timing it measures the emulator, and moved the tuned design's
binding quota between runs. What a function would take on Lambda is modelled instead from
operations measured once, without the emulator, on the same input:

- **CPU per operation**, measured here in passes over the input (process CPU time; the fastest
  of ``repeats`` passes, the slowest kept as the spread: on a shared machine other work only
  ever adds CPU time, through caches and sibling hyperthreads, so the fastest pass is the
  closest to a dedicated vCPU): decoding (per stream-second), each detector's scanner (per
  stream-second, at the input's resolution), serialising and parsing a frame object (``.npy``,
  per MB), finalizing evidence and cutting segments (per stream-second);
- **CPU share**: Lambda allocates CPU in proportion to memory, one vCPU at 1,769 MB (AWS Lambda
  Developer Guide, "Configure Lambda function memory", checked Nov 2026); the handlers are
  single-threaded, so above 1,769 MB they gain nothing. One core of this machine is taken as one
  Lambda vCPU (an assumption; the CPU model is recorded with the calibration);
- **S3 requests**: each request waits a stated constant, and each body moves at a stated
  throughput (both assumptions, with sources, in ``ASSUMPTIONS``);
- **what each function does**, from the pipeline's layout (``PipelineConfig``): the converter
  GETs its segment, decodes it and PUTs its frame and audio objects; each detector GETs what it
  reads (frames, audio or both), scans it and PUTs its evidence; the aggregator GETs every
  evidence object, finalizes and PUTs the segment report; ingest GETs the stream, cuts it and
  PUTs the segments. Cold starts are not modelled (warm invocations).

Counts (invocations, requests, transitions) stay as the simulation counted them; the model only
gives each invocation its duration. The model's own request totals are set beside the counted
ones (``requests_check``) so a change in what the pipeline does shows up.
"""

from __future__ import annotations

import io
import math
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avmon.detectors.config import AnalysisConfig
from avmon.detectors.registry import CAMEL, NAMES, build
from avmon.errors import ConfigError
from avmon.frames import VideoFrame
from avmon.pipeline.config import PipelineConfig

MB = 1e6
ESTIMATE = "min"  # the repeat the figures use: the fastest pass (see the module's docstring)
ASSUMPTIONS: dict[str, dict[str, Any]] = {
    "mb_per_vcpu": {
        "value": 1769, "unit": "MB of memory per vCPU",
        "source": "AWS Lambda Developer Guide, 'Configure Lambda function memory' (checked"
                  " Nov 2026): at 1,769 MB a function has the equivalent of one vCPU"},
    "max_vcpu_used": {
        "value": 1, "unit": "vCPU",
        "source": "assumption: the handlers run one thread (decoder threads=1, numpy scans)"},
    "core_equals_vcpu": {
        "value": True, "unit": "",
        "source": "assumption: one core of the calibrating machine does the work of one Lambda"
                  " vCPU"},
    "s3_request_s": {
        "value": 0.020, "unit": "s per S3 request (GET or PUT), before the body",
        "source": "assumption inside the range AWS gives: 'Best Practices Design Patterns:"
                  " Optimizing Amazon S3 Performance' (whitepaper, 2019): small requests have"
                  " median latencies 'in the tens of milliseconds'"},
    "s3_mb_per_s": {
        "value": 100.0, "unit": "MB/s per function for object bodies",
        "source": "assumption: AWS documents no per-function network throughput"},
    "cold_starts": {
        "value": 0, "unit": "", "source": "assumption: warm invocations; init not modelled"},
}


def _cpu_share(memory_mb: float) -> float:
    """The vCPUs a single-threaded handler gets at ``memory_mb``."""
    return min(float(ASSUMPTIONS["max_vcpu_used"]["value"]),
               memory_mb / float(ASSUMPTIONS["mb_per_vcpu"]["value"]))


@dataclass(frozen=True)
class Calibration:
    """CPU seconds per operation on this machine, one value per repeat."""

    stream_s: float
    frames: int
    frame_mb: float                       # one frame object (.npy of the luma plane)
    audio_mb_per_s: float                 # audio objects per stream-second
    input_mb_per_s: float                 # the encoded stream (segments) per stream-second
    decode: list[float]                   # CPU s per stream-second
    scan: dict[str, list[float]]          # detector -> CPU s per stream-second
    save_per_mb: list[float]              # CPU s per MB serialised to .npy
    load_per_mb: list[float]              # CPU s per MB parsed from .npy
    finalize: dict[str, list[float]]      # detector -> CPU s per stream-second of evidence
    cut: list[float]                      # ingest: CPU s per stream-second to cut segments
    needs: dict[str, list[str]] = field(default_factory=dict)
    machine: str = ""

    @property
    def repeats(self) -> int:
        return len(self.decode)

    def to_dict(self) -> dict[str, Any]:
        return {k: _rounded(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        """Raises ConfigError for a record of another shape."""
        try:
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except TypeError as exc:
            raise ConfigError(f"lambda model calibration: {exc}") from None


def _rounded(v: Any) -> Any:
    if isinstance(v, float):
        return float(f"{v:.6g}")
    if isinstance(v, list):
        return [_rounded(x) for x in v]
    if isinstance(v, dict):
        return {k: _rounded(x) for k, x in v.items()}
    return v


def calibrate(path: Path, repeats: int = 3, analysis: AnalysisConfig | None = None,
              segment_seconds: float = 2.0) -> Calibration:
    """Measure each operation's CPU on ``path``, ``repeats`` times (segments of
    ``segment_seconds`` for the cost of cutting them).

    Raises MediaOpenError for input that is not media, ConfigError if it has no duration.
    """
    from avmon.media.decode import MediaReader
    from avmon.media.segment import split_segments

    analysis = analysis or AnalysisConfig()
    detectors = build(analysis)
    runs: list[dict[str, Any]] = []
    for _ in range(max(1, repeats)):
        clock = time.process_time
        scanners = {d.name: d.scanner() for d in detectors}
        wants_video = [s for d, s in zip(detectors, scanners.values(), strict=True)
                       if "video" in d.needs]
        wants_audio = [s for d, s in zip(detectors, scanners.values(), strict=True)
                       if "audio" in d.needs]
        names_video = [d.name for d in detectors if "video" in d.needs]
        names_audio = [d.name for d in detectors if "audio" in d.needs]
        scan = dict.fromkeys(scanners, 0.0)
        save = load = 0.0
        frame_bytes = audio_bytes = frames = 0
        decode = 0.0
        with MediaReader(path) as reader:
            items = reader.frames()
            while True:
                t0 = clock()
                item = next(items, None)
                decode += clock() - t0
                if item is None:
                    break
                if isinstance(item, VideoFrame):
                    frames += 1
                    t0 = clock()
                    blob = _npy(item.luma)
                    t1 = clock()
                    luma = np.load(io.BytesIO(blob), allow_pickle=False)
                    t2 = clock()
                    save, load = save + t1 - t0, load + t2 - t1
                    frame_bytes += len(blob)
                    frame = VideoFrame(item.t, item.duration, luma, keyframe=item.keyframe,
                                       concealed=item.concealed)
                    for name, s in zip(names_video, wants_video, strict=True):
                        t0 = clock()
                        s.feed_video(frame)
                        scan[name] += clock() - t0
                else:
                    audio_bytes += item.samples.nbytes
                    for name, s in zip(names_audio, wants_audio, strict=True):
                        t0 = clock()
                        s.feed_audio(item)
                        scan[name] += clock() - t0
            stream_s = reader.info().duration_s
        if stream_s <= 0:
            raise ConfigError(f"{path}: no media duration to calibrate on")
        finalize = {}
        for d in detectors:
            evidence = scanners[d.name].evidence()
            t0 = clock()
            d.finalize([evidence])
            finalize[d.name] = (clock() - t0) / stream_s
        t0 = clock()
        encoded = sum(len(seg.data) for seg in split_segments(path, segment_seconds))
        cut = (clock() - t0) / stream_s
        runs.append({"stream_s": stream_s, "frames": frames, "decode": decode / stream_s,
                     "scan": {k: v / stream_s for k, v in scan.items()},
                     "save": save / max(frame_bytes / MB, 1e-9),
                     "load": load / max(frame_bytes / MB, 1e-9),
                     "finalize": finalize, "cut": cut,
                     "frame_mb": frame_bytes / MB / max(1, frames),
                     "audio_mb_per_s": audio_bytes / MB / stream_s,
                     "input_mb_per_s": encoded / MB / stream_s})
    first = runs[0]
    return Calibration(
        stream_s=first["stream_s"], frames=first["frames"], frame_mb=first["frame_mb"],
        audio_mb_per_s=first["audio_mb_per_s"], input_mb_per_s=first["input_mb_per_s"],
        decode=[r["decode"] for r in runs],
        scan={n: [r["scan"][n] for r in runs] for n in first["scan"]},
        save_per_mb=[r["save"] for r in runs], load_per_mb=[r["load"] for r in runs],
        finalize={n: [r["finalize"][n] for r in runs] for n in first["finalize"]},
        cut=[r["cut"] for r in runs],
        needs={d.name: sorted(d.needs) for d in detectors},
        machine=_machine())


def _npy(array: np.ndarray) -> bytes:
    """A frame object's body, as the converter writes it."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _machine() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# -- the model -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Work:
    """What one function does over the whole stream: CPU seconds and S3 traffic."""

    cpu_s: float = 0.0
    requests: float = 0.0
    mb: float = 0.0

    def __add__(self, other: Work) -> Work:
        return Work(self.cpu_s + other.cpu_s, self.requests + other.requests,
                    self.mb + other.mb)

    def seconds(self, memory_mb: float) -> float:
        """Wall seconds on Lambda at ``memory_mb``: CPU at the function's share, plus S3."""
        return (self.cpu_s / _cpu_share(memory_mb)
                + self.requests * float(ASSUMPTIONS["s3_request_s"]["value"])
                + self.mb / float(ASSUMPTIONS["s3_mb_per_s"]["value"]))


def _function_detector(function: str) -> str | None:
    by_camel = {f"{c}Detector": n for n, c in CAMEL.items()}
    return by_camel.get(function)


def work(cal: Calibration, config: PipelineConfig, stream_s: float,
         invocations: Mapping[str, int], pick: str = "median") -> dict[str, Work]:
    """Each function's work over ``stream_s`` of media at the calibrated per-operation cost.

    ``pick`` chooses the repeat statistic: ``median``, ``min`` or ``max``."""
    pickers: dict[str, Callable[[Sequence[float]], float]] = {
        "median": statistics.median, "min": min, "max": max}
    f = pickers[pick]
    segments = max(1, math.ceil(stream_s / config.segment_seconds))
    frames = cal.frames / cal.stream_s * stream_s
    frame_mb = frames * cal.frame_mb
    audio_mb = cal.audio_mb_per_s * stream_s
    audio_objects = math.ceil(stream_s / config.audio_object_seconds)
    per_frame = config.frame_layout == "object-per-frame"
    out: dict[str, Work] = {}
    out["Ingest"] = Work(f(cal.cut) * stream_s, 1 + segments,
                         2 * cal.input_mb_per_s * stream_s)
    frame_objects = frames if per_frame else segments
    out["Converter"] = Work(f(cal.decode) * stream_s + f(cal.save_per_mb) * (frame_mb + audio_mb),
                            segments + frame_objects + audio_objects,
                            cal.input_mb_per_s * stream_s + frame_mb + audio_mb)
    evidence_objects = 0
    finalize = 0.0
    for name in NAMES:
        function = f"{CAMEL[name]}Detector"
        calls = int(invocations.get(function, 0))
        if calls == 0:
            continue
        needs = cal.needs.get(name, [])
        mb = (frame_mb if "video" in needs else 0.0) + (audio_mb if "audio" in needs else 0.0)
        # per segment (object-per-segment), a batch reads the whole stack: its GETs are its calls
        gets = ((frame_objects if per_frame else calls) if "video" in needs else 0) + \
               (audio_objects if "audio" in needs else 0)
        if not per_frame and "video" in needs:
            mb += frame_mb * (calls / segments - 1)  # each batch of a segment reads the stack
        out[function] = Work(f(cal.scan[name]) * stream_s + f(cal.load_per_mb) * mb,
                             gets + calls, mb)
        evidence_objects += calls
        finalize += f(cal.finalize[name]) * stream_s
    out["Aggregator"] = Work(finalize, evidence_objects + segments, 0.0)
    return out


def model_usage(usage: Mapping[str, Any], stream_s: float, config: PipelineConfig,
                cal: Calibration) -> dict[str, Any]:
    """``usage`` with each function's ``billed_ms`` from the model (fastest repeat), the
    moto-timed value kept as ``billed_ms_under_moto``; and the model's record: the assumptions,
    the calibration, the Lambda seconds at the min/median/max repeat, and the request check.

    Raises ConfigError if the usage has no Lambda functions."""
    functions: Mapping[str, Any] = usage.get("lambda", {})
    if not functions:
        raise ConfigError("usage has no Lambda functions to model")
    invocations = {n: int(f["invocations"]) for n, f in functions.items()}
    modelled: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    per_function: dict[str, Any] = {}
    for pick in ("min", "median", "max"):
        w = work(cal, config, stream_s, invocations, pick)
        total = 0.0
        for name, f in functions.items():
            job = w.get(name, Work())
            calls = max(1, int(f["invocations"]))
            per_call = job.seconds(float(f["memory_mb"])) / calls
            billed = calls * max(1, math.ceil(per_call * 1000))
            total += billed / 1000
            if pick == ESTIMATE:
                modelled[name] = {**f, "billed_ms": billed,
                                  "billed_ms_under_moto": int(f["billed_ms"]),
                                  "gb_seconds": round(float(f["memory_mb"]) / 1024
                                                      * billed / 1000, 4)}
                per_function[name] = {"cpu_s": round(job.cpu_s, 4),
                                      "s3_requests": round(job.requests),
                                      "s3_mb": round(job.mb, 3),
                                      "vcpu": round(_cpu_share(float(f["memory_mb"])), 4),
                                      "ms_per_invocation": round(per_call * 1000, 1)}
        seconds[pick] = round(total, 3)
    w = work(cal, config, stream_s, invocations, ESTIMATE)
    counted = sum(usage.get("requests", {}).get("s3", {}).values())
    return {
        "usage": {**usage, "lambda": modelled},
        "lambda_model": {
            "what": "Lambda duration = CPU per operation (measured without the emulator) /"
                    " vCPU share at the memory size + S3 requests x latency + MB / throughput",
            "assumptions": ASSUMPTIONS,
            "calibration": cal.to_dict(),
            "functions": per_function,
            "lambda_seconds": {**seconds, "estimate": ESTIMATE},
            "requests_check": {"s3_modelled": round(sum(x.requests for x in w.values())),
                               "s3_counted": counted},
        },
    }


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median and relative spread ((max - min) / median) of repeated measurements."""
    med = statistics.median(values)
    return {"median": float(f"{med:.6g}"),
            "spread": round((max(values) - min(values)) / med, 4) if med else 0.0}
