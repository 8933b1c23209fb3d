"""Aggregator: merge the detectors' results for a segment, store its report, notify on defects."""

from __future__ import annotations

from typing import Any

from avmon.pipeline.ports import S3Store, SnsNotifier
from avmon.pipeline.steps import aggregate
from functions.runtime import Settings, logger


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    summary = aggregate(S3Store(settings.bucket), SnsNotifier(settings.topic_arn),
                        event["manifest"], event["results"])
    logger("avmon-aggregator").info("segment reported", extra=summary)
    return summary
