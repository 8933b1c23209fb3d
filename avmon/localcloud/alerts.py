"""Every message the deployed pipeline publishes to its SNS topic, as a subscriber sees it.

An SQS queue is subscribed to the topic (what an operator's alert consumer would do on AWS), so
moto delivers each Publish to it; ``drain`` reads them back in publish order. A message in the
one event schema (``avmon.events``) comes back as that event; any other as its subject and raw
body, so nothing published is hidden.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from avmon.errors import ConfigError
from avmon.events import DefectEvent

if TYPE_CHECKING:
    from avmon.localcloud.deploy import LocalCloud

QUEUE = "avmon-simulate-alerts"


class AlertTap:
    """An SQS queue subscribed to the deployment's topic. Made once per deployment."""

    def __init__(self, cloud: LocalCloud) -> None:
        assert cloud.deployment is not None
        self._sqs = cloud.client("sqs")
        self._url = self._sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        cloud.client("sns").subscribe(TopicArn=cloud.deployment.topic_arn, Protocol="sqs",
                                      Endpoint=arn)

    def drain(self) -> list[dict[str, Any]]:
        """Every message delivered since the last drain, oldest first, each parsed by
        ``alert``; they are deleted from the queue."""
        envelopes: list[dict[str, Any]] = []
        while True:
            got = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=0).get("Messages", [])
            if not got:
                break
            for m in got:
                envelopes.append(json.loads(m["Body"]))
            self._sqs.delete_message_batch(QueueUrl=self._url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        # a standard queue does not promise order; SNS stamps each message when published
        envelopes.sort(key=lambda e: str(e.get("Timestamp", "")))
        return [alert(str(e.get("Subject") or ""), str(e.get("Message", ""))) for e in envelopes]


def alert(subject: str, message: str) -> dict[str, Any]:
    """One published message: the event itself if it is one in the event schema, else
    ``{"subject": ..., "raw": ...}`` (the body parsed as JSON where it is JSON)."""
    try:
        body: Any = json.loads(message)
    except ValueError:
        return {"subject": subject, "raw": message}
    if isinstance(body, dict) and "event" in body:
        try:
            return DefectEvent.from_dict(body).to_dict()
        except ConfigError:
            pass
    return {"subject": subject, "raw": body}
