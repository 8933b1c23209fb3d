"""Ingest: a stream (or a live segment) lands under ingest/; start one execution per segment."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event

from avmon.pipeline.ports import S3Store, StepFunctionsStarter
from avmon.pipeline.steps import ingest, run_token
from functions.runtime import Settings, logger


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    starter = StepFunctionsStarter(settings.state_machine_arn)
    started = []
    for record in S3Event(event).records:
        key = unquote_plus(record.s3.get_object.key)  # S3 events URL-encode object keys
        run = run_token(record.event_time, record.s3.get_object.etag)
        jobs = ingest(S3Store(record.s3.bucket.name), starter, key, settings.pipeline, run)
        logger("avmon-ingest").info("segments started", extra={"key": key, "segments": len(jobs)})
        started += [j.to_dict() for j in jobs]
    return {"started": started}
