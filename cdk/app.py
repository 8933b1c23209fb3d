"""Builds the CDK app: PipelineStack and ServiceStack, with cdk-nag's AwsSolutions checks."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from avmon.errors import ConfigError
from avmon.pipeline.config import PipelineConfig
from cdk.checkov import CheckovAcknowledgements
from cdk.constants import ROOT, SERVICE_EXAMPLE_STREAMS, SERVICE_STACK_NAME, STACK_NAME
from cdk.pipeline_stack import PipelineStack
from cdk.service_stack import ServiceStack


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None,
              config: PipelineConfig | None = None) -> cdk.App:
    """The app. ``context`` such as ``{"aws:cdk:bundling-stacks": []}`` skips bundling.

    The feature flags of cdk.json apply here too, so tests and the local simulation synthesize
    exactly what ``cdk synth`` does.
    """
    flags = json.loads((ROOT / "cdk.json").read_text()).get("context", {})
    app = cdk.App(context={**flags, **(context or {})}, outdir=outdir)
    if os.environ.get("AVMON_SKIP_BUNDLING") == "1":
        # `cdk synth` with the template only: the CLI refuses aws:* context from the user, and
        # its own context wins over the App's, so the node's value is set after construction.
        app.node.set_context("aws:cdk:bundling-stacks", [])
    if config is None:
        path = app.node.try_get_context("avmon_config")
        config = PipelineConfig.load(path) if path else PipelineConfig()
    env = cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
                          region=os.environ.get("CDK_DEFAULT_REGION"))
    stage = str(app.node.try_get_context("stage") or "dev")
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,15}", stage):
        raise ConfigError(f"-c stage={stage!r}: lowercase letters, digits and '-', at most 16")
    alert_email = app.node.try_get_context("alert_email")
    if alert_email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+",
                                                    str(alert_email)):
        raise ConfigError(f"-c alert_email={alert_email!r}: not an email address")
    for key, value in (("project", "avmon"), ("stage", stage)):
        cdk.Tags.of(app).add(key, value)  # cost allocation and ownership on every resource
    pipeline = PipelineStack(app, STACK_NAME, config=config, env=env,
                             alert_email=str(alert_email) if alert_email else None,
                             description="avmon: Prime Video's original A/V monitoring pipeline")
    # the service publishes to the pipeline's topic: one topic for every design's events
    ServiceStack(app, SERVICE_STACK_NAME, topic=pipeline.topic, env=env,
                 streams_file=Path(app.node.try_get_context("avmon_streams")
                                   or SERVICE_EXAMPLE_STREAMS),
                 image=app.node.try_get_context("avmon_image") or "registry",
                 description="avmon: the single-process design as an ECS Fargate service")
    cdk.Aspects.of(app).add(CheckovAcknowledgements())
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
