"""Media converter: decode one segment, write every frame and the audio to S3, return a manifest."""

from __future__ import annotations

from typing import Any

from avmon.pipeline.contracts import SegmentJob
from avmon.pipeline.steps import convert
from functions.runtime import Dependencies, instrumented, logger


@instrumented("Converter")
def handler(event: dict[str, Any], context: Any,
            deps: Dependencies | None = None) -> dict[str, Any]:
    deps = deps or Dependencies.from_environment()
    job = SegmentJob.from_event(event)
    manifest = convert(deps.store(), job, deps.settings.pipeline)
    logger("avmon-converter").info("segment converted", extra={
        "stream": job.stream, "run": job.run, "segment": job.segment,
        "frames": len(manifest.frames), "audio_objects": len(manifest.audio)})
    return manifest.to_dict()
