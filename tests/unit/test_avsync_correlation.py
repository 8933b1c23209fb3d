"""The content-agnostic A/V sync estimator: picture change against sound change, by correlation.

The streams here have no staged cues: the picture is a low-contrast texture that moves in short
bursts at irregular times, the sound a quiet bed with quiet noise bursts (below the cue matcher's
-35 dBFS floor), so the cue matcher finds nothing and the correlation has to do the work.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from avmon.detectors.avsync import (
    AvSyncDetector,
    Envelopes,
    Estimate,
    _lagged_moments,
    correlate_window,
    is_unknown,
    window_layout,
)
from avmon.frames import VideoFrame
from tests.unit.helpers import SR, buffers

FPS = 25


def event_times(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.uniform(0.6, 1.6, int(seconds)))
    return times[times < seconds - 1.0]


def footage(seconds: float = 40.0, offset_ms: float = 0.0, *, seed: int = 1,
            sound_seed: int | None = None, drop: bool = False,
            events: bool = True) -> tuple[list[VideoFrame], np.ndarray]:
    """Frames and audio samples; audio events at the picture's events plus ``offset_ms``
    (or at unrelated times with ``sound_seed``). ``drop`` removes frames irregularly, keeping
    the survivors' timestamps (variable frame rate)."""
    rng = np.random.default_rng(seed)
    pic_times = event_times(seconds, seed) if events else np.array([])
    snd_times = (event_times(seconds, sound_seed) if sound_seed is not None else pic_times)
    texture = np.kron(rng.integers(100, 108, (40, 400)), np.ones((4, 4))).astype(np.uint8)
    x, frames = 0, []
    for i in range(int(seconds * FPS)):
        t = i / FPS
        if np.any((t >= pic_times) & (t < pic_times + 0.24)):
            x += 2  # a burst of movement
        if drop and (i % 7 in (2, 3) or (10 * FPS <= i < 20 * FPS and i % 3)):
            continue
        x %= texture.shape[1] - 256  # wrap around: one jump, like a cut
        frames.append(VideoFrame(t, 1 / FPS, np.ascontiguousarray(texture[:144, x:x + 256])))
    n = int(seconds * SR)
    audio = (0.003 * rng.standard_normal(n)).astype(np.float32)
    env = np.exp(-np.arange(int(0.2 * SR)) / (0.06 * SR))  # struck, decaying
    for t in snd_times:
        k = int((t + offset_ms / 1000) * SR)
        if 0 <= k < n - len(env):
            audio[k:k + len(env)] += (0.012 * env * rng.standard_normal(len(env))).astype(
                np.float32)
    return frames, np.tile(audio, (2, 1))


def evidence_of(frames: list[VideoFrame], audio: np.ndarray, det: AvSyncDetector,
                start: float = 0.0, end: float = np.inf) -> dict:
    """One scanner's evidence for [start, end), fed in demux-like order (audio in 0.5 s batches
    interleaved with the frames)."""
    s = det.scanner()
    bufs = [b for b in buffers(audio, size=SR // 2) if start <= b.t < end]
    fr = [f for f in frames if start <= f.t < end]
    i = 0
    for b in bufs:
        while i < len(fr) and fr[i].t < b.t + 0.5:
            s.feed_video(fr[i])
            i += 1
        s.feed_audio(b)
    for f in fr[i:]:
        s.feed_video(f)
    ev = s.evidence()
    return json.loads(json.dumps(ev))  # evidence travels as JSON in the pipeline


def offsets(found: list) -> list:
    return [d for d in found if d.details.get("status") == "offset"]


def test_streams_here_have_no_cues() -> None:
    ev = evidence_of(*footage(offset_ms=300), AvSyncDetector())
    assert len(ev["video_cues"]) < 3 or len(ev["audio_cues"]) < 3


@pytest.mark.parametrize("offset_ms", [200, 300, 500, -200, -300, -500])
def test_offset_found_both_ways(offset_ms: float) -> None:
    det = AvSyncDetector()
    found = offsets(det.finalize([evidence_of(*footage(offset_ms=offset_ms), det)]))
    assert len(found) == 1
    d = found[0]
    assert d.details["method"] == "correlation"
    assert d.details["offset_ms"] == pytest.approx(offset_ms, abs=40)
    assert d.start_s == pytest.approx(0.0, abs=0.1) and d.end_s == pytest.approx(40.0, abs=0.1)
    assert d.confidence > 0.5
    assert d.details["psr"] >= det.config.min_psr


@pytest.mark.parametrize("offset_ms", [0, 100, -20])
def test_in_sync_or_tolerable_is_no_defect(offset_ms: float) -> None:
    det = AvSyncDetector()
    found = det.finalize([evidence_of(*footage(offset_ms=offset_ms), det)])
    assert offsets(found) == []
    assert not any(is_unknown(d) for d in found)  # the evidence was good: no doubt either


def test_unrelated_sound_is_unknown_not_a_number() -> None:
    det = AvSyncDetector()
    found = det.finalize([evidence_of(*footage(seed=3, sound_seed=11), det)])
    assert offsets(found) == []
    unknown = [d for d in found if is_unknown(d)]
    assert unknown and sum(d.duration_s for d in unknown) >= 20
    assert all(d.confidence == 0.0 for d in unknown)


def test_no_events_is_unknown() -> None:
    det = AvSyncDetector()
    found = det.finalize([evidence_of(*footage(events=False), det)])
    assert [(d.start_s, d.end_s) for d in found] == [pytest.approx((0.0, 40.0), abs=0.1)]
    assert is_unknown(found[0])


@pytest.mark.parametrize("offset_ms", [0, 300, -200])
def test_variable_frame_rate_is_measured_by_timestamps(offset_ms: float) -> None:
    det = AvSyncDetector()
    found = offsets(det.finalize([evidence_of(*footage(offset_ms=offset_ms, drop=True), det)]))
    if offset_ms == 0:
        assert found == []
    else:
        assert [round(d.details["offset_ms"] / 50) * 50 for d in found] == [offset_ms]


def test_segments_agree_with_one_scanner() -> None:
    """The serverless pipeline: one scanner per 2 s segment, one finalize over them all."""
    det = AvSyncDetector()
    frames, audio = footage(offset_ms=-300)
    whole = det.finalize([evidence_of(frames, audio, det)])
    parts = [evidence_of(frames, audio, det, t, t + 2.0) for t in np.arange(0, 40, 2.0)]
    split = det.finalize(parts[::-1])  # in any order
    assert [d.details["offset_ms"] for d in split] == [d.details["offset_ms"] for d in whole]
    assert [t for d in split for t in (d.start_s, d.end_s)] == pytest.approx(
        [t for d in whole for t in (d.start_s, d.end_s)], abs=0.05)


def test_evidence_stays_bounded() -> None:
    """A scanner keeps window results and at most two windows of raw envelope."""
    det = AvSyncDetector()
    short = evidence_of(*footage(60, offset_ms=200, seed=5), det)
    long = evidence_of(*footage(180, offset_ms=200, seed=5), det)

    def raw(ev: dict) -> int:
        return sum(len(p["audio"]) for p in ev["envelopes"])
    assert raw(long) == raw(short)
    assert len(long["windows"]) > len(short["windows"])
    found = offsets(det.finalize([long]))
    assert len(found) == 1 and found[0].details["offset_ms"] == pytest.approx(200, abs=40)
    assert found[0].end_s - found[0].start_s == pytest.approx(180, abs=0.5)


def test_two_coincidences_are_not_a_measurement() -> None:
    """Two cuts, each 300 ms after a loud sound (a clip looped with its splice): the correlation
    peak is sharp but rests on two moments only, so the window says "unknown"."""
    rng = np.random.default_rng(2)
    texture = np.kron(rng.integers(60, 200, (40, 100)), np.ones((4, 4))).astype(np.uint8)
    frames = [VideoFrame(i / FPS, 1 / FPS, np.ascontiguousarray(
        texture[:144, (0 if i < 5 * FPS else 60 if i < 11 * FPS else 120):][:, :256]))
        for i in range(20 * FPS)]
    audio = (0.003 * rng.standard_normal(20 * SR)).astype(np.float32)
    for t in (4.7, 10.7):
        k = int(t * SR)
        decay = np.exp(-np.arange(SR // 4) / (0.06 * SR))
        audio[k:k + SR // 4] += (0.012 * decay * rng.standard_normal(SR // 4)).astype(np.float32)
    det = AvSyncDetector()
    ev = evidence_of(frames, np.tile(audio, (2, 1)), det)
    estimates, _ = det.window_estimates([ev])
    assert any(e.psr >= det.config.min_psr and e.offset_ms == pytest.approx(-300, abs=40)
               for e in estimates)  # the coincidence is there ...
    found = det.finalize([ev])
    assert offsets(found) == [] and all(is_unknown(d) for d in found)  # ... and not believed


def looped(frames: list[VideoFrame], audio: np.ndarray, seconds: float,
           copies: int) -> tuple[list[VideoFrame], np.ndarray]:
    """The first ``seconds`` of a stream repeated ``copies`` times (ffmpeg's -stream_loop)."""
    clip = [f for f in frames if f.t < seconds - 1e-9]
    out = [VideoFrame(f.t + k * seconds, f.duration, f.luma) for k in range(copies) for f in clip]
    return out, np.tile(audio[:, :round(seconds * SR)], (1, copies))


def test_looped_clip_is_unknown_not_a_number() -> None:
    """A 5.28 s clip looped six times repeats every event at one period: the correlation peak
    is sharp but rests on one clip's events counted several times (on real footage it read a
    wrong offset), so the estimator must say "unknown"."""
    det = AvSyncDetector()
    frames, audio = footage(seconds=6.0, offset_ms=-500)
    found = det.finalize([evidence_of(*looped(frames, audio, 5.28, 6), det)])
    assert offsets(found) == []
    assert found and all(is_unknown(d) for d in found)
    assert all("repeat" in d.details["reason"] for d in found)
    windows = evidence_of(*looped(frames, audio, 5.28, 6), det)["windows"]
    assert windows and all(w[7] >= det.config.max_repeat for w in windows)  # the loop test


def test_a_second_peak_nearly_as_high_makes_the_window_ambiguous() -> None:
    det = AvSyncDetector()
    est = Estimate(0, -300.0, 0.5, 6.0, 15.0, 5.0, 0.4, 0.1)
    assert est.ambiguous(det.config) and not est.usable(det.config)
    assert Estimate(0, -300.0, 0.5, 6.0, 15.0, 5.0, 0.2, 0.1).usable(det.config)


def test_grid_put_run_equals_one_put_a_bin() -> None:
    """``_Grid.put_run`` writes what a put of each bin in turn wrote (the envelopes the
    correlation reads, the ends, the trimmed front), with runs that overlap the trimmed bins."""
    from avmon.detectors.avsync import _Grid

    def put(grid: _Grid, which: str, index: int, value: float) -> None:  # the per-bin original
        if grid.first is None:
            grid.first = grid.base = index
        if index < grid.base:
            return
        k = index - grid.base
        while len(grid.audio) <= k:
            grid.audio.append(np.nan)
            grid.video.append(np.nan)
        grid.ends[which] = max(grid.ends[which], index + 1)
        (grid.audio if which == "audio" else grid.video)[k] = value

    rng = np.random.default_rng(5)
    bulk, single = _Grid(), _Grid()
    at = {"audio": 3, "video": 0}
    for step in range(300):
        which = "audio" if rng.random() < 0.5 else "video"
        start = at[which] - int(rng.integers(0, 6))  # sometimes before what is kept
        values = rng.random(int(rng.integers(0, 7))).tolist()
        bulk.put_run(which, start, values)
        for i, v in enumerate(values):
            put(single, which, start + i, v)
        at[which] = start + len(values)
        if step % 40 == 39:
            cut = min(bulk.complete, at["audio"], at["video"]) - 2
            bulk.trim(cut)
            single.trim(cut)
        assert (bulk.first, bulk.base, bulk.ends) == (single.first, single.base, single.ends)
        np.testing.assert_array_equal(bulk.audio, single.audio)
        np.testing.assert_array_equal(bulk.video, single.video)


def test_lagged_moments_equal_the_sums_taken_one_lag_at_a_time() -> None:
    rng = np.random.default_rng(8)
    width, lags = 300, 41
    x = rng.gamma(0.3, 5.0, width)
    y = rng.gamma(0.3, 5.0, width + lags - 1)
    x[rng.random(width) < 0.1] = np.nan  # bins an envelope does not have
    y[50:90] = np.nan
    ax, ay = np.isfinite(x).astype(float), np.isfinite(y).astype(float)
    fx, fy = np.nan_to_num(x), np.nan_to_num(y)
    got = _lagged_moments(fx, ax, fy, ay, lags, 512)
    for lag in range(lags):
        ys, ms = fy[lag:lag + width], ay[lag:lag + width]
        both = ax * ms
        want = [both.sum(), (fx * ms).sum(), (ys * ax).sum(), (fx * fx * ms).sum(),
                (ys * ys * ax).sum(), (fx * ys).sum()]
        assert np.allclose([g[lag] for g in got], want, rtol=1e-9, atol=1e-9)


def test_the_estimate_does_not_depend_on_the_envelopes_level() -> None:
    """A normalized correlation is blind to a constant added to either envelope; computed by
    FFT from centred envelopes, it stays so even when the constant dwarfs the events."""
    frames, audio = footage(40.0, 300.0, seed=4)
    det = AvSyncDetector()
    scanner = det.scanner()
    for f in frames:
        scanner.feed_video(f)
    for b in buffers(audio, size=SR // 2):
        scanner.feed_audio(b)
    env = scanner._grid.envelopes()
    hop, _, reach = window_layout(det.config)
    index = -(-(env.base + reach) // hop)
    plain = correlate_window(env, index, det.config)
    lifted = correlate_window(Envelopes(env.base, env.audio + 1e4, env.video + 50.0), index,
                              det.config)
    assert plain is not None and lifted is not None
    assert plain.offset_ms == lifted.offset_ms == pytest.approx(300.0, abs=40.0)
    assert lifted.peak == pytest.approx(plain.peak, abs=1e-6)
    assert lifted.psr == pytest.approx(plain.psr, abs=1e-4)
    assert lifted.events == pytest.approx(plain.events, abs=0.01)
