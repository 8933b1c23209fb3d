"""Stream leases on DynamoDB (moto): two tasks share streams; one dies; the other takes over."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from avmon.errors import MissingResourceError
from avmon.monitor.aws_leases import DynamoLeaseStore
from avmon.monitor.leases import Lease, LeaseManager

pytestmark = pytest.mark.functional
STREAMS = [f"live-{i}" for i in range(5)]


@pytest.fixture
def aws_credentials(monkeypatch):
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def client(aws_credentials):
    with mock_aws():
        c = boto3.client("dynamodb")
        c.create_table(TableName="leases", BillingMode="PAY_PER_REQUEST",
                       KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
                       AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}])
        yield c


class Clock:
    now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_conditional_writes_on_the_table(client):
    store = DynamoLeaseStore("leases", client)
    assert store.write(Lease("live-0", "a", 5.0, 1), None)
    assert not store.write(Lease("live-0", "b", 5.0, 1), None)
    assert not store.write(Lease("live-0", "b", 5.0, 2), 3)
    assert store.write(Lease("live-0", "b", 5.0, 2), 1)
    (row,) = store.scan()
    assert (row.owner, row.version) == ("b", 2)
    assert not store.delete("live-0", 1) and store.delete("live-0", 2)


def test_two_tasks_share_streams_and_the_survivor_takes_over(client):
    clock = Clock()
    a = LeaseManager(DynamoLeaseStore("leases", client), "task-a", STREAMS, lease_s=6, clock=clock)
    b = LeaseManager(DynamoLeaseStore("leases", client), "task-b", STREAMS, lease_s=6, clock=clock)
    for _ in range(3):
        held_a, held_b = a.tick(), b.tick()
        assert not held_a & held_b
        clock.now += 2
    assert held_a | held_b == set(STREAMS) and held_a and held_b
    died_at = clock.now  # task-a stops renewing
    while b.tick() != set(STREAMS):
        assert clock.now - died_at <= 6 + 2, "not taken over within a lease period"
        clock.now += 2
    items = client.scan(TableName="leases", ConsistentRead=True)["Items"]
    owners = {i["key"]["S"]: i["owner"]["S"] for i in items
              if not i["key"]["S"].startswith("task#")}
    assert owners == dict.fromkeys(STREAMS, "task-b")
    assert a.tick() == set()  # task-a comes back: its renewals fail, it monitors nothing


def test_a_missing_table_is_one_clear_error(client):
    with pytest.raises(MissingResourceError, match="no-such-table"):
        DynamoLeaseStore("no-such-table", client).scan()
    with pytest.raises(ClientError) as exc:
        client.describe_table(TableName="no-such-table")
    assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
