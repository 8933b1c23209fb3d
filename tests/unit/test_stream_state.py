"""The stream's state across segments (``avmon.pipeline.state``) on fakes, with real media.

One 26 s stream with a freeze, a black, a silence and an A/V offset, each crossing a 2 s segment
boundary, encoded by ``avmon synth`` and cut into HLS segments by the ffmpeg CLI (fixed 2 s GOP,
as a live packager writes them). Each segment is converted and analysed once; the tests replay
the aggregator over those results in different orders, twice, with a failed segment, a lost
race and a failing SNS, and compare the messages with ``avmon analyze`` on the same stream.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from avmon.detectors.registry import NAMES
from avmon.errors import StorageThrottledError
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize
from avmon.events import DefectEvent, parse_utc
from avmon.media.decode import MediaReader
from avmon.model import Defect
from avmon.monitor.analysis import analyze
from avmon.pipeline import keys
from avmon.pipeline.config import PipelineConfig
from avmon.pipeline.contracts import (
    AggregateTask,
    DetectorTask,
    RunRecord,
    SegmentFailure,
    SegmentJob,
)
from avmon.pipeline.ports import DynamoStateStore, SnsNotifier
from avmon.pipeline.steps import (
    StateSettings,
    Upload,
    aggregate,
    convert,
    detect,
    ingest,
    ingest_playlist,
    record_failure,
)
from tests.fakes import FakeNotifier, FakeStarter, FakeStateStore, FakeStore

CONFIG = PipelineConfig()
# each crosses a segment boundary of the 2 s grid the stream's first picture starts
DEFECTS = "freeze@1.2:1.5,black@3.5:1,silence@5.4:1.5,av_sync@9:7=+200ms"
FRAME_S = 1 / 25


@dataclass
class Stream:
    store: FakeStore
    tasks: dict[int, AggregateTask]            # segment -> the aggregator's input
    utc: dict[int, str]                        # segment -> its EXT-X-PROGRAM-DATE-TIME
    single: dict[str, Defect]                  # analyze on the whole stream, stream clock
    jobs: dict[int, SegmentJob] = field(default_factory=dict)


def hls(source: Path, out: Path) -> list[Path]:
    """``source`` as a live packager writes it: 2 s segments on a fixed GOP, and a playlist
    with EXT-X-PROGRAM-DATE-TIME (the ffmpeg CLI's HLS muxer)."""
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(source), "-c:v", "libx264", "-preset",
                    "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
                    "-c:a", "copy", "-f", "hls", "-hls_time", "2", "-hls_list_size", "0",
                    "-hls_flags", "program_date_time",
                    "-hls_segment_filename", str(out / "cam_%05d.ts"), str(out / "live.m3u8")],
                   check=True)
    return sorted(out.glob("cam_*.ts"))


def single_on_stream_clock(playlist: Path, whole: Path) -> dict[str, Defect]:
    """``avmon analyze`` on the stream of ``playlist`` as one file, its times moved to the
    stream's clock (analyze counts from the first timestamp; the pipeline reports PTS)."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(playlist), "-c", "copy",
                    str(whole)], check=True)
    with MediaReader(whole) as reader:
        origin = reader.origin
    return {x.detector: Defect(x.detector, x.start_s + origin, x.end_s + origin, x.confidence,
                               x.details) for x in analyze(whole).report.defects}


def program_date_times(playlist: Path) -> list[str]:
    return re.findall(r"#EXT-X-PROGRAM-DATE-TIME:(\S+)", playlist.read_text())


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Stream:
    d = tmp_path_factory.mktemp("state")
    synthesize(SynthRequest(d / "src.ts", 26, tuple(parse_defects(DEFECTS)), 160, 96, seed=7))
    segments = hls(d / "src.ts", d)
    single = single_on_stream_clock(d / "live.m3u8", d / "whole.ts")
    store, starter = FakeStore(), FakeStarter()
    for n, path in enumerate(segments):
        key = f"ingest/cam/{n:06d}.ts"
        data = path.read_bytes()
        store.objects[key] = data
        ingest(store, starter, Upload(key, hashlib.md5(data).hexdigest(),
                                      "2026-11-30T01:00:00Z"), CONFIG)
    out = Stream(store, {}, dict(enumerate(program_date_times(d / "live.m3u8"))), single)
    for payload in starter.executions.values():
        job = SegmentJob.from_event(payload)
        manifest = convert(store, job, CONFIG)
        results = [[detect(store, n, DetectorTask(manifest=manifest, batch=b)).to_dict()
                    for b in manifest.batches] for n in NAMES]
        out.jobs[job.segment] = job
        out.tasks[job.segment] = AggregateTask.model_validate(
            {"manifest": manifest.to_dict(), "results": results})
    return out


def as_run(task: AggregateTask, run: str, **job: Any) -> AggregateTask:
    j = task.manifest.job.model_copy(update={"run": run, **job})
    return task.model_copy(update={"manifest": task.manifest.model_copy(update={"job": j})})


@dataclass
class Replay:
    states: FakeStateStore = field(default_factory=FakeStateStore)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    now: list[float] = field(default_factory=lambda: [1_000_000.0])

    def settings(self) -> StateSettings:
        return StateSettings(self.states, CONFIG, clock=lambda: self.now[0],
                             sleep=lambda s: None)


def replay(stream: Stream, order: Iterable[int], *, run: str = keys.LIVE_RUN,
           failed: Iterable[int] = (), r: Replay | None = None, **job: Any) -> Replay:
    r = r or Replay()
    if run != keys.LIVE_RUN:  # an upload cut by ingest: its record knows the segment count
        stream.store.put_json(keys.run_record("cam", run), RunRecord(
            stream="cam", run=run, key="ingest/cam.ts", etag="", event_time="",
            segments=len(stream.tasks)).to_dict())
    for n in order:
        if n in set(failed):
            j = stream.jobs[n].model_copy(update={"run": run})
            record_failure(stream.store, r.notifier, SegmentFailure.model_validate(
                {"job": j.to_dict(), "error": {"Error": "MediaOpenError", "Cause": "corrupt"}}),
                state=r.settings())
        else:
            aggregate(stream.store, r.notifier, as_run(stream.tasks[n], run, **job),
                      state=r.settings())
    return r


def by_defect(events: list[DefectEvent]) -> dict[str, list[DefectEvent]]:
    out: dict[str, list[DefectEvent]] = {}
    for e in events:
        out.setdefault(e.defect_id, []).append(e)
    return out


def intervals(events: list[DefectEvent]) -> dict[str, tuple[float, float]]:
    """detector -> (start, end) of its one defect, checking it had exactly an open and a
    close, in that order, in the event schema."""
    out = {}
    for defect_id, evs in by_defect(events).items():
        assert [e.event for e in evs] == ["open", "close"], defect_id
        for e in evs:
            assert DefectEvent.from_dict(json.loads(e.to_json_line())) == e
        assert evs[1].end_s is not None
        assert evs[0].detector not in out, f"two {evs[0].detector} defects"
        out[evs[0].detector] = (evs[1].start_s, evs[1].end_s)
    return out


def assert_as_analyze(found: dict[str, tuple[float, float]], single: dict[str, Defect]) -> None:
    assert set(found) == set(single) == {"freeze", "black", "silence", "av_sync"}
    for name, (start, end) in found.items():
        tol = 0.5 if name == "av_sync" else FRAME_S
        assert start == pytest.approx(single[name].start_s, abs=tol), name
        assert end == pytest.approx(single[name].end_s, abs=tol), name


def test_every_defect_crosses_a_boundary(stream: Stream) -> None:
    starts = [t.manifest.job.start_s for t in stream.tasks.values()]
    for d in stream.single.values():
        assert any(d.start_s < b < d.end_s for b in starts), d


def test_in_order_each_defect_is_one_open_and_one_close_as_analyze(stream: Stream) -> None:
    r = replay(stream, sorted(stream.tasks))
    assert_as_analyze(intervals(r.notifier.events), stream.single)
    assert all(e.start_utc is None for e in r.notifier.events)  # no anchor, no UTC
    assert len(r.states.items[("cam", "live")][0]) < 20_000  # indices and times, no evidence


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_finishing_order_gives_the_same_messages(stream: Stream, seed: int) -> None:
    order = sorted(stream.tasks)
    random.Random(seed).shuffle(order)
    r = replay(stream, order, run="r1")
    assert_as_analyze(intervals(r.notifier.events), stream.single)
    assert all(e.defect_id.endswith("~r1") for e in r.notifier.events)  # not the live run's
    state = json.loads(r.states.items[("cam", "r1")][0])
    assert state["open"] == [] and state["outbox"] == []


def test_a_live_stream_out_of_order_after_its_first_segment(stream: Stream) -> None:
    rest = sorted(stream.tasks)[1:]
    random.Random(4).shuffle(rest)
    r = replay(stream, [0, *rest])
    assert_as_analyze(intervals(r.notifier.events), stream.single)


def test_redelivered_segments_publish_nothing_twice(stream: Stream) -> None:
    order = [n for n in sorted(stream.tasks) for _ in range(2)]
    r = replay(stream, order)
    assert_as_analyze(intervals(r.notifier.events), stream.single)


def test_an_aggregator_that_loses_the_race_merges_again(stream: Stream) -> None:
    r = Replay()
    order = sorted(stream.tasks)
    for n in order[:3]:
        replay(stream, [n], r=r)
    # segment 4 finishes while segment 3's aggregator is between its read and its write
    r.states.before_save = lambda: replay(stream, [4], r=r)
    replay(stream, [3], r=r)
    assert r.states.conflicts == 1
    replay(stream, order[5:], r=r)
    assert_as_analyze(intervals(r.notifier.events), stream.single)


def test_a_failed_segment_is_a_gap_and_ends_what_crosses_it(stream: Stream) -> None:
    black = stream.single["black"]
    hit = next(n for n, t in stream.tasks.items()  # the segment the black continues into
               if t.manifest.job.start_s < black.end_s < t.manifest.end_s)
    r = replay(stream, sorted(stream.tasks), failed=[hit])
    events = by_defect(r.notifier.events)
    gap = next(evs for evs in events.values() if evs[0].detector == "gap")
    assert [e.event for e in gap] == ["open", "close"]
    start = stream.tasks[hit].manifest.job.start_s
    assert (gap[1].start_s, gap[1].end_s) == pytest.approx(
        (start, stream.tasks[hit + 1].manifest.job.start_s), abs=1e-3)
    closes = {evs[0].detector: evs[-1] for evs in events.values()}
    assert closes["black"].start_s == pytest.approx(black.start_s, abs=FRAME_S)
    assert closes["black"].end_s == pytest.approx(start, abs=0.1)  # its evidence ends there


def test_events_sns_did_not_take_are_published_by_the_retry(stream: Stream) -> None:
    r = Replay()
    r.notifier.fail = 1
    first = sorted(stream.tasks)[0]  # the freeze opens in the first segment
    with pytest.raises(StorageThrottledError):
        replay(stream, [first], r=r)
    assert r.notifier.events == []
    replay(stream, [first], r=r)  # the workflow retries the step: the event goes out now
    assert [(e.event, e.detector) for e in r.notifier.events] == [("open", "freeze")]
    replay(stream, sorted(stream.tasks)[1:], r=r)
    assert_as_analyze(intervals(r.notifier.events), stream.single)


def test_events_of_an_aggregator_that_died_go_out_after_its_timeout(stream: Stream) -> None:
    r = Replay()
    replay(stream, [0], r=r)
    opened = list(r.notifier.events)
    # as if that aggregator died after its write: the event is queued again, not yet sent
    doc, version = r.states.load("cam", "live") or ({}, 0)
    doc["outbox"] = [{"queued_at": r.now[0], "event": opened[0].to_dict()}]
    r.states.items[("cam", "live")] = (json.dumps(doc), version)
    replay(stream, [1], r=r)  # within the timeout: it may still be publishing
    assert [e.id for e in r.notifier.events].count(opened[0].id) == 1
    r.now[0] += CONFIG.timeout_s + 1
    replay(stream, [2], r=r)
    assert [e.id for e in r.notifier.events].count(opened[0].id) == 2  # same id: dropped


def playlist_lands(store: FakeStore, r: Replay, last: int, ended: bool = True) -> int:
    """The stream's playlist, listing segments 0 to ``last`` (and EXT-X-ENDLIST), lands and is
    read by ingest: how many events that closed."""
    body = "".join(f"#EXTINF:2.0,\n{n:06d}.ts\n" for n in range(last + 1))
    text = ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n" + body
            + ("#EXT-X-ENDLIST\n" if ended else "")).encode()
    key = "ingest/cam/index.m3u8"
    store.objects[key] = text
    read = ingest_playlist(store, r.notifier, Upload(key, hashlib.md5(text).hexdigest(),
                                                     "2026-11-30T01:00:00Z"),
                           state=r.settings())
    assert read.record is not None and read.gaps == []
    return read.closed


def test_an_endlist_landing_after_the_last_merge_closes_what_is_open(stream: Stream) -> None:
    """The playlist that says EXT-X-ENDLIST usually lands before the last segment's workflow
    ends (its aggregator then knows the segment is the last); when it lands after, ingest
    closes what that merge left open, with the end the detectors give, once."""
    # a store of its own: the playlist record must not reach the other tests' live run
    own = Stream(FakeStore(stream.store.objects), stream.tasks, stream.utc, stream.single,
                 stream.jobs)
    r = replay(own, [0])  # the freeze runs on into segment 1: open at segment 0's end
    assert [(e.event, e.detector) for e in r.notifier.events] == [("open", "freeze")]
    assert playlist_lands(own.store, r, 0, ended=False) == 0  # the stream goes on
    assert playlist_lands(own.store, r, 1) == 0  # its last segment is not merged yet
    # it ended at segment 0 after all, and its playlist says so after that merge
    own.store.objects.pop(keys.playlist_record("cam"))
    assert playlist_lands(own.store, r, 0) == 1
    state = json.loads(r.states.items[("cam", "live")][0])
    assert state["open"] == [] and state["outbox"] == [] and state["last_segment"] == 0
    assert playlist_lands(own.store, r, 0) == 0  # read again: closed once
    opened, closed = r.notifier.events
    assert (closed.event, closed.defect_id) == ("close", opened.defect_id)
    assert closed.start_s == pytest.approx(stream.single["freeze"].start_s, abs=FRAME_S)
    end = own.tasks[0].manifest.end_s
    assert end is not None and closed.end_s == pytest.approx(end, abs=FRAME_S)


def test_utc_from_each_segments_program_date_time(stream: Stream) -> None:
    r = replay(stream, [], run="utc")  # its run record
    for n in sorted(stream.tasks):
        aggregate(stream.store, r.notifier, as_run(stream.tasks[n], "utc",
                                                   start_utc=stream.utc[n]),
                  state=r.settings())
    starts = {n: t.manifest.job.start_s for n, t in stream.tasks.items()}
    for e in r.notifier.events:
        seg = max(n for n, s in starts.items() if s <= e.start_s)
        expected = parse_utc(stream.utc[seg]) + (e.start_s - starts[seg])
        assert e.start_utc is not None
        assert parse_utc(e.start_utc) == pytest.approx(expected, abs=0.002)
        if e.event == "close":
            assert e.end_utc is not None and e.end_s is not None
            assert parse_utc(e.end_utc) - parse_utc(e.start_utc) == pytest.approx(
                e.end_s - e.start_s, abs=0.01)


def test_a_bad_utc_anchor_is_refused_with_the_field_named() -> None:
    from avmon.errors import MediaOpenError
    with pytest.raises(MediaOpenError, match="start_utc"):
        SegmentJob.from_event({"stream": "s", "run": "r", "segment": 0, "key": "k",
                               "start_s": 0, "start_utc": "yesterday"})


# -- adapters ------------------------------------------------------------------------------
def test_dynamodb_state_store_writes_conditionally_and_translates_errors() -> None:
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    store = DynamoStateStore("states", client)
    key = {"stream": {"S": "cam"}, "run": {"S": "live"}}
    with Stubber(client) as stub:
        stub.add_response("get_item", {}, {"TableName": "states", "Key": key,
                                           "ConsistentRead": True})
        stub.add_response("put_item", {}, {
            "TableName": "states", "Item": ANY, "ConditionExpression": "attribute_not_exists(#v)",
            "ExpressionAttributeNames": {"#v": "version"}})
        stub.add_client_error("put_item", "ConditionalCheckFailedException")
        stub.add_client_error("put_item", "ProvisionedThroughputExceededException")
        stub.add_response("get_item", {"Item": {**key, "version": {"N": "3"},
                                                "state": {"S": '{"a": 1}'}}})
        assert store.load("cam", "live") is None
        assert store.save("cam", "live", {"a": 1}, 0, 99) is True
        assert store.save("cam", "live", {"a": 2}, 1, 99) is False  # another writer came first
        with pytest.raises(StorageThrottledError, match="throttled"):
            store.save("cam", "live", {"a": 2}, 1, 99)
        assert store.load("cam", "live") == ({"a": 1}, 3)


def test_sns_message_is_the_event_with_filterable_attributes() -> None:
    client = boto3.client("sns", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    arn = "arn:aws:sns:us-east-1:123456789012:defects"
    event = DefectEvent("close", "ünï/cam", "freeze", 2.8, 4.16, None, None, 0.93)
    with Stubber(client) as stub:
        stub.add_response("publish", {"MessageId": "1"}, {
            "TopicArn": arn, "Message": event.to_json_line(),
            "Subject": "avmon close freeze ?n?/cam at 2.800s",
            "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in (
                ("stream", "ünï/cam"), ("detector", "freeze"), ("event", "close"))}})
        SnsNotifier(arn, client).announce(event)
