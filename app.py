#!/usr/bin/env python3
"""The CDK app: ``cdk deploy`` puts avmon's original serverless pipeline in an AWS account.

Settings: ``-c avmon_config=path/to/pipeline.json`` (a PipelineConfig as JSON, TOML or YAML),
checked by the same validation as ``avmon simulate --pipeline-config``: a bad value is one
error line and no template; ``-c stage=prod`` (a tag on every resource, default ``dev``);
``-c alert_email=ops@example.com`` (an email subscription to the defect topic). cdk-nag's
AwsSolutions checks run on every synth.
"""

from __future__ import annotations

import sys

from avmon.errors import AvmonError
from cdk.app import build_app

if __name__ == "__main__":
    try:
        app = build_app()
    except AvmonError as exc:
        sys.stderr.write(f"avmon: error: cdk app: {exc}\n")
        raise SystemExit(exc.exit_code) from None
    app.synth()
