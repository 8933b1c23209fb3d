"""The one event schema for announcing defects while they happen.

Every live consumer speaks it: ``avmon watch --json`` prints one per line, ``avmon serve`` sends
it to each stream's sinks, and the serverless pipeline publishes the same dict to SNS. A defect
is announced when it has lasted its minimum duration (``open``, ``end_s`` null), may be revised
while it lasts (``update``: confidence or details changed), and is announced again when it ends
or the watch stops (``close``, with ``end_s``). Input failures are findings in the same schema,
under the detector names in ``INPUT_HEALTH``; what caused an input loss, where it is known, is
its ``details.cause`` (one of ``INPUT_LOSS_CAUSES``), not a second alert.

``id`` identifies one event (not one defect): it is the same however many times a sink retries
it, so a receiver can drop duplicates. ``defect_id`` is shared by a defect's open, updates and
close.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from avmon.errors import ConfigError

EventKind = Literal["open", "update", "close"]
EVENT_KINDS: tuple[str, ...] = ("open", "update", "close")

# Findings about the input itself rather than the picture or the sound.
INPUT_LOSS = "input_loss"                   # no media for the input timeout (wall clock)
GAP = "gap"                                 # media missing inside the stream: a timestamp jump,
                                            # segments that failed to load, a sequence skip
# The causes of an input loss, announced as its ``details.cause`` (one cause, one alert):
STALE_PLAYLIST = "stale_playlist"           # a live HLS playlist stopped growing
ORIGIN_UNREACHABLE = "origin_unreachable"   # the source cannot be opened or fetched
INPUT_HEALTH: tuple[str, ...] = (INPUT_LOSS, GAP)
INPUT_LOSS_CAUSES: tuple[str, ...] = (STALE_PLAYLIST, ORIGIN_UNREACHABLE)


def parse_utc(text: str) -> float:
    """ISO 8601 (``2026-11-30T04:20:30.467Z``; ``+0000`` as HLS playlists write it, or
    ``+00:00``) as POSIX seconds; a time without a zone is UTC.

    Raises ValueError for text that is not such a time.
    """
    value = text.strip().replace("Z", "+00:00")
    if len(value) > 5 and value[-5] in "+-" and value[-3] != ":":
        value = f"{value[:-2]}:{value[-2:]}"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def utc_iso(epoch_s: float | None) -> str | None:
    """A POSIX time as ISO 8601 in UTC with milliseconds (``2026-11-30T01:02:03.456Z``)."""
    if epoch_s is None:
        return None
    text = datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@dataclass(frozen=True)
class DefectEvent:
    """One announcement about one defect of one stream.

    ``start_s``/``end_s`` are media seconds on the stream's own clock (an MPEG-TS stream's PTS,
    not seconds since the watch joined); ``start_utc``/``end_utc`` are ISO 8601 UTC, from the
    HLS playlist's EXT-X-PROGRAM-DATE-TIME where it has one, else from the receive clock.
    ``end_s``/``end_utc`` are None while the defect is open.
    """

    event: EventKind
    stream: str
    detector: str
    start_s: float
    end_s: float | None
    start_utc: str | None
    end_utc: str | None
    confidence: float
    details: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""
    defect_id: str = ""

    def __post_init__(self) -> None:
        if self.event not in EVENT_KINDS:
            raise ConfigError(f"event must be one of {', '.join(EVENT_KINDS)},"
                              f" got {self.event!r}")
        if self.event == "close" and self.end_s is None:
            raise ConfigError("a close event needs end_s")
        if not self.defect_id:
            object.__setattr__(self, "defect_id",
                               f"{self.stream}/{self.detector}/{self.start_s:.3f}")
        if not self.id:
            object.__setattr__(self, "id", f"{self.defect_id}/{self.event}")

    def with_sequence(self, n: int) -> DefectEvent:
        """The same event with a distinct id (the ``n``-th update of a defect)."""
        return replace(self, id=f"{self.defect_id}/{self.event}/{n}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "stream": self.stream,
            "detector": self.detector,
            "start_s": round(self.start_s, 3),
            "end_s": None if self.end_s is None else round(self.end_s, 3),
            "start_utc": self.start_utc,
            "end_utc": self.end_utc,
            "confidence": round(self.confidence, 3),
            "details": dict(self.details),
            "id": self.id,
            "defect_id": self.defect_id,
        }

    def to_json_line(self) -> str:
        """One line of JSON, no trailing newline."""
        return json.dumps(self.to_dict(), separators=(", ", ": "), sort_keys=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DefectEvent:
        """Parse one event. Raises ConfigError naming the missing or bad field."""
        try:
            end = d.get("end_s")
            return cls(
                event=d["event"],
                stream=str(d["stream"]),
                detector=str(d["detector"]),
                start_s=float(d["start_s"]),
                end_s=None if end is None else float(end),
                start_utc=d.get("start_utc"),
                end_utc=d.get("end_utc"),
                confidence=float(d.get("confidence", 1.0)),
                details=dict(d.get("details") or {}),
                id=str(d.get("id") or ""),
                defect_id=str(d.get("defect_id") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad event record {dict(d)!r}: {exc}") from None

    def describe(self) -> str:
        """One readable line: ``OPEN  freeze  12.480-  (2026-...Z) conf 0.93 {...}``."""
        end = "" if self.end_s is None else f"{self.end_s:.2f}"
        when = self.start_utc or "-"
        details = " ".join(f"{k}={v}" for k, v in self.details.items())
        return (f"{self.event.upper():6} {self.stream} {self.detector:17} "
                f"{self.start_s:9.2f}-{end:>9} {when} conf {self.confidence:.2f} {details}"
                ).rstrip()
