"""A/V sync cues across scanners: the serverless pipeline's one scanner per segment (or batch)
decides the same cuts and onsets as one scanner for the whole stream, also when a cut is a
segment's first picture and a sound starts in a segment's first 50 ms (packagers cut segments at
scene cuts, so that is the usual case, not the exception)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from avmon.detectors.avsync import AvSyncDetector
from avmon.frames import VideoFrame
from tests.unit.helpers import SR, buffers

FPS = 25
SECONDS = 24.0
OFFSET_S = 0.3  # the sound of every cut comes this late (a defect: beyond +125 ms)


def staged() -> tuple[list[VideoFrame], np.ndarray, np.ndarray]:
    """Cuts (a new flat scene with a little grain) at irregular times, two of them on 2 s
    boundaries, each with a click OFFSET_S later; two clicks start right on a boundary."""
    rng = np.random.default_rng(7)
    cuts = np.array([0.72, 2.0, 3.36, 4.68, 5.72, 7.24, 8.0, 9.52, 10.84, 12.2,
                     13.4, 13.72, 15.32, 16.76, 18.0, 19.28, 20.6, 21.88])
    level, frames = 60.0, []
    for i in range(int(SECONDS * FPS)):
        t = i / FPS
        if np.any(np.isclose(t, cuts)):
            level = 180.0 if level < 120.0 else 50.0
        luma = np.clip(level + rng.normal(0, 1.0, (72, 128)), 0, 255).astype(np.uint8)
        frames.append(VideoFrame(round(t, 6), 1 / FPS, luma))
    audio = (0.001 * rng.standard_normal(int(SECONDS * SR))).astype(np.float32)
    click = 0.5 * np.exp(-np.arange(int(0.03 * SR)) / (0.008 * SR))
    for t in cuts + OFFSET_S:
        k = round(t * SR)
        audio[k:k + len(click)] += click.astype(np.float32)
    return frames, np.tile(audio, (2, 1)), cuts


def evidence(frames: list[VideoFrame], audio: np.ndarray, det: AvSyncDetector,
             start: float = 0.0, end: float = np.inf) -> dict:
    s = det.scanner()
    for b in buffers(audio, size=SR // 10):
        if start <= b.t < end:
            s.feed_audio(b)
    for f in frames:
        if start <= f.t < end:
            s.feed_video(f)
    return json.loads(json.dumps(s.evidence()))  # as the pipeline carries it


@pytest.mark.parametrize("seconds", [2.0, 1.0])
def test_segments_decide_the_cues_of_one_scanner(seconds: float) -> None:
    det = AvSyncDetector()
    frames, audio, cuts = staged()
    whole = det.finalize([evidence(frames, audio, det)])
    parts = [evidence(frames, audio, det, t, t + seconds)
             for t in np.arange(0.0, SECONDS, seconds)]
    split = det.finalize(parts[::-1])  # in any order
    assert [d.to_dict() for d in split] == [d.to_dict() for d in whole]
    (defect,) = [d for d in whole if d.details.get("status") == "offset"]
    assert defect.details["offset_ms"] == pytest.approx(OFFSET_S * 1000, abs=10)
    assert defect.details["cues"] == len(cuts)  # every cut, boundaries included


def test_a_missing_segment_is_a_fresh_start() -> None:
    """After a segment that failed there is no predecessor: the next head is replayed from
    nothing, as a stream's start (a cut on its first picture is not a cue: nothing before it)."""
    det = AvSyncDetector()
    frames, audio, _ = staged()
    parts = [evidence(frames, audio, det, t, t + 2.0) for t in np.arange(0.0, SECONDS, 2.0)]
    found = det.finalize(parts[:3] + parts[4:])  # 6-8 s failed
    (defect,) = [d for d in found if d.details.get("status") == "offset"]
    assert defect.details["offset_ms"] == pytest.approx(OFFSET_S * 1000, abs=10)
