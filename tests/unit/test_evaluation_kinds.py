"""Evaluation bookkeeping without decoding: kinds from truth files, the per-kind table, and the
list of false alarms on real-footage controls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avmon.errors import ConfigError
from avmon.evaluation.footage import SOURCES, STREAMS, drop_ts_packets
from avmon.evaluation.runs import format_scores, stream_label
from avmon.evaluation.scoring import Score


def test_truth_files_without_a_kind_are_synthetic(tmp_path: Path) -> None:
    old = tmp_path / "a.mp4.truth.json"
    old.write_text(json.dumps({"defects": []}))
    assert stream_label(old) == {"kind": "synthetic", "content": "", "control": True}
    real = tmp_path / "b.mp4.truth.json"
    real.write_text(json.dumps({"kind": "real", "content": "bikes", "control": False,
                                "defects": [{"detector": "freeze", "start_s": 1, "end_s": 2}]}))
    assert stream_label(real) == {"kind": "real", "content": "bikes", "control": False}
    bad = tmp_path / "c.mp4.truth.json"
    bad.write_text("{")
    with pytest.raises(ConfigError, match="not a truth file"):
        stream_label(bad)


def _scores(tp: int, fp: int, fn: int) -> dict[str, object]:
    return Score(tp, fp, fn, [0.04] * tp).to_dict()


def test_table_per_kind_and_control_false_alarms_by_name() -> None:
    names = ("freeze", "black", "block_corruption", "silence", "clipping", "av_sync")
    result = {
        "streams": [
            {"stream": "s.mp4", "kind": "synthetic", "control": False, "errors": {}},
            {"stream": "bbb-control.mp4", "kind": "real", "control": True,
             "errors": {"silence": 1}},
            {"stream": "bikes-pan.mp4", "kind": "real", "control": True, "errors": {}},
        ],
        "avmon": {n: _scores(2, 1, 0) for n in names},
        "by_kind": {
            "synthetic": {"streams": 1, "controls": 0, "avmon": {n: _scores(1, 0, 0)
                                                                  for n in names}},
            "real": {"streams": 2, "controls": 2, "avmon": {n: _scores(1, 1, 0) for n in names}},
        },
        "control_false_alarms": [{"stream": "bbb-control.mp4", "kind": "real", "tool": "avmon",
                                  "detector": "silence", "start_s": 0.0, "end_s": 26.4}],
    }
    text = format_scores(result)
    assert "3 labelled streams: 1 synthetic (0 controls), 2 real footage (2 controls)" in text
    row = next(line for line in text.splitlines() if line.startswith("silence"))
    assert row.split("|")[1].split() == ["1", "0", "0", "1.00"]   # synthetic
    assert row.split("|")[2].split() == ["1", "1", "0", "0.67"]   # real footage
    assert "bbb-control.mp4 (real footage): silence 1" in text
    assert "false alarms on the 2 clean real-footage controls:" in text
    assert "  bikes-pan.mp4: none" in text
    assert "  bbb-control.mp4: 1 false alarms" in text
    assert ["avmon", "silence", "0.00", "-", "26.40", "s"] in [line.split()
                                                            for line in text.splitlines()]


def test_real_footage_corpus_covers_every_defect_kind_and_controls() -> None:
    assert len(STREAMS) >= 18 and len({s.name for s in STREAMS}) == len(STREAMS)
    assert sum(s.control for s in STREAMS) >= 6
    assert {s.name for s in STREAMS if "sync" in s.name} >= {
        "bbb-edit-sync+200ms.mp4", "bbb-edit-sync-200ms.mp4", "bbb-edit-sync+500ms.mp4",
        "bbb-edit-sync-500ms.mp4", "bbb-loop-sync-500ms.mp4"}


def test_shifted_audio_is_cut_from_a_re_edited_programme_not_a_loop() -> None:
    """Correlation needs events that do not repeat: the shifted streams come from shots of the
    clip in a new order; a loop of it is kept once, with "not measurable" as its truth."""
    edit = SOURCES["bbbedit"]
    assert len(edit.shots) >= 15 and len({first for first, _ in edit.shots}) >= 15
    assert edit.duration >= 30.0
    assert all(20 <= n <= 60 and first + n <= 132 for first, n in edit.shots)
    assert SOURCES["bbb"].shots == ((0, 132),) * 5
    loop = next(s for s in STREAMS if s.name == "bbb-loop-sync-500ms.mp4")
    assert loop.source == "bbb"


def test_packet_loss_drops_whole_video_packets() -> None:
    def packet(pid: int, n: int) -> bytes:
        return bytes([0x47, pid >> 8, pid & 0xFF, 0x10 | (n & 0x0F)]) + bytes(184)

    data = b"".join(packet(0x100 if i % 2 else 0x101, i) for i in range(1000))
    damaged = drop_ts_packets(data, [0.5], bursts=2, seed=1)
    assert len(damaged) == len(data) - 2 * 7 * 188
    kept = [damaged[i:i + 188] for i in range(0, len(damaged), 188)]
    assert sum(p[2] == 0x01 for p in kept) == 500  # the other PID untouched
    with pytest.raises(ConfigError, match="not an MPEG-TS"):
        drop_ts_packets(b"\x00" * 188, [0.5], 1, 0)
