"""The media bucket's lifecycle rule, emulated early: a segment's working objects are deleted
once its aggregator has stored the segment report.

On AWS the lifecycle rule (``cdk/pipeline_stack.py``: segments/, frames/, audio/ and results/
expire after ``frames_expire_days``, 1 day by default) removes them a day later, and the bill
counts their storage for that day. moto has no lifecycle execution and keeps every object's bytes
in this process, so an hour of 360p frames would need tens of gigabytes. Here they go as soon
as nothing reads them again: the Aggregate (or RecordFailure) task is the last state of a
segment's execution.

This is an emulation, not the pipeline: the deletes are the simulation's own (the driver's
client, which the meter does not count), so the measured requests are exactly the pipeline's. On
S3, lifecycle expirations are not requests and are not billed. What was deleted is counted here,
apart from the usage. A live segment uploaded under ``ingest/`` is the uploader's object: it
expires with ``ingest/`` (30 days by default) and is left alone.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from avmon.pipeline import keys
from avmon.pipeline.contracts import AggregateTask, BranchFailure, SegmentFailure, SegmentJob

DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys


@dataclass
class LifecycleEmulation:
    """Deletes a segment's segment/frame/audio/result objects after its aggregator succeeded.

    ``client`` is an S3 client whose calls are not metered; ``bucket`` the media bucket.
    """

    client: Any
    bucket: str
    expired: Counter[str] = field(default_factory=Counter)  # prefix -> objects deleted
    _versioned: bool | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, function: str, event: Any, error: str | None) -> None:
        """Called after every Lambda invocation of the simulation."""
        if function != "Aggregator" or error is not None or not isinstance(event, dict):
            return
        self.expire(self.working_keys(event))

    def working_keys(self, event: dict[str, Any]) -> list[str]:
        """The objects of the aggregated segment that nothing reads again."""
        if "error" in event:  # RecordFailure: the converter may have written part of them
            job = SegmentFailure.from_event(event).job
            return [*self._segment(job), *self._listed(job)]
        task = AggregateTask.from_event(event)
        m = task.manifest
        s, r, i = m.job.stream, m.job.run, m.job.segment
        if m.layout == "object-per-frame":
            frames = [keys.frame(s, r, i, n) for n in range(len(m.frames))]
        else:
            frames = [keys.frames_of_segment(s, r, i)] if m.frames else []
        audio = [keys.audio(s, r, i, n) for n in range(len(m.audio))]
        results = [ref.key for branch in task.results if not isinstance(branch, BranchFailure)
                   for ref in branch]
        return [*self._segment(m.job), *frames, *audio, *results]

    @staticmethod
    def _segment(job: SegmentJob) -> list[str]:
        return [job.key] if job.key.startswith(keys.SEGMENTS) else []

    def _listed(self, job: SegmentJob) -> list[str]:
        found: list[str] = []
        for prefix in (f"{keys.FRAMES}{job.stream}/{job.run}/{job.segment:06d}/",
                       f"{keys.AUDIO}{job.stream}/{job.run}/{job.segment:06d}/"):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=prefix):
                found += [o["Key"] for o in page.get("Contents", [])]
        return found

    def expire(self, names: Iterable[str]) -> None:
        """Delete ``names`` (every version of each, in a versioned bucket: moto keeps the bytes
        of every version)."""
        objects = [{"Key": k, **({"VersionId": v} if v else {})}
                   for name in names for k, v in self._versions(name)]
        for n in range(0, len(objects), DELETE_BATCH):
            self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": objects[n:n + DELETE_BATCH], "Quiet": True})
        with self._lock:
            for o in objects:
                self.expired[o["Key"].split("/", 1)[0] + "/"] += 1
        _forget_model_instances()

    def _versions(self, name: str) -> list[tuple[str, str]]:
        if not self.versioned:
            return [(name, "")]
        listed = self.client.list_object_versions(Bucket=self.bucket, Prefix=name)
        return [(v["Key"], v["VersionId"])
                for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]
                if v["Key"] == name]

    @property
    def versioned(self) -> bool:
        if self._versioned is None:
            status = self.client.get_bucket_versioning(Bucket=self.bucket).get("Status")
            self._versioned = status in ("Enabled", "Suspended")
        return self._versioned

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"emulated": True, "objects": sum(self.expired.values()),
                    "by_prefix": dict(sorted(self.expired.items()))}


Observer = Callable[[str, Any, str | None], None]


def _forget_model_instances() -> None:
    """moto lists every model object it ever made (each S3 key, ACL and grant) for its server's
    dashboard, so a deleted key is never freed; its own reset empties those lists (the backends,
    which hold the objects that exist, are untouched)."""
    from moto.core.model_instances import reset_model_data

    reset_model_data()
