"""Live HLS ingest on fakes: packager segment names, playlists read (not decoded), gaps.

Segments are real MPEG-TS cut by the ffmpeg CLI's hls muxer; the steps run on in-memory fakes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from avmon.errors import MediaOpenError, StorageThrottledError
from avmon.events import GAP, DefectEvent
from avmon.media.playlist import parse_playlist, render_playlist
from avmon.pipeline import keys
from avmon.pipeline.config import PipelineConfig
from avmon.pipeline.contracts import PlaylistRecord, SegmentJob
from avmon.pipeline.status import stream_status
from avmon.pipeline.steps import Backoff, Upload, ingest, ingest_playlist
from functions import ingest as ingest_handler
from functions.runtime import Dependencies, Settings
from tests.fakes import FakeNotifier, FakeStarter, FakeStateStore, FakeStore
from tests.hls import needs_ffmpeg, packager_hls

NO_WAIT = Backoff(sleep=lambda s: None)


@pytest.mark.parametrize(("key", "stream", "n"), [
    ("ingest/ch1/chan_00012.ts", "ch1/chan", 12),         # MediaLive: name_%05d
    ("ingest/ch1/chan12.ts", "ch1/chan", 12),             # ffmpeg's hls muxer: %d
    ("ingest/ch1/chan012.ts", "ch1/chan", 12),            # ffmpeg: %03d
    ("ingest/ch1/chan-12.ts", "ch1/chan", 12),            # name-%d
    ("ingest/ch1/chan.12.ts", "ch1/chan", 12),            # name.%d
    ("ingest/ch1/chan/00012.ts", "ch1/chan", 12),         # a folder per stream
    ("ingest/cam1/000007.ts", "cam1", 7),                 # the original convention
    ("ingest/ch1/chan_720p_00003.ts", "ch1/chan_720p", 3),  # renditions stay apart
    ("ingest/ch1/chan_360p_00003.ts", "ch1/chan_360p", 3),
    ("ingest/a/b/c_5.m4s", "a/b/c", 5),                   # fMP4 media segments
])
def test_packager_names_give_stream_and_sequence(key: str, stream: str, n: int) -> None:
    assert keys.live_segment(key) == (stream, n)
    assert keys.stream_id_of(key) == stream


@pytest.mark.parametrize("key", [
    "ingest/clip2.ts",          # directly under ingest/: a whole stream, as before
    "ingest/a/b.ts",            # no number: a whole stream
    "ingest/a/b12.mp4",         # not a segment extension
    "ingest/ch1/index.m3u8",    # a playlist
    "segments/a/b_1.ts",        # not under ingest/
])
def test_other_names_are_not_live_segments(key: str) -> None:
    assert keys.live_segment(key) is None


def test_whole_files_keep_their_key_as_stream() -> None:
    assert keys.stream_id_of("ingest/clip2.ts") == "clip2.ts"
    assert keys.stream_id_of("ingest/f/a.mp4") == "f/a.mp4"
    assert keys.is_playlist("ingest/ch1/index.m3u8") and not keys.is_playlist("ingest/a.ts")
    assert keys.resolve("ingest/ch1/index.m3u8", "chan_00001.ts") == "ingest/ch1/chan_00001.ts"
    assert keys.resolve("ingest/ch1/index.m3u8", "https://o/x/c_2.ts?t=1") == \
        "ingest/ch1/c_2.ts"


DISCONTINUOUS = """#EXTM3U
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-MAP:URI="init.mp4"
#EXTINF:2.0,
#EXT-X-PROGRAM-DATE-TIME:2026-11-30T01:00:00.000Z
c_7.m4s
#EXT-X-DISCONTINUITY
#EXTINF:1.5,
#EXT-X-PROGRAM-DATE-TIME:2026-11-30T01:00:10.000Z
c_8.m4s
#EXTINF:2.0,
c_9.m4s
"""


def test_discontinuities_and_fmp4_are_parsed_and_rendered_back() -> None:
    p = parse_playlist(DISCONTINUOUS, "ingest/x/index.m3u8")
    assert [s.discontinuity for s in p.segments] == [False, True, False]
    assert p.init == "ingest/x/init.mp4" and p.unsupported == "fragmented MP4 segments"
    again = parse_playlist(render_playlist(p, p.segments[1:], ended=True), "ingest/x/i.m3u8")
    assert [s.sequence for s in again.segments] == [8, 9] and again.ended
    assert [s.program_time for s in again.segments] == [s.program_time for s in p.segments[1:]]
    assert again.segments[0].discontinuity and again.segments[1].name == "c_9.m4s"


def test_a_malformed_tag_is_one_clear_error() -> None:
    with pytest.raises(MediaOpenError, match="malformed playlist tag"):
        parse_playlist("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n", "ingest/x/i.m3u8")


def put(store: FakeStore, key: str, data: bytes, when: str) -> Upload:
    store.objects[key] = data
    return Upload(key, hashlib.md5(data).hexdigest(), when)


def packager_order(store: FakeStore, starter: FakeStarter, notifier: FakeNotifier,
                   playlist: Path, folder: str, skip: frozenset[int] = frozenset()) -> None:
    """What a packager does: each segment lands, then the playlist that lists it."""
    p = parse_playlist(playlist.read_text(), str(playlist))
    for i, seg in enumerate(p.segments):
        when = f"2026-11-30T01:00:{10 + 2 * i:02d}.000Z"
        if seg.sequence not in skip:
            up = put(store, f"ingest/{folder}/{seg.name}", Path(seg.uri).read_bytes(), when)
            ingest(store, starter, up, PipelineConfig(), NO_WAIT)
        text = render_playlist(p, p.segments[: i + 1], ended=p.ended and i == len(p.segments) - 1)
        ingest_playlist(store, notifier, put(store, f"ingest/{folder}/index.m3u8",
                                             text.encode(), when))


@pytest.fixture(scope="module")
def hls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return packager_hls(tmp_path_factory.mktemp("hls") / "out", 8.5)


@needs_ffmpeg
def test_packager_segments_are_ordered_and_timed_from_the_playlist(hls: Path) -> None:
    store, starter, notifier = FakeStore(), FakeStarter(), FakeNotifier()
    packager_order(store, starter, notifier, hls, "ch1")
    jobs = sorted((SegmentJob.from_event(p) for p in starter.executions.values()),
                  key=lambda j: j.segment)
    p = parse_playlist(hls.read_text(), str(hls))
    assert [j.segment for j in jobs] == [s.sequence for s in p.segments] == \
        list(range(len(p.segments)))
    assert len(jobs) >= 4
    assert {j.stream for j in jobs} == {"ch1/chan"} and {j.run for j in jobs} == {"live"}
    assert [j.key for j in jobs] == [f"ingest/ch1/{s.name}" for s in p.segments]
    # the first segment lands before any playlist; each later one is timed by the playlist
    # that listed its predecessor: exactly its own EXT-X-PROGRAM-DATE-TIME
    assert jobs[0].start_utc is None
    for job, seg in zip(jobs[1:], p.segments[1:], strict=True):
        assert job.start_utc is not None and seg.program_time is not None
        got = DefectEvent.from_dict({"event": "open", "stream": "s", "detector": "d",
                                     "start_s": 0, "start_utc": job.start_utc})
        assert abs(_epoch(got.start_utc) - seg.program_time) < 0.002
    # the stream's clock: each start is the segment's own first timestamp
    for a, b, seg in zip(jobs, jobs[1:], p.segments, strict=False):
        assert b.start_s - a.start_s == pytest.approx(seg.duration, abs=0.05)
    record = PlaylistRecord.model_validate(store.get_json(keys.playlist_record("ch1/chan")))
    assert record.ended and record.checked_through == len(jobs) - 1 and record.gaps == ()
    assert [e.start_s for e in record.entries] == pytest.approx([j.start_s for j in jobs],
                                                                 abs=0.05)
    assert notifier.messages == []


def _epoch(iso: str | None) -> float:
    from datetime import datetime
    assert iso is not None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@needs_ffmpeg
def test_a_segment_that_never_lands_is_one_gap_published_once(hls: Path) -> None:
    store, starter, notifier = FakeStore(), FakeStarter(), FakeNotifier()
    packager_order(store, starter, notifier, hls, "ch1", skip=frozenset({2}))
    p = parse_playlist(hls.read_text(), str(hls))
    assert sorted(SegmentJob.from_event(x).segment for x in starter.executions.values()) == \
        [s.sequence for s in p.segments if s.sequence != 2]
    events = [DefectEvent.from_dict(m) for _, m in notifier.messages]
    assert [(e.event, e.detector) for e in events] == [("open", GAP), ("close", GAP)]
    jobs = {j.segment: j for j in (SegmentJob.from_event(x) for x in starter.executions.values())}
    close = events[1]
    assert close.details["media_sequence"] == 2 and close.details["segments"] == [2]
    # where segment 2 would have been: after segment 1, for its EXTINF
    assert close.start_s == pytest.approx(jobs[1].start_s + p.segments[1].duration, abs=0.05)
    assert close.end_s == pytest.approx(close.start_s + p.segments[2].duration, abs=0.01)
    assert p.segments[2].program_time is not None
    assert abs(_epoch(close.start_utc) - p.segments[2].program_time) < 0.002
    record = PlaylistRecord.model_validate(store.get_json(keys.playlist_record("ch1/chan")))
    assert len(record.gaps) == 1


def test_discontinuity_and_skipped_numbers_are_gaps() -> None:
    store, notifier = FakeStore(), FakeNotifier()
    for n in (7, 8, 9, 13):
        store.objects[f"ingest/x/c_{n}.m4s"] = b"segment"
    ingest_playlist(store, notifier, put(store, "ingest/x/index.m3u8", DISCONTINUOUS.encode(),
                                         "2026-11-30T01:00:00Z"))
    later = DISCONTINUOUS.replace("MEDIA-SEQUENCE:7", "MEDIA-SEQUENCE:11").replace(
        "c_7", "c_11").replace("c_8", "c_12").replace("c_9", "c_13").replace(
        "#EXT-X-DISCONTINUITY\n", "")
    result = ingest_playlist(store, notifier, put(store, "ingest/x/index.m3u8", later.encode(),
                                                  "2026-11-30T01:00:09Z"))
    assert result.record is not None and result.record.stream == "x/c"
    reasons = [(g["details"]["reason"], g["details"]["media_sequence"])
               for g in result.record.gaps]
    assert reasons == [("EXT-X-DISCONTINUITY", 8),
                       ("sequence numbers left the playlist before it was read", [10, 10]),
                       ("segments listed in the playlist never arrived", [11, 12])]
    assert len(notifier.messages) == 6
    assert all(DefectEvent.from_dict(m).detector == GAP for _, m in notifier.messages)


@pytest.mark.parametrize(("text", "why"), [
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlow/index.m3u8\n", "master playlist"),
    ("#EXTM3U\n#EXTINF:2,\nmovie.ts\n", "not named as a live segment"),
    ("#EXTM3U\n#EXTINF:2,\na_1.ts\n#EXTINF:2,\nb_2.ts\n", "2 streams"),
    ("<html>404</html>", "not an HLS playlist"),
])
def test_playlists_that_are_not_one_live_stream_are_refused(text: str, why: str) -> None:
    store = FakeStore()
    with pytest.raises(MediaOpenError, match=why):
        ingest_playlist(store, FakeNotifier(), put(store, "ingest/x/index.m3u8", text.encode(),
                                                   "2026-11-30T01:00:00Z"))


@needs_ffmpeg
def test_the_handler_reads_a_playlist_and_the_report_lists_the_gap(hls: Path) -> None:
    store, starter, notifier = FakeStore(), FakeStarter(), FakeNotifier()
    packager_order(store, starter, notifier, hls, "ch1", skip=frozenset({2}))
    deps = Dependencies(Settings("bucket", PipelineConfig()), store=store, notifier=notifier,
                        starter=starter, states=FakeStateStore())
    event = {"Records": [{"eventSource": "aws:s3", "eventTime": "2026-11-30T01:01:00.000Z",
                          "s3": {"bucket": {"name": "bucket"}, "object": {
                              "key": "ingest/ch1/index.m3u8", "eTag": "", "size": 1}}}]}
    (run,) = ingest_handler.handler(event, None, deps)["runs"]
    assert run["playlist"] and run["stream"] == "ch1/chan" and run["gaps"] == []
    # no segment analysed yet (the fakes run no workflow), but the gap is the report's
    status = stream_status(store, "ch1/chan")
    gaps = [d for d in status.result.report.defects if d.detector == GAP]
    assert len(gaps) == 1 and gaps[0].details["start_utc"].endswith("Z")
    assert 2 not in status.missing


def test_a_fragmented_mp4_segment_is_refused_in_one_line() -> None:
    store = FakeStore()
    with pytest.raises(MediaOpenError, match="fragmented MP4 segment; the pipeline decodes"):
        ingest(store, FakeStarter(), put(store, "ingest/x/c_1.m4s", b"moof", "2026-11-30T01Z"),
               PipelineConfig(), NO_WAIT)


@pytest.mark.parametrize(("location", "folder"), [
    ("/streams/ch1/index.m3u8", "ch1"),            # a generic name: its folder's
    ("/streams/ch1/cam 2.m3u8", "cam-2"),          # its own name, made safe for a key
    ("http://origin:8080/live/ch7/playlist.m3u8?token=x", "ch7"),
    ("https://origin/news.m3u8", "news"),
])
def test_the_simulation_uploads_a_playlist_to_a_folder_named_after_it(location: str,
                                                                      folder: str) -> None:
    from avmon.localcloud.simulate import is_playlist, playlist_folder
    assert playlist_folder(location) == folder
    assert is_playlist(location)


class _SnsDownOnce(FakeNotifier):
    def publish(self, subject: str, message: dict[str, object]) -> None:
        if not self.messages and not getattr(self, "failed", False):
            self.failed = True
            raise StorageThrottledError("sns: throttled (Throttling)")
        super().publish(subject, message)


def test_a_gap_whose_publish_failed_is_published_by_the_retry() -> None:
    store, notifier = FakeStore(), _SnsDownOnce()
    store.objects["ingest/x/c_7.m4s"] = b"segment"
    text = b"#EXTM3U\n#EXTINF:2,\nc_7.m4s\n#EXTINF:2,\nc_8.m4s\n"
    upload = put(store, "ingest/x/index.m3u8", text, "2026-11-30T01:00:00Z")
    with pytest.raises(StorageThrottledError):
        ingest_playlist(store, notifier, upload)
    result = ingest_playlist(store, notifier, upload)  # Lambda's retry of the same event
    assert [g["details"]["media_sequence"] for g in result.gaps] == [1]
    assert [m["event"] for _, m in notifier.messages] == ["open", "close"]
