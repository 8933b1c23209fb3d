"""What each Lambda of the serverless pipeline does, as plain functions over ports.

- ``ingest``: a stream lands in the bucket; it becomes a run (its id from the upload's event
  time and ETag or version); cut it into segments (no re-encoding), store them, record the run
  with its segment count, start one workflow execution per segment. A single live segment
  (named by any packager convention, see ``keys``) starts one execution, with its UTC start from
  the stream's playlist record. A redelivered event starts exactly the executions not started
  yet.
- ``ingest_playlist``: a live stream's HLS playlist lands; it is read, not decoded: the media
  sequence numbers it lists are checked against the segments that landed, and missing numbers
  and discontinuities become ``gap`` findings, published once each and kept in the stream's
  playlist record, which maps sequence numbers to the stream's clock and UTC.
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
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import Any

import numpy as np

from avmon import __version__
from avmon.detectors.base import Evidence
from avmon.detectors.config import AnalysisConfig
from avmon.detectors.registry import build, finalize_all
from avmon.errors import (
    MediaOpenError,
    MissingResourceError,
    PayloadTooLargeError,
    StorageThrottledError,
)
from avmon.events import GAP, DefectEvent, parse_utc, utc_iso
from avmon.frames import AudioBatcher, AudioBuffer, VideoFrame
from avmon.media.decode import MediaReader
from avmon.media.playlist import Playlist, Segment, parse_playlist
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
    PlaylistEntry,
    PlaylistRecord,
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
        if keys.live_segment(self.key) or keys.is_playlist(self.key):
            return keys.LIVE_RUN
        return keys.run_id(self.event_time, self.version or self.etag)


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
    Raises MediaOpenError for input that is not media (or a fragmented MP4 segment),
    MissingResourceError if the object is gone, StorageThrottledError if executions are still
    unstarted after every retry (the Lambda service retries the event, then hands it to the
    on-failure destination).
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
    if live is not None and upload.key.endswith(".m4s"):
        # a fragment decodes only after its initialization segment (EXT-X-MAP), which no
        # convention names reliably before the playlist does
        raise MediaOpenError(f"{upload.key}: a fragmented MP4 segment; the pipeline decodes"
                             " MPEG-TS segments (.ts)")
    if live is not None:
        with MediaReader(io.BytesIO(data)) as reader:
            # where its first picture is on the stream's clock (the transport stream's own
            # timestamps), as convert places it: not the earliest packet, often audio before it
            origin = round(reader.origin + reader.track_start(), 6)
        jobs.append(SegmentJob(stream=stream, run=run, segment=live.sequence, key=upload.key,
                               start_s=origin,
                               start_utc=_segment_utc(store, stream, live.sequence)))
    else:
        for seg in split_segments(io.BytesIO(data), config.segment_seconds):
            seg_key = keys.segment(stream, run, seg.index)
            store.put(seg_key, seg.data, "video/mp2t")
            jobs.append(SegmentJob(stream=stream, run=run, segment=seg.index, key=seg_key,
                                   start_s=round(seg.start_s, 6)))
    record = RunRecord(stream=stream, run=run, key=upload.key, etag=etag, version=upload.version,
                       event_time=upload.event_time, segments=0 if live else len(jobs),
                       live=live is not None, sequence=live.sequence if live else None,
                       start_s=jobs[0].start_s if live else None)
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


def _segment_utc(store: ObjectStore, stream: str, sequence: int) -> str | None:
    """A live segment's UTC start from its stream's playlist record: its own program date-time
    if a playlist already listed it; else its predecessor's plus that one's EXTINF (a packager
    writes a segment before the playlist that lists it). None without a record, or after a
    sequence number the record does not have."""
    record = PlaylistRecord.read(store, stream)
    if record is None:
        return None
    by_seq = {e.sequence: e for e in record.entries}
    if (e := by_seq.get(sequence)) is not None:
        return e.start_utc
    prev = by_seq.get(sequence - 1)
    if prev is None or prev.start_utc is None:
        return None
    return _plus(prev.start_utc, prev.duration)


def _job_utc(store: ObjectStore, job: SegmentJob) -> str | None:
    """A segment's UTC start when it is reported: the job's, or for a live segment ingested
    before any playlist listed it (a packager writes a segment, then the playlist), what the
    stream's playlist record says by now."""
    if job.start_utc is not None or job.run != keys.LIVE_RUN:
        return job.start_utc
    return _segment_utc(store, job.stream, job.segment)


def _plus(iso: str, seconds: float) -> str | None:
    return utc_iso(parse_utc(iso) + seconds)


WINDOW = 64  # the playlist record keeps this many latest entries: enough to map the live edge


@dataclass
class PlaylistResult:
    record: PlaylistRecord | None        # None: the event was stale
    gaps: list[dict[str, Any]] = field(default_factory=list)  # found by this playlist
    closed: int = 0                      # events an EXT-X-ENDLIST published (``finish``)


def ingest_playlist(store: ObjectStore, notifier: Notifier, upload: Upload,
                    analysis: AnalysisConfig | None = None, *,
                    state: StateSettings | None = None) -> PlaylistResult:
    """Read a live stream's HLS playlist (never decode it); record what it says and report what
    is missing.

    Every sequence number the playlist lists for the first time is checked against the objects
    under ``ingest/``: a listed segment that never landed, sequence numbers that left the
    playlist's window unlisted, and an EXT-X-DISCONTINUITY each become a ``gap`` finding,
    published as an open and a close event (the schema ``avmon watch`` speaks, ids derived from
    the stream and time, so a repeat is recognisable) and kept in the playlist record, where
    the stream's report finds them; a retry after a failed publish publishes them again (the
    same event ids). Segment start times map to the stream's clock through the
    latest live segment ingested (its first timestamp, plus the EXTINF durations between), and
    to UTC through EXT-X-PROGRAM-DATE-TIME.

    A playlist with EXT-X-ENDLIST also ends the stream's state (with ``state``): if the
    stream's last segment was merged before this playlist landed, what is still open is
    closed now (``avmon.pipeline.state.finish``); ``closed`` counts those events.

    Raises MediaOpenError for a file that is not a media playlist of packager-named segments
    (a master playlist, names ``keys.live_segment`` does not recognise, two streams in one),
    MissingResourceError if the object is gone, StorageThrottledError if publishing or the
    record's write is throttled (the event is retried).
    """
    data = store.get(upload.key)
    etag = upload.etag.strip('"')
    if etag and "-" not in etag and hashlib.md5(data).hexdigest() != etag:
        return PlaylistResult(None)  # rewritten since: its newer version's event reads it
    playlist = parse_playlist(data.decode("utf-8", "replace"), upload.key)
    if playlist.unsupported == "a master playlist":
        raise MediaOpenError(f"{upload.key}: a master playlist; upload each rendition's media"
                             " playlist (its segments are one stream each)")
    located = _locate(upload.key, playlist)
    streams = sorted({live.stream for _, _, live in located})
    if len(streams) > 1:
        raise MediaOpenError(f"{upload.key}: lists segments of {len(streams)} streams"
                             f" ({', '.join(streams[:3])}); a media playlist is one stream")
    stream = streams[0] if streams else keys.stream_id_of(upload.key)
    before = PlaylistRecord.read(store, stream)
    anchor = _anchor(store, stream)
    entries = _entries(located, before, anchor)
    checked = before.checked_through if before is not None else None
    last = entries[-1].sequence if entries else playlist.media_sequence - 1
    if checked is not None and last < checked - len(entries) - 1:
        checked = None  # numbering went far back: the packager restarted, from 0
    gaps = _gaps(store, playlist, entries, checked)
    kept = {e.sequence: e for e in (before.entries if before else ()) if checked is not None}
    kept.update((e.sequence, e) for e in entries)
    record = PlaylistRecord(
        stream=stream, run=keys.LIVE_RUN, key=upload.key, event_time=upload.event_time,
        target_duration=playlist.target_duration, ended=playlist.ended,
        checked_through=max(last, checked if checked is not None else last),
        entries=tuple(kept[s] for s in sorted(kept)[-WINDOW:]),
        gaps=(*(before.gaps if before else ()), *gaps))
    # published before the record says they were found: a failed publish fails the invocation,
    # Lambda retries it and the retry finds them again (at least once, never lost)
    for gap in gaps:
        for event in _gap_events(stream, gap):
            notifier.publish(f"avmon: gap in {stream}", event.to_dict())
    store.put_json(keys.playlist_record(stream), record.to_dict())
    closed = 0
    if playlist.ended and state is not None and entries:
        done = stream_state.finish(state.states, store, notifier, stream,
                                   _context(analysis or AnalysisConfig(), state),
                                   _writes(state))
        closed = len(done.published)
    return PlaylistResult(record, gaps, closed)


Located = tuple[Segment, str, keys.LiveSegment]


def _locate(key: str, playlist: Playlist) -> list[Located]:
    """Each listed segment with its object key and (stream, number) from its name."""
    out = []
    for seg in playlist.segments:
        seg_key = keys.resolve(key, seg.name or seg.uri)
        live = keys.live_segment(seg_key)
        if live is None:
            raise MediaOpenError(
                f"{key}: segment {seg.name!r} is not named as a live segment (a name ending in"
                " its number, .ts or .m4s, in a folder under ingest/)")
        out.append((seg, seg_key, live))
    return out


def _anchor(store: ObjectStore, stream: str) -> tuple[int, float] | None:
    """(sequence, start on the stream's clock) of the latest live segment ingested, if any."""
    try:
        run = RunRecord.model_validate(store.get_json(keys.run_record(stream, keys.LIVE_RUN)))
    except MissingResourceError:
        return None
    if run.sequence is None or run.start_s is None:
        return None
    return run.sequence, run.start_s


def _entries(located: list[Located], before: PlaylistRecord | None,
             anchor: tuple[int, float] | None) -> list[PlaylistEntry]:
    """The playlist's segments as entries, with start times on the stream's clock: from the
    anchor segment (a real first timestamp) forward and back by EXTINF durations, never across
    a discontinuity (timestamps may restart there); times an earlier playlist mapped are kept."""
    segs = [seg for seg, _, _ in located]
    starts = {e.sequence: e.start_s for e in (before.entries if before else ())
              if e.start_s is not None}
    if anchor is not None:
        starts[anchor[0]] = anchor[1]
        if segs and anchor[0] == segs[-1].sequence + 1:  # it landed before this playlist's read
            starts.setdefault(segs[-1].sequence, anchor[1] - segs[-1].duration)
    for prev, seg in pairwise(segs):
        if seg.sequence not in starts and prev.sequence in starts and not seg.discontinuity:
            starts[seg.sequence] = starts[prev.sequence] + prev.duration
    for seg, nxt in reversed(list(pairwise(segs))):
        if seg.sequence not in starts and nxt.sequence in starts and not nxt.discontinuity:
            starts[seg.sequence] = starts[nxt.sequence] - seg.duration
    return [PlaylistEntry(sequence=seg.sequence, segment=live.sequence, key=key,
                          duration=seg.duration, discontinuity=seg.discontinuity,
                          start_s=None if (t := starts.get(seg.sequence)) is None
                          else round(t, 6),
                          start_utc=utc_iso(seg.program_time))
            for seg, key, live in located]


def _gaps(store: ObjectStore, playlist: Playlist, entries: list[PlaylistEntry],
          checked: int | None) -> list[dict[str, Any]]:
    """The gap findings of the sequence numbers this playlist lists for the first time (after
    ``checked``): numbers that left the window unlisted, listed segments that never landed (one
    finding per run of them), discontinuities."""
    # where the stream's clock is unknown (no segment landed yet), times are the playlist's:
    # its EXTINF durations added up from the first segment listed, and the finding says so
    clock = "stream"
    if entries and all(e.start_s is None for e in entries):
        clock, t = "playlist", 0.0
        timed = []
        for e in entries:
            timed.append(e.model_copy(update={"start_s": t}))
            t += e.duration
        entries = timed
    found: list[dict[str, Any]] = []

    def gap(start: float | None, end: float | None, start_utc: str | None,
            end_utc: str | None, details: dict[str, Any]) -> None:
        if start is None or end is None:
            return  # nowhere on the stream's clock to put it: the record keeps the entries
        if clock == "playlist":
            details["clock"] = "playlist"
        found.append({"detector": GAP, "start_s": round(start, 3), "end_s": round(end, 3),
                      "confidence": 1.0, "details": details, "start_utc": start_utc,
                      "end_utc": end_utc})

    new = [e for e in entries if checked is None or e.sequence > checked]
    if checked is not None and new and new[0].sequence > checked + 1:
        head, n = new[0], new[0].sequence - checked - 1
        end = head.start_s
        gap(None if end is None else end - n * playlist.target_duration, end, None,
            head.start_utc, {"reason": "sequence numbers left the playlist before it was read",
             "media_sequence": [checked + 1, head.sequence - 1], "estimated": True})
    missing: list[PlaylistEntry] = []
    for entry in [*new, None]:
        if entry is not None and entry.key not in store.list(entry.key):
            missing.append(entry)
            continue
        if missing:
            a, b = missing[0], missing[-1]
            gap(a.start_s, None if b.start_s is None else b.start_s + b.duration, a.start_utc,
                None if b.start_utc is None else _plus(b.start_utc, b.duration), {
                "reason": "segments listed in the playlist never arrived",
                "media_sequence": a.sequence if a is b else [a.sequence, b.sequence],
                "segments": [m.segment for m in missing]})
            missing = []
    by_seq = {e.sequence: e for e in entries}
    for e in new:
        if e.discontinuity:
            prev = by_seq.get(e.sequence - 1)
            at = prev.start_s + prev.duration if prev and prev.start_s is not None \
                else e.start_s
            gap(at, at, e.start_utc, e.start_utc, {"reason": "EXT-X-DISCONTINUITY",
                                                    "media_sequence": e.sequence})
    return found


def _gap_events(stream: str, gap: dict[str, Any]) -> list[DefectEvent]:
    """A gap as ``avmon watch`` announces one: an open and a close, one defect id."""
    opened = DefectEvent("open", stream, GAP, gap["start_s"], None, gap["start_utc"], None,
                         gap["confidence"], gap["details"])
    return [opened, replace(opened, event="close", end_s=gap["end_s"], end_utc=gap["end_utc"],
                            id=f"{opened.defect_id}/close")]


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
        start_utc=_job_utc(store, job), video=m.video, audio=m.audio_info, frames=len(m.frames),
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
                           start_s=job.start_s, start_utc=_job_utc(store, job),
                           failed={"segment": why})
    store.put_json(keys.report(job.stream, job.run, job.segment), report.to_dict())
    done = _advance(store, notifier, report, analysis or AnalysisConfig(), state)
    return SegmentSummary(stream=job.stream, run=job.run, segment=job.segment, defects=0,
                          failed=["segment"], merged=done.merged, events=len(done.published))


def _advance(store: ObjectStore, notifier: Notifier, report: SegmentReport,
             analysis: AnalysisConfig, state: StateSettings) -> stream_state.Advance:
    return stream_state.advance(state.states, store, notifier, report,
                                _context(analysis, state), _writes(state))


def _context(analysis: AnalysisConfig, state: StateSettings,
             ) -> Callable[[Callable[[int], Any]], stream_state.MergeContext]:
    def context(evidence: Callable[[int], Any]) -> stream_state.MergeContext:
        return stream_state.MergeContext(analysis, state.config.segment_seconds, evidence)
    return context


def _writes(state: StateSettings) -> stream_state.Writes:
    # a writer still running after a Lambda timeout is dead: what it queued is published again
    return stream_state.Writes(float(state.config.timeout_s), state.config.reports_expire_days,
                               state.clock, state.sleep)


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
