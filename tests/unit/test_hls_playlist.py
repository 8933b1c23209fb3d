"""Parsing live media playlists: sequence numbers, program date-times, what is left to FFmpeg."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from avmon.errors import MediaOpenError
from avmon.monitor.hls import parse_playlist

LIVE = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:41
#EXTINF:2.000000,
#EXT-X-PROGRAM-DATE-TIME:2026-11-30T01:55:15.215+0000
live41.ts
#EXTINF:1.440000,
live42.ts
#EXTINF:2.0,
#EXT-X-PROGRAM-DATE-TIME:2026-11-30T01:55:18.655Z
sub/live43.ts
"""


def test_sequence_numbers_uris_and_program_times() -> None:
    p = parse_playlist(LIVE, "http://origin/ch1/index.m3u8")
    assert (p.target_duration, p.media_sequence, p.ended) == (2.0, 41, False)
    assert [s.sequence for s in p.segments] == [41, 42, 43]
    assert p.segments[2].uri == "http://origin/ch1/sub/live43.ts"
    t41 = datetime(2026, 11, 30, 1, 55, 15, 215000, tzinfo=UTC).timestamp()
    assert p.segments[0].program_time == pytest.approx(t41)
    # a segment without its own tag follows the previous one
    assert p.segments[1].program_time == pytest.approx(t41 + 2.0)
    assert p.segments[2].program_time == pytest.approx(t41 + 3.44)
    assert parse_playlist(LIVE + "#EXT-X-ENDLIST\n", "http://o/x.m3u8").ended


@pytest.mark.parametrize(("tag", "why"), [
    ("#EXT-X-STREAM-INF:BANDWIDTH=800000", "a master playlist"),
    ('#EXT-X-MAP:URI="init.mp4"', "fragmented MP4 segments"),
])
def test_playlists_this_reader_cannot_feed_are_named(tag: str, why: str) -> None:
    assert parse_playlist(f"#EXTM3U\n{tag}\nx\n", "http://o/x.m3u8").unsupported == why


def test_not_a_playlist() -> None:
    with pytest.raises(MediaOpenError, match="not an HLS playlist"):
        parse_playlist("<html>404</html>", "http://o/x.m3u8")
