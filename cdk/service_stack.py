"""The single-process design as a service: ``avmon serve`` on ECS Fargate, scaled by tasks.

A VPC (private subnets for the tasks, one NAT gateway for their way out to the live origins,
PyPI and the AWS APIs; gateway endpoints keep S3 and DynamoDB traffic off the NAT), a cluster,
one Fargate service whose tasks share the configured streams through leases in a DynamoDB table
(each stream watched by exactly one task; see ``avmon/monitor/leases.py``), CPU target tracking
to add or remove tasks, and the pipeline stack's SNS topic for the events.

The container needs no Docker engine to deploy: a stock Python image downloads avmon's wheel
(an S3 asset built locally, ``cdk/wheel.py``) and the streams file at start, installs them and
runs ``avmon serve``. ``-c avmon_image=dockerfile`` builds the repository's Dockerfile instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from cdk.constants import (
    ROOT,
    SERVICE_BASE_IMAGE,
    SERVICE_EXAMPLE_STREAMS,
    SERVICE_PORT,
)
from cdk.pipeline_stack import PipelineStack
from cdk.wheel import LocalWheelBundling

WHEEL_EXCLUDE = ["*", "!avmon", "!avmon/**", "!pyproject.toml", "!README.md", "**/__pycache__"]

SERVE = ("exec avmon serve --streams /tmp/streams.yaml --port \"$AVMON_PORT\" "
         "--leases \"$AVMON_LEASE_TABLE\" --lease-seconds \"$AVMON_LEASE_SECONDS\"")
# Downloads the wheel and the streams file with the task role, installs, then becomes avmon.
START = (
    "set -e; "
    "pip install --quiet --no-cache-dir boto3==1.44.8; "
    "python -c \"import boto3, os; s3 = boto3.client('s3'); "
    "s3.download_file(os.environ['AVMON_WHEEL_BUCKET'], os.environ['AVMON_WHEEL_KEY'], "
    "'/tmp/avmon.zip'); "
    "s3.download_file(os.environ['AVMON_STREAMS_BUCKET'], os.environ['AVMON_STREAMS_KEY'], "
    "'/tmp/streams.yaml')\"; "
    "python -m zipfile -e /tmp/avmon.zip /tmp/avmon; "
    "pip install --quiet --no-cache-dir -r /tmp/avmon/requirements.txt; "
    "pip install --quiet --no-cache-dir --no-deps /tmp/avmon/*.whl; "
    + SERVE
)
HEALTH = ("python -c \"import urllib.request, os; urllib.request.urlopen("
          "'http://127.0.0.1:' + os.environ['AVMON_PORT'] + '/healthz', timeout=3)\"")


class ServiceStack(cdk.Stack):  # type: ignore[misc]  # aws_cdk is not analysed (pyproject)
    def __init__(self, scope: Construct, construct_id: str, *, topic: sns.ITopic,
                 streams_file: Path = SERVICE_EXAMPLE_STREAMS, image: str = "registry",
                 cpu: int = 2048, memory_mib: int = 4096, max_tasks: int = 10,
                 lease_s: int = 30, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.vpc = ec2.Vpc(
            self, "Vpc", max_azs=2, nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC,
                                        cidr_mask=24),
                ec2.SubnetConfiguration(name="tasks",
                                        subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS,
                                        cidr_mask=22),
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(
                    service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        flow_logs = logs.LogGroup(self, "FlowLogs", retention=logs.RetentionDays.ONE_MONTH,
                                  removal_policy=cdk.RemovalPolicy.DESTROY)
        self.vpc.add_flow_log("FlowLog",
                              destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))

        self.leases = dynamodb.Table(
            self, "Leases",
            partition_key=dynamodb.Attribute(name="key", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

        self.cluster = ecs.Cluster(self, "Cluster", vpc=self.vpc,
                                   container_insights_v2=ecs.ContainerInsights.ENABLED)
        task = ecs.FargateTaskDefinition(
            self, "Task", cpu=cpu, memory_limit_mib=memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX),
        )
        log_group = logs.LogGroup(self, "ServiceLogs", retention=logs.RetentionDays.ONE_MONTH,
                                  removal_policy=cdk.RemovalPolicy.DESTROY)
        streams = s3_assets.Asset(self, "Streams", path=str(streams_file))
        readable = [streams]
        env = {"AVMON_PORT": str(SERVICE_PORT),
               "AVMON_LEASE_TABLE": self.leases.table_name,
               "AVMON_LEASE_SECONDS": str(lease_s),
               "AVMON_TOPIC_ARN": topic.topic_arn,
               "AVMON_STREAMS_BUCKET": streams.s3_bucket_name,
               "AVMON_STREAMS_KEY": streams.s3_object_key}
        if image == "dockerfile":
            container_image = ecs.ContainerImage.from_asset(str(ROOT))
            command = ["python -c \"import boto3, os; boto3.client('s3')"
                       ".download_file(os.environ['AVMON_STREAMS_BUCKET'], "
                       "os.environ['AVMON_STREAMS_KEY'], '/tmp/streams.yaml')\" && " + SERVE]
        else:
            wheel = s3_assets.Asset(
                self, "Wheel", path=str(ROOT), exclude=WHEEL_EXCLUDE,
                bundling=cdk.BundlingOptions(
                    image=cdk.DockerImage.from_registry(SERVICE_BASE_IMAGE),
                    local=LocalWheelBundling()),
            )
            readable.append(wheel)
            env |= {"AVMON_WHEEL_BUCKET": wheel.s3_bucket_name,
                    "AVMON_WHEEL_KEY": wheel.s3_object_key}
            container_image = ecs.ContainerImage.from_registry(SERVICE_BASE_IMAGE)
            command = [START]
        task.add_container(
            "avmon", image=container_image, entry_point=["sh", "-c"], command=command,
            environment=env,
            logging=ecs.LogDrivers.aws_logs(stream_prefix="avmon", log_group=log_group),
            port_mappings=[ecs.PortMapping(container_port=SERVICE_PORT)],
            health_check=ecs.HealthCheck(command=["CMD-SHELL", HEALTH],
                                         start_period=cdk.Duration.seconds(180)),
            stop_timeout=cdk.Duration.seconds(30),
        )
        # the task reads exactly its assets' objects (grant_read would open the asset bucket)
        task.task_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[a.bucket.arn_for_objects(a.s3_object_key) for a in readable]))
        # the lease protocol needs exactly these three calls on exactly this table
        task.task_role.add_to_principal_policy(iam.PolicyStatement(
            actions=["dynamodb:Scan", "dynamodb:PutItem", "dynamodb:DeleteItem"],
            resources=[self.leases.table_arn]))
        topic.grant_publish(task.task_role)

        self.service = ecs.FargateService(
            self, "Service", cluster=self.cluster, task_definition=task, desired_count=1,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            assign_public_ip=False, min_healthy_percent=100, max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(rollback=True),
        )
        scaling = self.service.auto_scale_task_count(min_capacity=1, max_capacity=max_tasks)
        scaling.scale_on_cpu_utilization(
            "Cpu", target_utilization_percent=70,
            scale_in_cooldown=cdk.Duration.minutes(5), scale_out_cooldown=cdk.Duration.minutes(1))

        cdk.CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)
        cdk.CfnOutput(self, "ServiceName", value=self.service.service_name)
        cdk.CfnOutput(self, "LeaseTableName", value=self.leases.table_name)
        self.acknowledge_findings()

    def acknowledge_findings(self) -> None:
        """cdk-nag AwsSolutions findings accepted on purpose, each with its reason."""
        ack = cdk.Validations.of(self)
        # the pipeline's helper names the account's KMS keys as cdk-nag prints them
        kms_keys = PipelineStack.kms_keys_arn(self)
        for finding, reason in {
            "AwsSolutions-ECS2":
                "the environment holds names only (ports, table, topic, asset locations), no "
                "secrets: the task role grants access",
            "AwsSolutions-IAM5[Action::kms:GenerateDataKey*]":
                "publishing to the pipeline's topic, encrypted with the AWS-managed key "
                "alias/aws/sns, needs GenerateDataKey on that key, whose id is unknown at synth "
                "time; its key policy admits only SNS on the account's behalf",
            f"AwsSolutions-IAM5[Resource::{kms_keys}]":
                "the same grant: the AWS-managed SNS key of this account and region, by alias",
        }.items():
            ack.acknowledge(cdk.Acknowledgment(id=finding, reason=reason))
