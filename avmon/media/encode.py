"""Writing test streams with PyAV: H.264 + AAC into MP4, MPEG-TS or Matroska.

Packets can be corrupted on their way from the encoder to the muxer, so that block corruption in a
test stream is made the way it happens in the field: the bitstream is damaged and the decoder
conceals what it cannot decode. Nothing is drawn on the pictures.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np

from avmon.errors import ConfigError

VideoPlanes = tuple[np.ndarray, np.ndarray, np.ndarray]  # Y (h, w), U and V (h/2, w/2), uint8


@dataclass(frozen=True)
class EncodeSettings:
    width: int
    height: int
    fps: int
    sample_rate: int = 48000
    crf: int = 23                 # x264's default quality: an ordinary bitrate
    preset: str = "veryfast"
    gop_seconds: float = 2.0      # keyframe interval, as live encoders use
    audio_bitrate: int = 128_000


@dataclass(frozen=True)
class Corruption:
    """Damage every video packet whose presentation time falls in one of ``intervals``.

    ``flips`` bytes of each slice NAL unit are XORed with random values, past the NAL header and
    the start of the slice header, so that the decoder finds the slice and then fails inside it.
    """

    intervals: tuple[tuple[float, float], ...]
    flips: int = 6
    seed: int = 0

    def covers(self, t: float) -> bool:
        return any(start <= t < end for start, end in self.intervals)


def write_stream(
    path: str | os.PathLike[str],
    settings: EncodeSettings,
    video: Iterable[VideoPlanes] | None,
    audio: Iterable[np.ndarray] | None,
    *,
    keyframes: Callable[[int], bool] = lambda i: False,
    corruption: Corruption | None = None,
) -> int:
    """Encode ``video`` (one planes tuple per frame) and ``audio`` ((channels, n) float32 chunks).

    The two iterables are consumed in step: after each video frame, audio is encoded up to the
    same time, so memory holds one frame and one chunk. Returns the number of packets corrupted.
    Raises ConfigError if the container or a codec cannot be opened.
    """
    try:
        container: Any = av.open(os.fspath(path), mode="w")
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise ConfigError(f"{os.fspath(path)}: cannot write: {exc}") from None
    rng = np.random.default_rng(corruption.seed if corruption else 0)
    damaged = 0
    with container:
        vstream = astream = None
        if video is not None:
            vstream = container.add_stream("libx264", rate=settings.fps)
            vstream.width, vstream.height = settings.width, settings.height
            vstream.pix_fmt = "yuv420p"
            vstream.codec_context.gop_size = round(settings.gop_seconds * settings.fps)
            vstream.codec_context.options = {
                "preset": settings.preset, "crf": str(settings.crf), "forced-idr": "1",
            }
        if audio is not None:
            astream = container.add_stream("aac", rate=settings.sample_rate)
            astream.layout = "stereo"
            astream.bit_rate = settings.audio_bitrate

        def mux_video(frame: Any) -> None:
            nonlocal damaged
            assert vstream is not None
            for packet in vstream.encode(frame):
                if (corruption is not None and packet.pts is not None
                        and corruption.covers(float(packet.pts * packet.time_base))):
                    damaged += _damage(packet, corruption.flips, rng)
                container.mux(packet)

        audio_iter: Iterator[np.ndarray] | None = iter(audio) if audio is not None else None
        audio_t = 0  # samples written
        audio_pts = 0

        def mux_audio_until(samples_end: int | None) -> None:
            nonlocal audio_t, audio_pts
            assert astream is not None
            assert audio_iter is not None
            while samples_end is None or audio_t < samples_end:
                chunk = next(audio_iter, None)
                if chunk is None:
                    return
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(chunk, dtype=np.float32), format="fltp", layout="stereo")
                frame.sample_rate = settings.sample_rate
                frame.pts = audio_pts
                frame.time_base = Fraction(1, settings.sample_rate)
                audio_pts += chunk.shape[1]
                audio_t += chunk.shape[1]
                for packet in astream.encode(frame):
                    container.mux(packet)

        if video is not None:
            for i, (y, u, v) in enumerate(video):
                frame = av.VideoFrame(settings.width, settings.height, "yuv420p")
                for plane, data in zip(frame.planes, (y, u, v), strict=True):
                    _copy_plane(plane, data)
                frame.pts = i
                frame.time_base = Fraction(1, settings.fps)
                if keyframes(i):
                    frame.pict_type = av.video.frame.PictureType.I
                mux_video(frame)
                if astream is not None:
                    mux_audio_until((i + 1) * settings.sample_rate // settings.fps)
            mux_video(None)
        if astream is not None:
            mux_audio_until(None)
            for packet in astream.encode(None):
                container.mux(packet)
    return damaged


def _copy_plane(plane: Any, data: np.ndarray) -> None:
    rows = np.frombuffer(plane, dtype=np.uint8).reshape(plane.height, plane.line_size)
    rows[:, : plane.width] = data


def _damage(packet: Any, flips: int, rng: np.random.Generator) -> int:
    """XOR random bytes inside each slice NAL unit of an Annex B packet; 1 if anything changed."""
    data = bytearray(bytes(packet))
    starts = [m + 3 for m in _start_codes(data)]
    changed = False
    for k, start in enumerate(starts):
        end = (starts[k + 1] - 3) if k + 1 < len(starts) else len(data)
        nal_type = data[start] & 0x1F if start < len(data) else 0
        if nal_type not in (1, 5):  # coded slices only; leave SPS/PPS/SEI intact
            continue
        body = start + 8  # past the NAL header and the first bytes of the slice header
        if end - body < 16:
            continue
        for pos in rng.integers(body, end, size=flips):
            data[pos] ^= int(rng.integers(1, 256))
            changed = True
    if changed:
        packet.update(bytes(data))
    return int(changed)


def _start_codes(data: bytearray) -> list[int]:
    found, i = [], data.find(b"\x00\x00\x01")
    while i >= 0:
        found.append(i)
        i = data.find(b"\x00\x00\x01", i + 3)
    return found
