"""A live HLS reader that fetches the playlist itself, so the watcher sees what FFmpeg hides.

FFmpeg's HLS demuxer skips a segment that fails to load, retries a playlist that stopped
growing for ever, and keeps the segments' EXT-X-PROGRAM-DATE-TIME to itself. This reader polls
the media playlist (every half target duration), downloads each new MPEG-TS segment once, in
media-sequence order, and writes the bytes into one continuous stream that the decoder reads
like a single MPEG-TS input. On the way it reports input health: a segment that failed to load
or left the playlist before it was read (``gap``), a playlist that stopped growing
(``stale_playlist``), a playlist that cannot be fetched (``origin_unreachable``); and it maps
each segment's first packet to its program date and time, so events carry the stream's UTC.
"""

from __future__ import annotations

import bisect
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any, cast

from avmon.errors import MediaOpenError
from avmon.events import GAP, ORIGIN_UNREACHABLE, STALE_PLAYLIST
from avmon.media.decode import MediaReader
from avmon.media.playlist import Playlist, Segment, parse_playlist

__all__ = ["HlsFeed", "Playlist", "Segment", "parse_playlist"]

HealthCallback = Callable[[str, bool, dict[str, Any]], object]
AnchorCallback = Callable[[float, float], object]


class _Pipe:
    """Segment bytes in, one continuous read stream out (what PyAV reads as a file)."""

    name = "hls"

    def __init__(self, stop: threading.Event) -> None:
        self._chunks: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._stop = stop
        self.written = 0

    def write(self, data: bytes) -> None:
        with self._cond:
            self._chunks.append(data)
            self.written += len(data)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def read(self, size: int = -1) -> bytes:
        with self._cond:
            while not self._chunks:
                if self._closed or self._stop.is_set():
                    return b""
                self._cond.wait(0.2)
            data = self._chunks.popleft()
            if 0 < size < len(data):
                self._chunks.appendleft(data[size:])
                data = data[:size]
            return data


class HlsFeed:
    """Polls a live media playlist in a thread and feeds its segments to one decoder.

    Use as a context manager; ``reader()`` opens the decoder on the segment stream (it blocks
    until the first segments arrive). Health findings and UTC anchors go to the callbacks.
    """

    def __init__(self, url: str, stop: threading.Event, *, on_health: HealthCallback,
                 on_anchor: AnchorCallback, live_edge_segments: int = 3,
                 fetch_timeout: float = 5.0, stale_after_targets: float = 3.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url = url
        self._stop = threading.Event()
        self._outer_stop = stop
        self._pipe = _Pipe(self._stop)
        self.on_health = on_health
        self.on_anchor = on_anchor
        self.live_edge_segments = live_edge_segments
        self.fetch_timeout = fetch_timeout
        self.stale_after_targets = stale_after_targets
        self.clock = clock
        self.segments_read = 0
        self.ended_with_tag = False
        self.unsupported: str | None = None
        self._ready = threading.Event()           # the first playlist was read
        self._offsets: list[int] = []             # byte offset where each segment starts
        self._segments: list[Segment] = []
        self._anchored: set[int] = set()
        self._lock = threading.Lock()             # the tables grow in one thread, shrink in another
        self._thread = threading.Thread(target=self._poll, name="hls-poll", daemon=True)

    def __enter__(self) -> HlsFeed:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._pipe.close()
        self._thread.join(timeout=self.fetch_timeout + 2.0)  # a fetch ends by its timeout

    def reader(self) -> MediaReader | None:
        """The decoder over the segments, on the stream's own clock; None if this playlist is
        one this reader cannot feed (``unsupported`` says why). Blocks until the playlist was
        read. Raises MediaOpenError."""
        while not self._ready.wait(0.2):
            if self._stopped():
                raise MediaOpenError(f"{self.url}: stopped before the playlist was read")
        if self.unsupported:
            return None
        return MediaReader(cast(IO[bytes], self._pipe), format="mpegts", stream_clock=True)

    def on_packet(self, pos: int, t: float) -> None:
        """The first packet of each segment ties its media time to its program date-time."""
        with self._lock:
            i = bisect.bisect_right(self._offsets, pos) - 1
            if i < 0 or i in self._anchored:
                return
            self._anchored.add(i)
            seg = self._segments[i]
        if seg.program_time is not None:
            self.on_anchor(t, seg.program_time)
        if i > 512:  # keep the lookup tables bounded over days: old segments are long read
            self._forget(256)

    def _forget(self, n: int) -> None:
        with self._lock:
            del self._offsets[:n], self._segments[:n]
        self._anchored = {j - n for j in self._anchored if j >= n}

    # -- the polling thread ---------------------------------------------------------------------
    def _stopped(self) -> bool:
        return self._stop.is_set() or self._outer_stop.is_set()

    def _wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self._stopped() and time.monotonic() < end:
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))

    def _get(self, url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=self.fetch_timeout) as resp:
            data: bytes = resp.read()
            return data

    def _poll(self) -> None:
        next_seq: int | None = None
        last_growth = self.clock()
        open_flags: set[str] = set()

        def flag(name: str, on: bool, details: dict[str, Any] | None = None) -> None:
            if on != (name in open_flags):
                (open_flags.add if on else open_flags.discard)(name)
                self.on_health(name, on, details or {})

        try:
            while not self._stopped():
                try:
                    playlist = parse_playlist(self._get(self.url).decode("utf-8", "replace"),
                                              self.url)
                except (OSError, urllib.error.URLError, MediaOpenError, ValueError) as exc:
                    flag(ORIGIN_UNREACHABLE, True, {"url": self.url, "reason": _why(exc)})
                    self._wait(1.0)
                    continue
                flag(ORIGIN_UNREACHABLE, False)
                if playlist.unsupported:
                    self.unsupported = playlist.unsupported
                    return
                self._ready.set()
                segs = playlist.segments
                if next_seq is None or (segs and segs[-1].sequence + len(segs) < next_seq - 1):
                    # join at the live edge, as players do; also when the media sequence went
                    # far back (RFC 8216 forbids it: the encoder restarted, numbering from 0),
                    # rather than wait for the new numbers to pass the old ones
                    start = 0 if playlist.ended else max(0, len(segs) - self.live_edge_segments)
                    next_seq = segs[start].sequence if segs else playlist.media_sequence
                if next_seq < playlist.media_sequence:
                    self.on_health(GAP, True, {
                        "reason": "segments left the playlist before they were read",
                        "media_sequence": [next_seq, playlist.media_sequence - 1]})
                    next_seq = playlist.media_sequence
                grew = False
                for seg in segs:
                    if self._stopped() or seg.sequence < next_seq:
                        continue
                    next_seq = seg.sequence + 1
                    grew = True
                    try:
                        data = self._fetch_segment(seg)
                    except (OSError, urllib.error.URLError) as exc:
                        self.on_health(GAP, True, {"reason": f"segment failed to load:"
                                                   f" {_why(exc)}",
                                                   "media_sequence": seg.sequence})
                        continue
                    with self._lock:
                        self._offsets.append(self._pipe.written)
                        self._segments.append(seg)
                    self._pipe.write(data)
                    self.segments_read += 1
                if grew:
                    last_growth = self.clock()
                    flag(STALE_PLAYLIST, False)
                elif (not playlist.ended and self.clock() - last_growth
                      > self.stale_after_targets * playlist.target_duration):
                    flag(STALE_PLAYLIST, True, {
                        "url": self.url, "media_sequence": next_seq - 1,
                        "unchanged_for_s": round(self.clock() - last_growth, 1)})
                if playlist.ended and (not segs or next_seq > segs[-1].sequence):
                    self.ended_with_tag = True
                    return
                # half a target duration between reloads, changed or not: RFC 8216 asks for a
                # whole one after a change, which would add up to a segment to every alert
                self._wait(playlist.target_duration / 2)
        finally:
            self._ready.set()
            self._pipe.close()

    def _fetch_segment(self, seg: Segment) -> bytes:
        """Two attempts: a segment is often written just after the playlist names it."""
        try:
            return self._get(seg.uri)
        except urllib.error.HTTPError as exc:
            if exc.code < 500 and exc.code != 404:
                raise
        self._wait(0.3)
        return self._get(seg.uri)


def _why(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc)
