"""``avmon simulate`` on an HLS playlist: packager-named segments (cut by the ffmpeg CLI) fed to
the pipeline deployed into moto one by one, from a folder and from a loopback HTTP server; what
was published to the topic listed under ``alerts``."""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from avmon.cli import main
from avmon.events import GAP, DefectEvent
from avmon.localcloud.deploy import LocalCloud
from avmon.localcloud.simulate import Simulation, simulate, simulate_playlist
from avmon.media.playlist import parse_playlist
from avmon.pipeline import keys
from tests.hls import needs_ffmpeg, packager_hls

pytestmark = [pytest.mark.functional, needs_ffmpeg]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud() as c:
        yield c


@pytest.fixture(scope="module")
def hls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8.5 s, 160x96, black from 3 to 5 s, as MediaLive names segments (chan_00000.ts)."""
    return packager_hls(tmp_path_factory.mktemp("hls") / "ch1", 8.5, "black@3:2")


@pytest.fixture(scope="module")
def served(hls: Path) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(hls.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def mentions(alert: dict[str, Any], detector: str) -> bool:
    """An alert about ``detector``: an event of it, or a raw message naming it."""
    return alert.get("detector") == detector or f'"{detector}"' in json.dumps(alert.get("raw"))


def events(sim: Simulation) -> list[DefectEvent]:
    return [DefectEvent.from_dict(a) for a in sim.alerts if "event" in a]


def test_served_playlist_is_fed_in_sequence_order_and_complete(cloud: LocalCloud, hls: Path,
                                                                served: str) -> None:
    sim = simulate_playlist(f"{served}/index.m3u8", cloud=cloud, folder="served")
    p = parse_playlist(hls.read_text(), str(hls))
    n = len(p.segments)
    assert sim.playlist is not None and sim.playlist["uploaded"] == n >= 4
    assert sim.playlist["stream"] == "served/chan" and sim.playlist["ended"]
    assert sim.failed_segments == [] and sim.exit_code == 0
    # every segment under its packager name, each with its own report, none overwritten
    assert [k for k in sim.keys if k.startswith("ingest/served/chan_")] == \
        [f"ingest/served/{s.name}" for s in p.segments]
    reports = [k for k in sim.keys if k.startswith(keys.reports_of("served/chan", "live"))]
    assert reports == [keys.report("served/chan", "live", s.sequence) for s in p.segments]
    assert sim.usage["executions"] == n
    # the black is found, on the stream's clock (ffmpeg's MPEG-TS starts at 1.4 s)
    (black,) = [d for d in sim.report["defects"] if d["detector"] == "black"]
    assert black["end_s"] - black["start_s"] == pytest.approx(2.0, abs=0.1)
    assert not [d for d in sim.report["defects"] if d["detector"] == GAP]
    # every message published is listed: in the event schema where it is one, raw otherwise
    assert all(("event" in a) != ("raw" in a) for a in sim.alerts)
    assert any(mentions(a, "black") for a in sim.alerts)


def test_a_deleted_segment_is_a_gap_found_published_and_reported(cloud: LocalCloud, hls: Path,
                                                                  tmp_path: Path) -> None:
    folder = tmp_path / "ch1"
    shutil.copytree(hls.parent, folder)
    (folder / "chan_00002.ts").unlink()
    paced: list[float] = []  # --live: the wait after each segment, up to its EXTINF
    sim = simulate_playlist(str(folder / "index.m3u8"), cloud=cloud, folder="gapped",
                            live=True, sleep=paced.append)
    assert sim.playlist is not None
    assert [u["media_sequence"] for u in sim.playlist["unreadable"]] == [2]
    assert sim.exit_code == 0  # a gap in the stream is a finding, not a pipeline failure
    (gap,) = [d for d in sim.report["defects"] if d["detector"] == GAP]
    assert gap["details"]["media_sequence"] == 2
    assert gap["details"]["start_utc"].endswith("Z")
    opened, closed = [e for e in events(sim) if e.detector == GAP]
    assert (opened.event, closed.event) == ("open", "close")
    assert opened.defect_id == closed.defect_id and closed.stream == "gapped/chan"
    assert closed.start_s == pytest.approx(gap["start_s"], abs=0.001)
    assert closed.end_s == pytest.approx(gap["end_s"], abs=0.001)
    p = parse_playlist(hls.read_text(), str(hls))
    assert closed.end_s - closed.start_s == pytest.approx(p.segments[2].duration, abs=0.01)
    assert len(paced) == len(p.segments)
    assert all(0 <= w <= s.duration for w, s in zip(paced, p.segments, strict=True))
    assert sim.playlist["live_pace"]
    reports = [k for k in sim.keys if k.startswith(keys.reports_of("gapped/chan", "live"))]
    assert reports == [keys.report("gapped/chan", "live", s.sequence) for s in p.segments
                       if s.sequence != 2]


def test_a_live_playlist_is_followed_until_its_endlist(cloud: LocalCloud, hls: Path,
                                                        tmp_path: Path) -> None:
    """ffmpeg -re writes the playlist as the stream plays; the simulation reloads it until
    EXT-X-ENDLIST and uploads every segment once, in order."""
    out = tmp_path / "live"
    out.mkdir()
    packager = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-re", "-i", str(hls.parent.parent / "ch1-source.ts"),
         "-c", "copy", "-f", "hls", "-hls_time", "1", "-hls_list_size", "0",
         "-hls_flags", "program_date_time", "-hls_segment_filename", str(out / "cam-%d.ts"),
         str(out / "cam.m3u8")])
    try:
        deadline = time.monotonic() + 20
        while not (out / "cam.m3u8").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        first = parse_playlist((out / "cam.m3u8").read_text(), "cam.m3u8")
        assert not first.ended  # still being written: the simulation has to follow it
        sim = simulate_playlist(str(out / "cam.m3u8"), cloud=cloud)
    finally:
        packager.wait(timeout=30)
    final = parse_playlist((out / "cam.m3u8").read_text(), "cam.m3u8")
    assert sim.playlist is not None and sim.playlist["ended"]
    assert sim.playlist["stream"] == "cam/cam" and sim.playlist["uploaded"] == len(final.segments)
    reports = [k for k in sim.keys if k.startswith(keys.reports_of("cam/cam", "live"))]
    assert reports == [keys.report("cam/cam", "live", s.sequence) for s in final.segments]
    assert sim.exit_code == 0


def test_a_defect_running_into_the_endlist_is_closed_at_the_end(cloud: LocalCloud,
                                                                 tmp_path: Path) -> None:
    """A freeze that lasts until the stream ends: the playlist's EXT-X-ENDLIST tells the
    aggregator which segment is the last, and merging it closes what is open (it stayed open
    forever before: a live stream has no segment count)."""
    playlist = packager_hls(tmp_path / "tail", 8.5, "freeze@6:2.5", segment_name="tail_%05d.ts")
    sim = simulate_playlist(str(playlist), cloud=cloud, folder="tailend")
    assert sim.exit_code == 0
    [freeze] = [d for d in sim.report["defects"] if d["detector"] == "freeze"]
    got = [(e.event, e.start_s, e.end_s) for e in events(sim) if e.detector == "freeze"]
    assert got == [("open", freeze["start_s"], None),
                   ("close", freeze["start_s"], freeze["end_s"])]


def test_an_endlist_landing_after_the_last_merge_closes_what_is_open(cloud: LocalCloud,
                                                                     tmp_path: Path) -> None:
    """The packager ends the playlist late: every segment is analysed and merged while the
    playlist has no EXT-X-ENDLIST (the freeze running to the end stays open), then the playlist
    that ends the stream lands. The ingest Lambda reading it closes the freeze, once, with the
    end the report gives."""
    ended = packager_hls(tmp_path / "late", 8.5, "freeze@6:2.5", segment_name="late_%05d.ts")
    running = ended.with_name("late.m3u8")
    running.write_text(ended.read_text().replace("#EXT-X-ENDLIST\n", ""))
    stop = threading.Event()  # followed once through, then stopped at its first reload
    sim = simulate_playlist(str(running), cloud=cloud, folder="lateend",
                            sleep=lambda s: stop.set(), stop=stop)
    assert sim.playlist is not None and not sim.playlist["ended"]
    [freeze] = [d for d in sim.report["defects"] if d["detector"] == "freeze"]
    [opened] = [e for e in events(sim) if e.detector == "freeze"]
    assert (opened.event, opened.start_s) == ("open", freeze["start_s"])
    for _ in range(2):  # the playlist lands, and once more (a packager rewriting it)
        cloud.upload(ended.read_bytes(), "ingest/lateend/late.m3u8")
        ingest = cloud.invoker.latest["Ingest"]
        assert ingest.error is None
    tapped = [DefectEvent.from_dict(a) for a in cloud.alert_tap().drain()]
    assert [(e.event, e.detector, e.defect_id) for e in tapped] == [
        ("close", "freeze", opened.defect_id)]
    assert tapped[0].end_s == pytest.approx(freeze["end_s"], abs=0.001)
    assert ingest.result["runs"][0]["closed"] == 0  # the second reading closed nothing


def test_a_whole_file_simulation_lists_its_alerts(cloud: LocalCloud, hls: Path) -> None:
    # one packager segment uploaded as a whole file (directly under ingest/): the black in it
    sim = simulate(hls.parent / "chan_00001.ts", cloud=cloud, key="ingest/whole00001.ts")
    assert sim.usage["executions"] == 1
    assert sim.to_dict()["alerts"] == sim.alerts
    assert any(mentions(a, "black") for a in sim.alerts)


@pytest.mark.parametrize(("where", "why"), [
    ("missing.m3u8", "cannot read the playlist: No such file"),
    ("{served}/nothing.m3u8", "cannot read the playlist: HTTP 404"),
    ("{served}/chan_00000.ts", "not an HLS playlist"),
    ("http://127.0.0.1:9/live.m3u8", "cannot read the playlist: [Errno 111] Connection refused"),
    ("{tmp}/movie.m3u8", "segment 'movie.ts' is not named as a packager names live segments"),
    ("{tmp}/master.m3u8", "a master playlist"),
    ("{tmp}/fmp4.m3u8", "fragmented MP4 segments"),
])
def test_bad_playlists_are_one_line_errors(where: str, why: str, served: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "movie.m3u8").write_text("#EXTM3U\n#EXTINF:2,\nmovie.ts\n#EXT-X-ENDLIST\n")
    (tmp_path / "master.m3u8").write_text("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nlo.m3u8\n")
    (tmp_path / "fmp4.m3u8").write_text('#EXTM3U\n#EXT-X-MAP:URI="i.mp4"\n#EXTINF:2,\nc_1.m4s\n')
    code = main(["simulate", where.format(served=served, tmp=tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and why in err[0] and err[0].startswith("avmon: error:")
