"""Packaging avmon for the service container without Docker: a wheel and its pins, as an asset.

``pip wheel`` builds avmon's wheel from a copy of the sources (so the work tree gets no build
folders); ``service_requirements.txt`` goes beside it. The container, a stock Python image,
downloads this asset at start and installs it (see ``cdk/service_stack.py``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import ILocalBundling

from cdk.constants import ROOT, SERVICE_REQUIREMENTS


@jsii.implements(ILocalBundling)
class LocalWheelBundling:
    """CDK local bundling: avmon's wheel plus the service's pinned requirements."""

    def try_bundle(self, output_dir: str, *args: Any, **kwargs: Any) -> bool:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp)
            for name in ("pyproject.toml", "README.md"):
                shutil.copy2(ROOT / name, src / name)
            shutil.copytree(ROOT / "avmon", src / "avmon",
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            # build isolation: pip fetches the build backend pyproject.toml names (the
            # project's venv need not hold setuptools' wheel support)
            subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                            "-w", output_dir, str(src)], check=True,
                           stdout=subprocess.DEVNULL)
        shutil.copy2(SERVICE_REQUIREMENTS, Path(output_dir) / "requirements.txt")
        return True
