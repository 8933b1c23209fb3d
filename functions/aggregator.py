"""Aggregator: merge a segment's detector results into its report (or record why the segment
failed), store it, merge the segment into its stream's state and publish what opened or closed."""

from __future__ import annotations

from typing import Any

from avmon.pipeline.contracts import AggregateTask, SegmentFailure
from avmon.pipeline.steps import StateSettings, aggregate, record_failure
from functions.runtime import Dependencies, instrumented, logger


@instrumented("Aggregator")
def handler(event: dict[str, Any], context: Any,
            deps: Dependencies | None = None) -> dict[str, Any]:
    deps = deps or Dependencies.from_environment()
    state = StateSettings(deps.states, deps.settings.pipeline)
    if "error" in event:  # the workflow's RecordFailure state: the segment did not convert
        summary = record_failure(deps.store(), deps.notifier, SegmentFailure.from_event(event),
                                 state=state)
    else:
        summary = aggregate(deps.store(), deps.notifier, AggregateTask.from_event(event),
                            state=state)
    logger("avmon-aggregator").info("segment reported", extra=summary.to_dict())
    return summary.to_dict()
