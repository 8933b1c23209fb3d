"""The lease table on DynamoDB: the LeaseStore port of ``avmon.monitor.leases``.

One item per stream (and per task heartbeat), partition key ``key``; every write is a
``PutItem``/``DeleteItem`` with a ``ConditionExpression`` on ``version``, so the table itself
decides who wins a race. On-demand capacity: a task writes about ``(its streams + 1) * 3`` items
per lease period.
"""

from __future__ import annotations

from typing import Any

from avmon.errors import MissingResourceError
from avmon.monitor.leases import Lease

KEY = "key"


class DynamoLeaseStore:
    """LeaseStore on a DynamoDB table whose partition key is ``key`` (a string).

    Raises MissingResourceError if the table does not exist; other AWS errors propagate.
    """

    def __init__(self, table: str, client: Any = None) -> None:
        if client is None:
            import boto3
            client = boto3.client("dynamodb")
        self.table, self.client = table, client

    def scan(self) -> list[Lease]:
        out: list[Lease] = []
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self._call("scan", **kwargs)
            out += [Lease(key=i[KEY]["S"], owner=i["owner"]["S"],
                          expires_at=float(i["expires_at"]["N"]), version=int(i["version"]["N"]))
                    for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def write(self, lease: Lease, expected_version: int | None) -> bool:
        item = {KEY: {"S": lease.key}, "owner": {"S": lease.owner},
                "expires_at": {"N": f"{lease.expires_at:.3f}"},
                "version": {"N": str(lease.version)}}
        if expected_version is None:
            return self._conditional("put_item", Item=item,
                                     ConditionExpression="attribute_not_exists(#k)",
                                     ExpressionAttributeNames={"#k": KEY})
        return self._conditional("put_item", Item=item, ConditionExpression="#v = :v",
                                 ExpressionAttributeNames={"#v": "version"},
                                 ExpressionAttributeValues={":v": {"N": str(expected_version)}})

    def delete(self, key: str, expected_version: int) -> bool:
        return self._conditional("delete_item", Key={KEY: {"S": key}},
                                 ConditionExpression="#v = :v",
                                 ExpressionAttributeNames={"#v": "version"},
                                 ExpressionAttributeValues={":v": {"N": str(expected_version)}})

    def _conditional(self, op: str, **kwargs: Any) -> bool:
        from botocore.exceptions import ClientError
        try:
            self._call(op, TableName=self.table, **kwargs)
            return True
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def _call(self, op: str, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError
        try:
            return getattr(self.client, op)(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ResourceNotFoundException":
                raise MissingResourceError(f"lease table {self.table} does not exist") from None
            raise
