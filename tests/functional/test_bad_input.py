"""Each kind of bad input: one line on stderr naming the problem, a non-zero exit, no traceback."""

from __future__ import annotations

import json

import pytest

from avmon.cli import main
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize

pytestmark = pytest.mark.functional


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("avmon: error: ")
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_missing_path(capsys, tmp_path):
    code, _, err = run(["analyze", str(tmp_path / "nope.mp4")], capsys)
    assert code == 2
    one_line_error(err, "nope.mp4", "no such file")


def test_empty_file(capsys, tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    code, _, err = run(["analyze", str(tmp_path / "empty.mp4")], capsys)
    assert code == 2
    one_line_error(err, "empty file")


def test_random_bytes(capsys, tmp_path):
    (tmp_path / "noise.mp4").write_bytes(bytes(range(256)) * 400)
    code, _, err = run(["analyze", str(tmp_path / "noise.mp4")], capsys)
    assert code == 2
    one_line_error(err, "noise.mp4", "not readable as media")


def test_directory(capsys, tmp_path):
    code, _, err = run(["analyze", str(tmp_path)], capsys)
    assert code == 2
    one_line_error(err, "directory")


def test_truncated_mp4(capsys, clip, tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])  # index (moov) is at the end
    code, _, err = run(["analyze", str(cut)], capsys)
    assert code == 2
    one_line_error(err, "cut.mp4", "not readable as media")


def test_truncated_stream_keeps_what_was_decoded(capsys, ts_clip, tmp_path):
    cut = tmp_path / "cut.ts"
    cut.write_bytes(ts_clip.read_bytes()[: ts_clip.stat().st_size * 3 // 5])
    code, out, err = run(["analyze", str(cut), "--json"], capsys)
    report = json.loads(out)  # the partial report is still printed
    assert report["duration_s"] < 5.0
    assert code in (0, 3)
    if code == 3:
        one_line_error(err, "truncated")


def test_video_only_skips_audio_detectors(capsys, tmp_path):
    out = tmp_path / "v.mp4"
    synthesize(SynthRequest(out, 3, tuple(parse_defects("black@1:1")), 160, 96, audio=False))
    code, stdout, err = run(["analyze", str(out), "--json"], capsys)
    assert code == 0
    assert "skipped silence: no audio track" in err
    assert "skipped av_sync: no audio track" in err
    report = json.loads(stdout)
    assert report["audio"] is None
    assert [d["detector"] for d in report["defects"]] == ["black"]


def test_audio_only_skips_video_detectors(capsys, tmp_path):
    out = tmp_path / "a.mp4"
    synthesize(SynthRequest(out, 4, tuple(parse_defects("silence@1:1.5")), video=False))
    code, stdout, err = run(["analyze", str(out), "--json"], capsys)
    assert code == 0
    assert "skipped freeze: no video track" in err
    assert [d["detector"] for d in json.loads(stdout)["defects"]] == ["silence"]


@pytest.mark.parametrize(("args", "words"), [
    (["analyze", "x.mp4", "--detectors", "freeze,wobble"], ["unknown detector", "wobble"]),
    (["analyze", "x.mp4", "--frobnicate"], ["unrecognized arguments"]),
    (["synth", "o.mp4", "--duration", "5", "--defects", "freeze@1"], ["bad defect"]),
    (["synth", "o.mp4", "--duration", "5", "--size", "big"], ["size must look like"]),
    (["synth", "o.mp4", "--duration", "5", "--defects", "freeze@4:3"], ["ends after"]),
    (["synth", "o.mp4", "--duration", "-1"], ["--duration"]),
    (["synth", "o.mp4", "--duration", "5", "--content", "jazz"], ["unknown content kind"]),
    (["evaluate", "/nonexistent"], ["not a directory"]),
    (["frobnicate"], ["invalid choice"]),
])
def test_nonsense_options(capsys, tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.mp4").write_bytes(b"\0")  # never read: the options fail first
    code, _, err = run(args, capsys)
    assert code == 2
    one_line_error(err, *words)


def test_bad_config_file(capsys, clip, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text("{not json")
    code, _, err = run(["analyze", str(clip), "--config", str(cfg)], capsys)
    assert code == 2
    one_line_error(err, "c.json", "not valid JSON")


@pytest.mark.parametrize(("make", "words"), [
    (lambda p: None, ["no such file"]),
    (lambda p: p.write_bytes(b""), ["empty file"]),
    (lambda p: p.write_bytes(bytes(range(256)) * 64), ["not readable as media"]),
])
def test_simulate_refuses_bad_input_before_deploying(capsys, tmp_path, clip, make, words):
    path = tmp_path / "in.mp4"
    make(path)
    for args in ([str(path)], [str(clip), str(path)], [str(path), "--transition-bucket", "9"]):
        code, _, err = run(["simulate", *args], capsys)
        assert code == 2
        one_line_error(err, "in.mp4", *words)


@pytest.mark.parametrize(("args", "words"), [
    (["--segment-seconds", "0.1"], ["segment_seconds"]),
    (["--frames-per-invocation", "-3"], ["frames_per_invocation"]),
    (["--workflow", "lambda"], ["invalid choice"]),
])
def test_simulate_rejects_bad_settings(capsys, clip, args, words):
    code, _, err = run(["simulate", str(clip), *args], capsys)
    assert code == 2
    one_line_error(err, *words)
