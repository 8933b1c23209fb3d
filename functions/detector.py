"""One detector (which one: AVMON_DETECTOR): read a batch back from S3, write its evidence."""

from __future__ import annotations

from typing import Any

from avmon.pipeline.contracts import DetectorTask
from avmon.pipeline.steps import detect
from functions.runtime import Dependencies, instrumented, logger


@instrumented("Detector")
def handler(event: dict[str, Any], context: Any,
            deps: Dependencies | None = None) -> dict[str, Any]:
    deps = deps or Dependencies.from_environment()
    ref = detect(deps.store(), deps.settings.detector, DetectorTask.from_event(event))
    logger(f"avmon-{deps.settings.detector}").info("batch analysed", extra=ref.to_dict())
    return ref.to_dict()
