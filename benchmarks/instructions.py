"""Instructions, not seconds: ``avmon analyze`` against ffmpeg by callgrind's count, which a
shared machine's load does not move.

    .venv/bin/python benchmarks/instructions.py [--size 1920x1080] [--cut 12] [--out bench-out]

Takes the 60 s stream of ``benchmarks/speed.py`` (made once, 1280x720 unless ``--size``), cuts a
0.2 s and a ``--cut`` s piece of it (``ffmpeg -c copy``), and counts the instructions that
``valgrind --tool=callgrind`` sees each of three commands execute on each piece:
``ffmpeg -threads 1 -i PIECE -f null -`` (the reference), avmon's decoding alone (the same
snippet as speed.py's) and ``avmon analyze PIECE --json``. The short piece gives each command's
start-up (interpreter, imports, libraries, the first pictures), the difference between the two
its instructions per second of stream; from both, the instructions each would execute on the
whole 60 s stream, as a ratio to ffmpeg's. The same ratio in CPU seconds (speed.py) is higher:
instructions do not all cost a cycle alike.

Needs valgrind (Debian package ``valgrind``); callgrind runs about 50 times slower than the
program, so the run takes a few minutes.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import run  # noqa: E402
from benchmarks.speed import commands_for, make  # noqa: E402

SHORT_S = 0.2
WHOLE_S = 60.0


def instructions(cmd: list[str], out: Path) -> int:
    """The instructions callgrind counted for ``cmd`` (all its threads)."""
    proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark: {cmd[0]} failed under callgrind:"
                         f" {proc.stderr.strip()[-300:]}")
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise SystemExit(f"benchmark: no instruction total in {out}")


def duration(ffprobe: str, path: Path) -> float:
    """The piece's length: where its last packet ends, by ffprobe."""
    proc = subprocess.run([ffprobe, "-v", "error", "-show_entries", "format=duration", "-of",
                           "default=nw=1:nk=1", str(path)], capture_output=True, text=True,
                          check=True)
    return float(proc.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1280x720", help="WxH of the stream (default 1280x720)")
    parser.add_argument("--cut", type=float, default=12.0,
                        help="seconds of the longer piece (default 12)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out")
    args = parser.parse_args()
    width, _, height = args.size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        parser.error(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 1920x1080")
    if not 1.0 <= args.cut <= WHOLE_S:
        parser.error(f"--cut {args.cut:g}: expected 1 to {WHOLE_S:g} seconds")
    tools = {t: shutil.which(t) for t in ("valgrind", "ffmpeg", "ffprobe")}
    missing = [t for t, found in tools.items() if found is None]
    if missing:
        raise SystemExit(f"benchmark: needs {', '.join(missing)} (Debian packages valgrind,"
                         " ffmpeg)")
    ffmpeg, ffprobe = str(tools["ffmpeg"]), str(tools["ffprobe"])
    args.out.mkdir(parents=True, exist_ok=True)
    whole = make(args.out / f"bench-60s-{height}p.mp4", int(WHOLE_S), args.size)
    compileall.compile_dir(ROOT / "avmon", quiet=1)  # as installed (see speed.py)
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    # the reference, avmon's decoding alone and analyze (ffmpeg's filters take too long here)
    counted = ("ffmpeg decode only", "avmon's decoding alone", "avmon analyze (6 detectors)")
    with tempfile.TemporaryDirectory() as tmp:
        pieces = {}
        for name, seconds in (("short", SHORT_S), ("long", args.cut)):
            piece = Path(tmp) / f"{name}.mp4"
            subprocess.run([ffmpeg, "-v", "error", "-y", "-i", str(whole), "-t", f"{seconds:g}",
                            "-c", "copy", str(piece)], check=True)
            pieces[name] = (piece, duration(ffprobe, piece))
        (short, short_s), (long, long_s) = pieces["short"], pieces["long"]
        rows: dict[str, dict[str, float]] = {}
        for name in counted:
            start = instructions(commands_for(ffmpeg, str(short))[name], Path(tmp) / "cg.short")
            longer = instructions(commands_for(ffmpeg, str(long))[name], Path(tmp) / "cg.long")
            per_s = (longer - start) / (long_s - short_s)
            rows[name] = {"start": start, "per_s": round(per_s),
                          "whole": round(start + per_s * (WHOLE_S - short_s))}
    base = rows["ffmpeg decode only"]
    print(f"{whole.name}: {args.size}; pieces of {short_s:.2f} s and {long_s:.2f} s,"
          f" counted by callgrind\n")
    print(f"{'command':<30}{'start-up':>12}{'per s':>12}{'60 s':>14}{'x ffmpeg':>10}"
          f"{'per s x':>9}")
    for name, r in rows.items():
        r["ratio"] = round(r["whole"] / base["whole"], 3)
        r["per_s_ratio"] = round(r["per_s"] / base["per_s"], 3)
        print(f"{name:<30}{r['start'] / 1e6:>11,.0f}M{r['per_s'] / 1e6:>11,.0f}M"
              f"{r['whole'] / 1e6:>13,.0f}M{r['ratio']:>10.2f}{r['per_s_ratio']:>9.2f}")
    result = {"file": whole.name, "pieces_s": [short_s, long_s], "rows": rows}
    (args.out / f"instructions-{height}p.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    run(main)
