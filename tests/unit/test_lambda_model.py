"""The Lambda duration model: worked by hand, deterministic, and calibrated on real media."""

from __future__ import annotations

from pathlib import Path

import pytest

from avmon.economics.designs import ORIGINAL, SERVERLESS, SINGLE, TUNED, compare
from avmon.economics.lambda_model import ASSUMPTIONS, Calibration, Work, calibrate, model_usage
from avmon.economics.prices import PriceTable
from avmon.economics.quotas import load_quotas

# 10 s of 25 fps media: operations costed by hand (CPU seconds per stream-second or per MB)
CAL = Calibration(
    stream_s=10.0, frames=250, frame_mb=0.05, audio_mb_per_s=0.384, input_mb_per_s=0.04,
    decode=[0.010, 0.012, 0.011], scan={n: [0.004, 0.005, 0.006] for n in
                                        ("freeze", "black", "block_corruption", "silence",
                                         "clipping", "av_sync")},
    save_per_mb=[0.002, 0.002, 0.002], load_per_mb=[0.003, 0.003, 0.003],
    finalize={n: [1e-5, 1e-5, 1e-5] for n in ("freeze", "black", "block_corruption",
                                             "silence", "clipping", "av_sync")},
    cut=[0.001, 0.001, 0.001],
    needs={"freeze": ["video"], "black": ["video"], "block_corruption": ["video"],
           "silence": ["audio"], "clipping": ["audio"], "av_sync": ["audio", "video"]})

DETECTORS = ("Freeze", "Black", "BlockCorruption", "Silence", "Clipping", "AvSync")


def usage(segments: int, moto_ms: int) -> dict:
    """A simulation's record for 10 s: counts as counted, Lambda ms as timed under moto."""
    fn = {f"{d}Detector": {"invocations": segments, "billed_ms": moto_ms, "memory_mb": 1024}
          for d in DETECTORS}
    fn |= {"Converter": {"invocations": segments, "billed_ms": moto_ms, "memory_mb": 2048},
           "Aggregator": {"invocations": segments, "billed_ms": moto_ms, "memory_mb": 512},
           "Ingest": {"invocations": 1, "billed_ms": moto_ms, "memory_mb": 1024}}
    return {"executions": segments, "state_transitions": 15 * segments,
            "requests": {"s3": {"PutObject": 300, "GetObject": 1070}},
            "bytes": {"s3_put": 18_000_000}, "lambda": fn}


def test_a_function_takes_its_cpu_at_its_share_of_a_vcpu_plus_s3():
    w = Work(cpu_s=0.5, requests=10, mb=20.0)
    latency = ASSUMPTIONS["s3_request_s"]["value"] * 10 + 20.0 / ASSUMPTIONS["s3_mb_per_s"]["value"]
    assert w.seconds(1769) == pytest.approx(0.5 + latency)
    assert w.seconds(3538) == pytest.approx(0.5 + latency)  # one thread uses one vCPU at most
    assert w.seconds(1024) == pytest.approx(0.5 * 1769 / 1024 + latency)


def test_converter_by_hand():
    out = model_usage(usage(5, 999), 10.0, SERVERLESS[ORIGINAL], CAL)
    conv = out["lambda_model"]["functions"]["Converter"]
    # the fastest pass: decode 0.010 x 10 s + serialising (12.5 MB of frames + 3.84 MB of
    # audio) x 0.002
    assert conv["cpu_s"] == pytest.approx(0.10 + 16.34 * 0.002, abs=1e-4)
    # 5 segment GETs + 250 frame PUTs + 10 audio PUTs
    assert conv["s3_requests"] == 265
    assert conv["vcpu"] == 1.0
    per_call_s = (conv["cpu_s"] + 265 * 0.020 + (0.4 + 16.34) / 100) / 5
    assert conv["ms_per_invocation"] == pytest.approx(per_call_s * 1000, abs=0.1)


def test_counts_stay_as_counted_and_moto_time_is_kept_aside():
    out = model_usage(usage(5, 999), 10.0, SERVERLESS[ORIGINAL], CAL)
    u = out["usage"]
    assert u["requests"] == usage(5, 999)["requests"]
    assert u["executions"] == 5 and u["state_transitions"] == 75
    for f in u["lambda"].values():
        assert f["billed_ms_under_moto"] == 999
        assert f["billed_ms"] != 999
    check = out["lambda_model"]["requests_check"]
    assert check["s3_counted"] == 1370
    assert "assumptions" in out["lambda_model"] and "calibration" in out["lambda_model"]


def test_the_model_does_not_depend_on_the_emulators_timing():
    """The instability it replaces: moto-timed ms moved the binding quota between runs."""
    prices, quotas = PriceTable.load(), load_quotas("2023")
    bindings = []
    for moto_ms in (800, 2400, 5000):
        m = model_usage(usage(1, moto_ms), 10.0, SERVERLESS[TUNED], CAL)
        runs = {TUNED: {"report": {"duration_s": 10.0, "defects": []}, "usage": m["usage"],
                        "config": SERVERLESS[TUNED].to_dict(),
                        "lambda_model": m["lambda_model"]},
                SINGLE: {"report": {"duration_s": 10.0, "defects": []},
                         "usage": {"cpu_per_stream_second": 0.02, "peak_mb": 30}}}
        bindings.append(compare(runs, prices, quotas, "2023")["designs"][TUNED]["binding_quota"])
    assert bindings[0] == bindings[1] == bindings[2]
    b = bindings[0]
    assert b["quota"] == "lambda_concurrency"
    lo, hi = b["streams_range"]
    assert lo < b["streams"] == hi  # the figure is the fastest pass; the slowest gives fewer


def test_calibration_on_real_media(tmp_path: Path):
    from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize

    clip = tmp_path / "c.mp4"
    synthesize(SynthRequest(clip, 2.0, tuple(parse_defects("silence@0.5:1")), 160, 96))
    cal = calibrate(clip, repeats=2)
    assert cal.repeats == 2 and cal.frames == 50
    assert cal.frame_mb == pytest.approx((160 * 96 + 128) / 1e6, rel=0.01)  # luma + npy header
    assert all(v > 0 for v in cal.decode) and set(cal.scan) >= {"freeze", "silence"}
    assert Calibration.from_dict(cal.to_dict()).needs == cal.needs
