"""Decoding: any input FFmpeg opens, streamed as numpy luma frames and float32 audio buffers.

One pass over the container, one decoded frame alive at a time, so a one-hour 1080p stream costs
the same memory as a one-minute one. Corrupt packets inside a stream are concealed by the decoder
and counted; they never stop the analysis. Times are seconds from the stream's first timestamp
(an MPEG-TS or HLS stream does not start at 0), the way a player shows them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import av
import av.error
import numpy as np

from avmon.errors import MediaOpenError
from avmon.frames import AudioBuffer, VideoFrame
from avmon.model import AudioInfo, StreamInfo, VideoInfo

Source = str | os.PathLike[str] | IO[bytes]

# Pixel formats whose first plane is 8-bit luma: used as is (zero copy). Others are converted.
_LUMA8_FORMATS = frozenset(
    {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "nv12", "nv21",
     "gray", "yuv410p", "yuv411p", "yuv440p"}
)
# Network inputs (HLS, MPEG-TS over HTTP/UDP) must not hang forever on a dead server.
_NETWORK_OPTIONS = {"rw_timeout": "15000000", "timeout": "15000000"}


@dataclass
class DecodeStats:
    """Counters a decode pass fills in as it goes."""

    video_frames: int = 0
    audio_samples: int = 0
    corrupt_frames: int = 0      # frames the decoder output with concealed errors
    packet_errors: int = 0       # packets the decoder rejected outright
    corrupt_packets: int = 0     # packets the demuxer flagged: an MPEG-TS continuity-counter
                                 # jump (transport packets lost before them) or a TS error
    last_t: float = 0.0          # end of the last frame or buffer, seconds
    ended_early: str | None = None  # why demuxing stopped before the end, if it did


def describe_source(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


# FFmpeg opens any text file as ANSI art ("tty") and a single picture through an image demuxer;
# neither is a stream to monitor. Cover art in an audio file is marked as an attached picture.
_TEXT_CODECS = frozenset({"ansi", "bintext", "xbin", "idf"})


def _still_or_text(container: Any, video: Any) -> bool:
    fmt = container.format.name
    return bool(fmt == "tty" or fmt == "image2" or fmt.endswith("_pipe")
                or video.codec_context.name in _TEXT_CODECS
                or video.disposition & av.stream.Disposition.attached_pic)


def _check_path(source: Source) -> None:
    if not isinstance(source, (str, os.PathLike)):
        return
    text = os.fspath(source)
    if "://" in text:
        return
    path = Path(text)
    if not path.exists():
        raise MediaOpenError(f"{text}: no such file")
    if path.is_dir():
        raise MediaOpenError(f"{text}: is a directory, not a media file")
    if path.stat().st_size == 0:
        raise MediaOpenError(f"{text}: empty file")


class MediaReader:
    """An open media input. Use as a context manager; iterate with ``frames()``.

    Raises MediaOpenError when the input is missing, empty, unreadable or holds no audio or video.
    """

    def __init__(self, source: Source, threads: int = 1, *, stream_clock: bool = False,
                 timeout: float | None = None, format: str | None = None) -> None:
        """``threads``: decoder threads; 1 (the default) costs the least CPU per stream-second,
        0 lets FFmpeg use frame threads (faster wall time for one file, about 40% more CPU).

        ``stream_clock=True`` keeps the container's own timestamps (an MPEG-TS stream's PTS)
        instead of counting from the first one: a live watcher that joins mid-stream, or
        reconnects, reports times on the stream's clock. ``timeout`` (seconds) bounds every
        open and read, so a live input that goes silent raises instead of blocking forever.
        ``format`` names the demuxer (for a file-like object without a name, e.g. "mpegts").
        """
        _check_path(source)
        self.threads = threads
        self.name = describe_source(source)
        options = dict(_NETWORK_OPTIONS) if "://" in self.name else {}
        if timeout is not None and options:
            micros = str(int(timeout * 1_000_000))
            options.update(rw_timeout=micros, timeout=micros)
        # FFmpeg logs every concealed macroblock; avmon counts them instead (see DecodeStats).
        # None is PyAV's callback that drops every message without touching Python. A level
        # (even PANIC) installs one that takes the GIL for each error message, from whichever
        # thread FFmpeg logs on: a thread still decoding while the interpreter shuts down then
        # re-enters a finalizing interpreter and can crash it (SIGSEGV after a clean stop).
        av.logging.set_level(None)
        try:
            self._container: Any = av.open(source, mode="r", options=options, format=format,
                                           timeout=timeout)
        except av.error.FFmpegError as exc:
            raise MediaOpenError(f"{self.name}: not readable as media ({_reason(exc)})") from None
        except OSError as exc:
            raise MediaOpenError(f"{self.name}: {exc.strerror or exc}") from None
        c = self._container
        self._video = c.streams.video[0] if c.streams.video else None
        self._audio = c.streams.audio[0] if c.streams.audio else None
        if self._video is not None and _still_or_text(c, self._video):
            self._video = None  # a cover picture or a text file is not a picture track
        if self._video is None and self._audio is None:
            why = (f" (FFmpeg reads it as {c.format.name}: text or a still image)"
                   if c.streams.video else "")
            c.close()
            raise MediaOpenError(f"{self.name}: no audio or video track{why}")
        if self._video is not None and self._video.codec_context is None:
            self._video = None
        self.stats = DecodeStats()
        self._origin = 0.0 if stream_clock else self._find_origin()
        # FFmpeg names the channels of the layout ("FL", "FR", "FC", "LFE", ...); the silence
        # detector needs to know which rows are the front channels, the LFE and the surrounds
        self._channel_names: tuple[str, ...] = (
            tuple(str(ch.name) for ch in self._audio.layout.channels)
            if self._audio is not None else ())

    # -- description -----------------------------------------------------------------------
    @property
    def fps(self) -> float:
        if self._video is None:
            return 0.0
        rate = self._video.average_rate or self._video.guessed_rate or self._video.base_rate
        return float(rate) if rate else 25.0

    @property
    def declared_duration(self) -> float | None:
        if self._container.duration:
            return float(self._container.duration) / av.time_base
        return None

    def info(self) -> StreamInfo:
        """Track descriptions; frame counts and duration reflect what has been decoded so far."""
        video = audio = None
        if self._video is not None:
            ctx = self._video.codec_context
            video = VideoInfo(
                codec=ctx.name, width=ctx.width, height=ctx.height, fps=self.fps,
                frames=self.stats.video_frames,
                decode_errors=self.stats.corrupt_frames + self.stats.packet_errors,
            )
        if self._audio is not None:
            actx: Any = self._audio.codec_context
            audio = AudioInfo(codec=actx.name, sample_rate=actx.sample_rate,
                              channels=actx.channels)
        duration = self.stats.last_t or (self.declared_duration or 0.0)
        return StreamInfo(source=self.name, duration_s=duration, video=video, audio=audio)

    @property
    def origin(self) -> float:
        """The container timestamp (seconds) that avmon reports as 0."""
        return self._origin

    def track_start(self) -> float:
        """When the first picture (or, without video, the first audio) starts, in avmon's times."""
        stream = self._video if self._video is not None else self._audio
        if stream is not None and stream.start_time is not None and stream.time_base:
            return float(stream.start_time * stream.time_base) - self._origin
        return 0.0

    @property
    def has_video(self) -> bool:
        return self._video is not None

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    # -- decoding ----------------------------------------------------------------------------
    def frames(self, video: bool = True, audio: bool = True,
               on_packet: Callable[[int, float], None] | None = None,
               on_corrupt: Callable[[str, float | None, float], None] | None = None,
               ) -> Iterator[VideoFrame | AudioBuffer]:
        """Yield video frames and audio buffers in demux order, one at a time.

        ``on_packet(byte_position, seconds)`` is called for each packet that has both (a live
        HLS reader maps byte positions to the segments they came from).
        ``on_corrupt(track, seconds or None, duration)`` is called for each packet the demuxer
        flagged as corrupt (FFmpeg's MPEG-TS demuxer does so after a continuity-counter jump:
        transport packets were lost), before its frames are yielded.

        A packet the decoder rejects is counted and skipped. If the container itself becomes
        unreadable part way (a truncated file), iteration stops and ``stats.ended_early`` says why.
        """
        streams: list[Any] = []
        if video and self._video is not None:
            if self.threads == 1:
                self._video.codec_context.thread_count = 1
            else:
                self._video.thread_type = "AUTO"
                self._video.codec_context.thread_count = self.threads
            streams.append(self._video)
        if audio and self._audio is not None:
            streams.append(self._audio)
        if not streams:
            return
        resampler = None
        if audio and self._audio is not None:
            resampler = _Resampler(av.AudioResampler(format="fltp", layout=self._audio.layout,
                                                     rate=self._audio.rate))
        frame_duration = 1.0 / self.fps if self._video is not None else 0.0
        video_stream = self._video
        demux = self._container.demux(*streams)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:
                self.stats.ended_early = _reason(exc)
                break
            if on_packet is not None and packet.pos is not None and packet.pos >= 0 \
                    and packet.pts is not None and packet.time_base is not None:
                on_packet(int(packet.pos), float(packet.pts * packet.time_base) - self._origin)
            if packet.is_corrupt:
                self.stats.corrupt_packets += 1
                if on_corrupt is not None:
                    tb = packet.time_base
                    at = None if packet.pts is None or tb is None else \
                        float(packet.pts * tb) - self._origin
                    length = float(packet.duration * tb) if packet.duration and tb else 0.0
                    on_corrupt(packet.stream.type, at, length)
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                self.stats.packet_errors += 1
                continue
            if not decoded:
                continue
            if packet.stream is video_stream:
                for frame in decoded:
                    yield self._video_frame(frame, frame_duration)
            else:
                assert resampler is not None
                for frame in decoded:
                    yield from self._audio_buffers(frame, resampler)

    def _video_frame(self, frame: Any, duration: float) -> VideoFrame:
        self.stats.video_frames += 1
        if frame.is_corrupt:
            self.stats.corrupt_frames += 1
        t = self._time(frame, fallback=(self.stats.video_frames - 1) * duration)
        self.stats.last_t = max(self.stats.last_t, t + duration)
        return VideoFrame(t=t, duration=duration, luma=luma_of(frame),
                          keyframe=bool(frame.key_frame), concealed=bool(frame.is_corrupt))

    def _audio_buffers(self, frame: Any, resampler: _Resampler) -> Iterator[AudioBuffer]:
        rate = frame.sample_rate
        t0 = self._time(frame, fallback=self.stats.audio_samples / rate)
        # most decoders (AAC, Opus, AC-3) already give planar float at the stream's layout and
        # rate: the resampler would only copy; it is there for those that do not
        same = (rate == resampler.rate and frame.format.name == "fltp"
                and frame.layout.name == resampler.layout)
        for out in ([frame] if same else resampler.resampler.resample(frame)):
            samples = planar_float(out)
            buf = AudioBuffer(t=t0, sample_rate=out.sample_rate, samples=samples,
                              channels=self._channel_names)
            t0 += buf.duration
            self.stats.audio_samples += samples.shape[1]
            self.stats.last_t = max(self.stats.last_t, t0)
            yield buf

    def _time(self, frame: Any, fallback: float) -> float:
        t = frame.time  # pts x time_base as a float, computed by PyAV (no Fraction arithmetic)
        return fallback if t is None else float(t) - self._origin

    def _find_origin(self) -> float:
        """The stream's first timestamp, which a player shows as 0."""
        starts = []
        for stream in (self._video, self._audio):
            if stream is not None and stream.start_time is not None and stream.time_base:
                starts.append(float(stream.start_time * stream.time_base))
        if starts:
            return min(starts)
        if self._container.start_time is not None:
            return float(self._container.start_time) / av.time_base
        return 0.0

    # -- context management -------------------------------------------------------------------
    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> MediaReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Resampler:
    """PyAV's resampler to planar float, with the rate and layout it makes read once (each
    read of ``layout`` builds a new object: every audio frame is compared with them)."""

    def __init__(self, resampler: Any) -> None:
        self.resampler = resampler
        self.rate = resampler.rate
        self.layout = resampler.layout.name


def planar_float(frame: Any) -> np.ndarray:
    """A planar float ("fltp") audio frame's samples as a (channels, n) float32 array.

    The copy ``frame.to_ndarray()`` makes, one row per plane, without its ``np.vstack`` (a third
    of the cost of each of the 47 frames a second of AAC brings).
    """
    n = frame.samples
    planes = frame.planes
    samples = np.empty((len(planes), n), dtype=np.float32)
    for row, plane in zip(samples, planes, strict=True):
        row[:] = np.frombuffer(plane, dtype=np.float32, count=n)
    return samples


def luma_of(frame: Any) -> np.ndarray:
    """The luma plane as a (height, width) uint8 array, honouring the plane's line padding."""
    if frame.format.name not in _LUMA8_FORMATS:
        frame = frame.reformat(format="gray")
    plane = frame.planes[0]
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip().rstrip(".").lower()



def probe(source: Source) -> StreamInfo:
    """Open ``source`` and describe its tracks, decoding nothing: the one check that an input is
    media, made before any work starts. Raises MediaOpenError naming the input and the problem."""
    with MediaReader(source) as reader:
        return reader.info()
