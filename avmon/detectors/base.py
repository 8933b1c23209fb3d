"""What every detector shares: the scanner/finalize split, runs of frames, audio windows.

A detector works in two steps so that the same code serves one process and the serverless
pipeline alike:

- a **scanner** is fed frames or audio buffers in time order and keeps only small state; its
  ``evidence()`` is a small JSON-able dict (runs of suspicious frames, cue times);
- ``finalize(evidences)`` merges the evidence of one or many scanners (one per stream segment,
  in any order) and turns it into defects: it joins runs across segment boundaries and applies
  the minimum durations, so a defect split over segments comes out as one interval.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any, ClassVar, Protocol

import numpy as np

from avmon.frames import AudioBuffer, VideoFrame
from avmon.model import Defect

Evidence = dict[str, Any]


class Scanner(Protocol):
    def feed_video(self, frame: VideoFrame) -> None: ...
    def feed_audio(self, buf: AudioBuffer) -> None: ...
    def evidence(self) -> Evidence: ...


class Detector(Protocol):
    name: ClassVar[str]
    needs: ClassVar[frozenset[str]]  # tracks it needs: {"video"}, {"audio"} or both

    def scanner(self) -> Scanner: ...
    def finalize(self, evidences: Sequence[Evidence]) -> list[Defect]: ...


class DetectorConfig:
    """Mixin for the frozen config dataclasses: checked by the one validation layer
    (``avmon.validation``, pydantic), dumped to plain dicts.

    A detector's settings carry their unit in their name, and the unit sets the range
    (``unit_rules``); every number must be finite and of its declared type, so a NaN threshold,
    an infinite duration or ``"false"`` for a boolean is an error, never a silent change of
    results. A field with its own ``Annotated[float, Field(...)]`` constraint keeps that one
    instead (a setting whose range its name cannot say). Every default must pass its own rule:
    ``tests/unit/test_validation.py`` checks that for every detector.
    """

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], where: str = "",
                     prefix: str = "") -> Any:
        """Build a config from ``values``; raises ConfigError naming the setting, the value and
        what is allowed (unknown keys, wrong types, NaN, infinity, out of range)."""
        from avmon.validation import build_dataclass

        return build_dataclass(cls, values, where, prefix or cls.__name__, unit_rules)

    def validate(self) -> None:
        """Check a config made in code the same way; raises ConfigError."""
        type(self).from_mapping(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]


def unit_rules(name: str, kind: type) -> dict[str, Any]:
    """The range a detector setting may take, from the unit in its name.

    ``*_s`` durations 0..3600 s (``window*`` 1 ms..1 s: a window is cut from audio
    in memory), ``*_ms`` 0..10000 ms, ``*_dbfs`` -200..0 dBFS, ``*_db`` 0..120 dB, fractions
    and confidences 0..1, luma 0..255 (8-bit), a ``level`` of full scale (0, 1], a count
    called ``min_*`` at least 1; any other number 0..1e6."""
    if kind not in (int, float):
        return {}
    if name.startswith("window"):
        return {"ge": 0.001, "le": 1.0}
    if name.endswith("_s"):
        return {"ge": 0, "le": 3600}
    if name.endswith("_ms"):
        return {"ge": 0, "le": 10_000}
    if name.endswith("_dbfs"):
        return {"ge": -200, "le": 0}
    if name.endswith("_db"):
        return {"ge": 0, "le": 120}
    if "fraction" in name or "confidence" in name:
        return {"ge": 0, "le": 1}
    if name.startswith("luma"):
        return {"ge": 0, "le": 255}
    if name.endswith("level"):
        return {"gt": 0, "le": 1}
    if kind is int and name.startswith("min_"):
        return {"ge": 1, "le": 1_000_000}
    return {"ge": 0, "le": 1_000_000}


class NoFeed:
    """Scanners inherit the feed they do not use."""

    def feed_video(self, frame: VideoFrame) -> None:
        return None

    def feed_audio(self, buf: AudioBuffer) -> None:
        return None


def feeds(scanners: Iterable[Scanner], kind: str) -> list[Callable[[Any], None]]:
    """The ``feed_video`` or ``feed_audio`` (``kind``: "video", "audio") methods of ``scanners``
    that do something: those inherited from ``NoFeed`` are left out (a call for each picture to
    a method that returns at once, three of the six detectors' for video)."""
    name = f"feed_{kind}"
    idle = getattr(NoFeed, name)
    return [getattr(s, name) for s in scanners if getattr(type(s), name, None) is not idle]


class RunTracker:
    """Collects maximal runs of consecutive active frames/windows as [start, end, score sum, n].

    With ``drop_shorter_than``, a run that ended inside the stream shorter than that is dropped
    when it closes, so memory stays bounded on a 24-hour stream: it can never grow into a defect,
    because ``finalize`` joins a scanner's runs only with another scanner's (segment boundaries).
    The first run, if it began with the first update (it may continue a previous segment's), and
    the run still open (it may continue into the next segment) are always kept.
    """

    def __init__(self, drop_shorter_than: float = 0.0) -> None:
        self.runs: list[list[float]] = []
        self._open: list[float] | None = None
        self._drop_shorter_than = drop_shorter_than
        self._started = False  # any update seen: a run opening later does not touch the start
        self._leading = False  # the open run began with the first update

    def update(self, active: bool, start: float, end: float, score: float = 1.0) -> None:
        if not active:
            self._close()
            self._started = True
            return
        if self._open is None:
            self._open = [start, end, score, 1.0]
            self.runs.append(self._open)
            self._leading = not self._started
            self._started = True
        else:
            self._open[1] = end
            self._open[2] += score
            self._open[3] += 1

    def _close(self) -> None:
        run, self._open = self._open, None
        if (run is not None and not self._leading
                and run[1] - run[0] < self._drop_shorter_than - 1e-6):
            self.runs.pop()  # the closed run is always the last one

    def update_many(self, active: np.ndarray, starts: np.ndarray, length: float,
                    scores: np.ndarray) -> None:
        """``update`` for consecutive windows at once; Python only touches the run edges."""
        if active.size == 0:
            return
        i = 0
        for a, b in iter_true_runs(active):
            if a > i:
                self._close()
                self._started = True
            self.update(True, float(starts[a]), float(starts[b - 1]) + length,
                        float(scores[a:b].sum()))
            if self._open is not None:
                self._open[3] += (b - a) - 1
            i = b
        if i < active.size:
            self._close()
        self._started = True

    def extend_start(self, start: float) -> None:
        """Move the open run's start back (a freeze starts at the frame that is repeated)."""
        if self._open is not None:
            self._open[0] = min(self._open[0], start)

    def evidence(self) -> list[list[float]]:
        return [[round(a, 6), round(b, 6), round(s, 6), n] for a, b, s, n in self.runs]


def merge_runs(runs: Iterable[Sequence[float]], gap: float,
               sources: Iterable[int] | None = None) -> list[list[float]]:
    """Sort runs and join those less than ``gap`` apart (score sums and counts add up).

    With ``sources`` (one id per run, e.g. the segment it came from), only runs from different
    sources are joined: a scanner already ended its runs where the signal ended, and only a
    segment boundary can cut a run that should continue.
    """
    tagged = [(list(r[:4]), src) for r, src in
              zip(runs, sources if sources is not None else _same(), strict=False)]
    merged: list[tuple[list[float], set[int]]] = []
    for (start, end, score, n), src in sorted(tagged, key=lambda x: x[0][0]):
        if merged and start - merged[-1][0][1] <= gap and (
                sources is None or src not in merged[-1][1]):
            last, seen = merged[-1]
            last[1] = max(last[1], end)
            last[2] += score
            last[3] += n
            seen.add(src)
        else:
            merged.append(([start, end, score, n], {src}))
    return [run for run, _ in merged]


def _same() -> Iterator[int]:
    while True:
        yield 0


def interval_defects(name: str, evidences: Sequence[Evidence], *, gap: float,
                     min_duration: float, key: str = "runs",
                     join_within: bool = True) -> list[Defect]:
    """The usual finalize: merge runs from every evidence, keep those lasting min_duration.

    ``join_within=False`` joins runs only across evidences (segment boundaries).
    """
    pairs = [(r, i) for i, e in enumerate(evidences) for r in e.get(key, [])]
    runs = merge_runs((r for r, _ in pairs), gap,
                      None if join_within else (i for _, i in pairs))
    return [
        Defect(name, start, end, confidence=float(np.clip(score / n, 0.0, 1.0)))
        for start, end, score, n in runs
        if end - start >= min_duration - 1e-6
    ]


class AudioWindows:
    """Cuts a stream of audio buffers into fixed windows, carrying the remainder across buffers.

    Windows sit on a fixed grid of the stream's clock (multiples of ``seconds``): a scanner that
    starts mid-stream (a segment of the serverless pipeline) cuts the same windows as one that
    saw the whole stream. ``push`` returns the start times (seconds) and the windows as
    (n_windows, channels, length).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._rest: np.ndarray | None = None
        self._rest_t = 0.0
        self._length = 0

    def push(self, buf: AudioBuffer) -> tuple[np.ndarray, np.ndarray]:
        if self._length == 0:
            self._length = max(1, round(self.seconds * buf.sample_rate))
        samples, t0 = buf.samples, buf.t
        carried = False
        if self._rest is not None and self._rest.shape[0] == samples.shape[0]:
            gap = abs(buf.t - (self._rest_t + self._rest.shape[1] / buf.sample_rate))
            if gap < 2.0 / buf.sample_rate * self._length:  # contiguous: carry the remainder
                samples = np.concatenate([self._rest, samples], axis=1)
                t0 = self._rest_t
                carried = True
        if not carried:  # a fresh start: skip to the next point of the grid
            step = self._length / buf.sample_rate
            grid = np.ceil(t0 / step - 1e-6) * step
            skip = min(samples.shape[1], max(0, round((grid - t0) * buf.sample_rate)))
            samples, t0 = samples[:, skip:], t0 + skip / buf.sample_rate
        n = samples.shape[1] // self._length
        used = n * self._length
        self._rest, self._rest_t = samples[:, used:], t0 + used / buf.sample_rate
        windows = samples[:, :used].reshape(samples.shape[0], n, self._length).transpose(1, 0, 2)
        starts = t0 + np.arange(n) * (self._length / buf.sample_rate)
        return starts, windows

    @property
    def window_seconds(self) -> float:
        return self.seconds


def iter_true_runs(mask: np.ndarray) -> Iterator[tuple[int, int]]:
    """Index ranges [i, j) where ``mask`` is True."""
    if mask.size == 0:
        return
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    yield from zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True)
