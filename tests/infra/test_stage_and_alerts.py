"""Deploy-time context: the stage tags every resource, an alert email subscribes to the topic."""

import pytest
from aws_cdk.assertions import Match, Template

from avmon.errors import ConfigError
from cdk.app import build_app

NO_BUNDLING = {"aws:cdk:bundling-stacks": []}


def pipeline_template(**context: str) -> Template:
    app = build_app(context={**NO_BUNDLING, **context})
    return Template.from_stack(app.node.find_child("AvmonPipeline"))


def test_stage_tags_and_email_subscription() -> None:
    t = pipeline_template(stage="prod", alert_email="ops@example.com")
    t.has_resource_properties("AWS::SNS::Subscription",
                              {"Protocol": "email", "Endpoint": "ops@example.com"})
    t.has_resource_properties("AWS::S3::Bucket", {"Tags": Match.array_with([
        {"Key": "project", "Value": "avmon"}, {"Key": "stage", "Value": "prod"}])})


def test_no_email_no_subscription() -> None:
    assert pipeline_template().find_resources("AWS::SNS::Subscription") == {}


@pytest.mark.parametrize(("key", "value"), [("stage", "Prod Stage"), ("alert_email", "nobody")])
def test_bad_context_is_one_error(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        build_app(context={**NO_BUNDLING, key: value})
