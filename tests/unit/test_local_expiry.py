"""The local simulation's lifecycle emulation (what it deletes once a segment is aggregated) and
its execution pool's limit, on moto's S3 (no deployment)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from avmon.errors import ConfigError
from avmon.localcloud.executions import ExecutionPool
from avmon.localcloud.expiry import LifecycleEmulation
from avmon.pipeline import keys

JOB = {"stream": "s.mp4", "run": "r1", "segment": 7, "key": keys.segment("s.mp4", "r1", 7),
       "start_s": 14.0}


def manifest(layout: str = "object-per-frame") -> dict[str, Any]:
    return {"job": JOB, "end_s": 16.0, "layout": layout, "video": None, "audio_info": None,
            "frames": [[14.0 + n / 25, 0.04, 0] for n in range(3)],
            "audio": [[14.0, 48000, 48000], [15.0, 48000, 48000]],
            "batches": [{"batch": 0, "frames": [0, 3], "audio": [0, 2]}]}


def aggregate_event(layout: str = "object-per-frame") -> dict[str, Any]:
    black = [{"detector": "black", "batch": 0,
              "key": keys.result("black", "s.mp4", "r1", 7, 0)}]
    failed = {"detector": "freeze", "status": "failed", "error": "E", "cause": "c"}
    return {"manifest": manifest(layout), "results": [black, failed]}


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="media")
        yield client


def put(s3: Any, *names: str) -> None:
    for name in names:
        s3.put_object(Bucket="media", Key=name, Body=b"x" * 100)


def stored(s3: Any) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket="media").get("Contents", [])}


def test_an_aggregated_segment_leaves_only_its_report(s3: Any) -> None:
    working = [JOB["key"], *(keys.frame("s.mp4", "r1", 7, n) for n in range(3)),
               keys.audio("s.mp4", "r1", 7, 0), keys.audio("s.mp4", "r1", 7, 1),
               keys.result("black", "s.mp4", "r1", 7, 0)]
    others = [keys.report("s.mp4", "r1", 7), keys.frame("s.mp4", "r1", 8, 0),
              keys.run_record("s.mp4", "r1"), "ingest/s.mp4"]
    put(s3, *working, *others)
    lifecycle = LifecycleEmulation(s3, "media")
    lifecycle.observe("Aggregator", aggregate_event(), None)
    assert stored(s3) == set(others)  # the next segment's frame is still being read
    assert lifecycle.to_dict() == {"emulated": True, "objects": 7, "by_prefix": {
        "audio/": 2, "frames/": 3, "results/": 1, "segments/": 1}}


def test_nothing_is_deleted_when_the_aggregator_failed_or_another_function_ran(s3: Any) -> None:
    put(s3, JOB["key"], keys.frame("s.mp4", "r1", 7, 0))
    lifecycle = LifecycleEmulation(s3, "media")
    lifecycle.observe("Aggregator", aggregate_event(), "MissingResourceError")
    lifecycle.observe("Converter", JOB, None)
    assert len(stored(s3)) == 2 and lifecycle.to_dict()["objects"] == 0


def test_object_per_segment_layout(s3: Any) -> None:
    put(s3, keys.frames_of_segment("s.mp4", "r1", 7))
    LifecycleEmulation(s3, "media").observe("Aggregator", aggregate_event("object-per-segment"),
                                            None)
    assert stored(s3) == set()


def test_a_failed_segment_loses_what_its_converter_wrote(s3: Any) -> None:
    """RecordFailure: the converter died part way; its frames are found by listing."""
    partial = [keys.frame("s.mp4", "r1", 7, 0), keys.frame("s.mp4", "r1", 7, 1)]
    put(s3, JOB["key"], *partial, keys.frame("s.mp4", "r1", 70, 0))
    event = {"job": JOB, "error": {"Error": "Runtime.ExitError", "Cause": "killed"}}
    LifecycleEmulation(s3, "media").observe("Aggregator", event, None)
    assert stored(s3) == {keys.frame("s.mp4", "r1", 70, 0)}


def test_a_versioned_bucket_loses_every_version(s3: Any) -> None:
    """moto keeps the bytes of every version: deleting the key alone would free nothing."""
    s3.put_bucket_versioning(Bucket="media", VersioningConfiguration={"Status": "Enabled"})
    frame = keys.frame("s.mp4", "r1", 7, 0)
    put(s3, frame, frame, keys.frame("s.mp4", "r1", 7, 0) + ".other")
    lifecycle = LifecycleEmulation(s3, "media")
    lifecycle.expire([frame])
    versions = s3.list_object_versions(Bucket="media")
    left = [v["Key"] for v in versions.get("Versions", []) + versions.get("DeleteMarkers", [])]
    assert left == [frame + ".other"]
    assert lifecycle.to_dict()["objects"] == 2


def test_the_pool_needs_room_for_one_execution() -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        ExecutionPool(0)


class _Execution:
    """What the pool reads of moto's ExecutionWorker: the interpreter's run and the ARN."""

    def __init__(self, name: str, ran: list[str], release: threading.Event) -> None:
        self.name, self.ran, self.release, self.env = name, ran, release, None
        self._evaluation_details = SimpleNamespace(
            execution_details=SimpleNamespace(arn=f"arn:execution:{name}"))

    def _execution_logic(self) -> None:
        self.ran.append(f"{self.name} started")
        self.release.wait(5.0)
        self.ran.append(f"{self.name} ended")


def test_uninstall_waits_for_the_running_execution_and_abandons_the_waiting_ones() -> None:
    """Executions run the handlers, which decode with PyAV: none may be left running in a
    worker thread once the simulation is over (a thread inside FFmpeg as the process exits
    can crash it); those that had not started never start."""
    pool = ExecutionPool(1)
    pool.install()
    ran: list[str] = []
    release = threading.Event()
    try:
        pool.submit(_Execution("first", ran, release))
        pool.submit(_Execution("second", ran, release))
        deadline = time.monotonic() + 5.0
        while not ran and time.monotonic() < deadline:
            time.sleep(0.01)
        workers = [t for t in threading.enumerate() if t.name.startswith("avmon-execution-")]
        threading.Timer(0.3, release.set).start()  # the running one ends while uninstall waits
    finally:
        pool.uninstall()
    assert ran == ["first started", "first ended"]
    assert workers and not any(t.is_alive() for t in workers)
    assert pool.transitions == {"arn:execution:first": 0}
