"""What every command group shares: the one-line error parser, argument types, progress bars
and the report's text rendering."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from avmon.detectors.config import AnalysisConfig

Subparsers = Any  # argparse._SubParsersAction[Parser]: private in typeshed


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other avmon error."""

    def error(self, message: str) -> NoReturn:
        # the top-level parser's prog is "avmon" itself, already the line's first word
        where = "" if self.prog == "avmon" else f"{self.prog.removeprefix('avmon ')}: "
        sys.stderr.write(f"avmon: error: {where}{message} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def number(kind: type[int] | type[float], *, ge: float | None = None, gt: float | None = None,
           le: float | None = None, what: str = "") -> Callable[[str], Any]:
    """``avmon.validation.number`` (an argparse ``type=``), built when a value is first parsed.

    Building it imports pydantic, about a tenth of a second of CPU that every command would pay
    at start-up (``python -X importtime``) though most runs give no number at all.
    """
    parse: Callable[[str], Any] | None = None

    def lazy(text: str) -> Any:
        nonlocal parse
        if parse is None:
            from avmon.validation import number as build

            parse = build(kind, ge=ge, gt=gt, le=le, what=what)
        return parse(text)

    lazy.__name__ = kind.__name__  # argparse names the type in some messages
    return lazy


# Bounds of the numbers the commands take, in one place (also quoted by --help).
MAX_THREADS = 16          # decoder threads: more than the cores only costs memory (GBs at 99999)
MAX_WIDTH, MAX_HEIGHT = 3840, 2160  # frames a synthetic stream may have: UHD
MAX_STREAMS = 1_000_000   # a fleet size or an expected load
MAX_HOURS = 1_000_000.0

threads = number(int, ge=0, le=MAX_THREADS, what="(0 = auto)")
streams = number(int, ge=1, le=MAX_STREAMS)
hours = number(float, gt=0, le=MAX_HOURS)
fps = number(int, ge=1, le=120)
seed = number(int, ge=0, le=2**32 - 1)
duration = number(float, gt=0, le=86400, what="seconds")
seconds = number(float, gt=0, le=3600, what="seconds")  # timeouts and polling intervals
port = number(int, ge=0, le=65535, what="(0 = any free port)")


def size(text: str) -> tuple[int, int]:
    """``WxH`` as two even integers within 32x32..3840x2160 (4:2:0 video, a picture that fits
    in memory)."""
    try:
        w, h = text.lower().split("x")
        width, height = int(w, 10), int(h, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, got {text!r}") from None
    if not (32 <= width <= MAX_WIDTH and 32 <= height <= MAX_HEIGHT) or width % 2 or height % 2:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: width and height even, from 32x32 to"
            f" {MAX_WIDTH}x{MAX_HEIGHT}")
    return width, height


def names(text: str) -> list[str]:
    """A comma-separated list of at least one name (an empty list would silently run nothing)."""
    found = [n.strip() for n in text.split(",") if n.strip()]
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed: at least one name")
    return found


def stream_name(text: str) -> str:
    """A stream's name as it appears in S3 keys: not empty (which would mix every stream's
    reports), no leading or trailing slash, no control characters, at most 900 characters."""
    if (not text.strip() or text != text.strip("/") or len(text) > 900
            or any(ord(c) < 32 for c in text)):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: a stream name as in ingest/<stream>/, not empty, without"
            " leading or trailing '/' or control characters")
    return text


def bucket(text: str) -> str:
    """An S3 bucket name by S3's naming rules (3-63 lowercase letters, digits, dots, hyphens),
    checked before any AWS call."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", text) or ".." in text:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not allowed: an S3 bucket name (3-63 lowercase letters, digits, dots"
            " and hyphens, starting and ending with a letter or digit)")
    return text


def detector_options(p: argparse.ArgumentParser) -> None:
    """``--detectors`` and ``--config``, as every command that runs detectors takes them."""
    p.add_argument("--detectors", type=names, help="comma-separated subset of detectors")
    p.add_argument("--config", type=Path, help="JSON, TOML or YAML file of detector settings")


def analysis_config(args: argparse.Namespace) -> AnalysisConfig:
    """The ``--config`` file's settings, or the defaults. Raises ConfigError for a bad file."""
    from avmon.detectors.config import AnalysisConfig

    return AnalysisConfig.load(args.config) if args.config else AnalysisConfig()


def media_progress(desc: str, total: float | None = None) -> Any:
    """A progress bar of media seconds on stderr; silent when stderr is not a terminal.

    The total is often unknown (a live source, a container without a duration): the format then
    shows only what was done, so the bar never breaks a run.
    """
    if not sys.stderr.isatty():
        return _NoProgress()  # tqdm would be disabled (disable=None): not worth its import
    from tqdm import tqdm

    fmt = ("{desc}: {n:.0f}/{total:.0f} s media {bar} {elapsed}" if total
           else "{desc}: {n:.0f} s media, {elapsed}")
    return tqdm(total=total, desc=desc, unit="s", leave=False, disable=None, bar_format=fmt)


class _NoProgress:
    """What ``media_progress`` hands out when stderr is not a terminal: the bar's calls, silent."""

    n: float = 0.0

    def update(self, n: float = 1) -> None:
        self.n += n

    def close(self) -> None:
        return None


@contextlib.contextmanager
def segments_progress() -> Iterator[Callable[[int, int, int], None]]:
    """Says the deployment starts, then shows segments done and executions running (stderr)."""
    from tqdm import tqdm

    sys.stderr.write("avmon: deploying the synthesized CDK app into moto ...\n")
    bar = tqdm(total=0, desc="segments", unit="seg", leave=False, disable=None)

    def tick(done: int, total: int, running: int) -> None:
        bar.total, bar.n = total, done
        bar.set_postfix_str(f"{running} executions running", refresh=True)

    try:
        yield tick
    finally:
        bar.close()


def format_report(r: dict[str, Any]) -> str:
    """A report (``Report.to_dict()``) as readable text."""
    lines = [f"source    {r['source']}", f"duration  {r['duration_s']:.2f} s"]
    if r["video"]:
        v = r["video"]
        lines.append(f"video     {v['codec']} {v['width']}x{v['height']} {v['fps']:g} fps,"
                     f" {v['frames']} frames, {v['decode_errors']} with decode errors")
    if r["audio"]:
        a = r["audio"]
        lines.append(f"audio     {a['codec']} {a['sample_rate']} Hz, {a['channels']} channels")
    lines.append("")
    for u in r.get("unmeasured", []):
        lines.append(f"{u['detector']} not measurable {u['start_s']:.2f}-{u['end_s']:.2f} s"
                     " (the content gives no usable evidence)")
    if not r["defects"]:
        lines.append("no defects found" + (" where measurable" if r.get("unmeasured") else ""))
        return "\n".join(lines)
    lines.append(f"{'detector':<17}{'start s':>9}{'end s':>9}{'dur s':>8}{'conf':>6}  details")
    for d in r["defects"]:
        details = ", ".join(f"{k}={v}" for k, v in d["details"].items())
        lines.append(f"{d['detector']:<17}{d['start_s']:>9.3f}{d['end_s']:>9.3f}"
                     f"{d['end_s'] - d['start_s']:>8.3f}{d['confidence']:>6.2f}  {details}")
    lines.append(f"{len(r['defects'])} defect(s)")
    return "\n".join(lines)


def write_json(value: Any) -> None:
    import json
    print(json.dumps(value, indent=2))
