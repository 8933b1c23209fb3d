import numpy as np
import pytest

from avmon.detectors.avsync import AvSyncDetector
from avmon.detectors.clipping import ClippingDetector
from avmon.detectors.silence import SilenceDetector
from avmon.frames import VideoFrame
from tests.unit.helpers import SR, buffers, run_audio, tone


def test_silence_on_all_channels():
    x = tone(5.0)
    x[:, 2 * SR:int(3.5 * SR)] = 0
    found = run_audio(SilenceDetector(), buffers(x))
    assert len(found) == 1
    assert found[0].start_s == pytest.approx(2.0, abs=0.01)
    assert found[0].end_s == pytest.approx(3.5, abs=0.01)
    assert found[0].details == {"kind": "program"}


def test_one_dead_channel_is_a_dead_channel_finding():
    x = tone(5.0)
    x[1, 1 * SR:3 * SR] = 0
    found = run_audio(SilenceDetector(), buffers(x))
    assert [(d.details, round(d.start_s, 2), round(d.end_s, 2)) for d in found] == [
        ({"kind": "dead_channel", "channels": ["FR"]}, 1.0, 3.0)]


FIVE_ONE = ("FL", "FR", "FC", "LFE", "BL", "BR")


def mix51(seconds: float) -> np.ndarray:
    """A normal 5.1 mix: live fronts, digitally silent LFE, surrounds around -64 dBFS."""
    rng = np.random.default_rng(7)
    x = np.zeros((6, round(seconds * SR)), np.float32)
    x[0:3] = tone(seconds, amp=0.1, channels=3)
    x[4:6] = rng.normal(0, 0.0006, (2, x.shape[1]))
    return x


def test_normal_51_mix_is_not_silence():
    assert run_audio(SilenceDetector(), buffers(mix51(4.0), channels=FIVE_ONE)) == []


def test_51_program_silence_is_found_despite_live_surrounds():
    x = mix51(5.0)
    x[0:3, 2 * SR:int(3.5 * SR)] = 0
    found = run_audio(SilenceDetector(), buffers(x, channels=FIVE_ONE))
    assert [(d.details, round(d.start_s, 2), round(d.end_s, 2)) for d in found] == [
        ({"kind": "program"}, 2.0, 3.5)]


def test_dead_channel_never_masks_a_program_silence_inside_it():
    x = mix51(6.0)
    x[1, SR // 2:int(5.5 * SR)] = 0     # FR dead 0.5 .. 5.5 s
    x[0:3, 2 * SR:int(3.5 * SR)] = 0    # programme silent 2.0 .. 3.5 s
    found = run_audio(SilenceDetector(), buffers(x, channels=FIVE_ONE))
    assert [(d.details["kind"], round(d.start_s, 2), round(d.end_s, 2)) for d in found] == [
        ("dead_channel", 0.5, 2.0), ("program", 2.0, 3.5), ("dead_channel", 3.5, 5.5)]
    assert found[0].details["channels"] == ["FR"]


def test_dead_surrounds_are_one_group_finding_and_lfe_is_not_checked():
    x = mix51(3.0)
    x[4:6] = 0
    found = run_audio(SilenceDetector(), buffers(x, channels=FIVE_ONE))
    assert [d.details for d in found] == [{"kind": "dead_channel", "channels": ["BL", "BR"]}]


def test_channel_stuck_at_a_constant_is_dead():
    x = tone(3.0)
    x[0, :] = 0.25  # DC: loud by mean square, silent to the ear
    found = run_audio(SilenceDetector(), buffers(x))
    assert [d.details for d in found] == [{"kind": "dead_channel", "channels": ["FL"]}]


def test_unnamed_six_channels_are_taken_as_51():
    assert run_audio(SilenceDetector(), buffers(mix51(3.0))) == []


def test_silence_split_across_segments_is_one_finding():
    x = mix51(6.0)
    x[1, SR:int(4.5 * SR)] = 0
    det = SilenceDetector()
    a, b = det.scanner(), det.scanner()
    for buf in buffers(x[:, :3 * SR], channels=FIVE_ONE):
        a.feed_audio(buf)
    for buf in buffers(x[:, 3 * SR:], start=3.0, channels=FIVE_ONE):
        b.feed_audio(buf)
    split = det.finalize([b.evidence(), a.evidence()])
    assert [(round(d.start_s, 2), round(d.end_s, 2)) for d in split] == [(1.0, 4.5)]


def test_quiet_but_present_audio_is_not_silence():
    assert run_audio(SilenceDetector(), buffers(tone(3.0, amp=0.003))) == []  # about -53 dBFS


def test_short_gap_is_not_silence():
    x = tone(3.0)
    x[:, SR:int(1.8 * SR)] = 0
    assert run_audio(SilenceDetector(), buffers(x)) == []


def test_clipped_tone_is_found():
    x = tone(2.0, amp=0.3)
    x[:, SR // 2:SR] = np.clip(x[:, SR // 2:SR] * 30, -1, 1)
    found = run_audio(ClippingDetector(), buffers(x))
    assert len(found) == 1
    assert found[0].start_s == pytest.approx(0.5, abs=0.01)
    assert found[0].end_s == pytest.approx(1.0, abs=0.01)


def test_loud_tone_with_headroom_is_not_clipping():
    assert run_audio(ClippingDetector(), buffers(tone(2.0, amp=0.5))) == []  # -6 dBFS


def test_clipping_shorter_than_20ms_is_ignored():
    x = tone(1.0, amp=0.3)
    x[:, 4800:5280] = np.clip(x[:, 4800:5280] * 30, -1, 1)  # 10 ms
    assert run_audio(ClippingDetector(), buffers(x)) == []


def av_stream(offset_ms: float, shifted: tuple[float, float] | None, cues: bool = True,
              seconds: float = 20.0):
    """Cut times (random spacing) with a click in the audio at each, shifted inside ``shifted``."""
    rng = np.random.default_rng(4)
    times = np.cumsum(rng.uniform(0.45, 1.2, 40))
    times = np.round(times[times < seconds - 0.5] * 25) / 25
    frames, picture = [], np.full((72, 128), 60, np.uint8)
    cut_frames = {round(t * 25) for t in times} if cues else set()
    for i in range(int(seconds * 25)):
        if i in cut_frames:
            picture = np.full((72, 128), 60 if picture[0, 0] > 100 else 180, np.uint8)
        frames.append(VideoFrame(i / 25, 0.04, picture))
    audio = np.zeros((2, int(seconds * SR)), np.float32) + 0.001
    for t in times if cues else []:
        at = t + (offset_ms / 1000 if shifted and shifted[0] <= t < shifted[1] else 0)
        k = int(at * SR)
        audio[:, k:k + 2400] += 0.5 * np.exp(-np.arange(2400) / 500)
    return frames, buffers(audio)


def run_av(frames, bufs):
    det = AvSyncDetector()
    s = det.scanner()
    for f in frames:
        s.feed_video(f)
    for b in bufs:
        s.feed_audio(b)
    return det.finalize([s.evidence()])


def test_late_audio_is_measured():
    found = run_av(*av_stream(200, (6.0, 16.0)))
    assert len(found) == 1
    d = found[0]
    assert d.details["offset_ms"] == pytest.approx(200, abs=25)
    assert d.start_s == pytest.approx(6.0, abs=0.6)
    assert d.end_s == pytest.approx(16.0, abs=1.0)  # a boundary cue may vote with its neighbours


def test_early_audio_is_measured():
    found = run_av(*av_stream(-100, (4.0, 14.0)))
    assert [round(d.details["offset_ms"] / 10) * 10 for d in found] == [-100]


def test_offset_within_tolerance_is_not_reported():
    assert run_av(*av_stream(40, (4.0, 16.0))) == []  # BT.1359: late by up to 125 ms is fine


def test_short_offset_is_not_reported():
    assert run_av(*av_stream(200, (6.0, 9.0))) == []  # 3 s < 5 s


def test_no_cues_no_guess():
    # nothing to measure by: the report says "unknown" for the stream, never an offset
    found = run_av(*av_stream(200, (2.0, 18.0), cues=False))
    assert [d.details["status"] for d in found] == ["unknown"]
    assert found[0].confidence == 0.0 and "offset_ms" not in found[0].details


def test_clipping_episode_with_holes_is_one_event():
    """Lossy coding leaves holes in a clipped passage: bursts 100 ms apart are one episode."""
    x = tone(3.0, amp=0.3)
    for k in range(6):  # 6 bursts of 30 ms, 100 ms apart: 1.0 .. 1.53 s
        a = SR + k * SR // 10
        x[:, a:a + 1440] = np.clip(x[:, a:a + 1440] * 30, -1, 1)
    found = run_audio(ClippingDetector(), buffers(x))
    assert len(found) == 1
    assert found[0].start_s == pytest.approx(1.0, abs=0.01)
    assert found[0].end_s == pytest.approx(1.53, abs=0.01)
    assert found[0].details["clipped_s"] == pytest.approx(0.18, abs=0.02)


def test_clipping_episodes_far_apart_are_separate():
    x = tone(3.0, amp=0.3)
    for a in (SR // 2, 2 * SR):  # 1.5 s apart
        x[:, a:a + 4800] = np.clip(x[:, a:a + 4800] * 30, -1, 1)
    assert len(run_audio(ClippingDetector(), buffers(x))) == 2


def test_isolated_peaks_of_a_loud_clean_master_are_not_clipping():
    """Peaks grazing -0.5 dBFS a few times a second: hot windows, but no 20 ms of them."""
    rng = np.random.default_rng(3)
    x = tone(4.0, amp=0.2)
    for a in rng.integers(0, 4 * SR - 200, 12):
        x[:, a:a + 96] += (0.74 * np.hanning(96)).astype(np.float32)  # a 2 ms transient
    assert np.abs(x).max() > 0.9
    assert run_audio(ClippingDetector(), buffers(x)) == []


def test_clipping_split_across_segments_is_one_episode():
    x = tone(3.0, amp=0.3)
    for k in range(5):  # bursts from 0.8 to 1.4 s, segment boundary at 1.0 s
        a = int(0.8 * SR) + k * int(0.15 * SR)
        x[:, a:a + 960] = np.clip(x[:, a:a + 960] * 30, -1, 1)
    det = ClippingDetector()
    whole = run_audio(det, buffers(x))
    a, b = det.scanner(), det.scanner()
    for buf in buffers(x[:, :SR]):
        a.feed_audio(buf)
    for buf in buffers(x[:, SR:], start=1.0):
        b.feed_audio(buf)
    split = det.finalize([b.evidence(), a.evidence()])
    assert len(whole) == 1
    assert [(d.start_s, d.end_s) for d in split] == [(d.start_s, d.end_s) for d in whole]


def test_clipping_memory_drops_finished_short_episodes():
    x = tone(20.0, amp=0.3)
    for k in range(1, 40):  # a 5 ms click every 0.5 s: hot windows, never 20 ms of them
        a = k * SR // 2
        x[:, a:a + 240] = 0.95
    scanner = ClippingDetector().scanner()
    for buf in buffers(x):
        scanner.feed_audio(buf)
    assert len(scanner.evidence()["runs"]) <= 1
