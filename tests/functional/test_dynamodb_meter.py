"""The simulation's meter counts the stream-state table's request units from the items the
state store really writes and reads (moto's DynamoDB)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from avmon.localcloud.meter import Meter
from avmon.pipeline.ports import DynamoStateStore

pytestmark = pytest.mark.functional
EXPIRES = 1_764_500_000  # 17645 significant: 3 bytes + 1


@pytest.fixture
def metered(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Meter, Any]]:
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        session = boto3.Session()
        meter = Meter()
        meter.attach(session)  # before the client: a client copies the session's hooks
        client = session.client("dynamodb")
        client.create_table(
            TableName="states", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "stream", "KeyType": "HASH"},
                       {"AttributeName": "run", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "stream", "AttributeType": "S"},
                                  {"AttributeName": "run", "AttributeType": "S"}])
        meter.reset()  # the table's creation is the deployment's, not the run's
        yield meter, client


def size(document_json: str, version: int) -> int:
    """The item DynamoStateStore writes for stream "cam", run "live", by hand: each name's bytes
    plus its value's (a number: 1 byte per two significant digits, plus 1)."""
    return ((6 + 3) + (3 + 4) + (7 + (len(str(version)) + 1) // 2 + 1) + (10 + 3 + 1)
            + (5 + len(document_json)))


def test_units_follow_the_items_the_state_store_writes(metered: tuple[Meter, Any]) -> None:
    meter, client = metered
    store = DynamoStateStore("states", client)
    big, small = {"pad": "x" * 2000}, {"a": 1}
    big_size = size('{"pad":"' + "x" * 2000 + '"}', 1)
    small_size = size('{"a":1}', 2)
    assert 2048 < big_size < 3072 and small_size < 1024

    assert store.load("cam", "live") is None                   # not there: 1 RRU
    assert store.save("cam", "live", big, 0, EXPIRES)          # 3 WRU
    assert store.load("cam", "live") == (big, 1)               # 2 KB, consistent: 1 RRU
    assert store.save("cam", "live", small, 1, EXPIRES)        # replaces 3 KB: 3 WRU
    assert not store.save("cam", "live", big, 1, EXPIRES)      # lost the race: the 51 B stays, 1
    usage = meter.to_dict()
    assert usage["requests"]["dynamodb"] == {"GetItem": 2, "PutItem": 3}
    assert usage["dynamodb"] == {"read_units": 2.0, "write_units": 3 + 3 + 1,
                                 "item_bytes_read": big_size,
                                 "item_bytes_written": big_size + small_size}
    # the units are not among the metrics the handlers publish
    assert not [m for m in meter.metrics() if "unit" in m]
    meter.reset()
    assert meter.to_dict().get("dynamodb") is None
