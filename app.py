#!/usr/bin/env python3
"""The CDK app: ``cdk deploy`` puts avmon's original serverless pipeline in an AWS account.

Settings: ``-c avmon_config=path/to/pipeline.json`` (a PipelineConfig as JSON). cdk-nag's
AwsSolutions checks run on every synth.
"""

from __future__ import annotations

from cdk.app import build_app

if __name__ == "__main__":
    build_app().synth()
