"""DynamoDB request units from item sizes, as the DynamoDB Developer Guide counts them, and the
cost model's DynamoDB lines."""

from __future__ import annotations

import pytest

from avmon.economics.prices import PriceTable, serverless_cost, total
from avmon.pipeline.metering import DynamoUnits, item_size, read_units, value_size, write_units
from avmon.usage import Usage
from tests.unit.test_cost_and_limits import USAGE


def test_item_size_is_names_plus_values() -> None:
    # "stream" 6 + "s1.mp4" 6; "run" 3 + "r" 1; "version" 7 + 12 (2 digits: 1 + 1)
    assert item_size({"stream": {"S": "s1.mp4"}, "run": {"S": "r"},
                      "version": {"N": "12"}}) == 12 + 4 + 9
    assert item_size({"é": {"S": "ü"}}) == 4  # UTF-8 bytes, not characters
    # numbers: 1 byte per two significant digits + 1, leading and trailing zeros dropped
    assert value_size({"N": "1234567"}) == 5
    assert value_size({"N": "0.00120"}) == 2
    assert value_size({"N": "1764500000"}) == value_size({"N": "17645"}) == 4
    assert value_size({"BOOL": True}) == value_size({"NULL": True}) == 1
    assert value_size({"B": b"\x00" * 10}) == 10  # raw bytes, not base64
    # a list or map: 3 bytes, plus 1 per element (and a map element's name)
    assert value_size({"L": [{"S": "ab"}, {"N": "1"}]}) == 3 + (1 + 2) + (1 + 2)
    assert value_size({"M": {"k": {"S": "abc"}}}) == 3 + 1 + 1 + 3
    with pytest.raises(ValueError, match="not a DynamoDB attribute value"):
        value_size({"X": 1})


def test_write_units_round_up_to_1_kb_and_read_units_to_4_kb() -> None:
    assert [write_units(n) for n in (0, 1, 1024, 1025, 2048, 2049)] == [1, 1, 1, 2, 2, 3]
    assert [read_units(n, True) for n in (0, 4096, 4097, 8192, 8193)] == [1, 1, 2, 2, 3]
    assert [read_units(n, False) for n in (0, 4096, 4097, 8193)] == [0.5, 0.5, 1, 1.5]


def _item(stream: str, version: int, state: str) -> dict[str, dict[str, str]]:
    return {"stream": {"S": stream}, "run": {"S": "r"}, "version": {"N": str(version)},
            "state": {"S": state}}


def test_units_of_the_state_tables_calls() -> None:
    units = DynamoUnits()
    key = {"stream": {"S": "a"}, "run": {"S": "r"}}
    # a strongly consistent read of an item not there yet: the minimum, one unit
    units.call("GetItem", {"TableName": "t", "Key": key, "ConsistentRead": True}, {})
    small, big = _item("a", 1, "x" * 900), _item("a", 2, "x" * 3000)
    assert item_size(small) < 1024 < 2048 < item_size(big) < 3072
    units.call("PutItem", {"TableName": "t", "Item": small}, {})
    units.call("PutItem", {"TableName": "t", "Item": big}, {})
    assert (units.read, units.write) == (1.0, 1 + 3)
    # a smaller item replacing a bigger one is billed at the bigger one
    units.call("GetItem", {"TableName": "t", "Key": key, "ConsistentRead": True},
               {"Item": big})
    third = _item("a", 3, "y" * 900)
    units.call("PutItem", {"TableName": "t", "Item": third}, {})
    assert (units.read, units.write) == (2.0, 4 + 3)
    # a failed condition is billed at the item that stays; a throttled call is not billed
    units.call("PutItem", {"TableName": "t", "Item": big},
               {"Error": {"Code": "ConditionalCheckFailedException"}})
    units.call("PutItem", {"TableName": "t", "Item": big},
               {"Error": {"Code": "ProvisionedThroughputExceededException"}})
    assert units.write == 7 + 1
    # eventually consistent: half
    units.call("GetItem", {"TableName": "t", "Key": key}, {"Item": big})
    assert units.read == 2.5
    record = units.to_dict()
    assert record["item_bytes_read"] == 2 * item_size(big)
    assert record["item_bytes_written"] == item_size(small) + item_size(big) + item_size(third)
    units.reset()
    assert (units.read, units.write) == (0.0, 0)


# one minute of media (USAGE) with the stream state: 30 reads, 40 writes of 70 units
WITH_STATE = {**USAGE, "requests": {**USAGE["requests"],
                                    "dynamodb": {"GetItem": 30, "PutItem": 40}},
              "dynamodb": {"read_units": 30.0, "write_units": 70,
                           "item_bytes_read": 27_000, "item_bytes_written": 50_000}}


@pytest.fixture
def prices() -> PriceTable:
    return PriceTable.load("us-east-1")


def test_dynamodb_prices_are_per_request_unit(prices: PriceTable) -> None:
    for region in ("us-east-1", "us-west-2"):
        table = PriceTable.load(region)
        write, read = table["dynamodb_write_request_unit"], table["dynamodb_read_request_unit"]
        assert write.unit_price == pytest.approx(0.625e-6)
        assert read.unit_price == pytest.approx(0.125e-6)
        assert "write request units" in write.unit and "read request units" in read.unit
        assert write.source and write.checked.startswith("2026")


def test_cost_total_includes_the_state_table(prices: PriceTable) -> None:
    without = serverless_cost(Usage.from_dict(USAGE), 60.0, prices)
    assert not [i for i in without if i.name.startswith("DynamoDB")]
    items = {i.name: i for i in serverless_cost(Usage.from_dict(WITH_STATE), 60.0, prices)}
    # x60 to an hour: 4,200 WRU x $0.625/1M; 1,800 RRU x $0.125/1M
    assert items["DynamoDB write request units"].quantity == pytest.approx(4200)
    assert items["DynamoDB write request units"].usd == pytest.approx(0.002625)
    assert items["DynamoDB read request units"].usd == pytest.approx(0.000225)
    assert total(list(items.values())) == pytest.approx(total(without) + 0.00285)


def test_a_record_without_units_counts_one_per_request(prices: PriceTable) -> None:
    old = {k: v for k, v in WITH_STATE.items() if k != "dynamodb"}
    usage = Usage.from_dict(old)
    assert (usage.dynamodb_write_units, usage.dynamodb_read_units) == (40, 30)
    assert Usage.from_dict(WITH_STATE).to_dict()["dynamodb"]["write_units"] == 70
