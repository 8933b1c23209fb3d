"""The local cloud finds the CDK app and the handlers in the source checkout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from avmon.localcloud.project import project_root


def test_a_source_checkout_is_found_and_put_on_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AVMON_PROJECT_ROOT", raising=False)
    root = project_root()
    assert (root / "cdk" / "app.py").is_file() and str(root) in sys.path


def test_the_variable_names_the_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for marker in ("cdk/app.py", "functions/__init__.py", "statemachine/pipeline.asl.json"):
        (tmp_path / marker).parent.mkdir(exist_ok=True)
        (tmp_path / marker).write_text("")
    monkeypatch.setenv("AVMON_PROJECT_ROOT", str(tmp_path))
    try:
        assert project_root() == tmp_path.resolve() and str(tmp_path.resolve()) in sys.path
    finally:
        sys.path.remove(str(tmp_path.resolve()))
