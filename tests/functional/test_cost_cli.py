"""avmon cost, limits and benchmark on saved usage (the runs themselves: test_pipeline.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avmon.cli import main
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
    assert page.count("data:image/png;base64,") == 3
    # a saved benchmark can be priced again, in another region, without re-running
    assert main(["cost", "--usage", str(saved), "--region", "us-west-2"]) == 0
    # us-west-2 lists the us-east-1 rates: 0.675 + 0.54 + 0.144 + 0.0029 + 0.0483 + 0.0166 + ...
    assert "serverless-original: $1.42692 per stream-hour" in capsys.readouterr().out


@pytest.mark.parametrize(("args", "words"), [
    (["cost", "--usage", "nope.json"], ["nope.json", "cannot read usage"]),
    (["cost"], ["one of the arguments"]),
    (["limits", "--usage", "SIM", "--quotas", "1999"], ["cannot read quotas"]),
    (["cost", "--usage", "SIM", "--region", "mars-1"], ["no prices for region"]),
    (["benchmark", "--usage", "SIM", "--design", "mainframe"], ["has none of the designs"]),
    (["cost", "--usage", "SIM", "--streams", "0"], ["must be positive"]),
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
