"""``make demo``'s live part: two UDP sources watched in one process, every defect alerted."""

import shutil
from pathlib import Path

import pytest

from avmon.demo import run_live_demo


@pytest.mark.functional
@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI (make setup)")
def test_every_injected_defect_opens_and_closes_on_its_stream(tmp_path: Path) -> None:
    alerts = run_live_demo(tmp_path)
    seen = {(a.event.stream, a.event.detector, a.event.event) for a in alerts}
    for stream, detector in [("live-1", "freeze"), ("live-1", "black"),
                             ("live-2", "silence"), ("live-2", "clipping")]:
        assert (stream, detector, "open") in seen
        assert (stream, detector, "close") in seen
    assert all(a.latency_s >= 0 for a in alerts)
    # the sources end: each stream says so, rather than falling silent
    assert {("live-1", "input_loss", "open"), ("live-2", "input_loss", "open")} <= seen
