"""Each kind of bad input: one line on stderr naming the problem, a non-zero exit, no traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    (["--frobnicate", "analyze", "x.mp4"], ["error: unrecognized arguments: --frobnicate"]),
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
    (["--segment-seconds", "0.1"], ["--segment-seconds", "'0.1'", ">= 0.5"]),
    (["--frames-per-invocation", "-3"], ["--frames-per-invocation", "'-3'", ">= 0"]),
    (["--workflow", "lambda"], ["invalid choice"]),
])
def test_simulate_rejects_bad_settings(capsys, clip, args, words):
    code, _, err = run(["simulate", str(clip), *args], capsys)
    assert code == 2
    one_line_error(err, *words)


# -- The table: every command and option, each kind of bad value ---------------------------------
#
# Each case is run in-process (fast: every one fails before any decoding or deployment) and must
# end with exactly one "avmon: error:" line naming the problem, exit code 2, no traceback, and
# no file left where the command would have written one. Placeholders in the arguments: {d} is
# the test's folder; the named files below are made there.

PRICE = {"usd": 0.2, "per": 1_000_000, "unit": "requests", "source": "x", "checked": "2026-11"}
QUOTAS_OK = {"sfn_transitions": {"bucket": 5000, "refill_per_s": 1500},
             "sfn_start_execution": {"bucket": 1300, "refill_per_s": 300},
             "express_start_execution": {"bucket": 6000, "refill_per_s": 6000},
             "lambda_concurrency": {"limit": 1000, "burst": 3000, "scale_per_minute": 500},
             "s3_prefix": {"put_per_s": 3500, "get_per_s": 5500}}
USAGE_OK = {"executions": 30, "state_transitions": 450, "requests": {"s3": {"PutObject": 1}},
            "lambda": {"Converter": {"invocations": 30, "billed_ms": 15000, "memory_mb": 2048}}}


def _sim(**over):
    return json.dumps({"source": "x.mp4", "duration_s": 60.0, "defects": [], "usage": USAGE_OK,
                       "pipeline": {"workflow_type": "STANDARD"}, **over})


def _bench(design, **over):
    entry = {"stream_s": 60.0, "defects": [], "usage": USAGE_OK, "config": {}, **over}
    return json.dumps({"designs": {design: entry}})


FILES: dict[str, str | bytes] = {
    "media.mp4": b"\0",  # never read: the option or setting fails first
    "text.txt": "hello\nthis is not a video\n" * 40,
    "binary.json": bytes(range(256)) * 8,
    "list.json": "[1]",
    "null.json": "null",
    "number.json": "42",
    "broken.json": "{not json",
    "broken.toml": "[freeze\nmin_duration_s = ",
    "broken.yaml": "a: [1, 2",
    # detector settings
    "nan.json": '{"black": {"luma_max": NaN}}',
    "nan_float.json": '{"black": {"min_fraction": NaN}}',
    "inf.json": '{"silence": {"threshold_dbfs": Infinity}}',
    "huge.json": '{"freeze": {"min_duration_s": 1e400}}',
    "false.json": '{"block_corruption": {"propagate": "false"}}',
    "one.json": '{"block_corruption": {"propagate": 1}}',
    "frac_int.json": '{"av_sync": {"min_votes": 2.5}}',
    "negative.json": '{"freeze": {"min_duration_s": -1}}',
    "window0.json": '{"clipping": {"window_s": 0}}',
    "level.json": '{"clipping": {"level": 2}}',
    "dbfs.json": '{"silence": {"threshold_dbfs": 6}}',
    "strnum.json": '{"freeze": {"min_duration_s": "0.5"}}',
    "boolnum.json": '{"freeze": {"min_duration_s": true}}',
    "unknown_detector.json": '{"wobble": {}}',
    "unknown_setting.json": '{"freeze": {"speed": 1}}',
    "not_table.json": '{"freeze": 3}',
    "bad.toml": "[silence]\nthreshold_dbfs = nan\n",
    "bad.yaml": "black:\n  luma_max: .nan\n",
    # pipeline settings
    "fpi.json": '{"frames_per_invocation": 2.5}',
    "seg_nan.json": '{"segment_seconds": NaN}',
    "seg_small.json": '{"segment_seconds": 0.1}',
    "workflow.json": '{"workflow_type": "lambda"}',
    "memory.json": '{"converter_memory_mb": 64}',
    "timeout.json": '{"timeout_s": 1000}',
    "expire.json": '{"frames_expire_days": 0}',
    "layout.json": '{"frame_layout": null}',
    "bogus.json": '{"bogus": 1}',
    # usage files (saved runs)
    "u_list.json": "[1]",
    "u_neither.json": '{"hello": 1}',
    "u_exec.json": _sim(usage={**USAGE_OK, "executions": -1}),
    "u_exec_float.json": _sim(usage={**USAGE_OK, "executions": 2.5}),
    "u_exec_huge.json": _sim(usage={**USAGE_OK, "executions": 10**400}),
    "u_requests.json": _sim(usage={**USAGE_OK, "requests": {"s3": {"PutObject": -1}}}),
    "u_usage_num.json": _sim(usage=5),
    "u_duration.json": _sim(duration_s=0),
    "u_duration_str.json": _sim(duration_s="60"),
    "u_memory.json": _sim(usage={**USAGE_OK, "lambda": {"C": {"invocations": 1, "billed_ms": 1,
                                                               "memory_mb": 99999}}}),
    "u_defects.json": _sim(defects=[{"detector": "black"}]),
    "u_defect_nan.json": _sim(defects=[{"detector": "black", "start_s": float("nan"),
                                        "end_s": 1}]),
    "b_stream.json": _bench("serverless-original", stream_s="x"),
    "b_empty.json": json.dumps({"designs": {}}),
    "b_designs_list.json": json.dumps({"designs": [1]}),
    "b_single_nan.json": _bench("single-process", usage={"cpu_per_stream_second": float("nan"),
                                                          "peak_mb": 70}),
    "b_single_missing.json": _bench("single-process", usage={"peak_mb": 70}),
    "b_usage_bad.json": _bench("serverless-tuned", usage={"executions": "many"}),
    # quota tables
    "q_missing.json": json.dumps({"sfn_transitions": {"bucket": 1, "refill_per_s": 1}}),
    "q_shape.json": json.dumps({**QUOTAS_OK, "sfn_transitions": 5}),
    "q_negative.json": json.dumps({**QUOTAS_OK, "s3_prefix": {"put_per_s": -1, "get_per_s": 1}}),
    "q_nan.json": json.dumps({**QUOTAS_OK, "lambda_concurrency": {
        "limit": float("nan"), "burst": 1, "scale_per_minute": 1}}),
    "q_zero.json": json.dumps({**QUOTAS_OK, "sfn_start_execution": {"bucket": 1,
                                                                    "refill_per_s": 0}}),
    # price tables
    "p_regions_list.json": json.dumps({"regions": []}),
    "p_no_regions.json": json.dumps({"prices": {}}),
    "p_entry_str.json": json.dumps({"regions": {"us-east-1": {"lambda_request": {
        **PRICE, "usd": "cheap"}}}}),
    "p_entry_nan.json": json.dumps({"regions": {"us-east-1": {"lambda_request": {
        **PRICE, "usd": float("nan")}}}}),
    "p_per_zero.json": json.dumps({"regions": {"us-east-1": {"lambda_request": {
        **PRICE, "per": 0}}}}),
    "p_missing_unit.json": json.dumps({"regions": {"us-east-1": {"lambda_request": {
        k: v for k, v in PRICE.items() if k != "unit"}}}}),
    "p_entry_list.json": json.dumps({"regions": {"us-east-1": [1]}}),
    # a file where a folder is wanted
    "afile": "x",
}

CONFIG_CASES = [  # analyze --config FILE
    ("missing.json", ["missing.json", "cannot read detector settings"]),
    ("binary.json", ["not a text file"]),
    ("list.json", ["must be an object of detector settings"]),
    ("null.json", ["must be an object of detector settings"]),
    ("number.json", ["must be an object of detector settings"]),
    ("broken.json", ["not valid JSON"]),
    ("broken.toml", ["not valid TOML"]),
    ("broken.yaml", ["not valid YAML"]),
    ("nan.json", ["black.luma_max = nan", "whole number"]),
    ("nan_float.json", ["black.min_fraction = nan", "finite number"]),
    ("inf.json", ["silence.threshold_dbfs = inf", "finite number"]),
    ("huge.json", ["freeze.min_duration_s = inf", "finite number"]),
    ("false.json", ["block_corruption.propagate = 'false'", "true or false"]),
    ("one.json", ["block_corruption.propagate = 1", "true or false"]),
    ("frac_int.json", ["av_sync.min_votes = 2.5", "whole number"]),
    ("negative.json", ["freeze.min_duration_s = -1", ">= 0"]),
    ("window0.json", ["clipping.window_s = 0", ">= 0.001"]),
    ("level.json", ["clipping.level = 2", "<= 1"]),
    ("dbfs.json", ["silence.threshold_dbfs = 6", "<= 0"]),
    ("strnum.json", ["freeze.min_duration_s = '0.5'", "must be a number"]),
    ("boolnum.json", ["freeze.min_duration_s = True", "must be a number"]),
    ("unknown_detector.json", ["unknown detector 'wobble'", "known: freeze"]),
    ("unknown_setting.json", ["freeze.speed = 1", "not a known setting", "min_duration_s"]),
    ("not_table.json", ["freeze = 3", "must be a table"]),
    ("bad.toml", ["silence.threshold_dbfs = nan", "finite"]),
    ("bad.yaml", ["black.luma_max = nan", "whole number"]),
]

PIPELINE_CASES = [  # simulate --pipeline-config FILE
    ("missing.json", ["cannot read pipeline settings"]),
    ("binary.json", ["not a text file"]),
    ("list.json", ["must be an object of settings", "got list"]),
    ("null.json", ["must be an object of settings", "got NoneType"]),
    ("broken.json", ["not valid JSON"]),
    ("fpi.json", ["frames_per_invocation = 2.5", "whole number"]),
    ("seg_nan.json", ["segment_seconds = nan", "finite"]),
    ("seg_small.json", ["segment_seconds = 0.1", ">= 0.5"]),
    ("workflow.json", ["workflow_type = 'lambda'", "'STANDARD' or 'EXPRESS'"]),
    ("memory.json", ["converter_memory_mb = 64", ">= 128"]),
    ("timeout.json", ["timeout_s = 1000", "<= 900"]),
    ("expire.json", ["frames_expire_days = 0", ">= 1"]),
    ("layout.json", ["frame_layout = None", "object-per-frame"]),
    ("bogus.json", ["bogus = 1", "not a known setting", "segment_seconds"]),
]

USAGE_CASES = [  # cost/limits/benchmark --usage FILE
    ("missing.json", ["cannot read usage"]),
    ("binary.json", ["not a text file"]),
    ("u_list.json", ["not the output of"]),
    ("null.json", ["not the output of"]),
    ("u_neither.json", ["not the output of"]),
    ("u_exec.json", ["usage.executions = -1", ">= 0"]),
    ("u_exec_float.json", ["usage.executions = 2.5", "whole number"]),
    ("u_exec_huge.json", ["usage.executions = 1000", "<= 1000000000000000"]),
    ("u_requests.json", ["usage.requests.s3.PutObject = -1", ">= 0"]),
    ("u_usage_num.json", ["usage = 5", "must be a table"]),
    ("u_duration.json", ["duration_s = 0", "> 0"]),
    ("u_duration_str.json", ["duration_s = '60'", "must be a number"]),
    ("u_memory.json", ["memory_mb = 99999", "<= 10240"]),
    ("u_defects.json", ["defects.0.start_s is missing"]),
    ("u_defect_nan.json", ["defects.0.start_s = nan", "finite"]),
    ("b_stream.json", ["designs.serverless-original.stream_s = 'x'", "must be a number"]),
    ("b_empty.json", ["designs = {}"]),
    ("b_designs_list.json", ["designs = [1]", "must be a table"]),
    ("b_single_nan.json", ["cpu_per_stream_second = nan", "finite"]),
    ("b_single_missing.json", ["cpu_per_stream_second is missing"]),
    ("b_usage_bad.json", ["executions = 'many'", "whole number"]),
]

QUOTA_CASES = [  # --quotas FILE
    ("1999", ["cannot read quotas"]),
    ("binary.json", ["not a text file"]),
    ("list.json", ["[1]", "must be a table"]),
    ("q_missing.json", ["sfn_start_execution is missing"]),
    ("q_shape.json", ["sfn_transitions = 5", "must be a table"]),
    ("q_negative.json", ["s3_prefix.put_per_s = -1", "> 0"]),
    ("q_nan.json", ["lambda_concurrency.limit = nan", "finite"]),
    ("q_zero.json", ["sfn_start_execution.refill_per_s = 0", "> 0"]),
]

PRICE_CASES = [  # --prices FILE
    ("missing.json", ["cannot read prices"]),
    ("binary.json", ["not a text file"]),
    ("list.json", ["[1]", "must be a table"]),
    ("p_regions_list.json", ["regions = []", "must be a table"]),
    ("p_no_regions.json", ["regions is missing"]),
    ("p_entry_str.json", ["regions.us-east-1.lambda_request.usd = 'cheap'", "must be a number"]),
    ("p_entry_nan.json", ["lambda_request.usd = nan", "finite"]),
    ("p_per_zero.json", ["lambda_request.per = 0", "> 0"]),
    ("p_missing_unit.json", ["lambda_request.unit is missing"]),
    ("p_entry_list.json", ["regions.us-east-1 = [1]", "must be a table"]),
]

NUMBER_VALUES = [  # (value, allowed?) for an option taking a bounded number
    ("nan", "nan"), ("inf", "inf"), ("-inf", "-inf"), ("abc", "abc"), ("", "''"),
]


def _cases() -> list[Any]:
    c: list[Any] = []

    def add(name: str, args: list[str], words: list[str], leftovers: tuple[str, ...] = ()) -> None:
        c.append(pytest.param(args, words, leftovers, id=name))

    # analyze
    for name, words in [("missing", ["no such file"]), ("text.txt", ["no audio or video track",
                                                                       "tty"])]:
        add(f"analyze-input-{name}", ["analyze", "{d}/" + name], words)
    for v, words in [("99999", ["<= 16"]), ("-1", [">= 0"]), ("2.5", ["whole number"]),
                     ("abc", ["whole number"]), ("nan", ["whole number"]), ("1e3", ["whole"])]:
        add(f"analyze-threads-{v}", ["analyze", "{d}/media.mp4", "--threads", v],
            ["--threads", repr(v), *words])
    add("analyze-detectors-empty", ["analyze", "{d}/media.mp4", "--detectors", ","],
        ["--detectors", "at least one name"])
    add("analyze-detectors-unknown", ["analyze", "{d}/media.mp4", "--detectors", "wobble"],
        ["unknown detector", "wobble"])
    add("analyze-config-dir", ["analyze", "{d}/media.mp4", "--config", "{d}"],
        ["cannot read detector settings"])
    for f, words in CONFIG_CASES:
        add(f"analyze-config-{f}", ["analyze", "{d}/media.mp4", "--config", "{d}/" + f], words)

    # synth
    synth = ["synth", "{d}/out.mp4", "--duration", "5"]
    out = ("out.mp4", "out.mp4.truth.json")
    for v in ["nan", "inf", "0", "-1", "abc", "1e9"]:
        add(f"synth-duration-{v}", ["synth", "{d}/out.mp4", "--duration", v],
            ["--duration", repr(v)], out)
    for opt, v, words in [
        ("--fps", "2.5", ["whole number"]), ("--fps", "0", [">= 1"]),
        ("--fps", "1000", ["<= 120"]), ("--fps", "nan", ["whole number"]),
        ("--seed", "-1", [">= 0"]), ("--seed", "2.5", ["whole number"]),
        ("--seed", "99999999999", ["<= 4294967295"]),
        ("--size", "big", ["size must look like"]), ("--size", "99999x99999", ["3840x2160"]),
        ("--size", "33x32", ["even"]), ("--size", "0x0", ["32x32"]),
        ("--size", "1280x720x3", ["size must look like"]), ("--size=-640x360", "", ["32x32"]),
        ("--size", "16x16", ["32x32"]),
    ]:
        add(f"synth{opt}-{v}", [*synth, opt, v] if v else [*synth, opt],
            [opt.split("=")[0], *words], out)
    for spec, words in [
        ("freeze@1", ["bad defect"]), ("wobble@1:1", ["unknown defect", "wobble"]),
        ("freeze@1:0", ["no duration"]), ("freeze@4:3", ["ends after"]),
        ("freeze@nan:1", ["bad defect"]), ("freeze@-1:1", ["bad defect"]),
        ("av_sync@1:2", ["needs an offset"]), ("av_sync@1:2=+0ms", ["needs an offset"]),
        ("av_sync@1:2=+99999999ms", ["at most 10000 ms"]),
        ("silence@1:1=ch9", ["=ch0 or =ch1"]), ("silence@1:1=ch", ["=ch0 or =ch1"]),
        ("silence@1:1=ch99999999999999999999", ["=ch0 or =ch1"]),
        ("clipping@1:1=+999dB", ["at most 60 dB"]), ("clipping@1:1=+0dB", ["more than 0"]),
        ("clipping@1:1=loud", ["gain like"]), ("black@1:1=x", ["takes no option"]),
        ("freeze@1:1,,black@2:1=ch0", ["takes no option"]),
    ]:
        add(f"synth-defects-{spec}", [*synth, "--defects", spec], words, out)
    add("synth-content", [*synth, "--content", "jazz"], ["--content 'jazz'",
                                                         "unknown content kind"], out)
    add("synth-no-tracks", [*synth, "--no-audio", "--no-video"], ["leave nothing"], out)
    add("synth-no-audio-silence", [*synth, "--no-audio", "--defects", "silence@1:1"],
        ["needs the track"], out)
    add("synth-out-dir", ["synth", "{d}", "--duration", "5"], ["is a folder"])
    add("synth-out-suffix", ["synth", "{d}/out.txt", "--duration", "5"],
        ["must end in .mp4"], ("out.txt", "out.txt.truth.json"))
    add("synth-out-under-file", ["synth", "{d}/afile/out.mp4", "--duration", "5"],
        ["afile is a file, not a folder"])
    add("synth-out-unwritable", ["synth", "/sys/avmon-test/out.mp4", "--duration", "5"],
        ["cannot write the stream"])

    # corpus
    add("corpus-file", ["corpus", "{d}/afile"], ["must be a folder, but this is a file"])
    add("corpus-under-file", ["corpus", "{d}/afile/c"], ["afile is a file"])
    add("corpus-unwritable", ["corpus", "/sys/avmon-test"], ["cannot write the corpus"])

    # evaluate
    add("evaluate-missing", ["evaluate", "{d}/nope"], ["not a directory"])
    add("evaluate-file", ["evaluate", "{d}/afile"], ["not a directory"])
    add("evaluate-empty", ["evaluate", "{d}/empty"], ["no stream with a .truth.json"])
    for name, words in [("binary", ["not a text file"]), ("list", ["[1]", "must be a table"]),
                        ("nodefects", ["defects is missing"]),
                        ("nan", ["defects.0.start_s = nan", "finite"]),
                        ("conf", ["defects.0.confidence = 7", "<= 1"]),
                        ("detector", ["unknown detector 'blak'", "known: freeze"])]:
        add(f"evaluate-truth-{name}", ["evaluate", "{d}/truth-" + name], words)

    # simulate: settings only (each fails before anything is deployed)
    sim = ["simulate", "{d}/media.mp4"]
    for opt, v, words in [
        ("--segment-seconds", "nan", ["finite"]), ("--segment-seconds", "0.1", [">= 0.5"]),
        ("--segment-seconds", "100", ["<= 60"]), ("--segment-seconds", "abc", ["finite"]),
        ("--frames-per-invocation", "2.5", ["whole number"]),
        ("--frames-per-invocation", "-3", [">= 0"]),
        ("--frames-per-invocation", "1e9", ["whole number"]),
        ("--transition-bucket", "nan", ["> 0"]), ("--transition-bucket", "0", ["> 0"]),
        ("--transition-bucket", "-5", ["> 0"]), ("--transition-bucket", "inf", ["finite"]),
        ("--transition-refill", "0", ["> 0"]), ("--transition-refill", "nan", ["finite"]),
        ("--workflow", "lambda", ["invalid choice"]), ("--frame-layout", "x", ["invalid choice"]),
    ]:
        add(f"simulate{opt}-{v}", [*sim, opt, v], [opt, *words])
    for f, words in PIPELINE_CASES:
        add(f"simulate-pipeline-config-{f}", [*sim, "--pipeline-config", "{d}/" + f], words)
    add("simulate-input-text", ["simulate", "{d}/text.txt"], ["no audio or video track"])
    add("simulate-no-input", ["simulate"], ["required"])

    # report: arguments only (no AWS call is made for these)
    add("report-no-bucket", ["report", "--stream", "s"], ["--bucket"])
    add("report-no-stream", ["report", "--bucket", "bucket"], ["--stream"])
    for v in ["Bad_Bucket", "ab", "", "a..b", "-abc", "x" * 64]:
        add(f"report-bucket-{v[:10]}", ["report", f"--bucket={v}", "--stream", "s"],
            ["--bucket", "S3 bucket name"])
    for v in ["", "/s", "s/", "a\nb"]:
        add(f"report-stream-{v!r}", ["report", "--bucket", "bucket", f"--stream={v}"],
            ["--stream", "stream name"])

    # cost, limits, benchmark
    for cmd in ("cost", "limits", "benchmark"):
        add(f"{cmd}-no-input", [cmd], ["one of the arguments"])
        add(f"{cmd}-both-inputs", [cmd, "{d}/media.mp4", "--usage", "{d}/sim.json"],
            ["not allowed with"])
        add(f"{cmd}-input-text", [cmd, "{d}/text.txt"], ["no audio or video track"])
        add(f"{cmd}-region", [cmd, "--usage", "{d}/sim.json", "--region", "mars-1"],
            ["no prices for region 'mars-1'", "us-east-1"])
        add(f"{cmd}-design", [cmd, "--usage", "{d}/sim.json", "--design", "mainframe"],
            ["--design mainframe", "unknown design"])
        add(f"{cmd}-design-empty", [cmd, "--usage", "{d}/sim.json", "--design", ""],
            ["--design", "at least one"])
        for v, words in [("0", [">= 1"]), ("2.5", ["whole number"]), ("nan", ["whole"]),
                         ("9999999999", ["<= 1000000"]), ("abc", ["whole number"])]:
            add(f"{cmd}-expected-streams-{v}", [cmd, "--usage", "{d}/sim.json",
                                                "--expected-streams", v],
                ["--expected-streams", repr(v), *words])
        for f, words in USAGE_CASES:
            add(f"{cmd}-usage-{f}", [cmd, "--usage", "{d}/" + f], words)
        for f, words in QUOTA_CASES:
            q = f if f == "1999" else "{d}/" + f
            add(f"{cmd}-quotas-{f}", [cmd, "--usage", "{d}/sim.json", "--quotas", q], words)
        for f, words in PRICE_CASES:
            add(f"{cmd}-prices-{f}", [cmd, "--usage", "{d}/sim.json", "--prices", "{d}/" + f],
                words)
    for opt, v, words in [("--hours", "nan", ["finite"]), ("--hours", "inf", ["finite"]),
                          ("--hours", "0", ["> 0"]), ("--hours", "-1", ["> 0"]),
                          ("--hours", "abc", ["finite"]), ("--hours", "1e300", ["<= 1000000"]),
                          ("--streams", "0", [">= 1"]), ("--streams", "2.5", ["whole"]),
                          ("--streams", "1e12", ["whole"]), ("--streams", "-5", [">= 1"])]:
        add(f"cost{opt}-{v}", ["cost", "--usage", "{d}/sim.json", opt, v], [opt, repr(v), *words])
    add("benchmark-report-file", ["benchmark", "--usage", "{d}/sim.json", "--report",
                                  "{d}/afile"], ["must be a folder, but this is a file"])
    add("benchmark-report-under-file", ["benchmark", "--usage", "{d}/sim.json", "--report",
                                        "{d}/afile/r"], ["afile is a file"])
    add("benchmark-report-unwritable", ["benchmark", "--usage", "{d}/sim.json", "--report",
                                        "/sys/avmon-test"], ["cannot write the report"])

    # demo: arguments and its output folder (each fails before the stream is written)
    for v, words in [("5", [">= 29"]), ("nan", ["finite"]), ("99999", ["<= 3600"])]:
        add(f"demo-duration-{v}", ["demo", "--out", "{d}/demo", "--duration", v],
            ["--duration", *words], ("demo",))
    add("demo-size", ["demo", "--out", "{d}/demo", "--size", "99999x99999"], ["--size"],
        ("demo",))
    add("demo-out-file", ["demo", "--out", "{d}/afile"], ["must be a folder"])
    add("demo-out-under-file", ["demo", "--out", "{d}/afile/demo"], ["afile is a file"])
    add("demo-out-unwritable", ["demo", "--out", "/sys/avmon-test"], ["cannot write"])

    # watch and serve: their numbers are checked before any source is opened (a NaN poll
    # interval made serve wait forever, deaf to SIGTERM; a NaN timeout never raised input_loss)
    watch = ["watch", "udp://127.0.0.1:9"]
    serve = ["serve", "--streams", "{d}/streams.yaml"]
    for v, words in [("nan", ["finite"]), ("inf", ["finite"]), ("0", ["> 0"]),
                     ("-1", ["> 0"]), ("7200", ["<= 3600"])]:
        add(f"watch-input-timeout-{v}", [*watch, "--input-timeout", v],
            ["--input-timeout", repr(v), *words])
        for opt in ("--poll", "--lease-seconds"):
            add(f"serve{opt}-{v}", [*serve, opt, v], [opt, repr(v), *words])
    for v, words in [("99999", ["<= 65535"]), ("-5", [">= 0"]), ("80.5", ["whole"])]:
        add(f"serve-port-{v}", [*serve, "--port", v], ["--port", repr(v), *words])

    # every command: an unknown option
    for cmd in (["analyze", "{d}/media.mp4"], synth, ["corpus", "{d}/c"], ["evaluate", "{d}"],
                sim, ["report", "--bucket", "bucket", "--stream", "s"],
                ["cost", "--usage", "{d}/sim.json"], ["limits", "--usage", "{d}/sim.json"],
                ["benchmark", "--usage", "{d}/sim.json"], ["demo", "--out", "{d}/demo"],
                watch, serve):
        add(f"{cmd[0]}-unknown-option", [*cmd, "--frobnicate"],
            ["unrecognized arguments: --frobnicate"], ("c", "demo", "out.mp4"))
    return c


CASES = _cases()


@pytest.fixture
def bad_files(tmp_path: Path) -> Path:
    for name, content in FILES.items():
        p = tmp_path / name
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    (tmp_path / "sim.json").write_text(_sim())
    (tmp_path / "empty").mkdir()
    truths = {"binary": bytes(range(256)), "list": b"[1]", "nodefects": b'{"source": "x"}',
              "nan": b'{"defects": [{"detector": "black", "start_s": NaN, "end_s": 1}]}',
              "conf": b'{"defects": [{"detector": "black", "start_s": 0, "end_s": 1,'
                      b' "confidence": 7}]}',
              "detector": b'{"defects": [{"detector": "blak", "start_s": 0, "end_s": 1}]}'}
    for name, content in truths.items():
        folder = tmp_path / f"truth-{name}"
        folder.mkdir()
        (folder / "s.mp4").write_bytes(b"\0")
        (folder / "s.mp4.truth.json").write_bytes(content)
    return tmp_path


@pytest.mark.parametrize(("args", "words", "leftovers"), CASES)
def test_bad_input_table(capsys, bad_files, monkeypatch, args, words, leftovers):
    monkeypatch.chdir(bad_files)
    before = sorted(p.name for p in bad_files.iterdir())
    code, _, err = run([a.replace("{d}", str(bad_files)) for a in args], capsys)
    assert code == 2, (code, err)
    one_line_error(err, *words)
    assert sorted(p.name for p in bad_files.iterdir()) == before  # nothing half-written
    for name in leftovers:
        assert not (bad_files / name).exists()
    assert not Path("/sys/avmon-test").exists()


def test_the_table_covers_every_command():
    commands = {p.values[0][0] for p in CASES if p.values[0]}
    assert commands == {"analyze", "synth", "corpus", "evaluate", "simulate", "report", "cost",
                        "limits", "benchmark", "demo", "watch", "serve"}
    assert len(CASES) >= 250


@pytest.mark.parametrize(("failure", "code"), [
    (KeyboardInterrupt, 130), (OSError(28, "No space left on device"), 2)])
def test_synth_leaves_no_half_written_stream(capsys, tmp_path, monkeypatch, failure, code):
    """Interrupted or out of space mid-encode: the partial stream is removed, not left to be
    mistaken for a labelled one."""
    import avmon.media.encode

    def write_some_then_fail(path, *_a, **_k):
        Path(path).write_bytes(b"\0" * 1000)
        if isinstance(failure, OSError):
            failure.filename = str(path)
        raise failure

    monkeypatch.setattr(avmon.media.encode, "write_stream", write_some_then_fail)
    out = tmp_path / "o.mp4"
    got, _, err = run(["synth", str(out), "--duration", "2"], capsys)
    assert got == code
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_serve_leases_without_an_aws_region_is_one_line(capsys, tmp_path, monkeypatch):
    (tmp_path / "streams.yaml").write_text("streams: []\n")
    for var in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    code, _, err = run(["serve", "--streams", str(tmp_path / "streams.yaml"), "--port", "0",
                        "--leases", "avmon-leases"], capsys)
    assert code == 2
    one_line_error(err, "lease table avmon-leases", "region")
