"""HLS media playlists (RFC 8216) read as text: the one parser of the live watcher's HLS reader
and of the serverless pipeline's playlist ingest.

A playlist is read, never decoded: it gives each segment's media sequence number, duration
(EXTINF), program date-time (EXT-X-PROGRAM-DATE-TIME, carried forward by the durations of the
segments that follow it, as the RFC defines) and whether a discontinuity precedes it
(EXT-X-DISCONTINUITY), plus the target duration and whether the stream ended (EXT-X-ENDLIST).
``render_playlist`` writes one back: the simulation uploads a playlist as a packager would have
written it when each segment was new.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

from avmon.errors import MediaOpenError
from avmon.events import parse_utc, utc_iso


@dataclass(frozen=True)
class Segment:
    sequence: int
    uri: str                    # resolved against the playlist's own location
    duration: float
    program_time: float | None  # POSIX seconds of the segment's first sample, if known
    discontinuity: bool = False  # EXT-X-DISCONTINUITY precedes this segment
    name: str = ""              # the URI as the playlist writes it
    program_time_tagged: bool = False  # the segment carries its own EXT-X-PROGRAM-DATE-TIME


@dataclass(frozen=True)
class Playlist:
    target_duration: float
    media_sequence: int
    segments: tuple[Segment, ...]
    ended: bool  # EXT-X-ENDLIST: the stream is over, cleanly
    unsupported: str | None = None  # why the live reader cannot feed it (left to FFmpeg)
    init: str | None = None  # EXT-X-MAP's URI: fragmented MP4 segments need it first


def parse_playlist(text: str, base: str) -> Playlist:
    """Parse a media playlist. Raises MediaOpenError if it is not one (or is a master list).

    A master playlist is returned empty with ``unsupported`` set; fragmented MP4 (EXT-X-MAP)
    is parsed in full, with ``unsupported`` set for the live reader, which feeds MPEG-TS only.
    """
    lines = [ln.strip() for ln in text.lstrip("\ufeff").splitlines() if ln.strip()]
    if not lines or lines[0] != "#EXTM3U":
        raise MediaOpenError(f"{base}: not an HLS playlist")
    if any(ln.startswith("#EXT-X-STREAM-INF") for ln in lines):
        return Playlist(0.0, 0, (), False, "a master playlist")
    target, first_seq, ended = 6.0, 0, False
    segments: list[Segment] = []
    duration: float | None = None
    pdt: float | None = None
    tagged = discontinuity = False
    init: str | None = None
    try:
        for ln in lines[1:]:
            if ln.startswith("#EXT-X-TARGETDURATION:"):
                target = float(ln.split(":", 1)[1])
            elif ln.startswith("#EXT-X-MEDIA-SEQUENCE:"):
                first_seq = int(ln.split(":", 1)[1])
            elif ln.startswith("#EXT-X-ENDLIST"):
                ended = True
            elif ln.startswith("#EXT-X-DISCONTINUITY") and not ln.startswith(
                    "#EXT-X-DISCONTINUITY-SEQUENCE"):
                discontinuity = True
            elif ln.startswith("#EXT-X-MAP:"):
                uri = ln.split("URI=", 1)[1].split(",")[0].strip('"') if "URI=" in ln else ""
                init = urljoin(base, uri) if uri else None
            elif ln.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
                pdt, tagged = _parse_date(ln.split(":", 1)[1]), True
            elif ln.startswith("#EXTINF:"):
                duration = float(ln.split(":", 1)[1].split(",")[0])
            elif not ln.startswith("#"):
                seq = first_seq + len(segments)
                segments.append(Segment(seq, urljoin(base, ln), duration or target, pdt,
                                        discontinuity, ln, tagged))
                if pdt is not None:  # later segments without their own tag follow on
                    pdt += duration or target
                duration, tagged, discontinuity = None, False, False
    except (ValueError, IndexError):
        raise MediaOpenError(f"{base}: a malformed playlist tag: {ln[:80]!r}") from None
    unsupported = "fragmented MP4 segments" if init else None
    return Playlist(target, first_seq, tuple(segments), ended, unsupported, init)


def render_playlist(playlist: Playlist, segments: tuple[Segment, ...] | list[Segment],
                    ended: bool) -> str:
    """A media playlist listing ``segments`` (consecutive, from ``playlist``) as a packager
    writes it: a segment's program date-time where it had its own tag or follows a
    discontinuity, its name as written."""
    first = segments[0].sequence if segments else playlist.media_sequence
    lines = ["#EXTM3U", "#EXT-X-VERSION:3",
             f"#EXT-X-TARGETDURATION:{round(playlist.target_duration):d}",
             f"#EXT-X-MEDIA-SEQUENCE:{first}"]
    if playlist.init:
        lines.append(f'#EXT-X-MAP:URI="{playlist.init.rsplit("/", 1)[-1]}"')
    for i, seg in enumerate(segments):
        if seg.discontinuity:
            lines.append("#EXT-X-DISCONTINUITY")
        lines.append(f"#EXTINF:{seg.duration:.6f},")
        if seg.program_time is not None and (i == 0 or seg.program_time_tagged
                                             or seg.discontinuity):
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{utc_iso(seg.program_time)}")
        lines.append(seg.name or seg.uri)
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def _parse_date(text: str) -> float | None:
    try:
        return parse_utc(text)
    except ValueError:
        return None
