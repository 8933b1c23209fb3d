"""The cost and quota models against cases worked out by hand."""

from __future__ import annotations

import pytest

from avmon.economics.designs import ORIGINAL, SINGLE, TUNED, compare
from avmon.economics.prices import PriceTable, TaskSize, serverless_cost, single_process_cost, total
from avmon.economics.quotas import (
    Bucket,
    Demand,
    capacities,
    describe_binding,
    load_quotas,
    scaling_wall,
)
from avmon.errors import ConfigError
from avmon.usage import Usage

# One minute of media: 30 executions of 15 states, 1,800 PUTs, 6,000 GETs, 240 invocations
USAGE = {
    "executions": 30, "state_transitions": 450,
    "requests": {"s3": {"PutObject": 1800, "GetObject": 6000}, "sns": {"Publish": 6},
                 "lambda": {"Invoke": 240}, "sfn": {"StartExecution": 30}},
    "bytes": {"s3_put": 365_000_000},
    "lambda": {
        "Converter": {"invocations": 30, "billed_ms": 15_000, "memory_mb": 2048,
                      "gb_seconds": 30.0},
        "FreezeDetector": {"invocations": 180, "billed_ms": 18_000, "memory_mb": 1024,
                           "gb_seconds": 18.0},
        "Aggregator": {"invocations": 30, "billed_ms": 600, "memory_mb": 512,
                       "gb_seconds": 0.3},
    },
}


@pytest.fixture
def prices() -> PriceTable:
    return PriceTable.load("us-east-1")


def test_every_price_line_is_dated_and_sourced(prices):
    for name, p in prices.items.items():
        assert p.source and p.checked.startswith("2026"), name
    assert prices["sfn_standard_transition"].unit_price == pytest.approx(0.000025)
    assert PriceTable.load("us-west-2")["s3_tier1_request"].unit_price == pytest.approx(5e-6)


def test_standard_workflow_cost_by_hand(prices):
    items = {i.name: i for i in serverless_cost(Usage.from_dict(USAGE), 60.0, prices)}
    # x60 to an hour: 27,000 transitions x $0.025/1000 = $0.675
    assert items["Step Functions state transitions"].usd == pytest.approx(0.675)
    # 108,000 PUTs x $0.005/1000 = $0.54; 360,000 GETs x $0.0004/1000 = $0.144
    assert items["S3 Tier-1 requests (PUT, LIST)"].usd == pytest.approx(0.54)
    assert items["S3 Tier-2 requests (GET)"].usd == pytest.approx(0.144)
    # 14,400 invocations x $0.20/1M; 48.3 GB-s x 60 x $0.0000166667
    assert items["Lambda requests"].usd == pytest.approx(0.00288)
    assert items["Lambda GB-s"].usd == pytest.approx(2898 * 0.0000166667)
    # 21.9 GB written an hour, kept 1 day of a 30.42-day month, x $0.023
    assert items["S3 storage"].usd == pytest.approx(21.9 / (730 / 24) * 0.023)
    assert items["SNS publishes"].usd == pytest.approx(360 * 0.5e-6)


def test_express_workflow_bills_requests_and_critical_path(prices):
    items = {i.name: i for i in serverless_cost(Usage.from_dict(USAGE), 60.0, prices, "EXPRESS")}
    assert "Step Functions state transitions" not in items
    assert items["Step Functions Express requests"].usd == pytest.approx(1800 * 1e-6)
    # per execution 0.5 s converter + 0.6 s slowest detector + 0.02 s aggregator -> 1.2 s
    assert items["Step Functions Express GB-s"].quantity == pytest.approx(1800 * 1.2 * 0.064)


def test_task_sizing_takes_the_tighter_of_cpu_and_memory(prices):
    task = TaskSize(vcpu=2, memory_gb=4, target_cpu=0.7, memory_reserve=0.1)
    assert task.streams(0.02, 75) == min(70, 49)  # 1.4 / 0.02 = 70; 3686.4 / 75 = 49
    items, n = single_process_cost(0.02, 75, prices, task)
    assert n == 49
    assert total(items) == pytest.approx((2 * 0.04048 + 4 * 0.004445) / 49)
    with pytest.raises(ConfigError):
        task.streams(0, 75)
    # the process's own memory is paid once per task: (3686.4 - 100) / 30 = 119 -> CPU binds
    assert task.holds(0.02, 30, base_mb=100) == (70, "cpu")
    assert task.holds(0.001, 30, base_mb=100) == (119, "memory")


def test_demand_and_capacities_by_hand():
    d = Demand.from_usage(Usage.from_dict(USAGE), 60.0)
    assert (d.transitions, d.executions) == (7.5, 0.5)
    assert d.concurrency == pytest.approx(33.6 / 60)
    caps = capacities(d, load_quotas("2023"))
    assert caps["sfn_transitions"] == pytest.approx(1500 / 7.5)   # 200 streams
    assert caps["sfn_start_execution"] == pytest.approx(300 / 0.5)
    assert caps["lambda_concurrency"] == pytest.approx(1000 / (33.6 / 60))
    assert capacities(d, load_quotas("current"))["sfn_transitions"] == pytest.approx(5000 / 7.5)


def test_wall_ramp_finds_the_binding_quota_and_backlog():
    d = Demand.from_usage(Usage.from_dict(USAGE), 60.0)
    wall = scaling_wall(d, load_quotas("2023"), expected_streams=3000)
    assert wall.binding_quota == {"quota": "sfn_transitions", "streams": 200,
                                  "of_expected": pytest.approx(200 / 3000, abs=1e-4)}
    assert 190 <= wall.sustained_streams <= 200.5
    assert wall.fraction_of_expected == pytest.approx(wall.sustained_streams / 3000)
    last = wall.timeline[-1]
    assert last["served"] == pytest.approx(200, rel=0.01)
    assert last["backlog"] > 0
    assert last["delay_s"] > 60


def test_no_binding_quota_below_the_expected_load():
    d = Demand.from_usage(Usage.from_dict(USAGE), 60.0)
    wall = scaling_wall(d, load_quotas("2023"), expected_streams=100)
    assert wall.sustained_streams == pytest.approx(100)
    # the quota that would bind first is still named, with the streams it allows (2x expected)
    assert wall.binding_quota == {"quota": "sfn_transitions", "streams": 200, "of_expected": 2.0}
    assert describe_binding(wall.binding_quota) == "sfn_transitions at 200 (200.0%)"


def test_no_shared_quota_is_said_so():
    wall = scaling_wall(Demand(workflow_type="NONE"), load_quotas("2023"), 3000)
    assert wall.binding_quota["quota"] is None and wall.binding_quota["streams"] is None
    assert describe_binding(wall.binding_quota) == "none (scales by tasks)"


def test_token_bucket():
    b = Bucket(capacity=10, rate=3)
    assert b.take(8) == 8
    b.refill()
    assert b.tokens == 5
    assert b.take(9) == 5
    b.refill(10)
    assert b.tokens == 10


def test_comparison_ratios_come_from_the_same_run(prices):
    runs = {
        ORIGINAL: {"report": {"duration_s": 60, "defects": []}, "usage": USAGE, "config": {}},
        TUNED: {"report": {"duration_s": 60, "defects": []}, "usage": USAGE,
                "config": {"workflow_type": "EXPRESS"}},
        SINGLE: {"report": {"duration_s": 60, "defects": []},
                 "usage": {"cpu_per_stream_second": 0.02, "peak_mb": 75}},
    }
    result = compare(runs, prices, load_quotas("2023"), "2023", 3000)
    d = result["designs"]
    for name in d:
        assert d[name]["cost_ratio_to_original"] == pytest.approx(
            d[name]["usd_per_stream_hour"] / d[ORIGINAL]["usd_per_stream_hour"], rel=1e-3)
    assert d[SINGLE]["cost_ratio_to_original"] < 0.1
    assert d[SINGLE]["sustained_streams"] == 3000
    assert result["defects_identical"] and result["defect_differences"] == []
    assert result["prices_checked"].startswith("2026")
    assert result["quota_set"]["checked"]


def _defect(detector, start, end):
    return {"detector": detector, "start_s": start, "end_s": end, "confidence": 1.0,
            "details": {}}


def test_designs_that_disagree_are_named_with_the_detector_and_why(prices):
    single = [_defect("freeze", 3.0, 5.0), _defect("av_sync", 19.0, 28.0)]
    tuned = [_defect("freeze", 3.0, 5.0), _defect("av_sync", 18.9, 27.3),
             _defect("black", 7.0, 8.0)]
    runs = {
        TUNED: {"report": {"duration_s": 60, "defects": tuned}, "usage": USAGE,
                "config": {"workflow_type": "EXPRESS"}},
        SINGLE: {"report": {"duration_s": 60, "defects": single},
                 "usage": {"cpu_per_stream_second": 0.02, "peak_mb": 75}},
    }
    result = compare(runs, prices, load_quotas("2023"), "2023", 3000)
    assert not result["defects_identical"]
    lines = result["defect_differences"]
    assert len(lines) == 2
    assert lines[0].startswith("serverless-tuned: av_sync 19.00-28.00 s (found by single-process)")
    assert "ends 0.70 s apart, beyond the 0.5 s tolerance" in lines[0]
    assert lines[1] == ("serverless-tuned: black 7.00-8.00 s found only by serverless-tuned,"
                        " not by single-process")


def test_unknown_region_is_refused():
    with pytest.raises(ConfigError, match="no prices for region 'mars-1'"):
        PriceTable.load("mars-1")


def test_unknown_quota_table_is_refused():
    with pytest.raises(ConfigError, match="cannot read quotas"):
        load_quotas("1999")
