"""The AvmonService stack: ECS Fargate, leases in DynamoDB, the shared topic; nag and cfn-lint."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cdk.constants import ROOT, SERVICE_BASE_IMAGE, SERVICE_REQUIREMENTS, SERVICE_STACK_NAME

NO_BUNDLING = {"aws:cdk:bundling-stacks": []}


def synth(tmp: Path, **context: Any) -> tuple[Any, dict[str, Any]]:
    from cdk.app import build_app
    app = build_app(context={**NO_BUNDLING, **context}, outdir=str(tmp))
    stack = app.synth().get_stack_by_name(SERVICE_STACK_NAME)
    warnings = [str(m.entry.data) for m in stack.messages if m.level.name != "INFO"]
    assert not warnings, warnings  # e.g. an unset cross-stack reference strength
    return app, stack.template


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("cdk-service")
    app, template = synth(out)
    path = out / "service.json"
    path.write_text(json.dumps(template))
    return app, template, path


def only(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    (item,) = [(k, r["Properties"]) for k, r in template["Resources"].items() if r["Type"] == kind]
    return item


def container(template: dict[str, Any]) -> dict[str, Any]:
    (c,) = only(template, "AWS::ECS::TaskDefinition")[1]["ContainerDefinitions"]
    return c


def test_container_is_a_stock_image_that_installs_the_wheel_and_serves(built):
    _, template, _ = built
    c = container(template)
    assert c["Image"] == SERVICE_BASE_IMAGE
    script = c["Command"][-1]
    assert "pip install" in script and "/tmp/avmon/*.whl" in script
    assert re.search(r"exec avmon serve --streams \S+ --port \S+ --leases", script)
    env = {e["Name"]: e["Value"] for e in c["Environment"]}
    table, _ = only(template, "AWS::DynamoDB::Table")
    assert env["AVMON_LEASE_TABLE"] == {"Ref": table}
    assert "AvmonPipeline" in json.dumps(env["AVMON_TOPIC_ARN"])  # the pipeline's one topic
    assert c["HealthCheck"]["Command"][1].count("/healthz") == 1
    assert c["LogConfiguration"]["LogDriver"] == "awslogs"
    task = only(template, "AWS::ECS::TaskDefinition")[1]
    assert (task["Cpu"], task["Memory"]) == ("2048", "4096")


def test_tasks_run_in_private_subnets_and_scale_on_cpu(built):
    _, template, _ = built
    svc = only(template, "AWS::ECS::Service")[1]
    assert svc["LaunchType"] == "FARGATE"
    net = svc["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert net["AssignPublicIp"] == "DISABLED"
    subnets = template["Resources"]
    for ref in net["Subnets"]:
        assert subnets[ref["Ref"]]["Properties"]["MapPublicIpOnLaunch"] is False
    policy = only(template, "AWS::ApplicationAutoScaling::ScalingPolicy")[1]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == \
        "ECSServiceAverageCPUUtilization"
    assert tracking["TargetValue"] == 70
    _, log_group = next((k, r) for k, r in
                        [(k, r["Properties"]) for k, r in template["Resources"].items()
                         if r["Type"] == "AWS::Logs::LogGroup"] if k.startswith("ServiceLogs"))
    assert log_group["RetentionInDays"] == 30
    endpoints = {json.dumps(r["Properties"]["ServiceName"]) for r in template["Resources"].values()
                 if r["Type"] == "AWS::EC2::VPCEndpoint"}
    assert any(".s3" in e for e in endpoints) and any(".dynamodb" in e for e in endpoints)


def test_lease_table_and_least_privilege(built):
    _, template, _ = built
    table_id, table = only(template, "AWS::DynamoDB::Table")
    assert table["KeySchema"] == [{"AttributeName": "key", "KeyType": "HASH"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    task = only(template, "AWS::ECS::TaskDefinition")[1]
    role = task["TaskRoleArn"]["Fn::GetAtt"][0]
    statements = [s for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"
                  and {"Ref": role} in r["Properties"]["Roles"]
                  for s in r["Properties"]["PolicyDocument"]["Statement"]]
    by_action = {json.dumps(s["Action"]): s["Resource"] for s in statements}
    assert by_action[json.dumps(["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan"])] \
        == {"Fn::GetAtt": [table_id, "Arn"]}
    objects = by_action[json.dumps("s3:GetObject")]
    assert len(objects) == 2  # the wheel and the streams file, by key: no wildcard
    assert all(not o["Fn::Join"][1][-1].endswith("*") for o in objects)
    kms = [a for a in by_action if "kms:" in a]
    assert set(by_action) - set(kms) == {
        json.dumps(["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Scan"]),
        json.dumps("s3:GetObject"), json.dumps("sns:Publish")}
    for actions in kms:  # only what publishing to the aws/sns-encrypted topic needs
        assert set(json.loads(actions)) <= {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_cdk_nag_passes_with_every_acknowledgement_reasoned(built):
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks
    app, _, _ = built
    stack = app.node.find_child(SERVICE_STACK_NAME)
    report = AwsSolutionsChecks().validate_scope(stack)
    assert report.success, [v.rule_name for v in report.violations]
    acknowledged = {rule: reason for c in stack.node.find_all() for m in c.node.metadata
                    if m.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
                    for rule, reason in m.data.items()}
    assert acknowledged and all(len(r) > 20 for r in acknowledged.values()), acknowledged


def test_cfn_lint_is_clean(built):
    _, _, path = built
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    proc = subprocess.run([str(cfn_lint), "--ignore-checks", "W3005", "--", str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_service_pins_are_the_projects_pins():
    def pins(path: Path) -> dict[str, str]:
        lines = [ln.split("#")[0].strip() for ln in path.read_text().splitlines()]
        return {re.sub(r"\[.*\]", "", n).lower(): v for n, _, v in
                (ln.partition("==") for ln in lines if "==" in ln)}
    service, project = pins(SERVICE_REQUIREMENTS), pins(ROOT / "requirements.txt")
    assert service and all(project[name] == v for name, v in service.items()), service
    docker = (ROOT / "Dockerfile").read_text()
    assert "cdk/service_requirements.txt" in docker and SERVICE_BASE_IMAGE in docker


def test_the_lambda_bundle_has_what_the_handlers_import():
    """Every third-party distribution the handlers import is in the Lambda bundle's
    requirements or installed by them (their dependencies, as this environment resolves them):
    a missing one deploys, then fails every invocation at import."""
    import importlib.metadata as md

    code = ("import sys, importlib\n"
            "for m in ('functions.ingest', 'functions.converter', 'functions.detector',"
            " 'functions.aggregator'):\n"
            "    importlib.import_module(m)\n"
            "print(' '.join(sorted({n.split('.')[0] for n in sys.modules})))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.split()
    by_module = md.packages_distributions()
    imported = {d.lower().replace("_", "-") for top in out
                if top not in sys.stdlib_module_names for d in by_module.get(top, [])}
    imported -= {"avmon", "setuptools"}  # the bundle copies avmon; setuptools is site's hook

    def closure(names: list[str]) -> set[str]:
        seen: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop().lower().replace("_", "-")
            if name in seen:
                continue
            seen.add(name)
            for req in md.requires(name) or []:
                if "extra ==" not in req:
                    todo.append(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0])
        return seen

    listed = [ln.split("==")[0].strip() for ln in
              (ROOT / "functions" / "requirements.txt").read_text().splitlines()
              if "==" in ln and not ln.lstrip().startswith("#")]
    assert imported and imported <= closure(listed), imported - closure(listed)
