"""Packaging the Lambda code without Docker.

``pip install --target`` with pip's platform options fetches the manylinux wheels for the Lambda
runtime (python3.12, x86_64) whatever machine runs ``cdk synth``; avmon/ and functions/ are
copied beside them. av 18.1 ships one abi3 wheel for CPython 3.11-3.13; with numpy the bundle is
about 174 MB unzipped, 57 MB zipped: under Lambda's 250 MB limit.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import ILocalBundling

from cdk.constants import LAMBDA_REQUIREMENTS, ROOT

PIP_PLATFORM = ["--only-binary=:all:", "--implementation", "cp", "--python-version", "3.12",
                "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64"]
PACKAGES = ("avmon", "functions")


@jsii.implements(ILocalBundling)
class LocalPipBundling:
    """CDK local bundling: pip for the Lambda platform, then copy the project's packages."""

    def try_bundle(self, output_dir: str, *args: Any, **kwargs: Any) -> bool:
        out = Path(output_dir)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(out),
                        *PIP_PLATFORM, "-r", str(LAMBDA_REQUIREMENTS)], check=True)
        for package in PACKAGES:
            shutil.copytree(ROOT / package, out / package, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        return True
