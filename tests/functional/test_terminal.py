"""The commands in a real terminal (a pseudo-terminal with a width, where progress bars draw)
and through pipes (where they stay silent): same results, same exit codes, never a traceback.

A progress-bar format that could not render an unknown total once crashed every ``analyze`` run
in a terminal while the suite, which only ever ran commands through pipes, stayed green.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from avmon.cli.common import media_progress, segments_progress
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize

pytestmark = pytest.mark.functional

ROOT = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop("COLUMNS", None)  # the terminal's own width must be what tqdm reads
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    return env


def in_terminal(args: list[str], cols: int = 120, timeout: float = 600,
                stdout_pipe: bool = False,
                ctrl_c_when: Callable[[str], bool] | None = None) -> tuple[int, str, str]:
    """Run ``avmon ARGS`` with stdin, stdout and stderr on a pseudo-terminal ``cols`` wide (or
    stdout into a pipe, as in ``avmon ... --json > report.json``); returns the exit code, what
    the terminal showed and what went into the pipe. ``ctrl_c_when``: type Ctrl-C once, when
    what the terminal shows satisfies it."""
    command = " ".join(["stty", "cols", str(cols), "rows", "40;", "exec",
                        sys.executable, "-m", "avmon", *(f"'{a}'" for a in args)])
    pipe_r, pipe_w = os.pipe() if stdout_pipe else (-1, -1)
    pid, fd = pty.fork()
    if pid == 0:  # the child: a shell on the terminal sets its width, then becomes avmon
        if stdout_pipe:
            os.dup2(pipe_w, 1)
            os.close(pipe_r)
        os.execve("/bin/sh", ["/bin/sh", "-c", command], _env())
    if stdout_pipe:
        os.close(pipe_w)
    shown: list[bytes] = []
    piped: list[bytes] = []
    open_fds = {fd: shown, **({pipe_r: piped} if stdout_pipe else {})}
    try:
        while open_fds:
            ready, _, _ = select.select(list(open_fds), [], [], timeout)
            if not ready:
                os.kill(pid, 9)
                raise AssertionError(f"avmon {args} did not finish in {timeout} s")
            for r in ready:
                try:
                    data = os.read(r, 65536)
                except OSError:  # EIO: the child closed the terminal
                    data = b""
                if data:
                    open_fds[r].append(data)
                else:
                    del open_fds[r]
            if ctrl_c_when is not None and ctrl_c_when(b"".join(shown).decode("utf-8",
                                                                               "replace")):
                os.write(fd, b"\x03")
                ctrl_c_when = None
    finally:
        os.close(fd)
        if stdout_pipe:
            os.close(pipe_r)
        _, status = os.waitpid(pid, 0)
    return (os.waitstatus_to_exitcode(status), b"".join(shown).decode("utf-8", "replace"),
            b"".join(piped).decode("utf-8", "replace"))


def visible(shown: str) -> list[str]:
    """The lines a terminal is left showing: a carriage return redraws its line (a progress
    bar that cleared itself leaves nothing)."""
    return [line.rsplit("\r", 1)[-1].rstrip() if line.rstrip("\r") else ""
            for line in shown.replace("\r\n", "\n").split("\n")]


def through_pipes(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "avmon", *args], capture_output=True,
                          text=True, env=_env(), timeout=600, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s, 160x96, one black interval: one pipeline segment."""
    out = tmp_path_factory.mktemp("tiny") / "tiny.mp4"
    synthesize(SynthRequest(out, 2, tuple(parse_defects("black@0.5:1")), 160, 96, seed=3))
    return out


def test_analyze_in_a_terminal(tiny):
    code, shown, _ = in_terminal(["analyze", str(tiny)])
    assert code == 0, shown
    assert "Traceback" not in shown
    assert "black" in shown and "1 defect(s)" in shown


def test_analyze_in_a_narrow_terminal(tiny):
    code, shown, _ = in_terminal(["analyze", str(tiny), "--json"], cols=20)
    assert code == 0, shown
    assert "Traceback" not in shown


def test_analyze_bad_input_in_a_terminal(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n" * 50)
    code, shown, _ = in_terminal(["analyze", str(text)])
    assert code == 2
    lines = [x for x in visible(shown) if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("avmon: error: "), shown


def test_analyze_through_pipes(tiny):
    p = through_pipes(["analyze", str(tiny), "--json"])
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""  # no terminal: no progress bar, no noise
    assert [d["detector"] for d in json.loads(p.stdout)["defects"]] == ["black"]


def test_a_closed_pipe_is_exit_141_without_noise(tiny):
    """The reader of stdout went away (``avmon ... | head`` after head exits)."""
    r, w = os.pipe()
    os.close(r)  # nobody will read: the first write fails with EPIPE
    try:
        p = subprocess.run([sys.executable, "-m", "avmon", "analyze", str(tiny), "--json"],
                           stdout=w, stderr=subprocess.PIPE, text=True, env=_env(), timeout=600)
    finally:
        os.close(w)
    assert p.returncode == 141, p.stderr
    assert p.stderr == ""  # no traceback, no "Exception ignored" from the final flush


def test_analyze_report_into_a_pipe_with_the_bar_on_the_terminal(tiny):
    code, shown, piped = in_terminal(["analyze", str(tiny), "--json"], stdout_pipe=True)
    assert code == 0, shown
    assert "Traceback" not in shown
    assert [d["detector"] for d in json.loads(piped)["defects"]] == ["black"]


def test_simulate_in_a_terminal_with_the_report_into_a_pipe(tiny):
    """One run for both (a deployment costs a minute on a busy machine): the progress bar on
    the terminal, the JSON report through a pipe. Everything through pipes is how every other
    simulate test runs."""
    code, shown, piped = in_terminal(["simulate", str(tiny), "--json"], stdout_pipe=True)
    assert code == 0, shown
    assert "Traceback" not in shown
    assert "deploying the synthesized CDK app" in shown
    assert "segments" in shown  # the bar drew
    report = json.loads(piped)
    assert [d["detector"] for d in report["defects"]] == ["black"]
    assert report["usage"]["executions"] == 1


def test_ctrl_c_during_a_simulation_reports_what_ended_and_lists_the_rest(tmp_path):
    """Ctrl-C while executions run: the running ones finish, the waiting ones never start;
    the segments analysed are reported (the JSON into the pipe), the others named as
    interrupted in one line, and the exit code says the report is incomplete. It was
    "avmon: interrupted" and nothing, then a jsii traceback (Ctrl-C reaches node too)."""
    clip = tmp_path / "long.mp4"
    synthesize(SynthRequest(clip, 60, tuple(parse_defects("black@5:1")), 160, 96, seed=4))

    def some_done(shown: str) -> bool:  # the bar shows "| 3/30 [" once three have ended
        bars = re.findall(r"\| *(\d+)/(\d+) \[", shown)
        return any(0 < int(done) < int(total) - 10 for done, total in bars)

    code, shown, piped = in_terminal(["simulate", str(clip), "--json"], stdout_pipe=True,
                                     ctrl_c_when=some_done)
    assert code == 4, shown
    assert "Traceback" not in shown and "crashed" not in shown
    report = json.loads(piped)
    failed = report["segments"]["failed"]
    assert failed and {f["status"] for f in failed} == {"interrupted"}
    assert 0 < report["usage"]["executions"] == 30 - len(failed)
    assert [d["detector"] for d in report["defects"]] == ["black"]  # from segment 2
    lines = [x for x in visible(shown) if x.startswith("avmon: error: ")]
    assert lines == [f"avmon: error: interrupted: {len(failed)} segment(s) not analysed"
                     " (their executions never ran)",
                     f"avmon: error: analysis incomplete: {len(failed)} failure(s); the"
                     " report covers only what was analysed"], shown


def test_benchmark_of_a_saved_run_in_a_terminal_and_through_pipes(tmp_path):
    """Re-pricing a saved run: the designs' bar on a terminal, the table through a pipe."""
    from tests.unit.test_cost_and_limits import USAGE
    saved = tmp_path / "sim.json"
    saved.write_text(json.dumps({"source": "x.mp4", "duration_s": 60.0, "defects": [],
                                 "usage": USAGE, "pipeline": {"workflow_type": "STANDARD"}}))
    code, shown, piped = in_terminal(["benchmark", "--usage", str(saved), "--report",
                                      str(tmp_path / "r")], stdout_pipe=True)
    assert code == 0, shown
    assert "Traceback" not in shown
    assert "report written to" in shown
    assert "serverless-original" in piped and "sfn_transitions" in piped
    p = through_pipes(["benchmark", "--usage", str(saved), "--json"])
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["designs"]["serverless-original"]["sustained_streams"] == 200


class FakeTerminal(io.StringIO):
    """Where tqdm draws when it believes it is on a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("total", [None, 0, 12.5])
def test_progress_bars_draw_with_any_total(monkeypatch, total):
    term = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", term)
    monkeypatch.setenv("COLUMNS", "120")
    bar = media_progress("analyze", total=total)
    for t in (0.5, 3.0, 20.0):  # past the total too: a stream longer than declared
        bar.update(t - bar.n)
    bar.close()
    with segments_progress() as tick:
        tick(0, 0, 0)
        tick(1, 3, 2)
        tick(3, 3, 0)
    assert "analyze" in term.getvalue() and "segments" in term.getvalue()


# -- exit codes: the README's table, each one produced by the command it describes -------------

def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from avmon.cli import main
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("raised", "code", "line"), [
    ("StorageThrottledError", 75, "avmon: error: SlowDown"),
    ("KeyboardInterrupt", 130, "avmon: interrupted"),
    ("MediaTruncatedError", 3, "avmon: error: SlowDown"),
])
def test_exit_codes_of_errors(monkeypatch, capsys, tiny, raised, code, line):
    import avmon.errors
    import avmon.monitor.analysis

    exc = getattr(avmon.errors, raised, None) or KeyboardInterrupt

    def fail(*_a, **_k):
        raise exc("SlowDown")

    monkeypatch.setattr(avmon.monitor.analysis, "analyze", fail)
    got, _, err = _cli(["analyze", str(tiny)], capsys)
    assert got == code
    assert err.strip().splitlines() == [line]


