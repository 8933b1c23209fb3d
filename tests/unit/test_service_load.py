"""The service-load arithmetic: matching events to injected defects, the fit, task capacity."""

from __future__ import annotations

from avmon.economics.prices import TaskSize
from avmon.economics.service_load import Fit, RunResult, _origin, _score, fit, usage_for_designs

TRUTH = [{"detector": "freeze", "start_s": 5.0, "end_s": 7.0},
         {"detector": "silence", "start_s": 14.0, "end_s": 15.5}]


def ev(kind, det, start, end=None, stream="s00"):
    return {"event": kind, "detector": det, "start_s": start, "end_s": end, "stream": stream,
            "defect_id": f"{stream}/{det}/{start:.3f}"}


def test_latency_is_measured_from_the_minimum_duration_on_air_per_stream():
    started = [1000.0, 1002.0]
    received = [(1000 + 5 + 0.5 + 0.8, ev("open", "freeze", 6.4)),
                (1000 + 7 + 1.0, ev("close", "freeze", 6.4, 8.4)),
                (1002 + 5 + 0.5 + 0.3, ev("open", "freeze", 6.4, stream="s01")),
                (1002 + 7 + 0.2, ev("close", "freeze", 6.4, 8.4, stream="s01")),
                (1000 + 15, ev("open", "silence", 15.4))]
    assert round(_origin(received, TRUTH), 6) == 1.4
    r = RunResult("360p", 2, 10.0, 1.0, 100.0)
    _score(r, received, TRUTH, started, 1.4, {"freeze": 0.5, "silence": 1.0}, 2)
    assert r.latencies_open_s == [0.8, 0.0, 0.3]
    assert r.latencies_close_s == [1.0, 0.2]
    assert r.missed == ["s00 silence@14.0 close", "s01 silence@14.0 open"]


def test_fit_separates_the_process_from_the_streams():
    one = RunResult("720p", 1, 10.0, cpu_s=1.5, peak_rss_mb=110.0, stream_s=10.0)
    many = RunResult("720p", 5, 10.0, cpu_s=5.5, peak_rss_mb=190.0, stream_s=50.0)
    f = fit(one, many)
    assert (f.cpu_per_stream, f.base_cpu, f.mb_per_stream, f.base_mb) == (0.1, 0.05, 20.0, 90.0)
    assert f.streams_per_task(2, 4) == 13          # CPU binds: (1.4 - 0.05) / 0.1
    assert f.streams_per_task(16, 2) == 87         # memory binds: (1843.2 - 90) / 20
    assert f.streams_per_vcpu() == 7.0


def test_a_starved_run_is_counted_by_the_media_it_processed():
    r = RunResult("1080p50", 2, 10.0, cpu_s=4.0, peak_rss_mb=200.0, stream_s=10.0)
    assert r.live_streams == 1.0 and r.cpu_per_stream_second == 0.4


def test_the_designs_comparison_gets_the_same_streams_per_task():
    f = Fit("360p", base_cpu=0.02, cpu_per_stream=0.03, base_mb=90.0, mb_per_stream=15.0)
    usage = usage_for_designs(f)
    assert TaskSize().streams(usage["cpu_per_stream_second"], usage["peak_mb"]) == \
        f.streams_per_task(2, 4) == usage["streams_per_task"]
