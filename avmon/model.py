"""The report's contract: defects and stream descriptions as small frozen dataclasses.

The JSON written by ``avmon analyze --json`` (and by the pipeline's aggregator) is exactly
``Report.to_dict()``; truth files written by ``avmon synth`` use the same ``Defect`` schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from avmon.errors import ConfigError


@dataclass(frozen=True)
class Defect:
    """One defect: which detector, when (seconds from stream start), how sure, and specifics."""

    detector: str
    start_s: float
    end_s: float
    confidence: float = 1.0
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def unmeasured(self) -> bool:
        """A finding that says "this detector could not measure here" (``details.status`` is
        ``unknown``: A/V sync on content with no usable evidence), not a defect. Reports list
        it apart; it is never scored, matched or alerted as a defect."""
        return self.details.get("status") == "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "confidence": round(self.confidence, 3),
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Defect:
        """Parse one defect record. Raises ConfigError naming the missing or bad field."""
        try:
            return cls(
                detector=str(d["detector"]),
                start_s=float(d["start_s"]),
                end_s=float(d["end_s"]),
                confidence=float(d.get("confidence", 1.0)),
                details=dict(d.get("details") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"bad defect record {dict(d)!r}: {exc}") from None


def sort_defects(defects: Sequence[Defect]) -> list[Defect]:
    return sorted(defects, key=lambda d: (d.start_s, d.detector, d.end_s))


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    fps: float
    frames: int = 0
    decode_errors: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "fps": round(self.fps, 3),
            "frames": self.frames,
            "decode_errors": self.decode_errors,
        }


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    sample_rate: int
    channels: int

    def to_dict(self) -> dict[str, Any]:
        return {"codec": self.codec, "sample_rate": self.sample_rate, "channels": self.channels}


@dataclass(frozen=True)
class StreamInfo:
    source: str
    duration_s: float
    video: VideoInfo | None
    audio: AudioInfo | None


@dataclass(frozen=True)
class Report:
    """What one analysis of one stream found, with the settings that produced it."""

    stream: StreamInfo
    defects: tuple[Defect, ...]
    config: Mapping[str, Any]
    version: str
    skipped: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.stream.source,
            "duration_s": round(self.stream.duration_s, 3),
            "video": self.stream.video.to_dict() if self.stream.video else None,
            "audio": self.stream.audio.to_dict() if self.stream.audio else None,
            "defects": [d.to_dict() for d in sort_defects(self.defects) if not d.unmeasured],
            "unmeasured": [d.to_dict() for d in sort_defects(self.defects) if d.unmeasured],
            "avmon_version": self.version,
            "config": dict(self.config),
        }
