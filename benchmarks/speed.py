"""Speed and memory of ``avmon analyze`` against ffmpeg on the same file, in one run.

    .venv/bin/python benchmarks/speed.py [--repeat 5] [--out bench-out] [--size 1920x1080]
                                         [--skip-memory]

Makes (once) a 60 s 25 fps H.264 + AAC stream (1280x720 unless ``--size``) with every kind of
defect, then measures the CPU seconds (user + system, all threads, from getrusage of the child) of:

- ``avmon analyze FILE --json`` (all six detectors, decoding included, interpreter start included)
- ``ffmpeg -threads 1 -i FILE -f null -`` (decode only: the reference)
- ``ffmpeg -threads 1 -i FILE`` with freezedetect, blackdetect, blockdetect, silencedetect
- avmon's decoding alone: the same interpreter, imports and PyAV decoding loop as analyze, with
  no detector (what the detectors add is the difference from analyze)

and reports each as a ratio to ffmpeg's decode-only time. The commands run in rounds, one after
the other; a ratio is the median over ``--repeat`` rounds of each round's own ratio (the two runs
it compares are seconds apart, so load on a shared machine drifts less between them than between
medians taken apart). CPU seconds are the medians. Peak memory (max RSS) of analyze is measured
on the 60 s stream and on a 4x longer one: it must not grow with the length.

avmon is measured as installed: its modules' bytecode is compiled first (``pip install`` does
that; an editable install under ``PYTHONDONTWRITEBYTECODE`` would compile avmon's source at
every start, about 0.04 s of CPU).
"""

from __future__ import annotations

import argparse
import compileall
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import run  # noqa: E402

DEFECTS = ("freeze@5:2,black@12:1,block_corruption@18:1,silence@24:2,clipping@30:0.5,"
           "av_sync@36:12=+200ms")


# What analyze costs before any detector: the interpreter, numpy and PyAV started, every packet
# decoded by PyAV's own FFmpeg (not the ffmpeg CLI's), pictures and sound handed over as arrays.
DECODE_ONLY = """
import os, sys
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
from avmon.media.decode import MediaReader
with MediaReader(sys.argv[1]) as reader:
    for _ in reader.frames():
        pass
"""


def commands_for(ffmpeg: str, path: str) -> dict[str, list[str]]:
    """The commands compared on ``path``, by the name each row of the table has."""
    return {
        "ffmpeg decode only": [ffmpeg, "-v", "error", "-threads", "1", "-i", path,
                               "-f", "null", "-"],
        "avmon analyze (6 detectors)": [sys.executable, "-m", "avmon", "analyze", path,
                                        "--json"],
        "avmon's decoding alone": [sys.executable, "-c", DECODE_ONLY, path],
        "ffmpeg 4 detection filters": [
            ffmpeg, "-v", "error", "-threads", "1", "-i", path, "-vf",
            "freezedetect,blackdetect,blockdetect", "-af", "silencedetect", "-f", "null", "-"],
    }


def cpu_of(cmd: list[str]) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, max RSS in MiB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark: {cmd[0]} failed: {proc.stderr.strip()[-300:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, after.ru_maxrss // 1024


def make(path: Path, seconds: int, size: str) -> Path:
    if not path.exists():
        subprocess.run([sys.executable, "-m", "avmon", "synth", str(path), "--duration",
                        str(seconds), "--size", size, "--defects", DEFECTS], check=True)
    return path


def measure_rss(path: Path) -> int:
    """Max RSS (MiB) of a fresh analyze process: the single-process design's own measurement."""
    from avmon.benchmark import measure_single_process
    return round(measure_single_process(path, streams=1, repeats=1)["usage"]["peak_mb_process"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out")
    parser.add_argument("--size", default="1280x720", help="WxH of the stream (default 1280x720)")
    parser.add_argument("--skip-memory", action="store_true",
                        help="do not measure peak memory on the 60 s and a 240 s stream")
    args = parser.parse_args()
    width, _, height = args.size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        parser.error(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 1920x1080")
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise SystemExit("benchmark: the ffmpeg CLI is needed (Debian package 'ffmpeg')")
    args.out.mkdir(parents=True, exist_ok=True)
    short = make(args.out / f"bench-60s-{height}p.mp4", 60, args.size)
    commands = commands_for(ffmpeg, str(short))
    compileall.compile_dir(ROOT / "avmon", quiet=1)
    runs: dict[str, list[tuple[float, float, int]]] = {k: [] for k in commands}
    for _ in range(args.repeat):  # interleaved, so load on the machine hits all alike
        for name, cmd in commands.items():
            runs[name].append(cpu_of(cmd))
    base = [c for c, _, _ in runs["ffmpeg decode only"]]
    result = {"file": short.name, "repeat": args.repeat, "rows": {}}
    print(f"{short.name}: 60 s, {args.size}, 25 fps H.264 + AAC; {args.repeat} rounds\n")
    print(f"{'command':<30}{'CPU s':>8}{'wall s':>8}{'x ffmpeg decode':>17}  (each round)")
    for name, rs in runs.items():
        cpu = statistics.median(c for c, _, _ in rs)
        wall = statistics.median(w for _, w, _ in rs)
        ratios = [c / b for (c, _, _), b in zip(rs, base, strict=True)]
        ratio = statistics.median(ratios)
        result["rows"][name] = {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                                "ratio": round(ratio, 2),
                                "round_ratios": [round(r, 2) for r in ratios]}
        each = " ".join(f"{r:.2f}" for r in ratios)
        print(f"{name:<30}{cpu:>8.2f}{wall:>8.2f}{ratio:>17.2f}  ({each})")
    if not args.skip_memory:
        long = make(args.out / f"bench-240s-{height}p.mp4", 240, args.size)
        rss_short, rss_long = measure_rss(short), measure_rss(long)
        result["max_rss_mib"] = {"60s": rss_short, "240s": rss_long}
        print(f"\npeak memory of analyze: {rss_short} MiB on 60 s, {rss_long} MiB on 240 s")
    (args.out / f"speed-{height}p.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    run(main)
