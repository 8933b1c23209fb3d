"""What every command group shares: the one-line error parser, argument types, progress bars
and the report's text rendering."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

Subparsers = Any  # argparse._SubParsersAction[Parser]: private in typeshed


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line, like every other avmon error."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"avmon: error: {self.prog.removeprefix('avmon ')}: {message}"
                         f" (see '{self.prog} --help')\n")
        raise SystemExit(2)


def size(text: str) -> tuple[int, int]:
    """``WxH`` as two integers."""
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, got {text!r}") from None


def names(text: str) -> list[str]:
    """A comma-separated list of names."""
    return [n.strip() for n in text.split(",") if n.strip()]


def media_progress(desc: str, total: float | None = None) -> Any:
    """A progress bar of media seconds on stderr; silent when stderr is not a terminal.

    The total is often unknown (a live source, a container without a duration): the format then
    shows only what was done, so the bar never breaks a run.
    """
    from tqdm import tqdm

    fmt = ("{desc}: {n:.0f}/{total:.0f} s media {bar} {elapsed}" if total
           else "{desc}: {n:.0f} s media, {elapsed}")
    return tqdm(total=total, desc=desc, unit="s", leave=False, disable=None, bar_format=fmt)


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
    if not r["defects"]:
        lines.append("no defects found")
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
