"""The README's deploy path, checked with the real ``cdk`` CLI (pinned in package.json)."""

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / "node_modules" / ".bin" / "cdk"


@pytest.mark.skipif(not CDK.exists(), reason="the cdk CLI is installed by 'make setup' (npm ci)")
def test_cdk_synth_runs_the_app_with_its_flags_and_passes_cdk_nag(tmp_path: Path) -> None:
    env = {**os.environ, "AVMON_SKIP_BUNDLING": "1", "CDK_DISABLE_VERSION_CHECK": "1",
           "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
           "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    proc = subprocess.run([str(CDK), "synth", "--quiet", "--no-notices", "-o", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    template = json.loads((tmp_path / "AvmonPipeline.template.json").read_text())
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert {"AWS::StepFunctions::StateMachine", "AWS::S3::Bucket", "AWS::SNS::Topic"} <= kinds
    report = json.loads((tmp_path / "validation-report.json").read_text())
    violations = [v for p in report.get("pluginReports", []) for v in p.get("violations", [])]
    assert violations == []
