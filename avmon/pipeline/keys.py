"""The S3 layout, and the names derived from it. IAM policies in the CDK app are scoped to these
prefixes, so a function can write only its own keys: the converter frames and audio, each
detector its own results.

A stream is identified by its object key (``ingest/a/b.mp4`` is the stream ``a/b.mp4``, so two
files in one folder are two streams), except live segments (``ingest/<stream>/<n>.ts``), which
all belong to the stream of their folder. Every upload is a run with its own id; everything the
pipeline writes for it is keyed ``<prefix><stream>/<run>/...``, so a re-upload never mixes with
the upload before it.
"""

from __future__ import annotations

import hashlib
import re

INGEST = "ingest/"          # streams and segments land here (the trigger)
RUNS = "runs/"              # runs/<stream>/<run>.json: what Ingest started, and how many
SEGMENTS = "segments/"      # segments cut by the ingest step
FRAMES = "frames/"          # one object per decoded picture (or per segment)
AUDIO = "audio/"            # decoded audio buffers
RESULTS = "results/"        # results/<detector>/...: each detector's evidence
REPORTS = "reports/"        # one report per segment
PREFIXES = (INGEST, RUNS, SEGMENTS, FRAMES, AUDIO, RESULTS, REPORTS)
LIVE_RUN = "live"           # live segments of a stream share one run

_LIVE_SEGMENT = re.compile(r"^(?P<stream>.+)/(?P<n>\d+)\.ts$")
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


def live_segment(ingest_key: str) -> tuple[str, int] | None:
    """``ingest/<stream>/<n>.ts`` is segment ``n`` of a live stream: (stream, n); else None."""
    m = _LIVE_SEGMENT.match(ingest_key.removeprefix(INGEST))
    return (m["stream"], int(m["n"])) if m else None


def stream_id_of(ingest_key: str) -> str:
    """The stream an object under ``ingest/`` belongs to: its key without the prefix (the folder
    of a live segment)."""
    live = live_segment(ingest_key)
    if live is not None:
        return live[0]
    return ingest_key.removeprefix(INGEST) or "stream"


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
