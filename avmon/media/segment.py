"""Cutting a stream into segments without re-encoding, as a live packager cuts HLS segments.

Each segment starts at a video keyframe at or after the next multiple of the segment length, so
it decodes on its own; packets are copied, not re-encoded, into MPEG-TS. ``start_s`` is the time
of the segment's first picture (its keyframe; for audio-only input, its first audio packet) in
seconds from the stream's start. The TS muxer may shift a segment's timestamps (it cannot store
the negative timestamps of AAC priming), but it shifts every track alike, so the converter
anchors the first decoded picture (or audio buffer) at ``start_s`` and everything follows.

The segmenter accepts what the decoder accepts: where a track's timestamps go back (a splice
whose parts overlap, a discontinuity that restarts the clock), the muxer would refuse the
packets, so that track's clock continues from its last packet instead (its later timestamps
are shifted by the overlap). The decoder reads the same packets; only their times differ, by
the overlap.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import av
import av.error

from avmon.errors import MediaOpenError
from avmon.media.decode import MediaReader, Source


@dataclass(frozen=True)
class Segment:
    index: int
    start_s: float
    data: bytes


def split_segments(source: Source, seconds: float) -> Iterator[Segment]:
    """Yield MPEG-TS segments of about ``seconds`` each (cut at keyframes).

    Raises MediaOpenError if the input cannot be read as media.
    """
    with MediaReader(source) as probe:
        origin = probe.origin
    if hasattr(source, "seek"):
        source.seek(0)
    try:
        container: Any = av.open(source, mode="r")
    except av.error.FFmpegError as exc:
        raise MediaOpenError(f"cannot read media to segment: {exc}") from None
    with container:
        streams = [s for s in (container.streams.video[:1] + container.streams.audio[:1])]
        video = next((s for s in streams if s.type == "video"), None)
        writer: _Writer | None = None
        index = 0
        next_cut = seconds  # the first keyframe at or after this starts the next segment
        clock = _Clock()
        for packet in container.demux(*streams):
            if packet.dts is None or packet.pts is None:
                continue  # the demuxer's end-of-stream marker
            clock.continue_track(packet)
            t = float(packet.pts * packet.time_base) - origin
            cut = writer is None or (packet.stream is video and packet.is_keyframe
                                     and t >= next_cut - 1e-6)
            if video is None and writer is not None:
                cut = t >= next_cut - 1e-6
            if cut:
                if writer is not None:
                    yield writer.close()
                    # segments are numbered without holes (the run record counts them), and
                    # cut on the grid of ``seconds`` even when keyframes are further apart
                    index += 1
                    next_cut = (int((t + 1e-6) // seconds) + 1) * seconds
                writer = _Writer(index, streams)
            assert writer is not None
            writer.add(packet, t)
        if writer is not None:
            yield writer.close()


class _Clock:
    """Keeps each track's decoding timestamps increasing across splices and discontinuities."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}
        self.shift: dict[int, int] = {}

    def continue_track(self, packet: Any) -> None:
        track = packet.stream.index
        shift = self.shift.get(track, 0)
        last = self.last.get(track)
        if last is not None and packet.dts + shift <= last:
            shift = last - packet.dts + max(int(packet.duration or 0), 1)
            self.shift[track] = shift
        if shift:
            packet.dts += shift
            packet.pts += shift
        self.last[track] = packet.dts


class _Writer:
    def __init__(self, index: int, streams: list[Any]) -> None:
        self.index = index
        self.buffer = io.BytesIO()
        self.out: Any = av.open(self.buffer, mode="w", format="mpegts")
        self.map = {s.index: self.out.add_stream_from_template(s) for s in streams}
        self.start: float | None = None

    def add(self, packet: Any, t: float) -> None:
        primary = packet.stream.type == "video" or not any(
            s.type == "video" for s in self.map.values())
        if primary and self.start is None:
            self.start = t
        packet.stream = self.map[packet.stream.index]
        self.out.mux(packet)

    def close(self) -> Segment:
        self.out.close()
        return Segment(self.index, self.start or 0.0, self.buffer.getvalue())
