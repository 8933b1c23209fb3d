"""The live monitor: one source watched until stopped, defects announced while they happen.

    monitor = Monitor("udp://127.0.0.1:5000", stream_id="ch1")
    for event in monitor.events():      # DefectEvent: open / update / close
        publish(event)                   # monitor.stop() from any thread ends the loop
    monitor.stats                        # MonitorStats: frames, lag, open defects, ...

It reuses the detectors' scanner/finalize split exactly as the serverless pipeline does: the
stream is scanned in chunks of media (a fresh scanner per chunk, as the pipeline has one per
segment), and every half second of media the evidence of the retained chunks plus the current
one is merged by each detector's ``finalize``. Successive results are diffed: a defect that
appears is opened, one whose end falls behind the media edge is closed. Chunks older than
``retention_s`` are dropped, so memory stays flat however long the watch runs; a defect that is
still open keeps the start it was announced with.

Two threads: an ingest thread opens the source (reconnecting with backoff), decodes and queues
frames; the caller's thread (``events()``) scans, finalizes, and is the wall-clock watchdog that
raises ``input_loss`` when no media has arrived for ``input_timeout`` seconds. A service
watching many streams runs one ``events()`` loop per stream in its own thread, reads ``stats``
from any thread, and calls ``stop()`` to end one stream without touching the others.
"""

from __future__ import annotations

import bisect
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from avmon.detectors.avsync import AvSyncConfig, Envelopes, correlate_window, window_layout
from avmon.detectors.base import Detector, Evidence
from avmon.detectors.config import AnalysisConfig
from avmon.detectors.registry import build
from avmon.errors import AvmonError, MediaOpenError
from avmon.events import (
    GAP,
    INPUT_LOSS,
    ORIGIN_UNREACHABLE,
    DefectEvent,
    EventKind,
    utc_iso,
)
from avmon.frames import AudioBatcher, AudioBuffer, VideoFrame
from avmon.media.decode import MediaReader, Source
from avmon.model import Defect
from avmon.monitor.analysis import runnable

Clock = Callable[[], float]


@dataclass(frozen=True)
class MonitorStats:
    """A snapshot of one monitor, for metrics (``avmon serve`` exports these).

    ``lag_s`` is how far the last decoded media is behind the wall clock (UTC of the media from
    EXT-X-PROGRAM-DATE-TIME or the receive clock, against now); None before any media.
    """

    stream: str
    state: str = "starting"          # starting | live | input_lost | stopped | ended
    frames: int = 0
    audio_s: float = 0.0
    decode_errors: int = 0
    media_time_s: float | None = None
    lag_s: float | None = None
    open_defects: int = 0
    events: int = 0
    reconnects: int = 0
    gaps: int = 0
    last_media_wall: float | None = None  # POSIX time the last media arrived
    evidence_chunks: int = 0         # chunks of evidence kept (bounded by retention_s)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# -- what the ingest thread hands to the caller's thread --------------------------------------
@dataclass(frozen=True)
class _Opened:
    has_video: bool
    has_audio: bool
    fps: float


@dataclass(frozen=True)
class _Ended:
    reason: str
    clean: bool          # the source said it ended (a file, an HLS end tag): not a loss
    final: bool = False  # a live source that failed and is not reopened: the watch ends


@dataclass(frozen=True)
class _OpenFailed:
    reason: str

    @property
    def timed_out(self) -> bool:
        # FFmpeg's interrupt callback (PyAV's timeout) ends a wait as "immediate exit requested"
        return any(w in self.reason for w in ("immediate exit requested", "timed out"))


@dataclass(frozen=True)
class _Health:
    """A finding raised by the input itself (an HLS reader): set or cleared."""

    detector: str
    active: bool
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Anchor:
    """Media time ``media_t`` was on air at POSIX time ``wall``."""

    media_t: float
    wall: float


@dataclass(frozen=True)
class _Counters:
    decode_errors: int


@dataclass(frozen=True)
class _Corrupt:
    """The demuxer flagged a packet: transport packets before it were lost (MPEG-TS
    continuity counter)."""

    track: str
    t: float | None
    duration: float


@dataclass
class _Burst:
    """Corrupt packets close together: one ``gap``."""

    start: float
    end: float
    packets: int
    tracks: set[str]
    behind: bool = False  # before the media edge: a restarted sender (its clock went back)


@dataclass(frozen=True)
class _Fatal:
    error: AvmonError


_Item = (VideoFrame | AudioBuffer | _Opened | _Ended | _OpenFailed | _Health | _Anchor
         | _Counters | _Corrupt | _Fatal)
_BURST_S = 1.0  # corrupt packets less than this apart (media time) are one gap


@dataclass
class _OpenDefect:
    detector: str
    start_s: float
    start_utc: str | None
    last_end: float
    confidence: float
    details: dict[str, Any]
    defect_id: str
    updates: int = 0


class _FinalWindows:
    """A/V sync's correlation windows that can no longer change, each correlated once.

    The live monitor re-merges A/V sync's evidence while the stream runs, and its chunks
    (10 s) are shorter than a correlation window (15 s plus the search on both sides), so no
    scanner sees a window whole and ``finalize`` would correlate every window of the retained
    evidence again at each merge (most of a live stream's CPU in a profile). A window whose bins
    all lie behind the media edge reads nothing that can still change: it is correlated here
    once, and handed to ``finalize`` as evidence ``windows``, which it takes as already done
    (as it takes the windows a scanner saw whole). ``finalize`` then correlates only the
    windows still growing at the live edge.
    """

    def __init__(self, config: AvSyncConfig) -> None:
        self.config = config
        self._done: dict[int, list[float] | None] = {}  # window -> evidence row (None: no data)
        self._merged_upto: int | None = None  # the last final window when A/V sync was merged

    def clear(self) -> None:
        """Forget everything (the stream's clock restarted: window indices repeat)."""
        self._done.clear()
        self._merged_upto = None

    def _last_final(self, final_s: float) -> int:
        hop, width, reach = window_layout(self.config)
        return (int(final_s / self.config.bin_s) - width - reach) // hop

    def due(self, final_s: float | None) -> bool:
        """True when a window became final since the last merge, and marks the merge done.

        A/V sync's result changes with its windows: re-merging once per completed window
        (every ``corr_hop_s``) measures each window still growing at the edge once per hop
        (the newest with ``corr_min_s`` to ``corr_min_s + corr_hop_s`` of media), instead of
        correlating every growing window again every few frames."""
        if final_s is None:
            return False
        last = self._last_final(final_s)
        if self._merged_upto is not None and last <= self._merged_upto:
            return False
        self._merged_upto = last
        return True

    def evidence(self, evidence: list[Evidence], final_s: float | None) -> list[Evidence]:
        """``evidence`` plus the final windows within its envelopes (``final_s``: media time
        before which every envelope bin is final; None while unknown)."""
        pieces = [p for e in evidence for p in e.get("envelopes", []) if p.get("audio")]
        if not pieces:
            return evidence
        base = min(int(p["start"]) for p in pieces)
        hop, width, reach = window_layout(self.config)
        first = base // hop  # the first window finalize looks at
        for k in [k for k in self._done if k < first]:  # its evidence expired
            del self._done[k]
        if final_s is not None:
            end = max(int(p["start"]) + len(p["audio"]) for p in pieces)
            last = min(self._last_final(final_s), (end - width - reach) // hop)
            env: Envelopes | None = None
            for k in range(first, last + 1):
                if k in self._done:
                    continue
                env = env or Envelopes.join(pieces)
                est = correlate_window(env, k, self.config) if env is not None else None
                self._done[k] = None if est is None else [
                    est.window, est.offset_ms, est.peak, est.psr, est.seconds, est.events]
        rows = [row for row in self._done.values() if row is not None]
        return [*evidence, {"windows": rows}] if rows else evidence


def default_stream_id(source: Source) -> str:
    """A readable id for a source: the host:port and path of a URL, a file's name."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if "://" in text:
            parts = urlsplit(text)
            return (parts.netloc + parts.path).strip("/") or text
        return os.path.basename(text) or text
    return str(getattr(source, "name", "stream"))


def is_live_source(source: Source) -> bool:
    """A URL is live (its end is a loss unless it says otherwise); a local file is not."""
    return isinstance(source, (str, os.PathLike)) and "://" in os.fspath(source)


def is_hls(source: Source) -> bool:
    if not isinstance(source, (str, os.PathLike)):
        return False
    text = os.fspath(source)
    return text.startswith(("http://", "https://")) and urlsplit(text).path.endswith(".m3u8")


class Monitor:
    """Watches one live source and yields DefectEvents while defects happen.

    ``source``: anything FFmpeg opens live (``udp://``, ``srt://``, an ``http(s)`` MPEG-TS
    stream, an HLS ``.m3u8`` playlist, which avmon fetches itself to see its segments) or a
    local file (watched at decode speed; its end is a clean end). ``detectors``: names (all by
    default). ``input_timeout``: seconds without media before ``input_loss`` opens.
    ``reconnect``: reopen a live source that ends or fails, with exponential backoff from
    ``backoff[0]`` to ``backoff[1]`` seconds.

    Raises ConfigError (bad detector names) at construction; input failures are never raised:
    they are findings: ``input_loss`` (its ``details.cause`` says ``origin_unreachable`` or
    ``stale_playlist`` when that is known) and ``gap``.
    ``events()`` may be consumed once; ``stop()`` is safe from any thread or signal handler.
    """

    def __init__(self, source: Source, config: AnalysisConfig | None = None, *,
                 stream_id: str | None = None, detectors: Sequence[str] | None = None,
                 input_timeout: float = 5.0, reconnect: bool = True,
                 backoff: tuple[float, float] = (0.5, 8.0), eval_interval_s: float = 0.5,
                 chunk_s: float = 10.0,
                 retention_s: float = 30.0,
                 gap_threshold_s: float = 0.5, clock: Clock = time.time) -> None:
        self.source = source
        self.config = config or AnalysisConfig()
        self.stream_id = stream_id or default_stream_id(source)
        self.detectors: list[Detector] = build(self.config, detectors)
        self.input_timeout = input_timeout
        self.reconnect = reconnect
        self.backoff = backoff
        self.eval_interval_s = eval_interval_s
        self.chunk_s = chunk_s
        self.retention_s = retention_s
        self.gap_threshold_s = gap_threshold_s
        self.clock = clock
        self.live = is_live_source(source)
        # every open and read of a live source gives up after this (FFmpeg's interrupt callback)
        self._read_timeout = max(2.0, input_timeout) if self.live else None
        self._stop = threading.Event()
        self._queue: queue.Queue[_Item] = queue.Queue(maxsize=64)
        self._lock = threading.Lock()
        self._stats = MonitorStats(stream=self.stream_id)
        self._consumed = False
        # detection state, owned by the thread running events()
        self._active: list[Detector] = []
        self._scanners: dict[str, Any] = {}
        self._chunks: deque[tuple[float, dict[str, Evidence]]] = deque()
        self._chunk_start: float | None = None
        self._batcher = AudioBatcher(seconds=0.2)
        self._video_edge: float | None = None
        self._audio_edge: float | None = None   # end of the audio the scanners were fed
        self._audio_seen: float | None = None   # end of the audio received
        self._fps = 25.0
        self._has_video = True
        self._next_eval: float = float("-inf")
        self._open: dict[str, _OpenDefect] = {}
        self._closed: deque[tuple[str, float, float]] = deque(maxlen=256)
        self._anchors: deque[_Anchor] = deque(maxlen=64)
        self._need_anchor = True
        self._program_clock = False  # UTC from the playlist's program date-time, not receipt
        self._last_media_wall: float | None = None
        self._pending_gap_details: dict[str, Any] = {}
        self._causes: dict[str, dict[str, Any]] = {}  # why the input may be lost, latest last
        self._burst: _Burst | None = None  # continuity errors not yet announced
        self._started_wall = 0.0
        self._hls_by_ffmpeg = False  # HLS this reader cannot feed goes to FFmpeg's demuxer
        self._clock_epoch = 0  # times the stream's clock restarted (media times repeat)
        self._av_windows = _FinalWindows(self.config.av_sync)

    # -- public ------------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the watch to end: ``events()`` closes the open defects and returns."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def stats(self) -> MonitorStats:
        """A consistent snapshot (safe from any thread)."""
        with self._lock:
            snap = self._stats
        if snap.lag_s is not None and snap.last_media_wall is not None:
            # the lag measured when media last arrived, grown by the time since
            lag = snap.lag_s + max(0.0, self.clock() - snap.last_media_wall)
            snap = replace(snap, lag_s=round(lag, 3))
        return snap

    def events(self) -> Iterator[DefectEvent]:
        """Run the watch, yielding events as they happen, until ``stop()`` or the source ends.

        A source that ends cleanly (a local file, an HLS playlist's end tag) ends the iteration
        after closing what is open; a live source that ends otherwise is an ``input_loss`` and
        is reopened. Raises MediaOpenError for a local file that cannot be read, AvmonError if
        called twice.
        """
        if self._consumed:
            raise AvmonError("Monitor.events() can be consumed once")
        self._consumed = True
        self._started_wall = self.clock()
        ingest = threading.Thread(target=self._ingest, name=f"ingest-{self.stream_id}",
                                  daemon=True)
        ingest.start()
        try:
            yield from self._run()
        finally:
            self._stop.set()
            self._join_ingest(ingest)

    def _join_ingest(self, ingest: threading.Thread) -> None:
        """Wait for the ingest thread to close its input, which it does in its own thread.

        Stopped, it may be inside FFmpeg (opening a silent UDP input, waiting for a packet) until
        the read timeout passes, and PyAV's interrupt callback re-enters Python from there
        several times a second. A watch that returned before that would let its caller exit
        the process with the thread still in FFmpeg: the callback then runs against an
        interpreter being torn down and crashes the process (SIGSEGV after a clean stop). The
        wait is bounded by the read timeout (plus the HLS reader's own stop), not forever:
        a file-like source that never returns from a read cannot be waited for."""
        ingest.join(timeout=(self._read_timeout or 0.0) + 10.0)

    # -- the caller's thread: scan, finalize, diff, watchdog ----------------------------------
    def _run(self) -> Iterator[DefectEvent]:
        ended: _Ended | None = None
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                yield from self._watchdog()
                continue
            if isinstance(item, (VideoFrame, AudioBuffer)):
                yield from self._media(item)
            elif isinstance(item, _Opened):
                self._opened(item)
                yield from self._cause(ORIGIN_UNREACHABLE, False)
            elif isinstance(item, _OpenFailed):
                if not item.timed_out:  # a silent UDP input is a loss, not an unreachable origin
                    yield from self._cause(ORIGIN_UNREACHABLE, True, {"reason": item.reason})
                yield from self._watchdog()
            elif isinstance(item, _Health):
                if item.detector == GAP:
                    self._pending_gap_details.update(item.details)
                else:
                    yield from self._cause(item.detector, item.active, item.details)
            elif isinstance(item, _Anchor):
                self._program_clock = True
                self._anchors.append(item)
                self._need_anchor = False
            elif isinstance(item, _Counters):
                self._update_stats(decode_errors=self._stats.decode_errors + item.decode_errors)
            elif isinstance(item, _Corrupt):
                yield from self._corrupt(item)
            elif isinstance(item, _Fatal):
                raise item.error
            elif isinstance(item, _Ended):
                if item.clean:
                    ended = item
                    break
                self._flush_audio()
                if item.final:  # not reopened: the loss is announced now, then the watch ends
                    yield from self._lost()
                    ended = item
                    break
                yield from self._watchdog()
        self._flush_audio()
        yield from self._announce_burst()
        yield from self._evaluate(force=True)
        yield from self._close_all(ended.reason if ended else "watch stopped")
        self._update_stats(state="ended" if ended else "stopped")

    def _opened(self, item: _Opened) -> None:
        self._fps = item.fps or 25.0
        self._has_video = item.has_video
        self._active, _ = runnable(self.detectors, item.has_video, item.has_audio)
        # a (re)connection starts fresh scanners: nothing joins across it but real evidence
        self._rotate()
        self._need_anchor = True

    def _media(self, item: VideoFrame | AudioBuffer) -> Iterator[DefectEvent]:
        now = self.clock()
        if not self._scanners:
            self._active, _ = runnable(self.detectors, True, True)
            self._rotate()
        is_video = isinstance(item, VideoFrame)
        edge = self._video_edge if is_video else self._audio_seen
        t_end = item.t + item.duration
        # The demuxer hands over the last packet it held when a read times out: late media,
        # not media arriving again. Only fresh media (or a restart's reset clock) feeds the
        # watchdog and ends an input loss.
        fresh = edge is None or item.t >= edge - 0.01 or item.t < edge - 1.0
        if fresh:
            self._last_media_wall = now
        # jumps are judged on one track (video if any): audio demuxed just before a video jump
        # would otherwise report the same gap twice
        primary = is_video or not self._has_video
        if primary and edge is not None and (
                item.t > edge + max(self.gap_threshold_s, 3.0 / self._fps)
                or item.t < edge - 1.0):
            yield from self._discontinuity(edge, item.t, now)
            edge = None  # the tracks start again from this item
        if self._need_anchor or not self._anchors:
            self._anchors.append(_Anchor(item.t, now))
            self._need_anchor = False
        elif not self._program_clock and fresh:
            # On the receive clock, the media that arrived soonest after its time is the best
            # estimate of when it was sent: what the demuxer buffered while probing arrives late.
            last = self._anchors[-1]
            if now - item.t < last.wall - last.media_t - 0.001:
                self._anchors[-1] = _Anchor(last.media_t, last.media_t + (now - item.t))
        if INPUT_LOSS in self._open:
            # Back once media runs past where it was lost (the demuxer's leftover packet after
            # a read timeout does not), or restarts on a clock that went back.
            lost_at = self._open[INPUT_LOSS].start_s
            if item.t >= lost_at + 0.5 or item.t < lost_at - 1.0:
                yield from self._set(INPUT_LOSS, False, end_s=item.t)
        if self._chunk_start is None:
            self._chunk_start = item.t
        elif isinstance(item, VideoFrame) and item.t >= self._chunk_start + self.chunk_s and (
                item.keyframe or item.t >= self._chunk_start + 3 * self.chunk_s):
            # chunks start at keyframes, as the pipeline's segments do: damage propagated by
            # prediction ends at a keyframe, so no scanner state is lost at the boundary
            self._rotate(item.t)
        if is_video:
            assert isinstance(item, VideoFrame)
            for s in self._scanners.values():
                s.feed_video(item)
            self._video_edge = t_end if edge is None else max(edge, t_end)
            lag = now - self._wall_of(self._video_edge)
            with self._lock:
                self._stats = replace(self._stats, frames=self._stats.frames + 1,
                                      media_time_s=round(self._video_edge, 3), state="live",
                                      last_media_wall=now, lag_s=round(lag, 3))
        else:
            assert isinstance(item, AudioBuffer)
            if (batch := self._batcher.push(item)) is not None:
                self._feed_audio(batch)
            self._audio_seen = t_end if edge is None else max(edge, t_end)
            with self._lock:
                media = self._stats.media_time_s if self._video_edge is not None else \
                    round(self._audio_seen, 3)
                self._stats = replace(self._stats, audio_s=self._stats.audio_s + item.duration,
                                      media_time_s=media, state="live", last_media_wall=now)
        current = max((e for e in (self._video_edge, self._audio_edge) if e is not None),
                      default=None)
        if self._burst is not None and current is not None and not self._burst.behind \
                and current >= self._burst.end + _BURST_S:
            yield from self._announce_burst()
        if current is not None and current >= self._next_eval:
            self._next_eval = current + self.eval_interval_s
            yield from self._evaluate()

    def _feed_audio(self, batch: AudioBuffer) -> None:
        for s in self._scanners.values():
            s.feed_audio(batch)
        # the audio detectors' edge is what they were fed, not what is waiting in the batcher
        end = batch.end()
        self._audio_edge = end if self._audio_edge is None else max(self._audio_edge, end)

    def _flush_audio(self) -> None:
        if (batch := self._batcher.flush()) is not None and self._scanners:
            self._feed_audio(batch)

    def _discontinuity(self, edge: float, t: float, now: float) -> Iterator[DefectEvent]:
        """Media jumped (lost segments, a restarted encoder): a gap, and fresh scanners."""
        self._flush_audio()
        yield from self._evaluate(force=True)
        self._rotate()
        self._video_edge = self._audio_edge = self._audio_seen = None
        if not self._program_clock:  # an HLS segment brings its own program date-time
            if t < edge:  # anchors are looked up by media time: the old clock's would match
                self._anchors.clear()
            self._anchors.append(_Anchor(t, now))
        details = {"from_s": round(edge, 3), "to_s": round(t, 3), **self._pending_gap_details}
        self._pending_gap_details = {}
        if self._burst is not None:  # the counters jumped with the timestamps: one gap
            details["continuity_errors"] = self._burst.packets
            self._burst = None
        if t < edge:
            details["reason"] = "timestamps went back"
            self._clock_epoch += 1
            # evidence and closed intervals on the old clock would merge with the new clock's
            # media at the same times: the new clock starts with none, and what was open on
            # the old clock ends where that clock stopped
            for key in [k for k, o in self._open.items()
                        if o.detector != INPUT_LOSS]:
                yield from self._close(key, self._open[key].last_end,
                                       {**self._open[key].details, "closed_by": GAP})
            self._chunks.clear()
            self._closed.clear()
            self._av_windows.clear()
            self._next_eval = float("-inf")
        # one cause, one alert: a jump across an input loss is that loss coming back, not
        # another finding
        if INPUT_LOSS in self._open:
            yield from self._set(INPUT_LOSS, False, end_s=t)
        else:
            start, end = (edge, t) if t > edge else (t, t)
            yield from self._gap(start, end, details)

    def _gap(self, start: float, end: float, details: dict[str, Any]) -> Iterator[DefectEvent]:
        """A gap is announced once it is known whole: open and close together."""
        gap_id = self._defect_id(GAP, start)
        yield self._emit("open", GAP, start, None, 1.0, details, gap_id)
        yield self._emit("close", GAP, start, end, 1.0, details, gap_id)
        with self._lock:
            self._stats = replace(self._stats, gaps=self._stats.gaps + 1)

    def _corrupt(self, item: _Corrupt) -> Iterator[DefectEvent]:
        """Transport packets were lost before a packet (MPEG-TS continuity counter): a gap,
        announced once the media has run past it (packets lost close together are one)."""
        if INPUT_LOSS in self._open:
            return  # a sender coming back restarts its counters: that is the loss ending
        edge = max((e for e in (self._video_edge, self._audio_edge) if e is not None),
                   default=0.0)
        t = item.t if item.t is not None else edge
        b = self._burst
        if b is not None and t - b.end > _BURST_S:
            yield from self._announce_burst()
            b = None
        if b is None:
            # a sender that restarted restarts its counters and its clock: the timestamp jump
            # that follows is the one gap, and takes this burst in
            self._burst = _Burst(t, t + item.duration, 1, {item.track},
                                 behind=t < edge - 3.0)
        else:
            b.start, b.end = min(b.start, t), max(b.end, t + item.duration)
            b.packets += 1
            b.tracks.add(item.track)

    def _announce_burst(self) -> Iterator[DefectEvent]:
        b, self._burst = self._burst, None
        if b is None or INPUT_LOSS in self._open:
            return
        yield from self._gap(b.start, b.end, {
            "reason": "continuity errors: transport packets lost", "packets": b.packets,
            "tracks": sorted(b.tracks)})

    def _rotate(self, at: float | None = None) -> None:
        """Keep the current chunk's evidence, start fresh scanners, drop expired chunks."""
        if self._scanners:
            end = max((e for e in (self._video_edge, self._audio_edge) if e is not None),
                      default=0.0)
            self._chunks.append((end, {n: s.evidence() for n, s in self._scanners.items()}))
        self._scanners = {d.name: d.scanner() for d in self._active}
        self._chunk_start = at
        edge = max((e for e in (self._video_edge, self._audio_edge) if e is not None),
                   default=None)
        if edge is not None:
            while self._chunks and self._chunks[0][0] < edge - self.retention_s:
                self._chunks.popleft()
        with self._lock:
            self._stats = replace(self._stats, evidence_chunks=len(self._chunks))

    def _evaluate(self, force: bool = False) -> Iterator[DefectEvent]:
        if not self._scanners and not self._chunks:
            return
        final_s = self._final_s()
        # A/V sync's result changes when a correlation window completes (every 5 s); between
        # two, re-merging would correlate the windows growing at the edge again for little
        av_due = self._av_windows.due(final_s) or force
        evaluated = [d for d in self._active if av_due or d.name != "av_sync"]
        found: list[Defect] = []
        for det in evaluated:
            evidence = [chunk[det.name] for _, chunk in self._chunks if det.name in chunk]
            if det.name in self._scanners:
                evidence.append(self._scanners[det.name].evidence())
            if det.name == "av_sync":
                evidence = self._av_windows.evidence(evidence, final_s)
            # "could not measure here" is in the report, never an alert
            found += [d for d in det.finalize(evidence) if not d.unmeasured]
        yield from self._diff(found, {d.name for d in evaluated})

    def _final_s(self) -> float | None:
        """Media time before which A/V sync's envelopes can no longer change: both tracks fed
        past it, with a margin for the bins placed between two pictures and for late packets
        (media up to 1 s behind the edge is still fed; older media is a restarted clock)."""
        if self._video_edge is None or self._audio_edge is None:
            return None
        return min(self._video_edge, self._audio_edge) - 1.0 - 2.0 / self._fps

    def _edge_for(self, detector: str) -> float | None:
        if detector in ("silence", "clipping"):
            return self._audio_edge
        if detector == "av_sync":
            edges = [e for e in (self._video_edge, self._audio_edge) if e is not None]
            return min(edges) if edges else None
        return self._video_edge

    def _slack(self, detector: str) -> float:
        if detector == "av_sync":
            # an A/V offset ends at the last cue that shows it; cues come every few seconds
            return self.config.av_sync.neighbourhood_s + 1.0
        if detector in ("silence", "clipping"):
            return 0.05
        return 1.5 / self._fps

    def _diff(self, found: list[Defect], evaluated: set[str]) -> Iterator[DefectEvent]:
        """Turn one finalize result into events against what is open."""
        seen: set[str] = set()
        for d in sorted(found, key=lambda d: (d.start_s, d.detector)):
            edge = self._edge_for(d.detector)
            at_edge = edge is not None and d.end_s >= edge - self._slack(d.detector)
            finding = _finding(d.detector, d.details)
            match = next((k for k, o in self._open.items()
                          if _finding(o.detector, o.details) == finding and k not in seen
                          and d.start_s <= o.last_end + 0.05 and d.end_s >= o.start_s), None)
            if match is not None:
                seen.add(match)
                o = self._open[match]
                o.last_end = max(o.last_end, d.end_s)
                if not at_edge:
                    yield from self._close(match, d.end_s, dict(d.details))
                elif (dict(d.details) != o.details
                      or abs(d.confidence - o.confidence) >= 0.1):
                    o.confidence, o.details = d.confidence, dict(d.details)
                    o.updates += 1
                    yield self._emit("update", d.detector, o.start_s, None, d.confidence,
                                     o.details, o.defect_id, seq=o.updates,
                                     start_utc=o.start_utc)
                continue
            start = d.start_s
            for name, a, b in self._closed:
                if name == finding and d.start_s <= b + 0.05 and d.end_s >= a:
                    start = max(start, b)
            if d.end_s - start < 1e-3:
                continue  # already announced and closed
            if INPUT_LOSS in self._open:
                continue  # one cause, one alert: the input's leftovers raise nothing new
            if start > d.start_s and not at_edge:
                continue  # a revision of a closed defect, not a new one
            key = f"{finding}@{start:.3f}"
            o = _OpenDefect(d.detector, start, self._utc(start), d.end_s, d.confidence,
                            dict(d.details), defect_id=self._defect_id(d.detector, start))
            self._open[key] = o
            seen.add(key)
            yield self._emit("open", d.detector, start, None, d.confidence, o.details,
                             o.defect_id)
            if not at_edge:  # found only once it had ended (short defects): open and close
                yield from self._close(key, d.end_s, dict(d.details))
        # content defects that vanished from the result (their evidence expired) end where
        # they were last seen
        for key in [k for k, o in self._open.items() if k not in seen
                    and o.detector in evaluated]:
            yield from self._close(key, self._open[key].last_end, self._open[key].details)

    def _close(self, key: str, end_s: float, details: dict[str, Any],
               end_utc: str | None = None) -> Iterator[DefectEvent]:
        o = self._open.pop(key)
        self._closed.append((_finding(o.detector, o.details), o.start_s, end_s))
        yield self._emit("close", o.detector, o.start_s, end_s, o.confidence,
                         details or o.details, o.defect_id, start_utc=o.start_utc,
                         end_utc=end_utc)

    def _close_all(self, reason: str) -> Iterator[DefectEvent]:
        for key in list(self._open):
            o = self._open[key]
            end = max(o.last_end, o.start_s)
            if o.detector == INPUT_LOSS:
                edge = max((e for e in (self._video_edge, self._audio_edge) if e is not None),
                           default=o.start_s)
                end = max(end, edge)
            yield from self._close(key, end, {**o.details, "closed_by": reason})

    def _set(self, detector: str, active: bool, details: dict[str, Any] | None = None,
             end_s: float | None = None) -> Iterator[DefectEvent]:
        """Open or clear an input-health finding (at most one of each kind is open)."""
        edge = max((e for e in (self._video_edge, self._audio_edge) if e is not None),
                   default=0.0)
        if active and detector not in self._open:
            o = _OpenDefect(detector, edge, self._utc(edge, wall=True), edge, 1.0,
                            dict(details or {}),
                            defect_id=f"{self._defect_id(detector, edge)}@{self.clock():.0f}")
            self._open[detector] = o
            yield self._emit("open", detector, edge, None, 1.0, o.details, o.defect_id,
                             start_utc=o.start_utc)
            if detector == INPUT_LOSS:
                self._burst = None  # packets lost as the input went: part of the loss
                self._update_stats(state="input_lost")
                # one cause, one alert: content defects end where the media ended
                for key in [k for k, o in self._open.items() if o.detector != INPUT_LOSS]:
                    yield from self._close(key, self._open[key].last_end,
                                           {**self._open[key].details, "closed_by": INPUT_LOSS})
        elif not active and detector in self._open:
            if detector == INPUT_LOSS:
                self._burst = None  # a sender coming back restarts its continuity counters
            o = self._open[detector]
            end = end_s if end_s is not None else edge
            details = dict(o.details)
            end_utc = None
            if end < o.start_s:  # the source came back on a reset clock
                details["resumed_at_s"] = round(end, 3)
                # the old clock's edge has no time on the new clock's anchors: it ended now
                end_utc = utc_iso(self.clock())
            o.last_end = max(end, o.start_s)
            yield from self._close(detector, o.last_end, details, end_utc)

    def _since_media(self) -> float:
        """Wall seconds since the last media arrived (or since the watch started)."""
        last = self._last_media_wall
        return self.clock() - (last if last is not None else self._started_wall)

    def _watchdog(self) -> Iterator[DefectEvent]:
        if self._since_media() >= self.input_timeout:
            yield from self._lost()

    def _lost(self) -> Iterator[DefectEvent]:
        """Open ``input_loss`` (once), after finding what the media so far shows."""
        if INPUT_LOSS in self._open:
            return
        since = self._since_media()
        self._flush_audio()
        yield from self._evaluate(force=True)
        yield from self._set(INPUT_LOSS, True,
                             {"no_media_for_s": round(since, 1), **self._cause_details()})

    def _cause(self, name: str, active: bool,
               details: dict[str, Any] | None = None) -> Iterator[DefectEvent]:
        """Record (or clear) why the input may be lost: an origin that cannot be reached, a
        playlist that stopped growing. One cause, one alert: these are not announced by
        themselves but as the cause of the ``input_loss`` they lead to (``details.cause``),
        whichever is found first; a cause found while the loss is open updates it."""
        if not active:
            self._causes.pop(name, None)
            return
        self._causes.pop(name, None)  # the latest cause is the one reported
        self._causes[name] = dict(details or {})
        loss = self._open.get(INPUT_LOSS)
        if loss is None:
            return
        details = {"no_media_for_s": loss.details.get("no_media_for_s"),
                   **self._cause_details()}
        if details != loss.details:
            loss.details = details
            loss.updates += 1
            yield self._emit("update", INPUT_LOSS, loss.start_s, None, loss.confidence,
                             loss.details, loss.defect_id, seq=loss.updates,
                             start_utc=loss.start_utc)

    def _cause_details(self) -> dict[str, Any]:
        if not self._causes:
            return {}
        name = next(reversed(self._causes))
        return {"cause": name, **self._causes[name]}

    # -- times --------------------------------------------------------------------------------
    def _defect_id(self, detector: str, start: float) -> str:
        """Stable for the same media (a re-run announces the same ids, so sinks drop them),
        distinct once the stream's clock restarted and media times repeat."""
        epoch = f"~{self._clock_epoch}" if self._clock_epoch else ""
        return f"{self.stream_id}/{detector}/{start:.3f}{epoch}"

    def _wall_of(self, media_t: float) -> float:
        anchors = self._anchors
        if not anchors:
            return self.clock()
        keys = [a.media_t for a in anchors]
        i = max(0, bisect.bisect_right(keys, media_t) - 1)
        a = anchors[i]
        return a.wall + (media_t - a.media_t)

    def _utc(self, media_t: float, wall: bool = False) -> str | None:
        if wall or not self._anchors:
            return utc_iso(self.clock())
        return utc_iso(self._wall_of(media_t))

    def _emit(self, kind: EventKind, detector: str, start: float, end: float | None,
              confidence: float, details: dict[str, Any], defect_id: str, *,
              seq: int = 0, start_utc: str | None = None,
              end_utc: str | None = None) -> DefectEvent:
        event = DefectEvent(
            event=kind, stream=self.stream_id, detector=detector, start_s=start, end_s=end,
            start_utc=start_utc or self._utc(start),
            end_utc=None if end is None else end_utc or self._utc(end), confidence=confidence,
            details=details, defect_id=defect_id)
        if seq:
            event = event.with_sequence(seq)
        with self._lock:
            self._stats = replace(self._stats, events=self._stats.events + 1,
                                  open_defects=len(self._open))
        return event

    def _update_stats(self, **changes: Any) -> None:
        with self._lock:
            self._stats = replace(self._stats, open_defects=len(self._open), **changes)

    # -- the ingest thread ----------------------------------------------------------------------
    def _put(self, item: _Item) -> bool:
        """Queue ``item`` unless the watch is stopping; False once it is."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _ingest(self) -> None:
        delay = self.backoff[0]
        attempts = 0
        while not self._stop.is_set():
            attempts += 1
            if attempts > 1:
                with self._lock:
                    self._stats = replace(self._stats, reconnects=self._stats.reconnects + 1)
            got_media = False
            try:
                feed_reader = None
                if is_hls(self.source) and not self._hls_by_ffmpeg:
                    from avmon.monitor.hls import HlsFeed  # the HLS reader only when needed
                    with HlsFeed(str(self.source), self._stop,
                                 on_health=lambda d, a, x: self._put(_Health(d, a, x)),
                                 on_anchor=lambda t, w: self._put(_Anchor(t, w))) as feed:
                        feed_reader = feed.reader()
                        if feed_reader is not None:
                            ended = self._decode(feed_reader, feed.on_packet)
                            got_media = feed.segments_read > 0
                            if ended.clean and not feed.ended_with_tag:
                                ended = _Ended("live playlist ended without its end tag", False)
                        else:  # a master playlist, fMP4 segments: FFmpeg's demuxer reads them
                            self._hls_by_ffmpeg = True
                            attempts = 0  # not a reconnection: the same source, read otherwise
                            continue
                else:
                    reader = MediaReader(self.source, stream_clock=self.live,
                                         timeout=self._read_timeout)
                    # continuity counters across HLS segments mean nothing (packagers may restart
                    # them per segment); avmon's HLS reader reports lost segments instead
                    ended = self._decode(reader, None, continuity=not self._hls_by_ffmpeg)
                    got_media = reader.stats.video_frames + reader.stats.audio_samples > 0
                    # FFmpeg's HLS demuxer reloads a live playlist until its end tag
                    if ended.clean and self.live and not self._hls_by_ffmpeg:
                        ended = _Ended(f"source ended: {ended.reason}", False)
            except MediaOpenError as exc:
                if not self.live:  # a file that cannot be read is bad input, not an outage
                    self._put(_Fatal(exc))
                    return
                if not self._put(_OpenFailed(str(exc))):
                    return
                ended = _Ended(str(exc), False)
            except Exception as exc:  # a watch must survive any input failure
                if not self._put(_OpenFailed(f"{type(exc).__name__}: {exc}")):
                    return
                ended = _Ended(str(exc), False)
            if ended.clean or not self.live:
                self._put(_Ended(ended.reason, True))
                return
            if not self.reconnect:
                self._put(_Ended(f"source lost, not reopened ({ended.reason})", False,
                                 final=True))
                return
            self._put(ended)
            if got_media:
                delay = self.backoff[0]
            self._stop.wait(delay)
            delay = min(self.backoff[1], delay * 2)

    def _decode(self, reader: MediaReader, on_packet: Callable[[int, float], None] | None,
                continuity: bool = False) -> _Ended:
        def on_corrupt(track: str, t: float | None, duration: float) -> None:
            self._put(_Corrupt(track, t, duration))

        with reader:
            if not self._put(_Opened(reader.has_video, reader.has_audio, reader.fps)):
                return _Ended("stopped", True)
            reported = 0
            for item in reader.frames(on_packet=on_packet,
                                      on_corrupt=on_corrupt if continuity else None):
                if not self._put(item):
                    return _Ended("stopped", True)
                errors = reader.stats.corrupt_frames + reader.stats.packet_errors
                if errors != reported:
                    self._put(_Counters(errors - reported))
                    reported = errors
            why = reader.stats.ended_early
        return _Ended(why or "end of input", why is None)


def _finding(detector: str, details: Mapping[str, Any]) -> str:
    """Which finding a defect is: its detector and, for a detector that reports several kinds
    at once (silence: a programme silence and a dead channel), the kind and its channels, so
    that one is never taken for an update of the other."""
    kind = details.get("kind")
    if kind is None:
        return detector
    channels = details.get("channels")
    return f"{detector}/{kind}/{'+'.join(map(str, channels))}" if channels else \
        f"{detector}/{kind}"
