"""AWS adapters of the live service: events to an SNS topic, one message per event.

The message is the event's JSON (the same schema the serverless pipeline publishes), with
message attributes ``stream``, ``detector`` and ``event`` so subscriptions can filter. On a FIFO
topic the event id is the deduplication id and the stream the message group (order per stream).
"""

from __future__ import annotations

import re
from typing import Any

from avmon.events import DefectEvent
from avmon.monitor.sinks import Deliver, RejectedEventError


def sns_message(topic_arn: str, event: DefectEvent) -> dict[str, Any]:
    """The keyword arguments of ``sns.publish`` for one event."""
    attrs = {k: {"DataType": "String", "StringValue": v}
             for k, v in (("stream", event.stream), ("detector", event.detector),
                          ("event", event.event))}
    message: dict[str, Any] = {"TopicArn": topic_arn, "Message": event.to_json_line(),
                               "MessageAttributes": attrs}
    if topic_arn.endswith(".fifo"):
        message["MessageGroupId"] = re.sub(r"[^A-Za-z0-9_-]", "_", event.stream)[:128]
        message["MessageDeduplicationId"] = re.sub(r"[^A-Za-z0-9_.-]", "_", event.id)[-128:]
    return message


def sns_deliverer(topic_arn: str, client: Any = None) -> Deliver:
    """Publish each event to ``topic_arn``. A malformed message is a rejection; anything else
    (throttling, network, a topic or permission not there yet) is raised for the spool to retry.
    """
    if client is None:
        import boto3

        client = boto3.client("sns", region_name=_region(topic_arn))

    def deliver(event: DefectEvent) -> None:
        from botocore.exceptions import ClientError

        try:
            client.publish(**sns_message(topic_arn, event))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("InvalidParameter", "InvalidParameterValue"):
                raise RejectedEventError(f"{topic_arn}: {code}") from None
            raise

    return deliver


def _region(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None
