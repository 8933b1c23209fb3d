"""Ingest: a stream (or a live segment) lands under ingest/; make it a run, start its segments.
A live stream's HLS playlist is read instead: gaps found in it are published, and one that says
EXT-X-ENDLIST closes what the stream's state still holds open once its last segment is merged."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event

from avmon.pipeline import keys
from avmon.pipeline.steps import StateSettings, Upload, ingest, ingest_playlist
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
        store = deps.store(record.s3.bucket.name)
        if keys.is_playlist(upload.key):
            read = ingest_playlist(store, deps.notifier, upload,
                                   state=StateSettings(deps.states, deps.settings.pipeline))
            summary = {"key": upload.key, "run": upload.run, "stale": read.record is None,
                       "playlist": True, "stream": read.record.stream if read.record else "",
                       "gaps": read.gaps, "closed": read.closed, "segments": 0, "started": [],
                       "already_started": []}
            logger("avmon-ingest").info("playlist read", extra=summary)
            runs.append(summary)
            continue
        result = ingest(store, deps.starter, upload, deps.settings.pipeline)
        summary = {"key": upload.key, "run": upload.run, "stale": result.record is None,
                   "segments": result.record.segments if result.record else 0,
                   "started": result.started, "already_started": result.already}
        logger("avmon-ingest").info("run ingested", extra=summary)
        runs.append(summary)
    return {"runs": runs}
