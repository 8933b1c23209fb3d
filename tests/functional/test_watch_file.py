"""The live monitor on a file: the same defects as ``analyze``, with bounded evidence."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize
from avmon.events import DefectEvent
from avmon.monitor.analysis import analyze
from avmon.monitor.live import Monitor

pytestmark = pytest.mark.functional


def test_events_match_analyze_and_evidence_stays_bounded(clip: Path) -> None:
    names = ["freeze", "black", "block_corruption", "silence", "clipping"]
    monitor = Monitor(clip, detectors=names, chunk_s=2.0, retention_s=4.0)
    events: list[DefectEvent] = []
    most_chunks = 0
    for event in monitor.events():
        events.append(event)
        most_chunks = max(most_chunks, monitor.stats.evidence_chunks)
    closes = sorted((e.detector, round(e.start_s, 2), round(e.end_s or 0, 2))
                    for e in events if e.event == "close")
    report = analyze(clip, names=names).report
    expected = sorted((d.detector, round(d.start_s, 2), round(d.end_s, 2))
                      for d in report.defects)
    assert closes == expected
    assert [e.event for e in events].count("open") == len(expected)
    # 16 s of media in 2 s chunks, 4 s kept: never more than the retention's worth
    assert 1 <= most_chunks <= 4 and monitor.stats.state == "ended"


def test_a_dead_channel_and_a_programme_silence_are_two_findings_as_in_analyze(
        tmp_path: Path) -> None:
    clip = tmp_path / "silence.mp4"
    # one channel goes silent, then the other joins it for 1.5 s: a dead channel, then a
    # programme silence (which the dead channel never swallows), each opened and closed once
    synthesize(SynthRequest(clip, 7, tuple(parse_defects("silence@1:4=ch1,silence@2.5:1.5")),
                            320, 176, seed=3))
    events = list(Monitor(clip, detectors=["silence"]).events())
    assert [(e.event, e.details.get("kind")) for e in events] == [
        ("open", "dead_channel"), ("close", "dead_channel"), ("open", "program"),
        ("close", "program")]
    assert events[0].details["channels"] == ["FR"]
    assert events[0].defect_id == events[1].defect_id != events[2].defect_id
    assert len({e.id for e in events}) == 4
    single = analyze(clip, names=["silence"]).report.defects
    closes = [e for e in events if e.event == "close"]
    assert [x for e in closes for x in (e.start_s, e.end_s)] == pytest.approx(
        [x for d in single for x in (d.start_s, d.end_s)], abs=0.05)


def test_sns_sink_publishes_with_filterable_attributes(tmp_path: Path) -> None:
    import boto3
    from moto import mock_aws

    from avmon.monitor.aws import sns_deliverer
    from avmon.monitor.sinks import SpooledSink

    with mock_aws():
        sns = boto3.client("sns", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        topic = sns.create_topic(Name="avmon-events")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="q")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        event = DefectEvent("open", "ch1", "black", 3.0, None, None, None, 1.0)
        sink = SpooledSink("sns", sns_deliverer(topic, client=sns), tmp_path)
        sink.send(event)
        sink.close(timeout=5)
        assert sink.stats.delivered == 1
        body = sqs.receive_message(QueueUrl=queue_url)["Messages"][0]["Body"]
    import json
    envelope = json.loads(body)
    assert DefectEvent.from_dict(json.loads(envelope["Message"])) == event
    attrs = envelope["MessageAttributes"]
    assert attrs["stream"]["Value"] == "ch1" and attrs["detector"]["Value"] == "black"


def test_a_clock_that_goes_back_is_one_gap_and_detection_resumes(tmp_path: Path) -> None:
    # two MPEG-TS files back to back: the second one's timestamps start again, as a restarted
    # encoder's do
    part = tmp_path / "part.ts"
    # the second freeze lasts until the clock goes back
    synthesize(SynthRequest(part, 5, tuple(parse_defects("freeze@1:1,freeze@3:2")), 320, 176,
                            seed=4))
    joined = tmp_path / "joined.ts"
    joined.write_bytes(part.read_bytes() * 2)
    monitor = Monitor(joined, detectors=["freeze"])
    events: list[tuple[float, DefectEvent]] = []
    for event in monitor.events():
        events.append((monitor.stats.media_time_s or 0.0, event))
    gaps = [e for _, e in events if e.detector == "gap"]
    assert [e.event for e in gaps] == ["open", "close"]
    assert gaps[0].details["reason"] == "timestamps went back"
    assert monitor.stats.gaps == 1
    closes = [e for _, e in events if e.detector == "freeze" and e.event == "close"]
    assert [round(e.start_s) for e in closes] == [1, 3, 1, 3]  # both copies' freezes
    assert len({e.defect_id for e in closes}) == 4
    assert closes[1].details["closed_by"] == "gap"  # it ended where the old clock stopped
    assert closes[3].start_s == pytest.approx(closes[1].start_s)  # not cut by the old one
    # the new clock's first freeze is announced while it happens, not when the new clock
    # passes the old one's edge
    second_open = [t for t, e in events if e.detector == "freeze" and e.event == "open"][2]
    assert second_open < 3.0


def test_av_sync_correlates_each_window_a_bounded_number_of_times_and_matches_analyze(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import avmon.detectors.avsync as avsync
    import avmon.monitor.live as live

    clip = tmp_path / "late.mp4"
    synthesize(SynthRequest(clip, 45, tuple(parse_defects("av_sync@10:25=+300ms")), 320, 176,
                            seed=5))
    calls: Counter[int] = Counter()
    correlate = avsync.correlate_window

    def counting(env: avsync.Envelopes, index: int,
                 cfg: avsync.AvSyncConfig) -> avsync.Estimate | None:
        calls[index] += 1
        return correlate(env, index, cfg)

    # both callers: finalize (windows still growing) and the monitor (windows it keeps)
    monkeypatch.setattr(avsync, "correlate_window", counting)
    monkeypatch.setattr(live, "correlate_window", counting)
    events = list(Monitor(clip, detectors=["av_sync"]).events())
    closes = [(round(e.start_s, 2), round(e.end_s or 0, 2), e.details["offset_ms"])
              for e in events if e.event == "close"]
    monkeypatch.setattr(avsync, "correlate_window", correlate)
    expected = [(round(d.start_s, 2), round(d.end_s, 2), d.details["offset_ms"])
                for d in analyze(clip, names=["av_sync"]).report.defects]
    assert closes == expected and expected
    # 45 s: windows 0..8 every 5 s. A window is correlated about three times while it grows
    # at the live edge (once per completed window), then once when complete, and kept;
    # re-merging every 2 s over the retained evidence correlated each up to 19 times.
    assert set(calls) == set(range(9))
    assert max(calls.values()) <= 5
