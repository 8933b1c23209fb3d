"""avmon analyze on real encoded clips: the defects come out where they were injected."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from avmon.cli import main
from avmon.evaluation.scoring import score
from avmon.evaluation.synth import Content, SynthRequest, load_truth, synthesize, truth_path
from avmon.frames import VideoFrame
from avmon.media.decode import MediaReader
from avmon.monitor.analysis import analyze

pytestmark = pytest.mark.functional


def test_every_injected_defect_is_found(clip: Path) -> None:
    truth = load_truth(truth_path(clip))
    found = analyze(clip).report.defects
    scores = score(truth, found, {t.detector for t in truth})
    assert {n: (s.tp, s.fp, s.fn) for n, s in scores.items()} == {
        t.detector: (1, 0, 0) for t in truth}
    sync = next(d for d in found if d.detector == "av_sync")
    assert sync.details["offset_ms"] == pytest.approx(200, abs=45)


def test_analyze_json_schema(clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(clip), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report) == ["source", "duration_s", "video", "audio", "defects", "unmeasured",
                            "avmon_version", "config"]
    assert report["duration_s"] == pytest.approx(16.0, abs=0.05)
    assert report["video"] | {"decode_errors": 0} == {
        "codec": "h264", "width": 320, "height": 176, "fps": 25.0, "frames": 400,
        "decode_errors": 0}
    assert report["video"]["decode_errors"] == 15  # the 0.6 s of damaged packets
    assert report["audio"] == {"codec": "aac", "sample_rate": 48000, "channels": 2}
    starts = [d["start_s"] for d in report["defects"]]
    assert starts == sorted(starts)
    assert set(report["config"]) == {"freeze", "black", "block_corruption", "silence",
                                     "clipping", "av_sync"}


def test_detector_subset_and_table(clip: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(clip), "--detectors", "black,silence"]) == 0
    out = capsys.readouterr().out
    assert "black" in out
    assert "silence" in out
    assert "freeze" not in out.split("\n\n")[1]
    assert "2 defect(s)" in out


def test_mpegts_times_start_at_zero(ts_clip: Path) -> None:
    with MediaReader(ts_clip) as reader:
        assert reader.origin > 0  # MPEG-TS does not start at 0 ...
        first = next(f for f in reader.frames(audio=False))
    assert first.t == pytest.approx(0.0, abs=0.05)  # ... but avmon reports from 0
    found = [d for d in analyze(ts_clip).report.defects if d.detector == "freeze"]
    # the audio's first (priming) timestamp leads the video by about 21 ms in MPEG-TS, and the
    # stream starts at its first timestamp: the freeze shows within about a frame of 2.0 s
    assert len(found) == 1
    assert found[0].start_s == pytest.approx(2.0, abs=0.05)
    assert found[0].end_s == pytest.approx(3.5, abs=0.05)


def test_luma_is_stride_correct(tmp_path: Path) -> None:
    """A width that is not a multiple of the decoder's line alignment still lines up."""
    out = tmp_path / "odd.mp4"
    synthesize(SynthRequest(out, 1, (), 202, 66, content="calm", seed=5, audio=False))
    expected = Content("calm", 202, 66, 25, 1, seed=5).picture(3)[0]
    with MediaReader(out) as reader:
        frames = [f for f in reader.frames() if isinstance(f, VideoFrame)]
    luma = frames[3].luma
    assert luma.shape == (66, 202)
    assert np.mean(np.abs(luma.astype(int) - expected.astype(int))) < 3  # lossy, not shifted


def test_file_like_object_is_decoded(clip: Path) -> None:
    data = io.BytesIO(clip.read_bytes())
    with MediaReader(data) as reader:
        n = sum(1 for f in reader.frames(audio=False))
    assert n == 400


def test_frames_stream_one_at_a_time(clip: Path) -> None:
    """Decoding is lazy: the first frame arrives before the file has been read through."""
    with clip.open("rb") as fh, MediaReader(fh) as reader:
        next(iter(reader.frames()))
        assert fh.tell() < clip.stat().st_size / 2
