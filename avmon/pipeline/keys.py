"""The S3 layout, and the names derived from it. IAM policies in the CDK app are scoped to these
prefixes, so a function can write only its own keys: the converter frames and audio, each
detector its own results.

A stream is identified by its object key (``ingest/a/b.mp4`` is the stream ``a/b.mp4``, so two
files in one folder are two streams), except live segments and playlists.

Live segments, as packagers name them. An object in a folder under ``ingest/`` whose name is a
name template around a number, with a segment extension (``.ts``, ``.m4s``), is segment
``<number>`` of a live stream, and the stream is the key with the number (and the separator
before it) and the extension taken away:

    ingest/ch1/chan_00012.ts   MediaLive (name_%05d)     stream ch1/chan   segment 12
    ingest/ch1/chan12.ts       ffmpeg's hls muxer (%d)   stream ch1/chan   segment 12
    ingest/ch1/chan-012.ts     name-%03d                 stream ch1/chan   segment 12
    ingest/ch1/chan/00012.ts   one folder per stream     stream ch1/chan   segment 12
    ingest/ch1/00012.ts        one folder per stream     stream ch1        segment 12
    ingest/ch1/chan_720p_00012.m4s   fMP4, a rendition   stream ch1/chan_720p  segment 12

So two renditions a packager writes into one folder (``chan_720p_*``, ``chan_360p_*``) are two
streams, never one, and each segment number has its own keys (nothing is overwritten). The
number is taken as the segment's media sequence number, as MediaLive, ffmpeg's hls muxer and
other packagers number them. An object directly under ``ingest/`` (no folder) is always a whole
stream, whatever its name: ``ingest/clip2.ts`` is the stream ``clip2.ts``, as before.

A playlist (``.m3u8``) anywhere under ``ingest/`` is read, not decoded: its stream is the stream
of the segments it lists (resolved against the playlist's own key), so ``index.m3u8`` listing
``chan_00012.ts`` describes ``ch1/chan``. What it says is kept in the stream's playlist record
(``playlist_record``).

Every upload is a run with its own id; everything the pipeline writes for it is keyed
``<prefix><stream>/<run>/...``, so a re-upload never mixes with the upload before it. A live
stream's segments share one run (``LIVE_RUN``).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from typing import NamedTuple

INGEST = "ingest/"          # streams and segments land here (the trigger)
RUNS = "runs/"              # runs/<stream>/<run>.json: what Ingest started, and how many
SEGMENTS = "segments/"      # segments cut by the ingest step
FRAMES = "frames/"          # one object per decoded picture (or per segment)
AUDIO = "audio/"            # decoded audio buffers
RESULTS = "results/"        # results/<detector>/...: each detector's evidence
REPORTS = "reports/"        # one report per segment
PREFIXES = (INGEST, RUNS, SEGMENTS, FRAMES, AUDIO, RESULTS, REPORTS)
LIVE_RUN = "live"           # live segments of a stream share one run

# the number is the last run of digits before the extension; the template is what precedes it
# (lazily, so a separator before the number is not part of the stream's name)
_LIVE_SEGMENT = re.compile(
    r"^(?P<folder>.+)/(?P<template>[^/]*?)(?P<sep>[_\-.]?)(?P<n>\d+)\.(?P<ext>ts|m4s)$")
PLAYLIST_EXTENSION = ".m3u8"
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
MAX_EXECUTION_NAME = 80     # Step Functions: 1..80 of A-Z a-z 0-9 - _


def segment(stream: str, run: str, index: int) -> str:
    return f"{SEGMENTS}{stream}/{run}/{index:06d}.ts"


def frame(stream: str, run: str, index: int, n: int) -> str:
    return f"{FRAMES}{stream}/{run}/{index:06d}/{n:06d}.npy"


def frames_of_segment(stream: str, run: str, index: int) -> str:
    return f"{FRAMES}{stream}/{run}/{index:06d}/all.npz"


def audio(stream: str, run: str, index: int, n: int) -> str:
    return f"{AUDIO}{stream}/{run}/{index:06d}/{n:04d}.npy"


def result(detector: str, stream: str, run: str, index: int, batch: int) -> str:
    return f"{RESULTS}{detector}/{stream}/{run}/{index:06d}-{batch:04d}.json"


def report(stream: str, run: str, index: int) -> str:
    return f"{REPORTS}{stream}/{run}/{index:06d}.json"


def reports_of(stream: str, run: str) -> str:
    return f"{REPORTS}{stream}/{run}/"


def run_record(stream: str, run: str) -> str:
    return f"{RUNS}{stream}/{run}.json"


def runs_of(stream: str) -> str:
    return f"{RUNS}{stream}/"


class LiveSegment(NamedTuple):
    """A packager-named segment: its stream and its number (the media sequence number)."""

    stream: str
    sequence: int


def live_segment(ingest_key: str) -> LiveSegment | None:
    """The stream and number of a packager-named segment under a folder of ``ingest/`` (see the
    module's table of conventions); None for anything else (a whole stream, a playlist)."""
    if not ingest_key.startswith(INGEST):
        return None
    m = _LIVE_SEGMENT.match(ingest_key.removeprefix(INGEST))
    if m is None:
        return None
    stream = f"{m['folder']}/{m['template']}" if m["template"] else m["folder"]
    return LiveSegment(stream, int(m["n"]))


def is_playlist(ingest_key: str) -> bool:
    """An HLS playlist uploaded under ``ingest/``: read, not decoded."""
    return ingest_key.startswith(INGEST) and ingest_key.lower().endswith(PLAYLIST_EXTENSION)


def resolve(playlist_key: str, uri: str) -> str:
    """The object key of a segment a playlist at ``playlist_key`` lists as ``uri`` (relative to
    the playlist, as HLS resolves it; an absolute URL's path is taken under the same folder)."""
    name = uri.split("?", 1)[0].split("#", 1)[0]
    if "://" in name:  # an absolute URL: the packager's own origin; its file name is what landed
        name = name.rsplit("/", 1)[-1]
    return posixpath.normpath(posixpath.join(posixpath.dirname(playlist_key), name))


def stream_id_of(ingest_key: str) -> str:
    """The stream an object under ``ingest/`` belongs to: its key without the prefix, or the
    stream of a live segment (see ``live_segment``). A playlist's stream is the stream of the
    segments it lists; without them, its key without the extension."""
    live = live_segment(ingest_key)
    if live is not None:
        return live.stream
    if is_playlist(ingest_key):
        return ingest_key.removeprefix(INGEST)[: -len(PLAYLIST_EXTENSION)] or "stream"
    return ingest_key.removeprefix(INGEST) or "stream"


def playlist_record(stream: str, run: str = LIVE_RUN) -> str:
    """What the playlists of a live stream said: runs/<stream>/<run>/playlist.json (under the
    run's folder, so the run listing, which reads runs/<stream>/*.json, does not take it for a
    run)."""
    return f"{RUNS}{stream}/{run}/playlist.json"


def run_id(event_time: str, version: str) -> str:
    """One upload's run id: the event's time (so ids sort by upload) and a hash of the object's
    version id or ETag (so a redelivered event maps to the same run, a re-upload to a new one)."""
    stamp = re.sub(r"[^0-9]", "", event_time)[:14] or "0"
    digest = hashlib.sha256(f"{event_time}|{version}".encode()).hexdigest()[:10]
    return f"{stamp}-{digest}"


def execution_name(stream: str, run: str, index: int) -> str:
    """A workflow execution name for one segment that AWS accepts: at most 80 characters of
    letters, digits, '-' and '_'. The readable stream part is cut to fit; a hash of the stream
    and run keeps names of different streams and runs apart whatever was cut."""
    digest = hashlib.sha256(f"{stream}\0{run}".encode()).hexdigest()[:12]
    suffix = f"-{digest}-{index:06d}"
    readable = _NAME_CHARS.sub("-", stream).strip("-")[:MAX_EXECUTION_NAME - len(suffix)]
    return f"{readable or 's'}{suffix}"


def segment_of_execution(name: str) -> int:
    """The segment index an ``execution_name`` ends with."""
    return int(name.rsplit("-", 1)[-1])
