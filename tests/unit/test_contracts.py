import json

import pytest

from avmon.detectors.config import AnalysisConfig
from avmon.errors import ConfigError, DefectSpecError
from avmon.evaluation.scoring import score
from avmon.evaluation.synth import parse_defects
from avmon.model import Defect


def test_parse_defects_reads_every_kind_and_option():
    specs = parse_defects("av_sync@50:10=+200ms,freeze@10:2,silence@30:2=ch1,clipping@40:1=+20dB")
    assert [(s.kind, s.start_s, s.duration_s) for s in specs] == [
        ("freeze", 10, 2), ("silence", 30, 2), ("clipping", 40, 1), ("av_sync", 50, 10)]
    assert specs[1].channels == (1,)
    assert specs[2].gain_db == 20
    assert specs[3].offset_ms == 200


@pytest.mark.parametrize("bad", ["freeze@10", "wobble@1:2", "av_sync@1:10", "freeze@1:0",
                                 "silence@1:2=left", "black@1:1=+3ms"])
def test_parse_defects_rejects(bad):
    with pytest.raises(DefectSpecError):
        parse_defects(bad)


def test_config_from_json_and_toml(tmp_path):
    j = tmp_path / "c.json"
    j.write_text(json.dumps({"freeze": {"min_duration_s": 1.0}}))
    t = tmp_path / "c.toml"
    t.write_text("[silence]\nthreshold_dbfs = -50\n")
    assert AnalysisConfig.load(j).freeze.min_duration_s == 1.0
    assert AnalysisConfig.load(t).silence.threshold_dbfs == -50.0
    assert AnalysisConfig.load(t).freeze == AnalysisConfig().freeze


@pytest.mark.parametrize(("content", "problem"), [
    ({"nope": {}}, "unknown detector"),
    ({"freeze": {"speed": 1}}, "freeze.speed = 1: is not a known setting; known: min_dur"),
    ({"freeze": {"min_duration_s": "soon"}}, "min_duration_s = 'soon': must be a number"),
    ({"black": {"min_fraction": 2}}, "black.min_fraction = 2: must be <= 1"),
    ({"clipping": {"window_s": 0}}, "clipping.window_s = 0: must be >= 0.001"),
])
def test_config_rejects(tmp_path, content, problem):
    p = tmp_path / "c.json"
    p.write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        AnalysisConfig.load(p)


def test_score_counts_by_hand():
    truth = [Defect("freeze", 10, 12), Defect("freeze", 20, 21), Defect("black", 5, 6)]
    found = [Defect("freeze", 10.2, 12), Defect("freeze", 20.8, 21.5),  # onset too late
             Defect("freeze", 30, 31), Defect("black", 5.0, 6.0)]
    s = score(truth, found, ["freeze", "black"])
    assert (s["freeze"].tp, s["freeze"].fp, s["freeze"].fn) == (1, 2, 1)
    assert s["freeze"].precision == pytest.approx(1 / 3)
    assert s["freeze"].recall == pytest.approx(1 / 2)
    assert s["freeze"].f1 == pytest.approx(0.4)
    assert s["freeze"].mean_onset_error_ms == pytest.approx(200)
    assert s["black"].f1 == 1.0


def test_defect_round_trips():
    d = Defect("av_sync", 1.23456, 7.0, 0.5, {"offset_ms": 200})
    assert Defect.from_dict(d.to_dict()) == Defect("av_sync", 1.235, 7.0, 0.5, {"offset_ms": 200})
    with pytest.raises(ConfigError):
        Defect.from_dict({"detector": "x"})


def test_synth_audio_before_the_stream_start_is_defined():
    """Audio shifted late from t=0 (``av_sync@0:10=+200ms``) asks for samples before 0."""
    from avmon.evaluation.synth import Content

    content = Content("patterns", 64, 36, 25, 4.0, seed=3)
    early = content.audio(-9600, 480)
    assert early.shape == (2, 480)
    assert not (early == content.audio(9600, 480)).all()
