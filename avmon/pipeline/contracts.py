"""The messages between the pipeline's steps, as small frozen types.

Events crossing a Lambda boundary stay JSON (Step Functions passes them along and the ASL reads
``$.manifest``, ``$.manifest.batches``, ``$.results``): each handler parses its event once with
``X.from_event(dict)``, works on typed values, and returns ``x.to_dict()``. The JSON shapes here
change only together with ``statemachine/pipeline.asl.json``.

Frame and audio references travel as short JSON arrays (``[t, duration, flags]``,
``[t, sample_rate, samples]``) rather than objects: a manifest lists every frame of a segment
and must fit Step Functions' 256 KiB payload.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Self

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from avmon.detectors.base import Evidence
from avmon.errors import MediaOpenError, MissingResourceError
from avmon.events import parse_utc
from avmon.pipeline import keys

if TYPE_CHECKING:
    from avmon.pipeline.ports import ObjectStore

MAX_PAYLOAD = 256 * 1024  # Step Functions' limit for a state's input or output


class Contract(BaseModel):
    """A message: frozen, unknown fields refused, parsed once at the handler's edge."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Self:
        """Raises MediaOpenError naming the contract and the first bad field."""
        try:
            return cls.model_validate(event)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "event"
            raise MediaOpenError(f"bad {cls.__name__} event: {where}: {first['msg']}") from None

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class SegmentJob(Contract):
    """The input of one workflow execution: one segment of one run of one stream."""

    # the workflow adds $.manifest / $.error beside these fields: they are not the job's
    model_config = ConfigDict(frozen=True, extra="ignore")

    stream: str = Field(min_length=1)
    run: str = Field(min_length=1)
    segment: int = Field(ge=0)
    key: str = Field(min_length=1)
    start_s: float
    # ISO 8601 UTC of the segment's first picture (the playlist's EXT-X-PROGRAM-DATE-TIME), if
    # known: events about the stream carry UTC times from it
    start_utc: str | None = None

    @field_validator("start_utc")
    @classmethod
    def _iso_8601(cls, value: str | None) -> str | None:
        if value is not None:
            parse_utc(value)
        return value


class FrameRef(NamedTuple):
    """One decoded picture: its time on the stream's clock, duration, and flags."""

    t: float
    duration: float
    flags: int  # bit 0: keyframe; bit 1: concealed (the decoder reported an error)

    @property
    def keyframe(self) -> bool:
        return bool(self.flags & 1)

    @property
    def concealed(self) -> bool:
        return bool(self.flags & 2)


class AudioRef(NamedTuple):
    """One audio object: its start time, sample rate and number of samples per channel."""

    t: float
    sample_rate: int
    samples: int

    @property
    def end(self) -> float:
        return self.t + self.samples / self.sample_rate


class Batch(Contract):
    """What one detector invocation reads: frames [i0, i1) and audio objects [a0, a1)."""

    batch: int = Field(ge=0)
    frames: tuple[int, int]
    audio: tuple[int, int]


class Manifest(Contract):
    """What the converter wrote for one segment: times and flags, never pixels."""

    job: SegmentJob
    end_s: float
    layout: Literal["object-per-frame", "object-per-segment"]
    video: dict[str, Any] | None
    audio_info: dict[str, Any] | None
    frames: tuple[FrameRef, ...]
    audio: tuple[AudioRef, ...]
    # the audio's channel names by layout (FL, FR, FC, LFE, ...): the silence detector needs them
    audio_channels: tuple[str, ...] = ()
    batches: tuple[Batch, ...]

    def payload_size(self) -> int:
        return len(json.dumps(self.to_dict()))


class DetectorTask(Contract):
    """One Map item of a detector branch (the ASL's ItemSelector)."""

    manifest: Manifest
    batch: Batch


class EvidenceRef(Contract):
    """Where one detector's evidence for one batch was written."""

    detector: str
    batch: int
    key: str


class BranchFailure(Contract):
    """A detector branch caught by the workflow (its Pass state's Parameters)."""

    detector: str
    status: Literal["failed"]
    error: str = ""
    cause: str = ""


class AggregateTask(Contract):
    """The aggregator's input: the manifest and one entry per detector branch."""

    manifest: Manifest
    results: tuple[tuple[EvidenceRef, ...] | BranchFailure, ...]


class StepError(Contract):
    """A Step Functions error as a Catch records it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    # Step Functions writes Error/Cause; reports store error/cause
    error: str = Field("", validation_alias=AliasChoices("error", "Error"))
    cause: str = Field("", validation_alias=AliasChoices("cause", "Cause"))


class SegmentFailure(Contract):
    """The input of the workflow's RecordFailure state: the job and what ended it."""

    job: SegmentJob
    error: StepError


class SegmentReport(Contract):
    """One segment's report: its detectors' evidence, failures and defects, keyed by run."""

    stream: str
    run: str
    segment: int
    status: Literal["complete", "incomplete", "failed"]
    start_s: float
    end_s: float | None = None
    start_utc: str | None = None
    video: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    frames: int = 0
    evidence: dict[str, list[Evidence]] = Field(default_factory=dict)
    failed: dict[str, StepError] = Field(default_factory=dict)  # detector (or "segment") -> why
    defects: list[dict[str, Any]] = Field(default_factory=list)


class SegmentSummary(Contract):
    """What the aggregator returns to the workflow (small: it ends the execution)."""

    stream: str
    run: str
    segment: int
    defects: int
    failed: list[str]
    merged: int | None = None   # the stream's contiguous prefix of merged segments ends here
    events: int = 0             # messages this aggregator published


class RunRecord(Contract):
    """What Ingest writes for every run: which object, which version, how many segments."""

    stream: str
    run: str
    key: str
    etag: str
    version: str = ""
    event_time: str
    segments: int = Field(ge=0)
    live: bool = False
    # a live run: the latest segment ingested and where it starts on the stream's clock (the
    # playlist ingest maps media sequence numbers to stream time from it)
    sequence: int | None = None
    start_s: float | None = None


class PlaylistEntry(Contract):
    """One segment as the stream's playlists listed it."""

    sequence: int = Field(ge=0)          # its media sequence number
    segment: int = Field(ge=0)           # the number in its name: its report's index
    key: str                             # where it lands under ingest/
    duration: float                      # EXTINF
    discontinuity: bool = False          # EXT-X-DISCONTINUITY precedes it
    start_s: float | None = None         # on the stream's clock, if it could be mapped
    start_utc: str | None = None         # EXT-X-PROGRAM-DATE-TIME, carried forward


class PlaylistRecord(Contract):
    """What a live stream's playlists said, kept by the playlist ingest: the latest window of
    segments (bounded, so the record does not grow with the stream), how far sequence numbers
    were checked, and every ``gap`` finding (missing sequence numbers, discontinuities) as the
    report lists defects, with its UTC start."""

    stream: str
    run: str
    key: str                             # the playlist's object key
    event_time: str                      # of the latest playlist upload read
    target_duration: float
    ended: bool                          # EXT-X-ENDLIST was seen
    checked_through: int                 # every sequence up to this one was checked
    entries: tuple[PlaylistEntry, ...] = ()
    gaps: tuple[dict[str, Any], ...] = ()

    @classmethod
    def read(cls, store: ObjectStore, stream: str) -> PlaylistRecord | None:
        """The stream's record, or None before its first playlist was read."""
        try:
            return cls.model_validate(store.get_json(keys.playlist_record(stream)))
        except MissingResourceError:
            return None


def lambda_error_message(cause: Any) -> str:
    """The readable part of a Lambda error as Step Functions reports it: its cause is the
    function's error payload as JSON (``errorMessage``), or a state's own ``Cause`` text."""
    text = str(cause or "")
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, dict):
        return str(parsed.get("errorMessage") or parsed.get("Cause") or text)
    return text
