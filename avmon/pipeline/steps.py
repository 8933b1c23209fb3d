"""What each Lambda of the serverless pipeline does, as plain functions over ports.

- ``ingest``: a stream lands in the bucket; it becomes a run (its id from the upload's event
  time and ETag or version); cut it into segments (no re-encoding), store them, record the run
  with its segment count, start one workflow execution per segment. A single live segment starts
  one execution. A redelivered event starts exactly the executions not started yet.
- ``convert``: the media converter decodes a segment and writes every picture as its own S3
  object (the lossless luma plane: exactly the decoded pixels the detectors read) and the audio
  as buffer objects; it returns a manifest of times and flags, never pixels.
- ``detect``: one detector reads its batch of frames and/or audio back (one GET per object), runs
  the same scanner the single process runs, and writes its evidence to its own result key.
- ``aggregate``: merges the detectors' evidence for the segment, stores the segment report, and
  merges the segment into its stream's running state (``avmon.pipeline.state``), which publishes
  one SNS message when a defect opens and one when it closes, across segment boundaries and in
  any order of finishing. ``record_failure`` stores the report of a segment whose execution
  failed, with the cause, so no failure is silent, and merges it too (a ``gap``).
- ``assemble``: the stream's report from every segment report, with defects that cross segment
  boundaries joined (the same ``finalize`` as the single process).
"""

from __future__ import annotations

import hashlib
import io
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from avmon import __version__
from avmon.detectors.base import Evidence
from avmon.detectors.config import AnalysisConfig
from avmon.detectors.registry import build, finalize_all
from avmon.errors import MediaOpenError, PayloadTooLargeError, StorageThrottledError
from avmon.frames import AudioBatcher, AudioBuffer, VideoFrame
from avmon.media.decode import MediaReader
from avmon.media.segment import split_segments
from avmon.model import AudioInfo, Defect, Report, StreamInfo, VideoInfo
from avmon.pipeline import keys
from avmon.pipeline import state as stream_state
from avmon.pipeline.config import PipelineConfig
from avmon.pipeline.contracts import (
    MAX_PAYLOAD,
    AggregateTask,
    AudioRef,
    Batch,
    BranchFailure,
    DetectorTask,
    EvidenceRef,
    FrameRef,
    Manifest,
    RunRecord,
    SegmentFailure,
    SegmentJob,
    SegmentReport,
    SegmentSummary,
    StepError,
    lambda_error_message,
)
from avmon.pipeline.ports import Notifier, ObjectStore, Starter, StateStore


# -- ingest ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Upload:
    """One object created under ``ingest/``, as its S3 event describes it."""

    key: str
    etag: str
    event_time: str
    version: str = ""

    @property
    def run(self) -> str:
        live = keys.live_segment(self.key)
        return keys.LIVE_RUN if live else keys.run_id(self.event_time, self.version or self.etag)


@dataclass(frozen=True)
class Backoff:
    """Retries of a throttled StartExecution: exponential with full jitter, bounded."""

    attempts: int = 6
    base_s: float = 0.1
    cap_s: float = 5.0
    sleep: Callable[[float], None] = time.sleep

    def delays(self) -> Iterable[float]:
        for n in range(self.attempts - 1):
            yield random.uniform(0, min(self.cap_s, self.base_s * 2 ** n))


@dataclass
class IngestResult:
    record: RunRecord | None          # None: the event was stale (the object changed since)
    started: list[str] = field(default_factory=list)   # execution names started now
    already: list[str] = field(default_factory=list)   # started by an earlier delivery


def ingest(store: ObjectStore, starter: Starter, upload: Upload, config: PipelineConfig,
           backoff: Backoff | None = None) -> IngestResult:
    """Make ``upload`` a run: cut it into segments, record the run, start one execution each.

    Idempotent: the same event again (S3 delivers at least once) maps to the same run and starts
    only what is not started. An event whose ETag no longer matches the object (a re-upload came
    after it) is stale and starts nothing: the re-upload's own event runs the new content.
    Raises MediaOpenError for input that is not media, MissingResourceError if the object is
    gone, StorageThrottledError if executions are still unstarted after every retry (the Lambda
    service retries the event, then hands it to the on-failure destination).
    """
    stream, run = keys.stream_id_of(upload.key), upload.run
    backoff = backoff or Backoff()
    data = store.get(upload.key)
    etag = upload.etag.strip('"')
    # a single-part upload's ETag (SSE-S3) is its MD5; multipart ETags carry a "-N" suffix
    if etag and "-" not in etag and hashlib.md5(data).hexdigest() != etag:
        return IngestResult(None)
    live = keys.live_segment(upload.key)
    jobs = []
    if live is not None:
        with MediaReader(io.BytesIO(data)) as reader:
            # the segment's first picture on the stream's clock (its PTS), as convert expects:
            # not the container's origin, which is the audio's start when audio leads
            jobs.append(SegmentJob(stream=stream, run=run, segment=live[1], key=upload.key,
                                   start_s=round(reader.origin + reader.track_start(), 6)))
    else:
        for seg in split_segments(io.BytesIO(data), config.segment_seconds):
            seg_key = keys.segment(stream, run, seg.index)
            store.put(seg_key, seg.data, "video/mp2t")
            jobs.append(SegmentJob(stream=stream, run=run, segment=seg.index, key=seg_key,
                                   start_s=round(seg.start_s, 6)))
    record = RunRecord(stream=stream, run=run, key=upload.key, etag=etag, version=upload.version,
                       event_time=upload.event_time, segments=0 if live else len(jobs),
                       live=live is not None)
    # a live stream's segments arrive one object at a time: its record has no fixed count
    store.put_json(keys.run_record(stream, run), record.to_dict())
    result = IngestResult(record)
    pending = [(keys.execution_name(stream, run, j.segment), j) for j in jobs]
    for delay in [*backoff.delays(), None]:
        throttled = []
        for name, job in pending:
            try:
                (result.started if starter.start(name, job.to_dict()) else
                 result.already).append(name)
            except StorageThrottledError:
                throttled.append((name, job))
        pending = throttled
        if not pending or delay is None:
            break
        backoff.sleep(delay)
    if pending:
        raise StorageThrottledError(
            f"{upload.key}: {len(pending)} of {len(jobs)} segment executions not started"
            " (StartExecution throttled after every retry); the event will be retried")
    return result


# -- convert ---------------------------------------------------------------------------------
def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _load(data: bytes) -> np.ndarray:
    array: np.ndarray = np.load(io.BytesIO(data), allow_pickle=False)
    return array


def convert(store: ObjectStore, job: SegmentJob, config: PipelineConfig) -> Manifest:
    """Decode one segment into frame and audio objects; return the manifest.

    Raises MediaOpenError for a segment that does not decode, PayloadTooLargeError if the
    manifest would not fit a Step Functions payload.
    """
    data = store.get(job.key)
    frames: list[FrameRef] = []
    audio: list[AudioRef] = []
    stacked: list[np.ndarray] = []
    batcher = AudioBatcher(config.audio_object_seconds)
    s, r, i = job.stream, job.run, job.segment
    channel_names: tuple[str, ...] = ()

    def put_audio(buf: AudioBuffer | None) -> None:
        if buf is not None:
            store.put(keys.audio(s, r, i, len(audio)), _npy(buf.samples))
            audio.append(AudioRef(round(buf.t, 6), buf.sample_rate, buf.samples.shape[1]))

    with MediaReader(io.BytesIO(data)) as reader:
        # the segment's first picture is at job.start_s on the stream's clock
        offset = job.start_s - reader.track_start()
        for item in reader.frames():
            t = item.t + offset
            if isinstance(item, VideoFrame):
                flags = int(item.keyframe) | (int(item.concealed) << 1)
                if config.frame_layout == "object-per-frame":
                    store.put(keys.frame(s, r, i, len(frames)), _npy(item.luma))
                else:
                    stacked.append(item.luma.copy())
                frames.append(FrameRef(round(t, 6), round(item.duration, 6), flags))
            else:
                channel_names = item.channels
                put_audio(batcher.push(AudioBuffer(t, item.sample_rate, item.samples,
                                                   item.channels)))
        put_audio(batcher.flush())
        info = reader.info()
        ended_early = reader.stats.ended_early
    if not frames and not audio:
        raise MediaOpenError(f"segment {i} of {s}: corrupt ({ended_early or 'nothing decodes'})")
    if stacked:
        buf = io.BytesIO()
        np.savez(buf, frames=np.stack(stacked))
        store.put(keys.frames_of_segment(s, r, i), buf.getvalue())
    ends = [f.t + f.duration for f in frames] + [a.end for a in audio]
    manifest = Manifest(
        job=job, end_s=round(max(ends), 6), layout=config.frame_layout,
        video=info.video.to_dict() if info.video else None,
        audio_info=info.audio.to_dict() if info.audio else None,
        frames=tuple(frames), audio=tuple(audio), audio_channels=channel_names,
        batches=batches(frames, audio, config.frames_per_invocation))
    size = manifest.payload_size()
    if size > MAX_PAYLOAD:
        raise PayloadTooLargeError(f"segment {i}: manifest of {size} bytes exceeds"
                                   " 256 KiB; use shorter segments")
    return manifest


def batches(frames: Sequence[FrameRef], audio: Sequence[AudioRef], per: int) -> tuple[Batch, ...]:
    """Frame batches of ``per`` frames (0: one batch); audio objects go with the batch their
    start time falls in, and every audio object belongs to exactly one batch."""
    if per <= 0 or len(frames) <= per:
        return (Batch(batch=0, frames=(0, len(frames)), audio=(0, len(audio))),)
    out = []
    for b, i in enumerate(range(0, len(frames), per)):
        j = min(i + per, len(frames))
        lo = 0 if b == 0 else frames[i].t
        hi = frames[j].t if j < len(frames) else float("inf")
        sel = [k for k, a in enumerate(audio) if lo <= a.t < hi]
        span = (sel[0], sel[-1] + 1) if sel else (0, 0)
        out.append(Batch(batch=b, frames=(i, j), audio=span))
    return tuple(out)


# -- detect ----------------------------------------------------------------------------------
def detect(store: ObjectStore, detector: str, task: DetectorTask,
           analysis: AnalysisConfig | None = None) -> EvidenceRef:
    """Run one detector on one batch of a segment; write and return a reference to its evidence.

    Raises ConfigError for an unknown detector, MissingResourceError if an object is gone.
    """
    det = build(analysis or AnalysisConfig(), [detector])[0]
    m, batch = task.manifest, task.batch
    s, r, i = m.job.stream, m.job.run, m.job.segment
    scanner = det.scanner()
    if "video" in det.needs:
        i0, i1 = batch.frames
        if m.layout == "object-per-frame":
            pictures: Iterable[np.ndarray] = (_load(store.get(keys.frame(s, r, i, n)))
                                              for n in range(i0, i1))
        elif i1 > i0:
            with np.load(io.BytesIO(store.get(keys.frames_of_segment(s, r, i))),
                         allow_pickle=False) as npz:
                pictures = iter(npz["frames"][i0:i1])
        else:
            pictures = iter(())
        for ref, luma in zip(m.frames[i0:i1], pictures, strict=False):
            scanner.feed_video(VideoFrame(ref.t, ref.duration, luma, keyframe=ref.keyframe,
                                          concealed=ref.concealed))
    if "audio" in det.needs:
        a0, a1 = batch.audio
        for n in range(a0, a1):
            samples = _load(store.get(keys.audio(s, r, i, n)))
            scanner.feed_audio(AudioBuffer(m.audio[n].t, m.audio[n].sample_rate, samples,
                                           m.audio_channels))
    key = keys.result(detector, s, r, i, batch.batch)
    store.put_json(key, {"detector": detector, "segment": i, "batch": batch.batch,
                         "evidence": scanner.evidence()})
    return EvidenceRef(detector=detector, batch=batch.batch, key=key)


# -- aggregate -------------------------------------------------------------------------------
@dataclass(frozen=True)
class StateSettings:
    """How the aggregator keeps the stream's state (see ``avmon.pipeline.state``)."""

    states: StateStore
    config: PipelineConfig
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


def aggregate(store: ObjectStore, notifier: Notifier, task: AggregateTask,
              analysis: AnalysisConfig | None = None, *,
              state: StateSettings) -> SegmentSummary:
    """Merge a segment's detector results into its report, store it, and merge the segment
    into its stream's state, publishing what that opened or closed.

    ``task.results`` has one entry per detector branch: its batch results, or the failure the
    workflow caught. Raises MissingResourceError if a result object is gone,
    StorageThrottledError if the state stays contended (the workflow retries the step).
    """
    analysis = analysis or AnalysisConfig()
    m, job = task.manifest, task.manifest.job
    evidence: dict[str, list[Evidence]] = {}
    failed: dict[str, StepError] = {}
    for branch in task.results:
        if isinstance(branch, BranchFailure):
            failed[branch.detector] = StepError(
                error=branch.error, cause=lambda_error_message(branch.cause))
            continue
        for ref in branch:
            evidence.setdefault(ref.detector, []).append(store.get_json(ref.key)["evidence"])
    defects = finalize_all(build(analysis, list(evidence)), evidence)
    report = SegmentReport(
        stream=job.stream, run=job.run, segment=job.segment,
        status="incomplete" if failed else "complete", start_s=job.start_s, end_s=m.end_s,
        start_utc=job.start_utc, video=m.video, audio=m.audio_info, frames=len(m.frames),
        evidence=evidence, failed=failed, defects=[d.to_dict() for d in defects])
    store.put_json(keys.report(job.stream, job.run, job.segment), report.to_dict())
    done = _advance(store, notifier, report, analysis, state)
    return SegmentSummary(stream=job.stream, run=job.run, segment=job.segment,
                          defects=len(defects), failed=sorted(failed), merged=done.merged,
                          events=len(done.published))


def record_failure(store: ObjectStore, notifier: Notifier, failure: SegmentFailure,
                   analysis: AnalysisConfig | None = None, *,
                   state: StateSettings) -> SegmentSummary:
    """Store the report of a segment whose conversion failed (status failed, with the cause)
    and merge it into the stream's state: a ``gap`` there, and defects across it end at it."""
    job = failure.job
    why = StepError(error=failure.error.error, cause=lambda_error_message(failure.error.cause))
    report = SegmentReport(stream=job.stream, run=job.run, segment=job.segment, status="failed",
                           start_s=job.start_s, start_utc=job.start_utc,
                           failed={"segment": why})
    store.put_json(keys.report(job.stream, job.run, job.segment), report.to_dict())
    done = _advance(store, notifier, report, analysis or AnalysisConfig(), state)
    return SegmentSummary(stream=job.stream, run=job.run, segment=job.segment, defects=0,
                          failed=["segment"], merged=done.merged, events=len(done.published))


def _advance(store: ObjectStore, notifier: Notifier, report: SegmentReport,
             analysis: AnalysisConfig, state: StateSettings) -> stream_state.Advance:
    def context(evidence: Callable[[int], Any]) -> stream_state.MergeContext:
        return stream_state.MergeContext(analysis, state.config.segment_seconds, evidence)

    # an aggregator still running after its timeout is dead: what it queued is published again
    return stream_state.advance(
        state.states, store, notifier, report, context,
        stale_after_s=float(state.config.timeout_s),
        expire_days=state.config.reports_expire_days, clock=state.clock, sleep=state.sleep)


# -- assemble --------------------------------------------------------------------------------
@dataclass
class StreamResult:
    report: Report
    failed: dict[int, dict[str, StepError]]  # segment -> what failed in it ("segment": all)
    segments: int


def assemble(segment_reports: Iterable[SegmentReport], source: str,
             analysis: AnalysisConfig | None = None) -> StreamResult:
    """The stream's report from the segment reports of one run (defects across segments
    joined); segments that failed whole contribute their failure, not evidence."""
    analysis = analysis or AnalysisConfig()
    reports = sorted(segment_reports, key=lambda r: r.segment)
    if len({(r.stream, r.run) for r in reports}) > 1:
        raise ValueError("assemble: segment reports of more than one run")
    evidence: dict[str, list[Evidence]] = {}
    failed = {r.segment: dict(r.failed) for r in reports if r.failed}
    analysed = [r for r in reports if r.status != "failed"]
    for r in analysed:
        for name, evs in r.evidence.items():
            evidence.setdefault(name, []).extend(evs)
    defects: list[Defect] = finalize_all(build(analysis, list(evidence)), evidence)
    v = next((r.video for r in analysed if r.video), None)
    a = next((r.audio for r in analysed if r.audio), None)
    video = VideoInfo(v["codec"], v["width"], v["height"], v["fps"],
                      frames=sum(r.frames for r in analysed),
                      decode_errors=sum(int((r.video or {}).get("decode_errors", 0))
                                        for r in analysed)) if v else None
    audio = AudioInfo(a["codec"], a["sample_rate"], a["channels"]) if a else None
    duration = max((float(r.end_s or 0.0) for r in analysed), default=0.0)
    info = StreamInfo(source, duration, video, audio)
    report = Report(info, tuple(defects), analysis.to_dict(), __version__)
    return StreamResult(report, failed, len(reports))
