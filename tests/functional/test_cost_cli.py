"""avmon cost, limits and benchmark on saved usage (the runs themselves: test_pipeline.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avmon.cli import main
from avmon.errors import ConfigError
from tests.unit.test_cost_and_limits import USAGE

pytestmark = pytest.mark.functional


@pytest.fixture
def simulate_json(tmp_path: Path) -> Path:
    """What 'avmon simulate --json' writes, for one minute of media."""
    path = tmp_path / "sim.json"
    path.write_text(json.dumps({"source": "x.mp4", "duration_s": 60.0, "defects": [],
                                "usage": USAGE, "pipeline": {"workflow_type": "STANDARD"}}))
    return path


def test_cost_from_saved_usage(simulate_json, capsys):
    assert main(["cost", "--usage", str(simulate_json), "--streams", "100",
                 "--hours", "10", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    d = out["designs"]["serverless-original"]
    assert d["line_items"]["Step Functions state transitions"]["usd"] == pytest.approx(0.675)
    assert out["fleet"]["usd"]["serverless-original"] == pytest.approx(
        d["usd_per_stream_hour"] * 1000, rel=1e-3)


def test_limits_from_saved_usage(simulate_json, capsys):
    assert main(["limits", "--usage", str(simulate_json), "--quotas", "2023"]) == 0
    out = capsys.readouterr().out
    assert "sustains 200 of 3000 streams (6.7%)" in out
    assert "binds first: sfn_transitions" in out


def test_benchmark_round_trip_and_report(simulate_json, tmp_path, capsys):
    assert main(["benchmark", "--usage", str(simulate_json), "--json",
                 "--report", str(tmp_path / "r")]) == 0
    saved = tmp_path / "bench.json"
    saved.write_text(capsys.readouterr().out)
    page = (tmp_path / "r" / "index.html").read_text()
    # cost and streams; no defects in this run, so no defect timeline
    assert page.count("data:image/png;base64,") == 2
    # a saved benchmark can be priced again, in another region, without re-running
    assert main(["cost", "--usage", str(saved), "--region", "us-west-2"]) == 0
    # us-west-2 lists the us-east-1 rates: 0.675 + 0.54 + 0.144 + 0.0029 + 0.0483 + 0.0166 + ...
    assert "serverless-original: $1.42692 per stream-hour" in capsys.readouterr().out


def test_benchmark_fails_loudly_when_designs_disagree(tmp_path, capsys):
    defect = {"detector": "av_sync", "start_s": 19.0, "end_s": 28.0, "confidence": 1.0,
              "details": {}}
    designs = {}
    for name, defects in (("serverless-original", [defect]),
                          ("single-process", [{**defect, "end_s": 27.0}])):
        designs[name] = {"stream_s": 60.0, "defects": defects, "config": {},
                         "usage": USAGE if name != "single-process" else
                         {"cpu_per_stream_second": 0.02, "peak_mb": 30, "base_mb": 90}}
    saved = tmp_path / "bench.json"
    saved.write_text(json.dumps({"designs": designs}))
    code = main(["benchmark", "--usage", str(saved)])
    captured = capsys.readouterr()
    assert code == 4
    assert "same defects in every design: NO" in captured.out
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("avmon: error: the designs found different"
                                                   " defects: serverless-original: av_sync")
    assert "ends 1.00 s apart, beyond the 0.5 s tolerance" in lines[0]


@pytest.mark.parametrize(("args", "words"), [
    (["cost", "--usage", "nope.json"], ["nope.json", "cannot read usage"]),
    (["cost"], ["one of the arguments"]),
    (["limits", "--usage", "SIM", "--quotas", "1999"], ["cannot read quotas"]),
    (["cost", "--usage", "SIM", "--region", "mars-1"], ["no prices for region"]),
    (["benchmark", "--usage", "SIM", "--design", "mainframe"], ["mainframe: unknown design"]),
    (["cost", "--usage", "SIM", "--streams", "0"], ["--streams", "'0'", ">= 1"]),
])
def test_bad_cost_arguments(simulate_json, capsys, tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    args = [str(simulate_json) if a == "SIM" else a for a in args]
    try:
        code = main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("avmon: error: "), err
    for w in words:
        assert w in lines[0]


def test_single_process_measured_as_several_streams_in_one_process(tmp_path):
    from avmon.benchmark import measure_single_process
    from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize

    clip = tmp_path / "c.mp4"
    synthesize(SynthRequest(clip, 2.0, tuple(parse_defects("black@0.5:0.5")), 160, 96))
    run = measure_single_process(clip, streams=2, repeats=2)
    u = run["usage"]
    assert u["streams_in_process"] == 2 and len(u["cpu_per_stream_second_runs"]) == 2
    assert u["cpu_per_stream_second"] == min(u["cpu_per_stream_second_runs"]) > 0
    # the process's own memory (interpreter, numpy, PyAV) is paid once, not per stream
    assert u["base_mb"] > 30 and 0 < u["peak_mb"] < u["base_mb"]
    assert [d["detector"] for d in run["report"]["defects"]] == ["black"]


def test_sizing_from_avmon_serve_measured_live(tmp_path):
    """The serve.json of benchmarks/serve.py (avmon serve with live sources) sizes the tasks."""
    from avmon.benchmark import sizing_from_service_load

    run = {"streams": 2, "latencies_open_s": [], "latencies_close_s": [], "missed": []}
    saved = tmp_path / "serve.json"
    saved.write_text(json.dumps({"profiles": {"1080p50": {
        "runs": [dict(run, streams=1), run],
        "fit": {"profile": "1080p50", "base_cpu": 0.02, "cpu_per_stream": 0.2,
                "base_mb": 110.0, "mb_per_stream": 40.0}}}}))
    sizing = sizing_from_service_load(saved)
    tasks = sizing["1080p50"]["tasks"]
    # 2 vCPU x 0.7 - 0.02 = 1.38 cores / 0.2 = 6 streams; memory allows (3686 - 110) / 40 = 89
    assert tasks["2 vCPU / 4 GB"] == {"streams": 6, "bound": "cpu"}
    assert tasks["0.25 vCPU / 0.5 GB"] == {"streams": 0, "bound": "cpu"}
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match=r"not the serve\.json"):
        sizing_from_service_load(bad)


def test_cost_prints_the_state_tables_lines(tmp_path, capsys):
    from tests.unit.test_dynamodb_units import WITH_STATE

    path = tmp_path / "sim.json"
    path.write_text(json.dumps({"source": "x.mp4", "duration_s": 60.0, "defects": [],
                                "usage": WITH_STATE, "pipeline": {"workflow_type": "STANDARD"}}))
    assert main(["cost", "--usage", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["designs"]["serverless-original"]
    assert d["line_items"]["DynamoDB write request units"]["usd"] == pytest.approx(0.002625)
    assert d["usd_per_stream_hour"] == pytest.approx(
        sum(v["usd"] for v in d["line_items"].values()), abs=1e-5)
    assert main(["cost", "--usage", str(path)]) == 0
    out = capsys.readouterr().out
    assert "DynamoDB write request units" in out and "DynamoDB read request units" in out
