"""Every pipeline step and handler on in-memory fakes, with real encoded media (no AWS, no moto)."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from avmon.detectors.config import AnalysisConfig
from avmon.detectors.registry import NAMES, build
from avmon.errors import (
    MediaOpenError,
    MissingResourceError,
    StorageThrottledError,
)
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize
from avmon.monitor.analysis import analyze
from avmon.pipeline import keys
from avmon.pipeline.config import PipelineConfig
from avmon.pipeline.contracts import (
    AggregateTask,
    BranchFailure,
    DetectorTask,
    SegmentFailure,
    SegmentJob,
    SegmentReport,
    StepError,
    lambda_error_message,
)
from avmon.pipeline.ports import S3Store, SnsNotifier, StepFunctionsStarter
from avmon.pipeline.status import stream_status
from avmon.pipeline.steps import (
    Backoff,
    StateSettings,
    Upload,
    aggregate,
    assemble,
    convert,
    detect,
    ingest,
    record_failure,
)
from functions import aggregator, converter, detector
from functions import ingest as ingest_handler
from functions.runtime import Dependencies, Settings
from tests.fakes import FakeNotifier, FakeStarter, FakeStateStore, FakeStore

CONFIG = PipelineConfig()
NO_WAIT = Backoff(sleep=lambda s: None)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5 s, 160x96, black then silence: three 2 s segments."""
    out = tmp_path_factory.mktemp("steps") / "clip.mp4"
    synthesize(SynthRequest(out, 5, tuple(parse_defects("black@0.5:1,silence@2.5:1.5")), 160, 96,
                            seed=5))
    return out


def upload_of(store: FakeStore, data: bytes, key: str = "ingest/clip.mp4",
              when: str = "2026-11-30T01:00:00.000Z") -> Upload:
    store.objects[key] = data
    return Upload(key, hashlib.md5(data).hexdigest(), when)


def run_segment(store: FakeStore, notifier: FakeNotifier, job: SegmentJob,
                states: FakeStateStore | None = None) -> None:
    manifest = convert(store, job, CONFIG)
    results: list[Any] = []
    for name in NAMES:
        results.append([detect(store, name, DetectorTask(manifest=manifest, batch=b)).to_dict()
                        for b in manifest.batches])
    aggregate(store, notifier, AggregateTask.model_validate(
        {"manifest": manifest.to_dict(), "results": results}),
        state=StateSettings(states or FakeStateStore(), CONFIG))


def test_ingest_records_the_run_and_starts_one_execution_per_segment(media: Path) -> None:
    store, starter = FakeStore(), FakeStarter()
    result = ingest(store, starter, upload_of(store, media.read_bytes()), CONFIG, NO_WAIT)
    assert result.record is not None and result.record.segments == 3
    assert store.get_json(keys.run_record("clip.mp4", result.record.run))["segments"] == 3
    assert len(store.list(f"{keys.SEGMENTS}clip.mp4/{result.record.run}/")) == 3
    assert sorted(result.started) == sorted(starter.executions)
    assert [SegmentJob.from_event(p).segment for p in starter.executions.values()] == [0, 1, 2]
    for name in starter.executions:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name), name


def test_redelivered_event_starts_exactly_the_segments_not_started(media: Path) -> None:
    store = FakeStore()
    upload = upload_of(store, media.read_bytes())
    first = FakeStarter(throttle=2)  # the first two StartExecution calls are refused
    with pytest.raises(StorageThrottledError, match="2 of 3"):
        ingest(store, first, upload, CONFIG, Backoff(attempts=1))
    assert len(first.executions) == 1
    again = FakeStarter()
    again.executions = dict(first.executions)  # the same state machine, redelivered event
    result = ingest(store, again, upload, CONFIG, NO_WAIT)
    assert len(result.started) == 2 and len(result.already) == 1
    assert set(result.started).isdisjoint(first.executions)
    assert len(again.executions) == 3


def test_throttled_starts_are_retried_with_backoff(media: Path) -> None:
    store, starter = FakeStore(), FakeStarter(throttle=4)
    waits: list[float] = []
    result = ingest(store, starter, upload_of(store, media.read_bytes()), CONFIG,
                    Backoff(attempts=6, base_s=0.1, sleep=waits.append))
    assert len(result.started) == 3
    assert len(waits) >= 2 and all(0 <= w <= 5 for w in waits)


def test_a_stale_event_starts_nothing(media: Path) -> None:
    store, starter = FakeStore(), FakeStarter()
    upload = upload_of(store, media.read_bytes())
    store.objects[upload.key] = b"re-uploaded since"
    assert ingest(store, starter, upload, CONFIG, NO_WAIT).record is None
    assert starter.executions == {}


def test_a_live_segment_is_one_execution_of_its_folder(tmp_path: Path) -> None:
    ts = tmp_path / "seg.ts"
    synthesize(SynthRequest(ts, 2, (), 160, 96, seed=1))
    store, starter = FakeStore(), FakeStarter()
    result = ingest(store, starter, upload_of(store, ts.read_bytes(), "ingest/cam1/000007.ts"),
                    CONFIG, NO_WAIT)
    (job,) = [SegmentJob.from_event(p) for p in starter.executions.values()]
    assert (job.stream, job.run, job.segment) == ("cam1", keys.LIVE_RUN, 7)
    assert result.record is not None and result.record.live
    ingest(store, starter, upload_of(store, ts.read_bytes(), "ingest/cam1/000009.ts",
                                     "2026-11-30T01:00:04.000Z"), CONFIG, NO_WAIT)
    notifier = FakeNotifier()
    for payload in starter.executions.values():
        run_segment(store, notifier, SegmentJob.from_event(payload))
    status = stream_status(store, "cam1")
    assert status.complete == [7, 9] and status.missing == [8]  # the packager skipped one


def test_the_pipeline_on_fakes_finds_what_analyze_finds(media: Path) -> None:
    store, starter, notifier = FakeStore(), FakeStarter(), FakeNotifier()
    states = FakeStateStore()
    result = ingest(store, starter, upload_of(store, media.read_bytes()), CONFIG, NO_WAIT)
    for payload in starter.executions.values():
        run_segment(store, notifier, SegmentJob.from_event(payload), states)
    status = stream_status(store, "clip.mp4")
    assert status.finished and status.complete == [0, 1, 2]
    assert result.record is not None and status.run.run == result.record.run
    found = {d.detector: d for d in status.result.report.defects}
    single = {d.detector: d for d in analyze(media).report.defects}
    assert set(found) == set(single) == {"black", "silence"}
    for name, d in found.items():
        assert (d.start_s, d.end_s) == pytest.approx((single[name].start_s, single[name].end_s),
                                                     abs=1e-3)
    # one open and one close per defect, on the stream's clock, as the report has them
    assert sorted((e.event, e.detector, e.start_s, e.end_s) for e in notifier.events) == sorted(
        [("open", n, d.start_s, None) for n, d in found.items()]
        + [("close", n, d.start_s, d.end_s) for n, d in found.items()])


def test_convert_writes_one_object_per_frame_and_refuses_garbage(media: Path) -> None:
    store, starter = FakeStore(), FakeStarter()
    ingest(store, starter, upload_of(store, media.read_bytes()), CONFIG, NO_WAIT)
    job = SegmentJob.from_event(next(iter(starter.executions.values())))
    manifest = convert(store, job, CONFIG)
    frames = store.list(f"{keys.FRAMES}{job.stream}/{job.run}/{job.segment:06d}/")
    assert len(frames) == len(manifest.frames) > 0
    assert manifest.frames[0].t == pytest.approx(job.start_s, abs=1e-3)
    assert manifest.frames[0].keyframe
    store.objects[job.key] = b"\x00" * 4096
    with pytest.raises(MediaOpenError):
        convert(store, job, CONFIG)


def test_stacked_layout_and_batches_give_the_same_evidence(media: Path) -> None:
    store, starter = FakeStore(), FakeStarter()
    ingest(store, starter, upload_of(store, media.read_bytes()), CONFIG, NO_WAIT)
    job = SegmentJob.from_event(next(iter(starter.executions.values())))
    whole = convert(store, job, CONFIG)
    stacked = convert(store, job, PipelineConfig(frame_layout="object-per-segment",
                                                 frames_per_invocation=10))
    assert len(stacked.batches) == -(-len(stacked.frames) // 10)
    a = detect(store, "black", DetectorTask(manifest=whole, batch=whole.batches[0]))
    one = store.get_json(a.key)["evidence"]
    refs = [detect(store, "black", DetectorTask(manifest=stacked, batch=b))
            for b in stacked.batches]
    parts = [store.get_json(r.key)["evidence"] for r in refs]
    (black,) = build(AnalysisConfig(), ["black"])
    assert black.finalize(parts) == black.finalize([one])


def test_a_failed_detector_is_marked_with_its_readable_cause(media: Path) -> None:
    store, starter, notifier = FakeStore(), FakeStarter(), FakeNotifier()
    ingest(store, starter, upload_of(store, media.read_bytes()), CONFIG, NO_WAIT)
    job = SegmentJob.from_event(next(iter(starter.executions.values())))
    manifest = convert(store, job, CONFIG)
    ok = [detect(store, "black", DetectorTask(manifest=manifest, batch=manifest.batches[0]))]
    crash = BranchFailure(detector="clipping", status="failed", error="Runtime.ExitError",
                          cause=json.dumps({"errorMessage": "signal: killed"}))
    summary = aggregate(store, notifier, AggregateTask(manifest=manifest, results=(
        tuple(ok), crash)), state=StateSettings(FakeStateStore(), CONFIG))
    assert summary.failed == ["clipping"]
    report = SegmentReport.model_validate(store.get_json(keys.report(job.stream, job.run, 0)))
    assert report.status == "incomplete"
    assert report.failed["clipping"] == StepError(error="Runtime.ExitError",
                                                  cause="signal: killed")


def test_a_failed_segment_is_reported_failed_and_status_never_mixes_runs(media: Path) -> None:
    store, starter, notifier = FakeStore(), FakeStarter(), FakeNotifier()
    data = media.read_bytes()
    ingest(store, starter, upload_of(store, data), CONFIG, NO_WAIT)
    jobs = [SegmentJob.from_event(p) for p in starter.executions.values()]
    run_segment(store, notifier, jobs[0])
    record_failure(store, notifier, SegmentFailure.model_validate({
        "job": jobs[1].to_dict(), "error": {
            "Error": "MissingResourceError", "Cause": json.dumps(
                {"errorType": "MissingResourceError", "errorMessage": "gone (NoSuchKey)"})}}),
        state=StateSettings(FakeStateStore(), CONFIG))
    status = stream_status(store, "clip.mp4")
    assert status.complete == [0] and status.missing == [2] and not status.finished
    assert status.failed[1] == StepError(error="MissingResourceError", cause="gone (NoSuchKey)")
    assert [p.split(":")[0] for p in status.problems()] == ["segment 1", "segment 2"]
    # a re-upload (a later event) is a new run: nothing of the old run shows
    ingest(store, starter, upload_of(store, data, when="2026-11-30T02:00:00.000Z"), CONFIG,
           NO_WAIT)
    newer = stream_status(store, "clip.mp4")
    assert newer.run.run != status.run.run and newer.older_runs == 1
    assert newer.missing == [0, 1, 2] and newer.result.report.defects == ()


def test_status_of_an_unknown_stream_is_a_clear_error() -> None:
    with pytest.raises(MissingResourceError, match="no runs"):
        stream_status(FakeStore(), "nope.mp4")


def test_assemble_refuses_reports_of_two_runs() -> None:
    a = SegmentReport(stream="s", run="r1", segment=0, status="failed", start_s=0)
    b = SegmentReport(stream="s", run="r2", segment=1, status="failed", start_s=2)
    with pytest.raises(ValueError, match="more than one run"):
        assemble([a, b], "s")


def test_handlers_run_on_fakes_through_their_seam(media: Path) -> None:
    """Every handler, chained as the workflow chains them, with fakes handed in."""
    store, starter, notifier = FakeStore(), FakeStarter(), FakeNotifier()
    data = media.read_bytes()
    store.objects["ingest/dir/clip.mp4"] = data
    settings = Settings(bucket="media", pipeline=CONFIG)
    states = FakeStateStore()
    deps = Dependencies(settings, store=store, notifier=notifier, starter=starter, states=states)
    event = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
                          "eventTime": "2026-11-30T01:00:00.000Z", "eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": "media"}, "object": {
                              "key": "ingest/dir/clip.mp4", "size": len(data),
                              "eTag": hashlib.md5(data).hexdigest()}}}]}
    out = ingest_handler.handler(event, None, deps)
    assert out["runs"][0]["segments"] == 3 and len(out["runs"][0]["started"]) == 3
    for payload in starter.executions.values():
        manifest = converter.handler(payload, None, deps)
        results = []
        for name in NAMES:
            d = Dependencies(Settings("media", CONFIG, detector=name), store=store)
            results.append([detector.handler({"manifest": manifest, "batch": b}, None, d)
                            for b in manifest["batches"]])
        summary = aggregator.handler({"manifest": manifest, "results": results}, None, deps)
        assert summary["failed"] == []
    assert summary["merged"] == 3  # the stream's state holds every segment
    assert stream_status(store, "dir/clip.mp4").finished
    assert {e.detector for e in notifier.events} == {"black", "silence"}
    again = ingest_handler.handler(event, None, deps)  # S3 delivers at least once
    assert again["runs"][0]["started"] == [] and len(again["runs"][0]["already_started"]) == 3


def test_bad_events_are_refused_with_the_field_named() -> None:
    with pytest.raises(MediaOpenError, match=r"SegmentJob.*segment"):
        SegmentJob.from_event({"stream": "s", "run": "r", "key": "k", "start_s": 0})
    with pytest.raises(MediaOpenError, match="DetectorTask"):
        DetectorTask.from_event({"manifest": {}, "batch": {}})


@pytest.mark.parametrize(("cause", "readable"), [
    (json.dumps({"errorType": "X", "errorMessage": "boom"}), "boom"),
    (json.dumps({"Cause": "inner"}), "inner"),
    ("plain text", "plain text"),
    (None, ""),
    ("[1, 2]", "[1, 2]"),
])
def test_one_reader_of_lambda_errors(cause: Any, readable: str) -> None:
    assert lambda_error_message(cause) == readable


@pytest.mark.parametrize("stream", ["clip.mp4", "a b/c[d]*.mp4", "x" * 300, "ünïcode/файл.ts"])
def test_execution_names_follow_aws_rules_and_stay_unique(stream: str) -> None:
    names = {keys.execution_name(stream, run, seg) for run in ("r1", "r2") for seg in (0, 1)}
    assert len(names) == 4
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name), name
        assert keys.segment_of_execution(name) in (0, 1)
    assert keys.execution_name("x" * 300, "r", 0) != keys.execution_name("x" * 301, "r", 0)


def test_two_files_in_one_folder_are_two_streams() -> None:
    assert keys.stream_id_of("ingest/f/a.mp4") != keys.stream_id_of("ingest/f/b.mp4")
    assert keys.stream_id_of("ingest/cam/000001.ts") == keys.stream_id_of("ingest/cam/000002.ts")
    same = keys.run_id("2026-11-30T01:00:00.000Z", "etag1")
    assert same == keys.run_id("2026-11-30T01:00:00.000Z", "etag1")
    assert same != keys.run_id("2026-11-30T01:00:01.000Z", "etag1")


# -- the AWS adapters translate botocore's errors (botocore's Stubber, no network) ----------
def client(service: str) -> Any:
    return boto3.session.Session().client(service, region_name="us-east-1",
                                          aws_access_key_id="x", aws_secret_access_key="x")


@pytest.mark.parametrize(("code", "status", "error"), [
    ("SlowDown", 503, StorageThrottledError),
    ("NoSuchKey", 404, MissingResourceError),
])
def test_s3_get_errors_are_translated(code: str, status: int, error: type[Exception]) -> None:
    s3 = client("s3")
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", code, http_status_code=status)
        with pytest.raises(error, match=code):
            S3Store("b", s3).get("k")


def test_s3_put_slowdown_is_retryable_and_get_returns_the_body() -> None:
    s3 = client("s3")
    with Stubber(s3) as stub:
        stub.add_client_error("put_object", "SlowDown", http_status_code=503)
        stub.add_response("get_object", {"Body": io.BytesIO(b"data")},
                          {"Bucket": "b", "Key": "k"})
        with pytest.raises(StorageThrottledError):
            S3Store("b", s3).put("k", b"x")
        assert S3Store("b", s3).get("k") == b"data"


def test_start_execution_already_exists_is_success_and_throttling_retryable() -> None:
    sfn = client("stepfunctions")
    arn = "arn:aws:states:us-east-1:123456789012:stateMachine:m"
    with Stubber(sfn) as stub:
        stub.add_client_error("start_execution", "ExecutionAlreadyExists")
        stub.add_client_error("start_execution", "ThrottlingException", http_status_code=400)
        stub.add_client_error("start_execution", "StateMachineDoesNotExist")
        starter = StepFunctionsStarter(arn, sfn)
        assert starter.start("n", {}) is False
        with pytest.raises(StorageThrottledError):
            starter.start("n", {})
        with pytest.raises(Exception, match="StateMachineDoesNotExist"):
            starter.start("n", {})


def test_sns_throttling_is_retryable() -> None:
    sns = client("sns")
    with Stubber(sns) as stub:
        stub.add_client_error("publish", "Throttling", http_status_code=400)
        with pytest.raises(StorageThrottledError):
            SnsNotifier("arn:aws:sns:us-east-1:123456789012:t", sns).publish("s", {})
