"""Ingest: a stream (or a live segment) lands under ingest/; make it a run, start its segments."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event

from avmon.pipeline.steps import Upload, ingest
from functions.runtime import Dependencies, instrumented, logger


@instrumented("Ingest")
def handler(event: dict[str, Any], context: Any,
            deps: Dependencies | None = None) -> dict[str, Any]:
    deps = deps or Dependencies.from_environment()
    runs = []
    for record in S3Event(event).records:
        obj = record.s3.get_object
        upload = Upload(unquote_plus(obj.key),  # S3 events URL-encode object keys
                        obj.etag or "", record.event_time, obj.version_id or "")
        result = ingest(deps.store(record.s3.bucket.name), deps.starter, upload,
                        deps.settings.pipeline)
        summary = {"key": upload.key, "run": upload.run, "stale": result.record is None,
                   "segments": result.record.segments if result.record else 0,
                   "started": result.started, "already_started": result.already}
        logger("avmon-ingest").info("run ingested", extra=summary)
        runs.append(summary)
    return {"runs": runs}
