"""The S3 layout. IAM policies in the CDK app are scoped to these prefixes, so a function can
write only its own keys: the converter frames and audio, each detector its own results."""

from __future__ import annotations

INGEST = "ingest/"          # streams and segments land here (the trigger)
SEGMENTS = "segments/"      # segments cut by the ingest step
FRAMES = "frames/"          # one object per decoded picture (or per segment)
AUDIO = "audio/"            # decoded audio buffers
RESULTS = "results/"        # results/<detector>/...: each detector's evidence
REPORTS = "reports/"        # one report per segment


def segment(stream: str, index: int) -> str:
    return f"{SEGMENTS}{stream}/{index:06d}.ts"


def frame(stream: str, index: int, n: int) -> str:
    return f"{FRAMES}{stream}/{index:06d}/{n:06d}.npy"


def frames_of_segment(stream: str, index: int) -> str:
    return f"{FRAMES}{stream}/{index:06d}/all.npz"


def audio(stream: str, index: int, n: int) -> str:
    return f"{AUDIO}{stream}/{index:06d}/{n:04d}.npy"


def result(detector: str, stream: str, index: int, batch: int) -> str:
    return f"{RESULTS}{detector}/{stream}/{index:06d}-{batch:04d}.json"


def report(stream: str, index: int) -> str:
    return f"{REPORTS}{stream}/{index:06d}.json"


def reports_of(stream: str) -> str:
    return f"{REPORTS}{stream}/"


def stream_id_of(ingest_key: str) -> str:
    """``ingest/<stream>/<file>`` or ``ingest/<file>``: the stream's name."""
    rest = ingest_key.removeprefix(INGEST)
    if "/" in rest:
        return rest.split("/", 1)[0]
    return rest.rsplit(".", 1)[0] or "stream"
