"""Media converter: decode one segment, write every frame and the audio to S3, return a manifest."""

from __future__ import annotations

from typing import Any

from avmon.pipeline.ports import S3Store
from avmon.pipeline.steps import SegmentJob, convert
from functions.runtime import Settings, logger


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    job = SegmentJob.from_event(event)
    manifest = convert(S3Store(settings.bucket), job, settings.pipeline)
    logger("avmon-converter").info("segment converted", extra={
        "stream": job.stream, "segment": job.segment, "frames": len(manifest["frames"]),
        "audio_objects": len(manifest["audio"])})
    return manifest
