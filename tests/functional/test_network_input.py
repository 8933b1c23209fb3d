"""An HLS playlist and an MPEG-TS file over HTTP, served on loopback, analysed like a file."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from avmon.media.segment import split_segments
from avmon.monitor.analysis import analyze

pytestmark = pytest.mark.functional


@pytest.fixture
def served(tmp_path: Path, ts_clip: Path) -> Iterator[str]:
    segments = list(split_segments(ts_clip, 2.0))
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:3", "#EXT-X-MEDIA-SEQUENCE:0"]
    for seg in segments:
        (tmp_path / f"{seg.index:03d}.ts").write_bytes(seg.data)
        lines += ["#EXTINF:2.0,", f"{seg.index:03d}.ts"]
    lines.append("#EXT-X-ENDLIST")
    (tmp_path / "index.m3u8").write_text("\n".join(lines) + "\n")
    (tmp_path / "whole.ts").write_bytes(ts_clip.read_bytes())
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return None


@pytest.mark.parametrize("name", ["index.m3u8", "whole.ts"])
def test_network_input_is_analysed(served: str, name: str) -> None:
    report = analyze(f"{served}/{name}").report
    freezes = [d for d in report.defects if d.detector == "freeze"]
    assert len(freezes) == 1
    assert freezes[0].start_s == pytest.approx(2.0, abs=0.05)
    assert report.stream.duration_s == pytest.approx(6.0, abs=0.1)
