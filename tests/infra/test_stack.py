"""The synthesized CDK app: what it deploys, who may do what, and that cdk-nag and cfn-lint pass."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import avmon.errors as errors
from avmon.pipeline.config import PipelineConfig
from cdk.constants import ASL_FILE, DETECTOR_IDS, HANDLERS, STACK_NAME

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
NO_BUNDLING = {"aws:cdk:bundling-stacks": []}


def synth(tmp: Path, config: PipelineConfig | None = None) -> tuple[Any, dict[str, Any]]:
    from cdk.app import build_app
    app = build_app(context=NO_BUNDLING, outdir=str(tmp), config=config)
    return app, app.synth().get_stack_by_name(STACK_NAME).template


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("cdk")
    app, template = synth(out)
    path = out / "template.json"
    path.write_text(json.dumps(template))
    return app, template, path


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def machine(template: dict[str, Any]) -> dict[str, Any]:
    (sm,) = resources(template, "AWS::StepFunctions::StateMachine").values()
    return sm["Properties"]


def test_definition_is_the_asl_file(built):
    _, template, _ = built
    props = machine(template)
    assert json.loads(props["DefinitionString"]) == json.loads(ASL_FILE.read_text())


def test_every_placeholder_is_bound_to_the_right_function(built):
    _, template, _ = built
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL_FILE.read_text()))
    subs = machine(template)["DefinitionSubstitutions"]
    assert set(subs) == placeholders
    functions = resources(template, "AWS::Lambda::Function")
    for name, value in subs.items():
        logical = value["Fn::GetAtt"][0]
        role = name.removesuffix("FunctionArn")
        assert logical.startswith(role) and logical in functions, (name, logical)
    for detector, ident in DETECTOR_IDS.items():
        fn = functions[subs[f"{ident}FunctionArn"]["Fn::GetAtt"][0]]["Properties"]
        assert fn["Environment"]["Variables"]["AVMON_DETECTOR"] == detector


def test_the_workflow_has_one_branch_per_registered_detector():
    from avmon.detectors.registry import NAMES
    asl = json.loads(ASL_FILE.read_text())
    branches = asl["States"]["DetectDefects"]["Branches"]
    starts = [b["StartAt"] for b in branches]
    assert starts == [f"Detect{DETECTOR_IDS[n]}" for n in NAMES]
    for branch, name in zip(branches, NAMES, strict=True):
        failed = branch["States"][f"{DETECTOR_IDS[name]}Failed"]
        assert failed["Parameters"]["detector"] == name  # the report names the right detector


def test_every_segment_ends_analysed_or_recorded_as_failed():
    """The converter's Catch covers every error, and records the failure before failing."""
    states = json.loads(ASL_FILE.read_text())["States"]
    (catch,) = states["ConvertMedia"]["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and catch["Next"] == "RecordFailure"
    record = states["RecordFailure"]
    assert record["Resource"] == "${AggregatorFunctionArn}" and record["ResultPath"] is None
    assert record["Next"] == "SegmentFailed" and states["SegmentFailed"]["Type"] == "Fail"


def test_ingest_failures_go_to_a_dead_letter_queue_with_an_alarm(built):
    _, template, _ = built
    (config,) = resources(template, "AWS::Lambda::EventInvokeConfig").values()
    (queue,) = resources(template, "AWS::SQS::Queue")
    destination = config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": [queue, "Arn"]}
    assert config["Properties"]["MaximumRetryAttempts"] == 2
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()
    depth = [a for a in alarms if a["Properties"].get("Namespace") == "AWS/SQS"]
    assert depth and depth[0]["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0] == queue
    functions = resources(template, "AWS::Lambda::Function")
    per_function = {a["Properties"]["Dimensions"][0]["Value"]["Ref"] for a in alarms
                    if a["Properties"].get("MetricName") == "Errors"}
    assert per_function == {k for k, f in functions.items()
                            if f["Properties"].get("Handler", "").startswith("functions.")}
    topic = next(iter(resources(template, "AWS::SNS::Topic")))
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": topic}] for a in alarms)
    assert any(a["Properties"].get("MetricName") == "ExecutionsFailed" for a in alarms)


def test_no_reserved_concurrency_by_default(built):
    """A new account's whole limit is 10: reserving by default would fail the deployment."""
    _, template, _ = built
    assert not any("ReservedConcurrentExecutions" in f["Properties"]
                   for f in resources(template, "AWS::Lambda::Function").values())


def test_every_log_group_has_a_retention_and_goes_with_the_stack(built):
    _, template, _ = built
    groups = resources(template, "AWS::Logs::LogGroup")
    assert len(groups) == 1 + len(HANDLERS)  # the workflow's and one per function
    for g in groups.values():
        assert g["Properties"]["RetentionInDays"] == 30
        assert g["DeletionPolicy"] == "Delete"
    for fn in resources(template, "AWS::Lambda::Function").values():
        if fn["Properties"].get("Handler", "").startswith("functions."):
            assert "LogGroup" in fn["Properties"]["LoggingConfig"]


def test_error_names_are_the_projects_error_classes():
    asl = json.loads(ASL_FILE.read_text())
    retried, caught = set(), set()

    def walk(states: dict[str, Any]) -> None:
        for state in states.values():
            for r in state.get("Retry", []):
                retried.update(r["ErrorEquals"])
            for c in state.get("Catch", []):
                caught.update(c["ErrorEquals"])
            for b in state.get("Branches", []):
                walk(b["States"])
            if "ItemProcessor" in state:
                walk(state["ItemProcessor"]["States"])

    walk(asl["States"])
    own = {n for n in retried | caught if not n.startswith(("States.", "Lambda."))}
    assert own, "the workflow names none of avmon's errors"
    for name in own:
        assert isinstance(getattr(errors, name, None), type), f"{name} is not in avmon.errors"
    for name in retried & own:
        assert issubclass(getattr(errors, name), errors.RetryableError), name
    for name in caught & own:
        assert issubclass(getattr(errors, name), errors.TerminalError), name
    assert "StorageThrottledError" in retried
    assert "Lambda.TooManyRequestsException" in retried


def test_functions_are_python312_x86_traced_and_log_json(built):
    _, template, _ = built
    for fn in resources(template, "AWS::Lambda::Function").values():
        p = fn["Properties"]
        if p.get("Handler", "").startswith("functions."):
            assert p["Runtime"] == "python3.12"
            assert p["Architectures"] == ["x86_64"]
            assert p["TracingConfig"] == {"Mode": "Active"}
            assert p["LoggingConfig"]["LogFormat"] == "JSON"


def test_state_machine_logs_and_traces(built):
    _, template, _ = built
    props = machine(template)
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["StateMachineType"] == "STANDARD"


def test_bucket_is_private_encrypted_logged_and_expires_frames(built):
    _, template, _ = built
    buckets = resources(template, "AWS::S3::Bucket")
    media = next(b["Properties"] for k, b in buckets.items() if k.startswith("Media"))
    assert media["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(media["PublicAccessBlockConfiguration"].values())
    assert "LoggingConfiguration" in media
    rules = {r["Prefix"]: r["ExpirationInDays"] for r in media["LifecycleConfiguration"]["Rules"]}
    assert rules == {"ingest/": 30, "runs/": 90, "segments/": 1, "frames/": 1, "audio/": 1,
                     "results/": 1, "reports/": 90}  # every prefix the pipeline writes expires
    policies = [p["Properties"]["PolicyDocument"] for p in
                resources(template, "AWS::S3::BucketPolicy").values()]
    assert any(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
               for p in policies for s in p["Statement"])


def test_topic_is_encrypted(built):
    _, template, _ = built
    (topic,) = resources(template, "AWS::SNS::Topic").values()
    assert "alias/aws/sns" in json.dumps(topic["Properties"]["KmsMasterKeyId"])


def role_statements(template: dict[str, Any], function_prefix: str) -> list[dict[str, Any]]:
    functions = resources(template, "AWS::Lambda::Function")
    fn_logical = next(k for k in functions if k.startswith(function_prefix))
    role = functions[fn_logical]["Properties"]["Role"]["Fn::GetAtt"][0]
    out = []
    for p in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role} in p["Properties"]["Roles"]:
            out += p["Properties"]["PolicyDocument"]["Statement"]
    return out


def s3_prefixes(statements: list[dict[str, Any]], action: str) -> set[str]:
    found = set()
    for s in statements:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        if action in actions:
            res = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            for r in res:
                found.add(r["Fn::Join"][1][-1].lstrip("/"))
    return found


@pytest.mark.parametrize(("function", "reads", "writes"), [
    ("Converter", {"segments/*", "ingest/*"}, {"frames/*", "audio/*"}),
    ("FreezeDetector", {"frames/*"}, {"results/freeze/*"}),
    ("SilenceDetector", {"audio/*"}, {"results/silence/*"}),
    ("AvSyncDetector", {"frames/*", "audio/*"}, {"results/av_sync/*"}),
    ("Aggregator", {"results/*", "reports/*", "runs/*"}, {"reports/*"}),
    ("Ingest", {"ingest/*", "runs/*", "reports/*"}, {"segments/*", "runs/*"}),
])
def test_least_privilege_on_the_bucket(built, function, reads, writes):
    _, template, _ = built
    statements = role_statements(template, function)
    assert s3_prefixes(statements, "s3:GetObject") == reads
    assert s3_prefixes(statements, "s3:PutObject") == writes
    for s in statements:
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        assert not any(a in ("*", "s3:*") or a.endswith(":*") for a in actions), s
        if any(a.startswith("s3:") for a in actions):
            assert s["Resource"] != "*"


def test_only_aggregator_and_ingest_publish_and_only_ingest_starts_executions(built):
    _, template, _ = built
    for fn in ("Converter", "FreezeDetector", "Aggregator", "Ingest"):
        actions = {a for s in role_statements(template, fn)
                   for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
        # the ingest function publishes the gaps a live stream's playlist shows
        assert ("sns:Publish" in actions) == (fn in ("Aggregator", "Ingest"))
        assert ("states:StartExecution" in actions) == (fn == "Ingest")


def test_the_stream_state_table_is_the_aggregators_and_ingests_alone(built):
    # the aggregator merges segments; ingest closes a live stream whose EXT-X-ENDLIST
    # playlist lands after its last segment's merge
    _, template, _ = built
    (name, table), = resources(template, "AWS::DynamoDB::Table").items()
    p = table["Properties"]
    assert {k["AttributeName"]: k["KeyType"] for k in p["KeySchema"]} == {
        "stream": "HASH", "run": "RANGE"}
    assert p["BillingMode"] == "PAY_PER_REQUEST"
    assert p["SSESpecification"]["SSEEnabled"] is True
    assert p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert p["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    for fn in ("Converter", "FreezeDetector", "Aggregator", "Ingest"):
        grants = [s for s in role_statements(template, fn)
                  if any(str(a).startswith("dynamodb:") for a in
                         (s["Action"] if isinstance(s["Action"], list) else [s["Action"]]))]
        if fn not in ("Aggregator", "Ingest"):
            assert grants == [], fn
            continue
        (grant,) = grants
        assert sorted(grant["Action"]) == ["dynamodb:GetItem", "dynamodb:PutItem"]
        assert grant["Resource"] == {"Fn::GetAtt": [name, "Arn"]}
    for fn in ("Aggregator", "Ingest"):
        env = next(f for k, f in resources(template, "AWS::Lambda::Function").items()
                   if k.startswith(fn))["Properties"]["Environment"]["Variables"]
        assert env["AVMON_STATE_TABLE"] == {"Ref": name}


def test_ingest_lists_only_under_ingest(built):
    _, template, _ = built
    listing = [s for s in role_statements(template, "Ingest") if s["Action"] == "s3:ListBucket"]
    assert [s["Condition"] for s in listing] == [{"StringLike": {"s3:prefix": ["ingest/*"]}}]


def test_config_reaches_the_template(tmp_path):
    config = PipelineConfig(converter_memory_mb=3008, workflow_type="EXPRESS", segment_seconds=4,
                            reserved_concurrency=50, reports_expire_days=7)
    _, template = synth(tmp_path, config)
    fns = resources(template, "AWS::Lambda::Function")
    conv = next(f for k, f in fns.items() if k.startswith("Converter"))["Properties"]
    assert conv["MemorySize"] == 3008
    assert conv["ReservedConcurrentExecutions"] == 50
    (media,) = [b for k, b in resources(template, "AWS::S3::Bucket").items()
                if k.startswith("Media")]
    rules = {r["Prefix"]: r["ExpirationInDays"]
             for r in media["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["reports/"] == rules["runs/"] == 7
    env = json.loads(conv["Environment"]["Variables"]["AVMON_PIPELINE_CONFIG"])
    assert env["segment_seconds"] == 4
    assert machine(template)["StateMachineType"] == "EXPRESS"


def test_cdk_nag_passes_with_every_acknowledgement_reasoned(built):
    from cdk_nag import AwsSolutionsChecks
    app, _, _ = built
    import aws_cdk as cdk
    report = AwsSolutionsChecks().validate_scope(app)
    assert report.success, [v.rule_name for v in report.violations]
    acknowledged = {rule: reason for c in app.node.find_all() for m in c.node.metadata
                    if m.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
                    for rule, reason in m.data.items()}
    assert len(acknowledged) >= 10
    assert all(len(reason) > 20 for reason in acknowledged.values()), acknowledged


def test_cfn_lint_is_clean(built):
    _, _, path = built
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    proc = subprocess.run([str(cfn_lint), "--ignore-checks", "W3005", "--", str(path)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
