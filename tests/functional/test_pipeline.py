"""The serverless pipeline, deployed from the synthesized CDK app into moto, run end to end,
and the fault matrix of the README rehearsed on it (faults injected where AWS produces them)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from avmon.errors import EXIT_INCOMPLETE
from avmon.evaluation.scoring import score
from avmon.evaluation.synth import SynthRequest, load_truth, parse_defects, synthesize, truth_path
from avmon.localcloud.deploy import LocalCloud
from avmon.localcloud.faults import LambdaFault, ServiceFault
from avmon.localcloud.simulate import Simulation, simulate
from avmon.monitor.analysis import analyze
from avmon.pipeline import keys
from avmon.pipeline.status import stream_status

pytestmark = pytest.mark.functional
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
STATES_PER_EXECUTION = 15  # ConvertMedia, DetectDefects, 6 x (Map + its task), Aggregate


@pytest.fixture(scope="module")
def cloud() -> Any:
    with LocalCloud(keep_histories=True) as c:  # the Lambda throttling test reads histories
        yield c


@pytest.fixture(scope="module")
def run(cloud: LocalCloud, clip: Path) -> Simulation:
    return simulate(clip, cloud=cloud)


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s, 160x96: two segments, black in the first, silence in the second."""
    out = tmp_path_factory.mktemp("short") / "short.mp4"
    synthesize(SynthRequest(out, 4, tuple(parse_defects("black@0.5:1,silence@2:1.5")), 160, 96,
                            seed=3))
    return out


def ingest_function(cloud: LocalCloud) -> str:
    return next(p for p, role in cloud.deployment.functions.items() if role == "Ingest")


def test_the_hook_replaces_mocked_lambda_with_the_real_handler(cloud: LocalCloud) -> None:
    from moto.awslambda.models import LambdaFunction
    assert LambdaFunction._invoke_lambda.__name__ == "invoke"  # ours, not moto's Docker runner
    converter = next(p for p, role in cloud.deployment.functions.items() if role == "Converter")
    resp = cloud.client("lambda").invoke(FunctionName=converter, Payload=b'{"stream": "x"}')
    assert resp["FunctionError"] == "Handled"
    payload = json.loads(resp["Payload"].read())
    assert payload["errorType"] == "MediaOpenError"  # the handler itself ran and refused
    assert "bad SegmentJob event" in payload["errorMessage"]


def test_defects_equal_the_single_process(run: Simulation, clip: Path) -> None:
    single = {d.detector: d for d in analyze(clip).report.defects}
    served = {d["detector"]: d for d in run.report["defects"]}
    assert set(served) == set(single)
    for name, d in served.items():
        s = single[name]
        if name == "av_sync":  # a cue at a segment boundary has no previous frame: see README
            assert d["start_s"] == pytest.approx(s.start_s, abs=0.1)
            assert d["details"]["offset_ms"] == pytest.approx(s.details["offset_ms"], abs=10)
        else:
            assert (d["start_s"], d["end_s"]) == (round(s.start_s, 3), round(s.end_s, 3)), name


def test_every_injected_defect_is_found(run: Simulation, clip: Path) -> None:
    from avmon.model import Defect
    truth = load_truth(truth_path(clip))
    found = [Defect.from_dict(d) for d in run.report["defects"]]
    scores = score(truth, found, {t.detector for t in truth})
    assert all((s.tp, s.fp, s.fn) == (1, 0, 0) for s in scores.values()), scores


def test_request_counts_follow_from_the_design(run: Simulation) -> None:
    u = run.usage
    segments = u["executions"]
    frames = run.report["video"]["frames"]
    audio = run.local["expired"]["by_prefix"]["audio/"]  # deleted once aggregated (emulated)
    s3 = u["requests"]["s3"]
    # ingest writes segments and the run record; converter frames and audio; detectors
    # results; aggregator reports
    assert s3["PutObject"] == segments + 1 + frames + audio + 6 * segments + segments
    # ingest reads the stream; converter segments; 4 video detectors every frame, 3 audio
    # detectors every audio object; the aggregator every result, plus for the stream's state
    # the run record (once per aggregator that finds no state yet) and the reports of the
    # state's tail that it did not write itself (how many depends on the finishing order)
    state_reads = s3["GetObject"] - (1 + segments + 4 * frames + 3 * audio + 6 * segments)
    assert 1 <= state_reads <= segments * segments
    assert u["requests"]["dynamodb"]["PutItem"] >= segments  # one merge each, at least
    # the state's item stays under 4 KB: one strongly consistent read unit a GetItem; a write
    # at least one unit a PutItem, more for an item over 1 KB
    ddb = u["requests"]["dynamodb"]
    assert u["dynamodb"]["read_units"] == ddb["GetItem"]
    assert u["dynamodb"]["write_units"] >= ddb["PutItem"]
    assert 0 < u["dynamodb"]["item_bytes_read"] < 4096 * ddb["GetItem"]
    assert u["requests"]["sfn"]["StartExecution"] == segments
    assert u["requests"]["lambda"]["Invoke"] == 1 + segments * 8
    assert u["state_transitions"] == segments * STATES_PER_EXECUTION
    assert u["lambda"]["Converter"]["invocations"] == segments
    assert u["lambda"]["Converter"]["memory_mb"] == 2048
    assert u["bytes"]["s3_put"] > frames * 160 * 96  # lossless luma of every frame


def test_meter_counts_what_moto_holds(run: Simulation) -> None:
    """Every PutObject the meter counted is an object moto stored, still there or deleted by
    the emulated lifecycle rule (the first run writes each key once; the upload under ingest/
    is the user's, not the pipeline's)."""
    stored = [k for k in run.keys if not k.startswith("ingest/")]
    assert not [k for k in stored if k.startswith(("frames/", "audio/", "segments/"))]
    expired = run.local["expired"]["objects"]
    assert run.usage["requests"]["s3"]["PutObject"] == len(stored) + expired


def test_one_open_and_one_close_message_per_defect(run: Simulation) -> None:
    defects = [d for d in run.report["defects"] if d["details"].get("status") != "unknown"]
    assert defects
    # the upload's last segment closes what is open: two messages per defect of the report
    assert run.usage["requests"]["sns"]["Publish"] == 2 * len(defects)


def subscribed_queue(cloud: LocalCloud) -> str:
    """An SQS queue subscribed to the defects topic: what a consumer of the messages sees."""
    assert cloud.deployment is not None
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="defect-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    cloud.client("sns").subscribe(TopicArn=cloud.deployment.topic_arn, Protocol="sqs",
                                  Endpoint=arn)
    return str(url)


def received(cloud: LocalCloud, url: str) -> list[dict[str, Any]]:
    sqs, out = cloud.client("sqs"), []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return out
        for m in batch:
            out.append(json.loads(m["Body"]))  # the SNS envelope: Subject, Message, attributes
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_a_live_stream_crossing_segment_boundaries_gives_one_open_and_one_close(
        cloud: LocalCloud, tmp_path: Path) -> None:
    """A live HLS stream as a packager writes it (2 s segments on a fixed GOP named
    ``cam_00000.ts``, a playlist with EXT-X-PROGRAM-DATE-TIME, by the ffmpeg CLI), fed segment
    then playlist, one by one; a freeze, a black, a silence and an A/V offset each cross a
    segment boundary. What a consumer subscribed to the topic receives: one open and one close
    per defect, in the event schema, with the intervals of ``avmon analyze`` on the stream."""
    from avmon.events import DefectEvent
    from avmon.localcloud.simulate import simulate_playlist
    from tests.unit.test_stream_state import (
        DEFECTS,
        assert_as_analyze,
        hls,
        intervals,
        single_on_stream_clock,
    )

    synthesize(SynthRequest(tmp_path / "src.ts", 26, tuple(parse_defects(DEFECTS)), 160, 96,
                            seed=7))
    hls(tmp_path / "src.ts", tmp_path)
    url = subscribed_queue(cloud)
    sim = simulate_playlist(str(tmp_path / "live.m3u8"), cloud=cloud, folder="cam-live")
    assert sim.failed_segments == [] and sim.exit_code == 0
    envelopes = [m for m in received(cloud, url)
                 if m["MessageAttributes"]["stream"]["Value"] == "cam-live/cam"]
    events = [DefectEvent.from_dict(json.loads(m["Message"])) for m in envelopes]
    for m, e in zip(envelopes, events, strict=True):
        assert m["MessageAttributes"]["detector"]["Value"] == e.detector
        assert m["MessageAttributes"]["event"]["Value"] == e.event
        assert m["Subject"].startswith(f"avmon {e.event} {e.detector} cam-live/cam")
        assert e.start_utc is not None  # from the playlist's EXT-X-PROGRAM-DATE-TIME
    # simulate --json lists the same messages under alerts
    assert sorted(a["id"] for a in sim.alerts if "event" in a) == sorted(e.id for e in events)
    single = single_on_stream_clock(tmp_path / "live.m3u8", tmp_path / "whole.ts")
    assert_as_analyze(intervals(events), single)


def test_reupload_is_a_new_run_and_a_duplicate_event_starts_nothing(run, cloud, clip):
    again = simulate(clip, cloud=cloud)
    assert again.run != run.run
    assert again.report["defects"] == run.report["defects"]
    assert again.usage["executions"] == run.usage["executions"]
    status = stream_status(cloud.store(), "clip.mp4")
    assert status.run.run == again.run and status.older_runs >= 1 and status.finished
    # S3 delivers at least once: the same event again maps to the same run, starts nothing
    event = next(i.event for i in reversed(cloud.invoker.invocations) if i.function == "Ingest")
    before = len(cloud.executions())
    out = json.loads(cloud.client("lambda").invoke(
        FunctionName=ingest_function(cloud), Payload=json.dumps(event))["Payload"].read())
    assert out["runs"][0]["run"] == again.run and out["runs"][0]["started"] == []
    assert len(out["runs"][0]["already_started"]) == again.usage["executions"]
    assert len(cloud.executions()) == before


def test_a_late_event_for_replaced_content_is_stale(cloud, short_clip, tmp_path):
    key = "ingest/late/v.mp4"
    first = simulate(short_clip, cloud=cloud, key=key)
    event = next(i.event for i in reversed(cloud.invoker.invocations) if i.function == "Ingest")
    other = tmp_path / "v.mp4"
    synthesize(SynthRequest(other, 2, (), 160, 96, seed=9))
    second = simulate(other, cloud=cloud, key=key)
    out = json.loads(cloud.client("lambda").invoke(
        FunctionName=ingest_function(cloud), Payload=json.dumps(event))["Payload"].read())
    assert out["runs"][0]["stale"] is True and out["runs"][0]["started"] == []
    status = stream_status(cloud.store(), "late/v.mp4")
    assert status.run.run == second.run != first.run


def test_two_files_in_one_folder_are_two_streams(cloud, short_clip, clip):
    a = simulate(short_clip, cloud=cloud, key="ingest/folder/a.mp4")
    b = simulate(short_clip, cloud=cloud, key="ingest/folder/b.mp4")
    for stream, sim in (("folder/a.mp4", a), ("folder/b.mp4", b)):
        status = stream_status(cloud.store(), stream)
        assert status.run.run == sim.run and status.finished
        assert [d.detector for d in status.result.report.defects] == ["black", "silence"]


def test_a_crashed_detector_is_marked_and_others_kept(cloud, short_clip):
    crash = LambdaFault("ClippingDetector", "crash", times=None)
    with cloud.faults.injected(crash):
        result = simulate(short_clip, cloud=cloud)
    assert {d["detector"] for d in result.report["defects"]} == {"black", "silence"}
    failed = [f for f in result.failed_segments if f.get("detector") == "clipping"]
    assert len(failed) == len(result.failed_segments) == result.usage["executions"]
    assert failed[0]["error"] == "Runtime.ExitError"
    assert "Runtime exited" in failed[0]["cause"]
    assert result.exit_code == EXIT_INCOMPLETE


def test_a_crashed_converter_fails_its_segment_with_the_cause(cloud, short_clip):
    crash = LambdaFault("Converter", "crash", times=None, when=lambda e: e.get("segment") == 1)
    with cloud.faults.injected(crash):
        result = simulate(short_clip, cloud=cloud)
    assert [(f["segment"], f["status"], f["error"]) for f in result.failed_segments] == [
        (1, "failed", "Runtime.ExitError")]
    assert [d["detector"] for d in result.report["defects"]] == ["black"]  # segment 0 kept
    failed = [e for e in cloud.executions() if e["name"] == result.failed_segments[0]["execution"]]
    assert [e["status"] for e in failed] == ["FAILED"]  # the execution itself ends as failed


def test_an_object_deleted_mid_run_fails_its_segment(cloud, short_clip):
    gone = ServiceFault("s3.GetObject", "NoSuchKey", 404, key="/000001.ts", times=None)
    with cloud.faults.injected(gone):
        result = simulate(short_clip, cloud=cloud)
    (failed,) = result.failed_segments
    assert (failed["segment"], failed["error"]) == (1, "MissingResourceError")
    assert "NoSuchKey" in failed["cause"]


def test_every_segment_failing_reports_every_segment(cloud, short_clip):
    with cloud.faults.injected(LambdaFault("Converter", "crash", times=None)):
        result = simulate(short_clip, cloud=cloud)
    assert [f["segment"] for f in result.failed_segments] == [0, 1]
    assert all(f["status"] == "failed" for f in result.failed_segments)
    assert result.report["defects"] == [] and result.exit_code == EXIT_INCOMPLETE


@pytest.mark.parametrize(("fault", "role"), [
    (ServiceFault("s3.GetObject", "SlowDown", 503, key="segments/"), "Converter"),
    (ServiceFault("s3.PutObject", "SlowDown", 503, key="results/black/"), "BlackDetector"),
])
def test_s3_slowdown_is_retried_by_the_workflow(cloud, short_clip, fault, role):
    with cloud.faults.injected(fault):
        result = simulate(short_clip, cloud=cloud)
    assert fault.hits == 1
    assert result.failed_segments == [] and result.exit_code == 0
    fn = result.usage["lambda"][role]
    assert fn["errors"] == 1 and fn["invocations"] == result.usage["executions"] + 1


def test_lambda_throttling_is_retried_as_on_aws(cloud, short_clip):
    with cloud.faults.injected(LambdaFault("Converter", "throttle")):
        result = simulate(short_clip, cloud=cloud)
    assert result.failed_segments == []
    conv = result.usage["lambda"]["Converter"]
    assert conv["throttled"] == 1 and conv["errors"] == 0
    assert conv["invocations"] == result.usage["executions"]
    names = {keys.execution_name("short.mp4", result.run, n) for n in (0, 1)}
    errors = [h.get("lambdaFunctionFailedEventDetails", {}).get("error")
              for e in cloud.executions() if e["name"] in names
              for h in cloud.history(e["executionArn"])]
    assert "Lambda.TooManyRequestsException" in errors


def test_throttled_start_execution_is_retried_by_ingest(cloud, short_clip):
    throttled = ServiceFault("sfn.StartExecution", "ThrottlingException", 400, times=2)
    with cloud.faults.injected(throttled):
        result = simulate(short_clip, cloud=cloud)
    assert throttled.hits == 2
    assert result.usage["executions"] == 2 and result.failed_segments == []


def test_report_command_shows_the_latest_run_and_exits_incomplete(cloud, short_clip, capsys):
    from avmon.cli import main
    crash = LambdaFault("Converter", "crash", times=None, when=lambda e: e.get("segment") == 1)
    with cloud.faults.injected(crash):
        sim = simulate(short_clip, cloud=cloud, key="ingest/reported/r.mp4")
    capsys.readouterr()
    code = main(["report", "--bucket", cloud.deployment.bucket, "--stream", "reported/r.mp4",
                 "--json"])
    out, err = capsys.readouterr()
    assert code == EXIT_INCOMPLETE == sim.exit_code
    shown = json.loads(out)
    assert shown["run"]["run"] == sim.run and shown["segments"]["complete"] == [0]
    assert shown["segments"]["failed"]["1"]["error"] == "Runtime.ExitError"
    assert f"run {sim.run}: segment 1: failed: Runtime.ExitError" in err
