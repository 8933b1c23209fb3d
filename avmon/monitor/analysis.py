"""The single-process design: decode once, run every detector on frames in memory.

This is also the core that the serverless pipeline's handlers call piece by piece: the media
converter uses the same decoder, each detector Lambda runs the same scanner on its segment, and
the aggregator calls the same ``finalize``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from avmon import __version__
from avmon.detectors.base import Detector, Evidence, feeds
from avmon.detectors.config import AnalysisConfig
from avmon.detectors.registry import build, finalize_all
from avmon.errors import MediaTruncatedError
from avmon.frames import AudioBatcher, VideoFrame
from avmon.media.decode import MediaReader, Source
from avmon.model import Report


@dataclass
class Analysis:
    """A finished analysis: the report, and the truncation error if the input ended early."""

    report: Report
    evidence: dict[str, Evidence] = field(default_factory=dict)
    truncated: MediaTruncatedError | None = None


def runnable(detectors: Sequence[Detector], has_video: bool,
             has_audio: bool) -> tuple[list[Detector], dict[str, str]]:
    """Split detectors into those the tracks allow and the skipped ones, with the reason."""
    present = {"video"} if has_video else set()
    present |= {"audio"} if has_audio else set()
    keep, skipped = [], {}
    for d in detectors:
        missing = d.needs - present
        if missing:
            skipped[d.name] = f"no {' or '.join(sorted(missing))} track"
        else:
            keep.append(d)
    return keep, skipped


def analyze(source: Source, config: AnalysisConfig | None = None,
            names: Sequence[str] | None = None,
            progress: Callable[[float], None] | None = None, threads: int = 1) -> Analysis:
    """Analyse one input in one pass. ``progress`` is called with media seconds decoded.

    Raises MediaOpenError for input that cannot be opened and ConfigError for bad names. A stream
    that ends before its declared duration is still analysed; ``Analysis.truncated`` says so.
    """
    config = config or AnalysisConfig()
    detectors = build(config, names)
    with MediaReader(source, threads=threads) as reader:
        active, skipped = runnable(detectors, reader.has_video, reader.has_audio)
        scanners = [(d.name, d.scanner()) for d in active]
        video_feeds = feeds((s for _, s in scanners), "video")
        audio_feeds = feeds((s for _, s in scanners), "audio")
        wants_video = any("video" in d.needs for d in active)
        wants_audio = any("audio" in d.needs for d in active)
        next_tick = 0.0
        batcher = AudioBatcher()
        for item in reader.frames(video=wants_video, audio=wants_audio):
            if isinstance(item, VideoFrame):
                for feed in video_feeds:
                    feed(item)
            elif (batch := batcher.push(item)) is not None:
                for feed in audio_feeds:
                    feed(batch)
            if progress is not None and item.t >= next_tick:
                progress(item.t)
                next_tick = item.t + 1.0
        if (batch := batcher.flush()) is not None:
            for feed in audio_feeds:
                feed(batch)
        evidence = {name: s.evidence() for name, s in scanners}
        defects = finalize_all(active, {k: [v] for k, v in evidence.items()})
        info = reader.info()
        truncated = _truncation(reader)
    report = Report(stream=info, defects=tuple(defects), config=config.to_dict(),
                    version=__version__, skipped=skipped)
    return Analysis(report=report, evidence=evidence, truncated=truncated)


def _truncation(reader: MediaReader) -> MediaTruncatedError | None:
    declared, decoded = reader.declared_duration, reader.stats.last_t
    name = reader.name
    if reader.stats.ended_early:
        return MediaTruncatedError(f"{name}: truncated or corrupt container after {decoded:.1f} s"
                                   f" ({reader.stats.ended_early})")
    if declared and decoded < declared - max(1.0, 0.05 * declared):
        return MediaTruncatedError(f"{name}: truncated: media ends at {decoded:.1f} s of"
                                   f" {declared:.1f} s declared")
    return None
