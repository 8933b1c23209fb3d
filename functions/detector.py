"""One defect detector (which one: AVMON_DETECTOR): read a batch back from S3, write evidence."""

from __future__ import annotations

from typing import Any

from avmon.pipeline.ports import S3Store
from avmon.pipeline.steps import detect
from functions.runtime import Settings, logger


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = Settings.from_environment()
    result = detect(S3Store(settings.bucket), settings.detector, event["manifest"],
                    event["batch"])
    logger(f"avmon-{settings.detector}").info("batch analysed", extra=result)
    return result
