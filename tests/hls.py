"""Real HLS as a packager writes it: a synthetic clip cut by the ffmpeg CLI's hls muxer."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from avmon.evaluation.synth import SynthRequest, parse_defects, synthesize

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None,
                                  reason="needs the ffmpeg CLI (make setup)")


def packager_hls(folder: Path, duration: float, defects: str = "", *,
                 segment_name: str = "chan_%05d.ts", playlist: str = "index.m3u8",
                 hls_time: float = 2.0, seed: int = 3) -> Path:
    """A finished HLS stream in ``folder`` (segments named ``segment_name``, program date-times
    on every segment, ENDLIST); returns the playlist's path."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder.parent / f"{folder.name}-source.ts"
    synthesize(SynthRequest(clip, duration, tuple(parse_defects(defects)) if defects else (),
                            160, 96, seed=seed))
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(clip), "-c", "copy",
                    "-f", "hls", "-hls_time", str(hls_time), "-hls_list_size", "0",
                    "-hls_flags", "program_date_time",
                    "-hls_segment_filename", str(folder / segment_name),
                    str(folder / playlist)], check=True, timeout=60)
    return folder / playlist
