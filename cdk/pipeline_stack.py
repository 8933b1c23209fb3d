"""The original serverless pipeline as one CDK stack.

S3 (the media bucket: segments, frames, audio buffers, results, reports), a Lambda per role (ingest,
media converter, one per detector, aggregator), the Step Functions state machine loaded from
``statemachine/pipeline.asl.json`` with ``definition_substitutions``, a DynamoDB table of each
stream's running state across segments (the aggregator's only), and an SNS topic for defect
events. Every function may touch only its own keys.

Nothing fails silently: an ingest event that still fails after Lambda's retries goes to a
dead-letter queue; failed executions, a non-empty dead-letter queue and any function's errors
raise alarms that publish to the same topic. Every prefix expires, every log group has a
retention, and ``cdk destroy`` removes what it created (after ``aws s3 rm`` empties the bucket),
except the access-log bucket, kept as the audit trail.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from avmon.detectors.config import AnalysisConfig
from avmon.detectors.registry import build
from avmon.pipeline import keys
from avmon.pipeline.config import PipelineConfig
from cdk.bundling import LocalPipBundling
from cdk.constants import ASL_FILE, DETECTOR_IDS, HANDLERS, ROOT

# What the asset takes from the repository when bundling is skipped (tests, local simulation)
ASSET_EXCLUDE = ["*", "!avmon", "!avmon/**", "!functions", "!functions/**", "**/__pycache__"]


_RETENTION = {1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS",
              30: "ONE_MONTH", 60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS",
              150: "FIVE_MONTHS", 180: "SIX_MONTHS", 365: "ONE_YEAR", 400: "THIRTEEN_MONTHS",
              545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1096: "THREE_YEARS",
              1827: "FIVE_YEARS", 2192: "SIX_YEARS", 2557: "SEVEN_YEARS", 2922: "EIGHT_YEARS",
              3288: "NINE_YEARS", 3653: "TEN_YEARS"}


def expiry_days(config: PipelineConfig) -> dict[str, int]:
    """How long objects under each prefix of the media bucket live: every prefix expires."""
    days = {keys.INGEST: config.ingest_expire_days, keys.RUNS: config.reports_expire_days,
            keys.REPORTS: config.reports_expire_days}
    return {p: days.get(p, config.frames_expire_days) for p in keys.PREFIXES}


class PipelineStack(cdk.Stack):  # type: ignore[misc]  # aws_cdk is not analysed (pyproject)
    def __init__(self, scope: Construct, construct_id: str, *,
                 config: PipelineConfig | None = None, alert_email: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config = (config or PipelineConfig()).validate()
        self._acknowledged: set[str] = set()

        access_logs = s3.Bucket(
            self, "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(90))],
        )
        self.bucket = s3.Bucket(
            self, "Media",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix="media/",
            lifecycle_rules=[
                s3.LifecycleRule(prefix=prefix, expiration=cdk.Duration.days(days))
                for prefix, days in expiry_days(config).items()
            ],
            removal_policy=cdk.RemovalPolicy.DESTROY,  # README: aws s3 rm, then cdk destroy
        )
        self.topic = sns.Topic(
            self, "Defects", display_name="avmon defect notifications",
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
            enforce_ssl=True,
        )
        if alert_email:  # -c alert_email=...: AWS mails a confirmation link first
            self.topic.add_subscription(subscriptions.EmailSubscription(alert_email))

        code = lambda_.Code.from_asset(
            str(ROOT), exclude=ASSET_EXCLUDE,
            bundling=cdk.BundlingOptions(
                image=cdk.DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
                local=LocalPipBundling(),
            ),
        )
        retention = logs.RetentionDays[_RETENTION[config.log_retention_days]]
        common_env = {"AVMON_BUCKET": self.bucket.bucket_name,
                      "AVMON_PIPELINE_CONFIG": config.to_json(),
                      "POWERTOOLS_LOG_LEVEL": "INFO"}

        def function(name: str, memory: int, env: dict[str, str],
                     **options: Any) -> lambda_.Function:
            log_group = logs.LogGroup(self, f"{name}Logs", retention=retention,
                                      removal_policy=cdk.RemovalPolicy.DESTROY)
            fn = lambda_.Function(
                self, name,
                runtime=lambda_.Runtime.PYTHON_3_12,
                architecture=lambda_.Architecture.X86_64,
                handler=HANDLERS[name],
                code=code,
                memory_size=memory,
                timeout=cdk.Duration.seconds(config.timeout_s),
                tracing=lambda_.Tracing.ACTIVE,
                logging_format=lambda_.LoggingFormat.JSON,
                environment={**common_env, **env},
                description=f"avmon {name}",
                log_group=log_group,
                reserved_concurrent_executions=config.reserved_concurrency or None,
                **options,
            )
            self.alarm(f"{name}Errors", fn.metric_errors(period=cdk.Duration.minutes(5)),
                       f"avmon {name}: the function reported errors")
            return fn

        self.converter = function("Converter", config.converter_memory_mb, {})
        self.allow(self.converter, "s3:GetObject", keys.SEGMENTS, keys.INGEST)
        self.allow(self.converter, "s3:PutObject", keys.FRAMES, keys.AUDIO)

        self.detectors: dict[str, lambda_.Function] = {}
        for detector, ident in DETECTOR_IDS.items():
            fn = function(f"{ident}Detector", config.detector_memory_mb,
                          {"AVMON_DETECTOR": detector})
            # a detector reads only the media it analyses: pictures, audio, or both
            needs = build(AnalysisConfig(), [detector])[0].needs
            self.allow(fn, "s3:GetObject", *([keys.FRAMES] if "video" in needs else []),
                       *([keys.AUDIO] if "audio" in needs else []))
            self.allow(fn, "s3:PutObject", f"{keys.RESULTS}{detector}/")
            self.detectors[detector] = fn

        # the stream's running state across segments (avmon.pipeline.state): one small item
        # per stream and run, written conditionally; it expires with the reports (TTL)
        self.states = dynamodb.Table(
            self, "StreamStates",
            partition_key=dynamodb.Attribute(name="stream", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="run", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            time_to_live_attribute="expires_at",
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        self.aggregator = function("Aggregator", config.aggregator_memory_mb,
                                   {"AVMON_TOPIC_ARN": self.topic.topic_arn,
                                    "AVMON_STATE_TABLE": self.states.table_name})
        # its results, the reports of the segments it merges (the state's tail), the run record
        # (how many segments an upload has)
        self.allow(self.aggregator, "s3:GetObject", keys.RESULTS, keys.REPORTS, keys.RUNS)
        self.allow(self.aggregator, "s3:PutObject", keys.REPORTS)
        self.topic.grant_publish(self.aggregator)
        # the state protocol needs exactly these two calls, on this table only
        self.aggregator.add_to_role_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:PutItem"],
            resources=[self.states.table_arn]))

        workflow_logs = logs.LogGroup(self, "WorkflowLogs", retention=retention,
                                      removal_policy=cdk.RemovalPolicy.DESTROY)
        substitutions = {"ConverterFunctionArn": self.converter.function_arn,
                         "AggregatorFunctionArn": self.aggregator.function_arn}
        substitutions |= {f"{DETECTOR_IDS[d]}FunctionArn": fn.function_arn
                          for d, fn in self.detectors.items()}
        self.state_machine = sfn.StateMachine(
            self, "Pipeline",
            definition_body=sfn.DefinitionBody.from_string(ASL_FILE.read_text()),
            definition_substitutions=substitutions,
            state_machine_type=sfn.StateMachineType[config.workflow_type],
            logs=sfn.LogOptions(destination=workflow_logs, level=sfn.LogLevel.ALL,
                                include_execution_data=False),
            tracing_enabled=True,
        )
        invoked = [self.converter, self.aggregator, *self.detectors.values()]
        # a raw ASL body names functions by ARN only: grant the invocations explicitly
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"],
            resources=[fn.function_arn for fn in invoked]
            + [f"{fn.function_arn}:*" for fn in invoked],
        ))
        for fn in invoked:
            self.acknowledge(
                f"AwsSolutions-IAM5[Resource::<{self.logical_id(fn)}.Arn>:*]",
                "the state machine may invoke this one function's versions and aliases")

        self.alarm("FailedExecutions", self.state_machine.metric_failed(
            period=cdk.Duration.minutes(5)), "avmon: segment executions failed (see the report)")

        # what Ingest still cannot do after Lambda's retries (async invocation) lands here
        self.dead_letters = sqs.Queue(
            self, "IngestDeadLetters", encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True, retention_period=cdk.Duration.days(14),
            removal_policy=cdk.RemovalPolicy.DESTROY)
        self.ingest = function("Ingest", config.ingest_memory_mb,
                               {"AVMON_STATE_MACHINE_ARN": self.state_machine.state_machine_arn,
                                "AVMON_TOPIC_ARN": self.topic.topic_arn,
                                "AVMON_STATE_TABLE": self.states.table_name},
                               on_failure=destinations.SqsDestination(self.dead_letters),
                               retry_attempts=config.ingest_retry_attempts)
        self.alarm("IngestDeadLetterDepth",
                   self.dead_letters.metric_approximate_number_of_messages_visible(
                       period=cdk.Duration.minutes(5), statistic="Maximum"),
                   "avmon: an upload could not be ingested (message in the dead-letter queue)")
        # a live segment reads its stream's playlist record (runs/); a playlist checks that the
        # segments it lists landed (a LIST under ingest/ only) and publishes the gaps it finds;
        # one with EXT-X-ENDLIST may close the stream's state: its item, and the reports of the
        # segments its tail holds (the same two calls as the aggregator)
        self.allow(self.ingest, "s3:GetObject", keys.INGEST, keys.RUNS, keys.REPORTS)
        self.allow(self.ingest, "s3:PutObject", keys.SEGMENTS, keys.RUNS)
        self.ingest.add_to_role_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [f"{keys.INGEST}*"]}}))
        self.topic.grant_publish(self.ingest)
        self.ingest.add_to_role_policy(iam.PolicyStatement(
            actions=["dynamodb:GetItem", "dynamodb:PutItem"],
            resources=[self.states.table_arn]))
        self.state_machine.grant_start_execution(self.ingest)
        self.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(self.ingest),
            s3.NotificationKeyFilter(prefix=keys.INGEST))

        cdk.CfnOutput(self, "BucketName", value=self.bucket.bucket_name)
        cdk.CfnOutput(self, "StateMachineArn", value=self.state_machine.state_machine_arn)
        cdk.CfnOutput(self, "TopicArn", value=self.topic.topic_arn)
        cdk.CfnOutput(self, "StateTableName", value=self.states.table_name)
        self.acknowledge_findings()

    def alarm(self, name: str, metric: cloudwatch.IMetric, description: str) -> None:
        """An alarm on ``metric`` >= 1, published to the defects topic."""
        alarm = cloudwatch.Alarm(
            self, name, metric=metric, threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description)
        alarm.add_alarm_action(cw_actions.SnsAction(self.topic))

    def allow(self, fn: lambda_.Function, action: str, *prefixes: str) -> None:
        """Let ``fn`` do ``action`` on objects under ``prefixes`` of the media bucket, only."""
        fn.add_to_role_policy(iam.PolicyStatement(
            actions=[action],
            resources=[self.bucket.arn_for_objects(f"{p}*") for p in prefixes],
        ))
        bucket = self.logical_id(self.bucket)
        for p in prefixes:
            self.acknowledge(f"AwsSolutions-IAM5[Resource::<{bucket}.Arn>/{p}*]",
                             f"objects under {p} only: the keys this role works on")

    def kms_keys_arn(self) -> str:
        """``arn:...:kms:REGION:ACCOUNT:key/*`` as cdk-nag prints it: with the region and
        account where synthesis knows them (``cdk synth`` sets the region), tokens otherwise."""
        region, account = self.region, self.account
        if cdk.Token.is_unresolved(region):
            partition, region = "<AWS::Partition>", "<AWS::Region>"
        else:
            partition = RegionInfo.get(region).partition or "aws"
        if cdk.Token.is_unresolved(account):
            account = "<AWS::AccountId>"
        return f"arn:{partition}:kms:{region}:{account}:key/*"

    def logical_id(self, construct: Construct) -> str:
        child = construct.node.default_child
        assert isinstance(child, cdk.CfnElement)
        return str(self.get_logical_id(child))

    def acknowledge(self, finding: str, reason: str) -> None:
        if finding not in self._acknowledged:
            self._acknowledged.add(finding)
            cdk.Validations.of(self).acknowledge(cdk.Acknowledgment(id=finding, reason=reason))

    def acknowledge_findings(self) -> None:
        """cdk-nag AwsSolutions findings accepted on purpose, each with its reason."""
        self.acknowledge(
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "Lambda's basic execution role: only CreateLogGroup, CreateLogStream and "
            "PutLogEvents, for the function's own logs")
        self.acknowledge(
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray trace upload (xray:PutTraceSegments, PutTelemetryRecords) and the state "
            "machine's CloudWatch Logs delivery actions support no resource-level permissions")
        self.acknowledge(
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
            "publishing to the topic encrypted with the AWS-managed key alias/aws/sns needs"
            " GenerateDataKey on that key, whose id is unknown at synth time; its key policy"
            " admits only SNS on the account's behalf")
        self.acknowledge(
            f"AwsSolutions-IAM5[Resource::{self.kms_keys_arn()}]",
            "the same grant: the AWS-managed SNS key of this account and region, by alias")
        self.acknowledge(
            "AwsSolutions-L1",
            "python3.12 on purpose: the bundled PyAV (av 18.1, abi3) and numpy wheels are the "
            "ones tested; moving the runtime is a deliberate upgrade, not a default")
        self.acknowledge(
            "AwsSolutions-S1",
            "the access-log bucket itself: logging it into itself would loop")
        self.acknowledge(
            "AwsSolutions-SQS3",
            "the queue is itself the dead-letter destination of the ingest function")
