"""checkov's findings accepted on purpose, each with its reason, written into the template.

checkov reads ``Metadata.checkov.skip`` on a resource (``id`` and ``comment``); an aspect adds the
entries below to every resource of the type, so a new resource is covered by the same written
decision and a finding without an entry here fails ``tests/infra/test_checkov.py``.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import jsii
from constructs import IConstruct

ACCEPTED: dict[str, dict[str, str]] = {
    "AWS::Lambda::Function": {
        "CKV_AWS_116": "synchronous invocations by Step Functions (whose Retry and Catch handle"
                       " failures) or by CloudFormation; the asynchronous Ingest has an"
                       " on-failure destination (SQS dead-letter queue) instead of a DLQ",
        "CKV_AWS_117": "the functions call only S3, SNS and Step Functions' public endpoints: a"
                       " VPC would add NAT cost and cold-start time and isolate nothing",
        "CKV_AWS_115": "reserved concurrency is a setting (reserved_concurrency), off by default:"
                       " a new account's whole limit can be 10 and reserving needs 100 left",
        "CKV_AWS_173": "the environment holds resource names, ARNs and the pipeline settings, no"
                       " secrets; Lambda encrypts it at rest with an AWS-managed key",
    },
    "AWS::Logs::LogGroup": {
        "CKV_AWS_158": "logs hold ids, times and counts, never media or personal data;"
                       " CloudWatch Logs encrypts them at rest by default",
    },
    "AWS::S3::Bucket": {
        "CKV_AWS_21": "frames, audio and segments are transient (expired after a day) and a run"
                      " is identified by its upload's ETag and time: versions would only keep"
                      " every frame object twice",
        "CKV_AWS_18": "the access-log bucket itself: logging it into itself would loop; the"
                      " media bucket logs into it",
    },
    "AWS::SQS::Queue": {
        "CKV_AWS_27": "encrypted with SQS-managed keys (SqsManagedSseEnabled), which this check"
                      " does not read",
    },
    "AWS::DynamoDB::Table": {
        "CKV_AWS_119": "stream leases (owner, expiry, version) and the pipeline's stream states"
                       " (segment indices, times, defects announced) are not sensitive:"
                       " encrypted at rest with the AWS-managed key, no customer key to manage",
    },
}


@jsii.implements(cdk.IAspect)
class CheckovAcknowledgements:
    """Adds the accepted findings of each resource's type to its checkov metadata."""

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, cdk.CfnResource):
            return
        accepted = ACCEPTED.get(node.cfn_resource_type)
        if accepted:
            skips: list[dict[str, Any]] = [{"id": i, "comment": c} for i, c in accepted.items()]
            node.add_metadata("checkov", {"skip": skips})
