"""The handlers' Powertools metrics: one EMF record per invocation, namespace ``avmon``, the
counts named as the local simulation's meter names them (moto's S3 under a real S3Store)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from avmon.localcloud.meter import Meter
from avmon.pipeline import keys, ports
from avmon.pipeline.config import PipelineConfig
from functions import detector
from functions.runtime import Dependencies, Settings

JOB = {"stream": "s.mp4", "run": "r1", "segment": 3, "key": keys.segment("s.mp4", "r1", 3),
       "start_s": 6.0}
# a batch with nothing to read: the black detector writes its (empty) evidence, one PutObject
BATCH = {"batch": 0, "frames": [0, 0], "audio": [0, 0]}
TASK = {"manifest": {"job": JOB, "end_s": 8.0, "layout": "object-per-frame", "video": None,
                     "audio_info": None, "frames": [], "audio": [], "batches": [BATCH]},
        "batch": BATCH}


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        ports.reset_session()
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="media")
        yield
        ports.reset_session()


def emf_records(out: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, filter(None, out.splitlines())) if "_aws" in r]


def total(value: Any) -> float:
    """An EMF value: a number, or the list of the values added under one name."""
    return float(sum(value)) if isinstance(value, list) else float(value)


def run_detector() -> None:
    deps = Dependencies(Settings("media", PipelineConfig(), detector="black"),
                        store=ports.S3Store("media"))
    detector.handler(TASK, None, deps=deps)


def test_one_record_per_invocation_named_as_the_meter_names_them(
        s3: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    meter = Meter()
    meter.attach(ports.session())  # the simulation's meter on the same calls
    meter.invoked("BlackDetector", 1024, 0.01, False)
    run_detector()
    (record,) = emf_records(capsys.readouterr().out)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "avmon"
    assert directive["Dimensions"] == [["function"]] and record["function"] == "Detector"
    emitted = {m["Name"]: total(record[m["Name"]]) for m in directive["Metrics"]}
    # the evidence: one PutObject, its bytes, and the invocation itself
    assert set(emitted) == {"lambda.Invoke", "s3.PutObject", "bytes.s3_put"}
    assert emitted == meter.metrics()
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert units["bytes.s3_put"] == "Bytes" and units["s3.PutObject"] == "Count"


def test_disabled_metrics_print_nothing(s3: Any, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    run_detector()
    run_detector()
    assert emf_records(capsys.readouterr().out) == []
