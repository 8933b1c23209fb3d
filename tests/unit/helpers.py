"""Synthetic frames and audio for detector unit tests: numpy only, no decoding."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from avmon.detectors.base import Detector, Evidence
from avmon.frames import AudioBuffer, VideoFrame
from avmon.model import Defect

FPS = 25
DT = 1 / FPS
SR = 48000


def textured(rng: np.random.Generator, h: int = 180, w: int = 320) -> np.ndarray:
    """A picture with structure at several scales (blocks and gradients), uint8 16..235."""
    base = np.kron(rng.integers(40, 200, (h // 20 + 1, w // 20 + 1)), np.ones((20, 20)))[:h, :w]
    ramp = np.linspace(0, 30, w)[None, :]
    return np.clip(base + ramp, 16, 235).astype(np.uint8)


def moving(rng: np.random.Generator, n: int, speed: int = 3) -> list[np.ndarray]:
    big = textured(rng, 180, 320 + speed * n)
    return [np.ascontiguousarray(big[:, i * speed:i * speed + 320]) for i in range(n)]


def frames_from(pictures: list[np.ndarray], *, start: float = 0.0,
                concealed: set[int] | None = None, keyframes: set[int] | None = None,
                ) -> list[VideoFrame]:
    return [VideoFrame(start + i * DT, DT, p, keyframe=i in (keyframes or set()),
                       concealed=i in (concealed or set())) for i, p in enumerate(pictures)]


def scan_video(detector: Detector, frames: list[VideoFrame],
               cuts: Sequence[int] = ()) -> list[Evidence]:
    """Each segment's evidence, one scanner a segment as the pipeline scans them (``frames``
    cut before each index in ``cuts``)."""
    bounds = [0, *cuts, len(frames)]
    evidence = []
    for start, end in itertools.pairwise(bounds):
        scanner = detector.scanner()
        for f in frames[start:end]:
            scanner.feed_video(f)
        evidence.append(scanner.evidence())
    return evidence


def run_video(detector: Detector, frames: list[VideoFrame]) -> list[Defect]:
    return detector.finalize(scan_video(detector, frames))


def tone(seconds: float, freq: float = 440.0, amp: float = 0.3, channels: int = 2) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return np.tile((amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), (channels, 1))


def buffers(samples: np.ndarray, size: int = 1024, start: float = 0.0,
            channels: tuple[str, ...] = ()) -> list[AudioBuffer]:
    return [AudioBuffer(start + k / SR, SR, np.ascontiguousarray(samples[:, k:k + size]), channels)
            for k in range(0, samples.shape[1], size)]


def run_audio(detector: Detector, bufs: list[AudioBuffer]) -> list[Defect]:
    scanner = detector.scanner()
    for b in bufs:
        scanner.feed_audio(b)
    return detector.finalize([scanner.evidence()])
