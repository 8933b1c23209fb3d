"""What ``avmon analyze`` loads: its start-up is part of its cost (benchmarks/speed.py), so
nothing it does not use may be imported on its way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]
# pydantic only checks files and numbers a user hands in; numpy.ma comes with np.median
NOT_ON_THE_ANALYZE_PATH = ("pydantic", "tqdm", "boto3", "botocore", "moto", "aws_cdk",
                           "matplotlib", "prometheus_client", "yaml", "numpy.ma")


def test_analyze_imports_only_what_it_uses(clip: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    run = subprocess.run([sys.executable, "-X", "importtime", "-m", "avmon", "analyze",
                          str(clip), "--json"], capture_output=True, text=True, env=env,
                         check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert '"av_sync"' in run.stdout  # the whole analysis ran, finalize included
    loaded = {line.rsplit("|", 1)[1].strip() for line in run.stderr.splitlines()
              if line.startswith("import time:")}
    assert "numpy" in loaded and "av" in loaded
    assert sorted(m for m in NOT_ON_THE_ANALYZE_PATH if m in loaded) == []


def test_bad_number_still_checked_by_the_validation_layer(
        capsys: pytest.CaptureFixture[str]) -> None:
    from avmon.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["analyze", "x.mp4", "--threads", "2.5"])
    assert exit_.value.code == 2
    assert "'2.5' is not allowed: a whole number >= 0 and <= 16" in capsys.readouterr().err
