"""avmon evaluate on a small labelled folder, with ffmpeg's filters on the same streams.

The ffmpeg CLI is installed by `make test` (Debian's package); this test needs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avmon.cli import main
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize

pytestmark = pytest.mark.functional


def test_evaluate_scores_avmon_and_ffmpeg(tmp_path: Path, capsys) -> None:
    synthesize(SynthRequest(tmp_path / "a.mp4", 8, tuple(parse_defects(
        "black@1:1,freeze@3:1.5,silence@5:1.5,clipping@7:0.5")), 320, 176, seed=21))
    synthesize(SynthRequest(tmp_path / "b.ts", 6, tuple(parse_defects("silence@2:2=ch1")),
                            320, 176, seed=22))
    assert main(["evaluate", str(tmp_path), "--json", "--vs-ffmpeg"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [s["stream"] for s in result["streams"]] == ["a.mp4", "b.ts"]
    ours = result["avmon"]
    assert all(ours[d]["f1"] == 1.0 for d in ("black", "freeze", "silence", "clipping"))
    peer = result["ffmpeg"]
    assert peer["black"]["tp"] == 1  # blackdetect finds a plain black insert, times on 0
    assert peer["silence"]["fn"] >= 1  # one dead channel of a pair: averaged away
    assert peer["clipping"]["tp"] == 0  # no flat tops survive AAC
    assert set(result["ffmpeg_settings"]) == {"freeze", "black", "block_corruption",
                                              "silence", "clipping"}
