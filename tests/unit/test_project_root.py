"""The local cloud finds the CDK app and the handlers in the source checkout, or says how to."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from avmon.errors import ConfigError
from avmon.localcloud.deploy import PROJECT_ROOT_VARIABLE, project_root


def test_a_source_checkout_is_found_and_put_on_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROJECT_ROOT_VARIABLE, raising=False)
    root = project_root()
    assert (root / "cdk" / "app.py").is_file() and str(root) in sys.path


def test_the_variable_names_the_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "cdk").mkdir()
    (tmp_path / "cdk" / "app.py").write_text("")
    (tmp_path / "functions").mkdir()
    monkeypatch.setenv(PROJECT_ROOT_VARIABLE, str(tmp_path))
    monkeypatch.setattr(sys, "path", list(sys.path))  # keep the test's own path unchanged
    assert project_root() == tmp_path and str(tmp_path) in sys.path


def test_no_checkout_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PROJECT_ROOT_VARIABLE, str(tmp_path))
    with pytest.raises(ConfigError, match="run it from a source checkout or set AVMON_PROJECT"):
        project_root()
