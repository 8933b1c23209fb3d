"""A stream of many segments through the local simulation: executions run at most N at once,
threads stay bounded, and no segment's working objects outlive its aggregation."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize
from avmon.localcloud.deploy import LocalCloud
from avmon.localcloud.simulate import simulate
from avmon.pipeline import keys

pytestmark = pytest.mark.functional
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
LIMIT = 2
WORKING = (keys.SEGMENTS, keys.FRAMES, keys.AUDIO, keys.RESULTS)


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant (one ending as another starts: not both)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                   key=lambda e: (e[0], e[1]))
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_many_segments_run_at_most_n_at_once_and_leave_no_working_objects(
        tmp_path: Path) -> None:
    clip = tmp_path / "many.mp4"
    # six 2 s segments: all six executions would run at once unbounded
    synthesize(SynthRequest(clip, 12, tuple(parse_defects("black@5:1")), 160, 96, seed=4))
    threads: list[int] = []

    def progress(done: int, total: int, running: int) -> None:
        threads.append(threading.active_count())

    with LocalCloud(max_executions=LIMIT, keep_histories=True) as cloud:
        before = threading.active_count()
        result = simulate(clip, cloud=cloud, progress=progress)
        spans = []
        for e in cloud.executions():
            events = cloud.history(e["executionArn"])
            assert events[0]["type"] == "ExecutionStarted"
            assert events[-1]["type"] == "ExecutionSucceeded"
            spans.append((events[0]["timestamp"], events[-1]["timestamp"]))
        left = cloud.object_keys()

    segments = result.usage["executions"]
    assert segments > 2 * LIMIT and result.failed_segments == []
    assert [d["detector"] for d in result.report["defects"]] == ["black"]
    # StartExecution counted once each, though most executions waited for a slot
    assert result.usage["requests"]["sfn"]["StartExecution"] == segments
    assert result.usage["state_transitions"] == segments * 15
    # the interpreter's own timestamps: never more than LIMIT executions between start and end
    assert most_at_once(spans) == LIMIT == result.local["peak_executions"]
    # moto's interpreter runs about 40 threads per execution (a Parallel of 6 branches, each a Map
    # with its iteration, every state with its timeout thread): bounded by LIMIT executions,
    # not by the stream's length
    assert max(threads) - before <= 45 * LIMIT < 40 * segments
    # only what `avmon report` reads is left: the upload, the run record, the segment reports
    assert not [k for k in left if k.startswith(WORKING)]
    assert sorted(k for k in left if k.startswith(keys.REPORTS)) == \
        [keys.report("many.mp4", result.run, n) for n in range(segments)]
    expired = result.local["expired"]
    assert expired["by_prefix"]["segments/"] == segments
    assert expired["by_prefix"]["frames/"] == result.report["video"]["frames"]
    assert expired["by_prefix"]["results/"] == 6 * segments
    # every object the pipeline PUT is either still stored or was expired: nothing uncounted
    puts = result.usage["requests"]["s3"]["PutObject"]
    assert puts == expired["objects"] + sum(1 for k in left if not k.startswith("ingest/"))


def test_without_histories_an_ended_execution_keeps_its_record(tmp_path: Path) -> None:
    """... and the handlers' metrics, switched on, add up to what the meter counted."""
    clip = tmp_path / "short.mp4"
    synthesize(SynthRequest(clip, 2, (), 160, 96, seed=5))
    with LocalCloud(max_executions=1) as cloud:
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "false"  # the cloud restores it on exit
        result = simulate(clip, cloud=cloud)
        (e,) = cloud.executions()
        assert e["status"] == "SUCCEEDED"
        assert cloud.history(e["executionArn"]) == []  # dropped once counted
        assert cloud.transitions(e["executionArn"]) == 15 == result.usage["state_transitions"]
        published: Counter[str] = Counter()
        for invocation in cloud.invoker.invocations:
            for line in invocation.logs.splitlines():
                record = json.loads(line) if line.startswith("{") else {}
                for m in record.get("_aws", {}).get("CloudWatchMetrics", [{}])[0].get(
                        "Metrics", []):
                    value = record[m["Name"]]
                    published[m["Name"]] += sum(value) if isinstance(value, list) else value
        assert dict(published) == cloud.meter.metrics()
        assert published["lambda.Invoke"] == 9  # ingest, converter, six detectors, aggregator
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker
    assert ExecutionWorker.start.__module__.startswith("moto")  # moto's own start is back


