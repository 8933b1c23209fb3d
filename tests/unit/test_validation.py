"""The one validation layer: strict types, finite numbers, ranges by unit, one line per error,
and the same models wherever a setting enters (CLI, files, the CDK app, a Lambda's environment).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import Field

from avmon.detectors.base import DetectorConfig
from avmon.detectors.black import BlackConfig
from avmon.detectors.config import AnalysisConfig
from avmon.detectors.freeze import FreezeConfig
from avmon.economics.prices import PriceTable
from avmon.economics.quotas import load_quotas
from avmon.errors import ConfigError
from avmon.evaluation.synth import load_truth, parse_defects
from avmon.pipeline.config import PipelineConfig
from avmon.usage import Usage
from avmon.validation import number, writable_dir, writable_file

ROOT = Path(__file__).resolve().parents[2]


def test_a_field_with_its_own_constraint_keeps_it():
    @dataclass(frozen=True)
    class TiltConfig(DetectorConfig):
        tilt: Annotated[float, Field(ge=-90, le=90)] = 0.0   # no unit rule would allow < 0
        min_duration_s: float = 1.0

    assert TiltConfig.from_mapping({"tilt": -45}).tilt == -45.0
    with pytest.raises(ConfigError, match="tilt = 91: must be <= 90"):
        TiltConfig.from_mapping({"tilt": 91})
    with pytest.raises(ConfigError, match="min_duration_s = -1: must be >= 0"):
        TiltConfig.from_mapping({"min_duration_s": -1})


def test_detector_config_keeps_its_dataclass_behaviour():
    cfg = FreezeConfig.from_mapping({"min_duration_s": 1})
    assert isinstance(cfg, FreezeConfig)
    assert cfg.min_duration_s == 1.0 and isinstance(cfg.min_duration_s, float)
    assert cfg == FreezeConfig(min_duration_s=1.0)
    assert hash(cfg) == hash(FreezeConfig(min_duration_s=1.0))
    with pytest.raises(FrozenInstanceError):
        cfg.min_duration_s = 2.0  # type: ignore[misc]
    assert cfg.to_dict()["min_duration_s"] == 1.0
    assert FreezeConfig.from_mapping(cfg.to_dict()) == cfg  # a report's settings read back


def test_defaults_pass_their_own_rules():
    for part in AnalysisConfig().to_dict().values():
        assert part  # every detector has settings
    AnalysisConfig.from_mapping(AnalysisConfig().to_dict())
    PipelineConfig().validate()
    PipelineConfig.from_mapping(json.loads(PipelineConfig().to_json()))


@pytest.mark.parametrize(("values", "line"), [
    ({"luma_max": float("nan")}, "x.json: black.luma_max = nan: must be a whole number"),
    ({"min_fraction": float("nan")}, "x.json: black.min_fraction = nan: must be a finite number"),
    ({"min_fraction": float("inf")}, "x.json: black.min_fraction = inf: must be a finite number"),
    ({"min_fraction": 1.5}, "x.json: black.min_fraction = 1.5: must be <= 1"),
    ({"luma_max": 256}, "x.json: black.luma_max = 256: must be <= 255"),
    ({"luma_max": 32.0}, "x.json: black.luma_max = 32.0: must be a whole number"),
    ({"max_texture": "4"}, "x.json: black.max_texture = '4': must be a number"),
    ({"max_texture": False}, "x.json: black.max_texture = False: must be a number"),
    ({"min_duration_s": 1e9}, "x.json: black.min_duration_s = 1000000000.0: must be <= 3600"),
])
def test_one_line_names_setting_value_and_rule(values, line):
    with pytest.raises(ConfigError) as exc:
        BlackConfig.from_mapping(values, "x.json", "black")
    assert str(exc.value) == line


def test_nan_would_have_removed_a_real_black_defect():
    """Why NaN must be refused: every comparison with NaN is false, so a NaN minimum duration
    keeps no interval at all (the issue's case: a real black defect silently gone)."""
    from avmon.detectors.base import interval_defects
    evidence = [{"runs": [[7.0, 8.0, 25.0, 25]]}]  # one second of black pictures
    assert len(interval_defects("black", evidence, gap=0.1, min_duration=0.25)) == 1
    assert interval_defects("black", evidence, gap=0.1, min_duration=float("nan")) == []
    with pytest.raises(ConfigError, match=r"black\.min_duration_s = nan: must be a finite"):
        AnalysisConfig.from_mapping({"black": {"min_duration_s": float("nan")}})
    with pytest.raises(ConfigError, match="min_duration_s = nan"):
        BlackConfig(min_duration_s=float("nan")).validate()


def test_strings_are_not_booleans():
    with pytest.raises(ConfigError, match="propagate = 'false': must be true or false"):
        AnalysisConfig.from_mapping({"block_corruption": {"propagate": "false"}})
    cfg = AnalysisConfig.from_mapping({"block_corruption": {"propagate": False}})
    assert cfg.block_corruption.propagate is False


def test_pipeline_config_public_api_and_rules():
    cfg = PipelineConfig.from_mapping({"segment_seconds": 4, "workflow_type": "EXPRESS"})
    assert cfg.segment_seconds == 4.0 and cfg.workflow_type == "EXPRESS"
    assert json.loads(cfg.to_json())["segment_seconds"] == 4.0
    assert cfg.to_dict()["frames_per_invocation"] == 0
    for bad, words in [({"frames_per_invocation": 2.5}, "frames_per_invocation = 2.5"),
                       ({"segment_seconds": float("nan")}, "segment_seconds = nan"),
                       ({"workflow_type": "express"}, "'STANDARD' or 'EXPRESS'"),
                       ({"ingest_memory_mb": 20000}, "<= 10240"),
                       ([1], "got list"), (None, "got NoneType")]:
        with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
            PipelineConfig.from_mapping(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"frames_per_invocation = 2\.5"):
        PipelineConfig(frames_per_invocation=2.5).validate()  # type: ignore[arg-type]


def test_a_lambda_refuses_a_bad_environment(monkeypatch):
    """The handlers read the same model from AVMON_PIPELINE_CONFIG."""
    from functions.runtime import Settings
    monkeypatch.setenv("AVMON_PIPELINE_CONFIG", json.dumps({"frames_per_invocation": 2.5}))
    monkeypatch.setenv("AVMON_BUCKET", "b")
    with pytest.raises(ConfigError, match=r"frames_per_invocation = 2\.5: must be a whole"):
        Settings.from_environment()


def test_the_cdk_app_does_not_synthesize_a_bad_value(tmp_path):
    """``cdk synth -c avmon_config=FILE`` runs app.py with the context in CDK_CONTEXT_JSON."""
    bad = tmp_path / "pipeline.json"
    bad.write_text(json.dumps({"frames_per_invocation": 2.5}))
    out = tmp_path / "cdk.out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CDK_OUTDIR": str(out),
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
           "CDK_CONTEXT_JSON": json.dumps({"avmon_config": str(bad),
                                           "aws:cdk:bundling-stacks": []})}
    p = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 2, p.stderr
    assert p.stderr.strip().splitlines() == [
        f"avmon: error: cdk app: {bad}: frames_per_invocation = 2.5:"
        " must be a whole number"]
    assert not list(out.glob("*.template.json"))


def test_usage_prices_quotas_and_truth_files(tmp_path):
    with pytest.raises(ConfigError, match=r"usage: executions = -1: must be >= 0"):
        Usage.from_dict({"executions": -1, "state_transitions": 0})
    with pytest.raises(ConfigError, match=r"lambda.C.memory_mb = 64: must be >= 128"):
        Usage.from_dict({"executions": 1, "state_transitions": 0,
                         "lambda": {"C": {"invocations": 1, "billed_ms": 1, "memory_mb": 64}}})
    assert PriceTable.load("us-east-1").items  # the shipped tables pass their own models
    assert load_quotas("2023")["sfn_transitions"]["refill_per_s"] == 1500
    assert load_quotas("current")["sfn_transitions"]["refill_per_s"] == 5000
    q = tmp_path / "q.json"
    q.write_text(json.dumps({**load_quotas("2023"), "lambda_concurrency": {"limit": 10}}))
    with pytest.raises(ConfigError, match=r"lambda_concurrency\.burst is missing"):
        load_quotas(str(q))
    t = tmp_path / "s.mp4.truth.json"
    t.write_text(json.dumps({"defects": [{"detector": "black", "start_s": 1, "end_s": 2}]}))
    assert [d.detector for d in load_truth(t)] == ["black"]
    t.write_text(json.dumps({"defects": [{"detector": "black", "start_s": "1", "end_s": 2}]}))
    with pytest.raises(ConfigError, match=r"defects.0.start_s = '1': must be a number"):
        load_truth(t)


@pytest.mark.parametrize(("kind", "bounds", "text", "ok"), [
    (int, {"ge": 0, "le": 16}, "16", 16), (int, {"ge": 0, "le": 16}, "17", None),
    (int, {"ge": 0, "le": 16}, "2.5", None), (int, {"ge": 0, "le": 16}, "1e1", None),
    (int, {"ge": 0, "le": 16}, "true", None), (int, {"ge": 0, "le": 16}, " 3 ", 3),
    (float, {"gt": 0}, "nan", None), (float, {"gt": 0}, "inf", None),
    (float, {"gt": 0}, "-inf", None), (float, {"gt": 0}, "0", None),
    (float, {"gt": 0}, "1e-9", 1e-9), (float, {"gt": 0, "le": 10}, "1e400", None),
])
def test_cli_numbers(kind, bounds, text, ok):
    import argparse
    parse = number(kind, **bounds)
    if ok is None:
        with pytest.raises(argparse.ArgumentTypeError, match=f"{text!r} is not allowed"):
            parse(text)
    else:
        assert parse(text) == ok


def test_synth_options_are_bounded():
    assert parse_defects("silence@1:1=ch1")[0].channels == (1,)
    assert parse_defects("av_sync@1:5=-10000ms")[0].offset_ms == -10000
    for spec in ("silence@1:1=ch2", "av_sync@1:5=+10001ms", "clipping@1:1=+61dB"):
        with pytest.raises(ConfigError):
            parse_defects(spec)


def test_output_paths_are_checked_without_leaving_anything(tmp_path):
    writable_dir(tmp_path / "new" / "deeper", "x")  # creatable: fine, and not created
    assert not (tmp_path / "new").exists()
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="must be a folder, but this is a file"):
        writable_dir(tmp_path / "f", "x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        writable_file(tmp_path / "f" / "out.mp4", "x")
    with pytest.raises(ConfigError, match="must be a file name, but this is a folder"):
        writable_file(tmp_path, "x")
    with pytest.raises(ConfigError, match=r"must end in \.mp4"):
        writable_file(tmp_path / "o.avi", "x", (".mp4",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
