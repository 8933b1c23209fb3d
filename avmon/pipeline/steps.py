"""What each Lambda of the serverless pipeline does, as plain functions over ports.

- ``ingest``: a stream lands in the bucket; cut it into segments (no re-encoding), store them,
  start one workflow execution per segment. A single live segment starts one execution.
- ``convert``: the media converter decodes a segment and writes every picture as its own S3
  object (the lossless luma plane: exactly the decoded pixels the detectors read) and the audio
  as buffer objects; it returns a manifest of times and flags, never pixels.
- ``detect``: one detector reads its batch of frames and/or audio back (one GET per object), runs
  the same scanner the single process runs, and writes its evidence to its own result key.
- ``aggregate``: merges the detectors' evidence for the segment, stores the segment report, and
  publishes to SNS when the segment has a defect.
- ``assemble``: the stream's report from every segment report, with defects that cross segment
  boundaries joined (the same ``finalize`` as the single process).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from avmon import __version__
from avmon.detectors.base import Evidence
from avmon.detectors.config import AnalysisConfig
from avmon.detectors.registry import build
from avmon.errors import MediaOpenError, PayloadTooLargeError
from avmon.frames import AudioBatcher, AudioBuffer, VideoFrame
from avmon.media.decode import MediaReader
from avmon.media.segment import split_segments
from avmon.model import AudioInfo, Defect, Report, StreamInfo, VideoInfo
from avmon.pipeline import keys
from avmon.pipeline.config import PipelineConfig
from avmon.pipeline.ports import Notifier, ObjectStore, Starter

MAX_PAYLOAD = 256 * 1024  # Step Functions' limit for a state's input or output


@dataclass(frozen=True)
class SegmentJob:
    """The input of one workflow execution."""

    stream: str
    segment: int
    key: str
    start_s: float

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> SegmentJob:
        try:
            return cls(str(event["stream"]), int(event["segment"]), str(event["key"]),
                       float(event["start_s"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise MediaOpenError(f"bad segment event {dict(event)!r}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "segment": self.segment, "key": self.key,
                "start_s": round(self.start_s, 6)}


# -- ingest ----------------------------------------------------------------------------------
def run_token(event_time: str, etag: str) -> str:
    """A short token for one upload: execution names must be unique per run, while S3 keys stay
    the same for the same stream (re-running overwrites, it never duplicates)."""
    import hashlib
    return hashlib.sha256(f"{event_time}|{etag}".encode()).hexdigest()[:10]


def ingest(store: ObjectStore, starter: Starter, key: str, config: PipelineConfig,
           run: str = "r") -> list[SegmentJob]:
    """Cut the stream at ``key`` into segments and start one execution per segment.

    A ``.ts`` object under ``ingest/<stream>/`` is one live segment: its index is its number and
    its times are its own timestamps. Raises MediaOpenError for input that is not media.
    """
    stream = keys.stream_id_of(key)
    data = store.get(key)
    jobs = []
    name = key.rsplit("/", 1)[-1]
    if key.count("/") >= 2 and name.endswith(".ts") and name[:-3].isdigit():
        with MediaReader(io.BytesIO(data)) as reader:
            jobs.append(SegmentJob(stream, int(name[:-3]), key, reader.origin))
    else:
        for seg in split_segments(io.BytesIO(data), config.segment_seconds):
            seg_key = keys.segment(stream, seg.index)
            store.put(seg_key, seg.data, "video/mp2t")
            jobs.append(SegmentJob(stream, seg.index, seg_key, seg.start_s))
    for job in jobs:
        starter.start(f"{stream}-{run}-{job.segment:06d}"[:80], job.to_dict())
    return jobs


# -- convert ---------------------------------------------------------------------------------
def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _load(data: bytes) -> np.ndarray:
    array: np.ndarray = np.load(io.BytesIO(data), allow_pickle=False)
    return array


def convert(store: ObjectStore, job: SegmentJob, config: PipelineConfig) -> dict[str, Any]:
    """Decode one segment into frame and audio objects; return the manifest.

    Raises MediaOpenError for a segment that does not decode, PayloadTooLargeError if the
    manifest would not fit a Step Functions payload.
    """
    data = store.get(job.key)
    frames: list[list[float]] = []
    audio: list[list[float]] = []
    stacked: list[np.ndarray] = []
    batcher = AudioBatcher(config.audio_object_seconds)
    channel_names: tuple[str, ...] = ()

    def put_audio(buf: AudioBuffer | None) -> None:
        if buf is not None:
            store.put(keys.audio(job.stream, job.segment, len(audio)), _npy(buf.samples))
            audio.append([round(buf.t, 6), buf.sample_rate, buf.samples.shape[1]])

    with MediaReader(io.BytesIO(data)) as reader:
        # the segment's first picture is at job.start_s on the stream's clock
        offset = job.start_s - reader.track_start()
        for item in reader.frames():
            t = item.t + offset
            if isinstance(item, VideoFrame):
                flags = int(item.keyframe) | (int(item.concealed) << 1)
                if config.frame_layout == "object-per-frame":
                    store.put(keys.frame(job.stream, job.segment, len(frames)), _npy(item.luma))
                else:
                    stacked.append(item.luma.copy())
                frames.append([round(t, 6), round(item.duration, 6), flags])
            else:
                channel_names = item.channels
                put_audio(batcher.push(AudioBuffer(t, item.sample_rate, item.samples,
                                                   item.channels)))
        put_audio(batcher.flush())
        info = reader.info()
        ended_early = reader.stats.ended_early
    if not frames and not audio:
        raise MediaOpenError(f"segment {job.segment} of {job.stream}: corrupt"
                             f" ({ended_early or 'nothing decodes'})")
    if stacked:
        buf = io.BytesIO()
        np.savez(buf, frames=np.stack(stacked))
        store.put(keys.frames_of_segment(job.stream, job.segment), buf.getvalue())
    ends = [f[0] + f[1] for f in frames] + [a[0] + a[2] / a[1] for a in audio]
    manifest = {
        "job": job.to_dict(),
        "end_s": round(max(ends), 6),
        "layout": config.frame_layout,
        "video": info.video.to_dict() if info.video else None,
        "audio_info": info.audio.to_dict() if info.audio else None,
        "frames": frames,
        "audio": audio,
        "audio_channels": list(channel_names),
        "batches": _batches(frames, audio, config.frames_per_invocation),
    }
    size = len(json.dumps(manifest))
    if size > MAX_PAYLOAD:
        raise PayloadTooLargeError(f"segment {job.segment}: manifest of {size} bytes exceeds"
                                   " 256 KiB; use shorter segments")
    return manifest


def _batches(frames: list[list[float]], audio: list[list[float]],
             per: int) -> list[dict[str, Any]]:
    """Frame batches of ``per`` frames (0: one batch); audio objects go with the batch their
    start time falls in, and every audio object belongs to exactly one batch."""
    if per <= 0 or len(frames) <= per:
        return [{"batch": 0, "frames": [0, len(frames)], "audio": [0, len(audio)]}]
    out = []
    starts = list(range(0, len(frames), per))
    for b, i in enumerate(starts):
        j = min(i + per, len(frames))
        lo = 0 if b == 0 else frames[i][0]
        hi = frames[j][0] if j < len(frames) else float("inf")
        sel = [k for k, a in enumerate(audio) if lo <= a[0] < hi]
        span = [sel[0], sel[-1] + 1] if sel else [0, 0]
        out.append({"batch": b, "frames": [i, j], "audio": span})
    return out


# -- detect ----------------------------------------------------------------------------------
def detect(store: ObjectStore, detector: str, manifest: Mapping[str, Any],
           batch: Mapping[str, Any], analysis: AnalysisConfig | None = None) -> dict[str, Any]:
    """Run one detector on one batch of a segment; write and return a reference to its evidence.

    Raises ConfigError for an unknown detector, MissingResourceError if an object is gone.
    """
    det = build(analysis or AnalysisConfig(), [detector])[0]
    job = SegmentJob.from_event(manifest["job"])
    scanner = det.scanner()
    if "video" in det.needs:
        i0, i1 = batch["frames"]
        if manifest["layout"] == "object-per-frame":
            for n in range(i0, i1):
                t, d, flags = manifest["frames"][n]
                luma = _load(store.get(keys.frame(job.stream, job.segment, n)))
                scanner.feed_video(VideoFrame(t, d, luma, keyframe=bool(flags & 1),
                                              concealed=bool(flags & 2)))
        elif i1 > i0:
            with np.load(io.BytesIO(store.get(keys.frames_of_segment(job.stream, job.segment))),
                         allow_pickle=False) as npz:
                stack = npz["frames"]
            for n in range(i0, i1):
                t, d, flags = manifest["frames"][n]
                scanner.feed_video(VideoFrame(t, d, stack[n], keyframe=bool(flags & 1),
                                              concealed=bool(flags & 2)))
    if "audio" in det.needs:
        a0, a1 = batch["audio"]
        names = tuple(manifest.get("audio_channels", ()))
        for n in range(a0, a1):
            t, rate, _ = manifest["audio"][n]
            samples = _load(store.get(keys.audio(job.stream, job.segment, n)))
            scanner.feed_audio(AudioBuffer(t, int(rate), samples, names))
    key = keys.result(detector, job.stream, job.segment, int(batch["batch"]))
    store.put_json(key, {"detector": detector, "segment": job.segment,
                         "batch": batch["batch"], "evidence": scanner.evidence()})
    return {"detector": detector, "batch": batch["batch"], "key": key}


# -- aggregate -------------------------------------------------------------------------------
def aggregate(store: ObjectStore, notifier: Notifier, manifest: Mapping[str, Any],
              results: Sequence[Any], analysis: AnalysisConfig | None = None) -> dict[str, Any]:
    """Merge a segment's detector results into its report; notify when it has a defect.

    ``results`` has one entry per detector branch: the list of batch results, or a failure
    record ``{"detector", "status": "failed", "error", "cause"}`` caught by the workflow.
    """
    job = SegmentJob.from_event(manifest["job"])
    evidence: dict[str, list[Evidence]] = {}
    failed: dict[str, dict[str, str]] = {}
    for branch in results:
        if isinstance(branch, Mapping) and branch.get("status") == "failed":
            failed[str(branch["detector"])] = {"error": str(branch.get("error", "")),
                                               "cause": _cause(branch.get("cause"))}
            continue
        for r in branch:
            evidence.setdefault(r["detector"], []).append(store.get_json(r["key"])["evidence"])
    detectors = build(analysis or AnalysisConfig(), list(evidence))
    defects = [d for det in detectors for d in det.finalize(evidence[det.name])]
    report = {
        "stream": job.stream, "segment": job.segment, "start_s": job.start_s,
        "end_s": manifest["end_s"], "video": manifest["video"], "audio": manifest["audio_info"],
        "frames": len(manifest["frames"]), "evidence": evidence, "failed": failed,
        "defects": [d.to_dict() for d in defects],
    }
    store.put_json(keys.report(job.stream, job.segment), report)
    if defects:
        notifier.publish(f"avmon: {len(defects)} defect(s) in {job.stream}",
                         {"stream": job.stream, "segment": job.segment,
                          "defects": report["defects"]})
    return {"stream": job.stream, "segment": job.segment, "defects": len(defects),
            "failed": sorted(failed)}


def _cause(cause: Any) -> str:
    """The readable part of a Step Functions error cause (a Lambda error's JSON payload)."""
    text = str(cause or "")
    try:
        parsed = json.loads(text)
        return str(parsed.get("errorMessage", text)) if isinstance(parsed, dict) else text
    except ValueError:
        return text


# -- assemble --------------------------------------------------------------------------------
@dataclass
class StreamResult:
    report: Report
    failed_detectors: dict[int, dict[str, dict[str, str]]]
    segments: int


def assemble(segment_reports: Iterable[Mapping[str, Any]], source: str,
             analysis: AnalysisConfig | None = None) -> StreamResult:
    """The stream's report from its segment reports (defects across segments joined)."""
    analysis = analysis or AnalysisConfig()
    reports = sorted(segment_reports, key=lambda r: r["segment"])
    evidence: dict[str, list[Evidence]] = {}
    failed = {}
    for r in reports:
        for name, evs in r["evidence"].items():
            evidence.setdefault(name, []).extend(evs)
        if r["failed"]:
            failed[int(r["segment"])] = r["failed"]
    detectors = build(analysis, list(evidence))
    defects: list[Defect] = [d for det in detectors for d in det.finalize(evidence[det.name])]
    first = reports[0] if reports else {}
    v, a = first.get("video"), first.get("audio")
    video = VideoInfo(v["codec"], v["width"], v["height"], v["fps"],
                      frames=sum(int(r["frames"]) for r in reports),
                      decode_errors=sum(int((r.get("video") or {}).get("decode_errors", 0))
                                        for r in reports)) if v else None
    audio = AudioInfo(a["codec"], a["sample_rate"], a["channels"]) if a else None
    duration = max((float(r["end_s"]) for r in reports), default=0.0)
    info = StreamInfo(source, duration, video, audio)
    report = Report(info, tuple(defects), analysis.to_dict(), __version__)
    return StreamResult(report, failed, len(reports))
