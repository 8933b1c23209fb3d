"""The serverless pipeline, deployed from the synthesized CDK app into moto, run end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from avmon.errors import ConfigError, MediaOpenError, StorageThrottledError
from avmon.evaluation.scoring import score
from avmon.evaluation.synth import SynthRequest, load_truth, parse_defects, synthesize, truth_path
from avmon.localcloud.deploy import LocalCloud
from avmon.localcloud.simulate import Simulation, simulate
from avmon.monitor.analysis import analyze

pytestmark = pytest.mark.functional
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
STATES_PER_EXECUTION = 15  # ConvertMedia, DetectDefects, 6 x (Map + its task), Aggregate


@pytest.fixture(scope="module")
def cloud() -> Any:
    with LocalCloud() as c:
        yield c


@pytest.fixture(scope="module")
def run(cloud: LocalCloud, clip: Path) -> Simulation:
    return simulate(clip, cloud=cloud)


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("short") / "short.mp4"
    synthesize(SynthRequest(out, 4, tuple(parse_defects("black@0.5:1,silence@2:1.5")), 160, 96,
                            seed=3))
    return out


def test_the_hook_replaces_mocked_lambda_with_the_real_handler(cloud: LocalCloud) -> None:
    from moto.awslambda.models import LambdaFunction
    assert LambdaFunction._invoke_lambda.__name__ == "invoke"  # ours, not moto's Docker runner
    converter = next(p for p, role in cloud.deployment.functions.items() if role == "Converter")
    resp = cloud.client("lambda").invoke(FunctionName=converter, Payload=b'{"stream": "x"}')
    assert resp["FunctionError"] == "Handled"
    payload = json.loads(resp["Payload"].read())
    assert payload["errorType"] == "MediaOpenError"  # the handler itself ran and refused
    assert "bad segment event" in payload["errorMessage"]


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
    audio = sum(1 for k in run.keys if k.startswith("audio/"))
    s3 = u["requests"]["s3"]
    # ingest writes segments; converter frames and audio; detectors results; aggregator reports
    assert s3["PutObject"] == segments + frames + audio + 6 * segments + segments
    # ingest reads the stream; converter segments; 4 video detectors every frame, 3 audio
    # detectors every audio object; the aggregator every result
    assert s3["GetObject"] == 1 + segments + 4 * frames + 3 * audio + 6 * segments
    assert u["requests"]["sfn"]["StartExecution"] == segments
    assert u["requests"]["lambda"]["Invoke"] == 1 + segments * 8
    assert u["state_transitions"] == segments * STATES_PER_EXECUTION
    assert u["lambda"]["Converter"]["invocations"] == segments
    assert u["lambda"]["Converter"]["memory_mb"] == 2048
    assert u["bytes"]["s3_put"] > frames * 160 * 96  # lossless luma of every frame


def test_meter_counts_what_moto_holds(run: Simulation) -> None:
    """Every PutObject the meter counted is an object moto stored (the first run writes each
    key once; the upload under ingest/ is the user's, not the pipeline's)."""
    stored = [k for k in run.keys if not k.startswith("ingest/")]
    assert run.usage["requests"]["s3"]["PutObject"] == len(stored)


def test_notifications_for_segments_with_defects(run: Simulation, cloud: LocalCloud) -> None:
    reports = cloud.segment_reports("clip")
    with_defects = sum(1 for r in reports if r["defects"])
    assert with_defects > 0
    assert run.usage["requests"]["sns"]["Publish"] == with_defects


def test_rerun_is_idempotent(run: Simulation, cloud: LocalCloud, clip: Path) -> None:
    again = simulate(clip, cloud=cloud)
    assert again.keys == run.keys  # same objects, overwritten, nothing added
    assert again.report["defects"] == run.report["defects"]
    assert again.usage["executions"] == run.usage["executions"]


def test_failed_detector_is_marked_and_others_kept(cloud, short_clip, monkeypatch):
    import functions.detector as handler
    real = handler.detect

    def flaky(store, detector, manifest, batch, analysis=None):
        if detector == "clipping":
            raise ConfigError("clipping detector misconfigured")
        return real(store, detector, manifest, batch, analysis)

    monkeypatch.setattr(handler, "detect", flaky)
    result = simulate(short_clip, cloud=cloud)
    assert {d["detector"] for d in result.report["defects"]} == {"black", "silence"}
    failed = [f for f in result.failed_segments if f.get("detector") == "clipping"]
    assert len(failed) == result.usage["executions"]
    assert failed[0]["error"] == "ConfigError"
    assert "misconfigured" in failed[0]["cause"]


def test_corrupt_segment_fails_its_execution_with_cause(cloud, short_clip, monkeypatch):
    import functions.converter as handler
    real = handler.convert

    def corrupt_second(store, job, config):
        if job.segment == 1:
            raise MediaOpenError(f"segment {job.segment} of {job.stream}: corrupt (test)")
        return real(store, job, config)

    monkeypatch.setattr(handler, "convert", corrupt_second)
    result = simulate(short_clip, cloud=cloud)
    failed = [f for f in result.failed_segments if f.get("status") == "FAILED"]
    assert len(failed) == 1
    assert failed[0]["error"] == "MediaOpenError"
    assert "corrupt (test)" in failed[0]["cause"]
    assert [d["detector"] for d in result.report["defects"]] == ["black"]  # segment 0 kept


def test_throttled_storage_is_retried(cloud, short_clip, monkeypatch):
    import functions.converter as handler
    real = handler.convert
    calls = {"n": 0}

    def throttled_once(store, job, config):
        calls["n"] += 1
        if calls["n"] == 1:
            raise StorageThrottledError("s3: throttled (SlowDown)")
        return real(store, job, config)

    monkeypatch.setattr(handler, "convert", throttled_once)
    result = simulate(short_clip, cloud=cloud)
    assert result.failed_segments == []
    assert result.usage["lambda"]["Converter"]["invocations"] == result.usage["executions"] + 1
    assert result.usage["lambda"]["Converter"]["errors"] == 1
