"""checkov on both synthesized templates: every finding left is acknowledged with its reason
(``cdk/checkov.py``), so a new one fails here."""

import json
import subprocess
from pathlib import Path

import pytest

from cdk.checkov import ACCEPTED

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from cdk.app import build_app

    out = tmp_path_factory.mktemp("cdk")
    build_app(context={"aws:cdk:bundling-stacks": []}, outdir=str(out)).synth()
    return sorted(out.glob("*.template.json"))


def test_every_accepted_finding_has_a_reason() -> None:
    for kind, checks in ACCEPTED.items():
        for check, reason in checks.items():
            assert check.startswith("CKV_"), kind
            assert len(reason) > 40, (kind, check)


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is installed by 'make setup'")
def test_checkov_finds_nothing_unacknowledged(templates: list[Path]) -> None:
    assert {t.name for t in templates} == {"AvmonPipeline.template.json",
                                           "AvmonService.template.json"}
    for template in templates:
        proc = subprocess.run([str(CHECKOV), "-f", str(template), "--framework",
                               "cloudformation", "--compact", "--quiet", "-o", "json"],
                              capture_output=True, text=True, timeout=300)
        report = json.loads(proc.stdout)
        report = report[0] if isinstance(report, list) else report
        failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
        assert failed == [], template.name
        assert report["summary"]["passed"] > 50
        assert report["summary"]["parsing_errors"] == 0
