"""What the decoder hands to the detectors: video frames and audio buffers as numpy arrays.

Pure numpy, no ``av``: the detectors depend on these types and never on PyAV. A video frame keeps
its full-resolution luma (a stride-correct view of the decoded plane) and computes, once and only
when asked, the small subsampled picture that the pixel statistics of several detectors share.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Luma = npt.NDArray[np.uint8]
Samples = npt.NDArray[np.float32]

# The shared analysis grid is about this many pixels wide, whatever the resolution: statistics on
# a subsample cost a fixed time per frame, so the detectors' cost does not grow with 4K input.
GRID_WIDTH = 320
CELL = 4  # cells of CELL x CELL grid pixels (16 x 16 source pixels at 720p)


def grid_step(width: int) -> int:
    """The subsampling step that brings a picture of ``width`` pixels to about GRID_WIDTH."""
    return max(1, round(width / GRID_WIDTH))


class VideoFrame:
    """One decoded picture: luma plane, presentation time and duration in seconds."""

    __slots__ = ("__weakref__", "_cell_change", "_cells", "_grid", "_half", "_pixel_change",
                 "black_test", "concealed", "duration", "keyframe", "luma", "t")

    def __init__(self, t: float, duration: float, luma: Luma, *, keyframe: bool = False,
                 concealed: bool = False) -> None:
        self.t = t
        self.duration = duration
        self.luma = luma
        self.keyframe = keyframe    # an intra (IDR) picture: decoding restarts clean here
        self.concealed = concealed  # the decoder hid errors in this picture (damaged bitstream)
        self._grid: npt.NDArray[np.int16] | None = None
        self._cells: npt.NDArray[np.float32] | None = None
        self._half: npt.NDArray[np.int16] | None = None
        # the last comparison asked for, with the picture it was made with: freeze and A/V
        # sync both compare a picture with the one before it, and in motion freeze's
        # reference is that same picture. Held weakly: a picture must not keep the one before
        # it alive, nor that one its own (every decoded picture of the stream).
        self._pixel_change: tuple[weakref.ref[VideoFrame], npt.NDArray[np.int16]] | None = None
        self._cell_change: tuple[weakref.ref[VideoFrame], npt.NDArray[np.float32],
                                 float] | None = None
        # (config, fraction) of the black detector's test: the freeze scanner makes it too
        self.black_test: tuple[object, float] | None = None

    @property
    def grid(self) -> npt.NDArray[np.int16]:
        """The luma subsampled to about GRID_WIDTH pixels wide, as int16 (differences fit)."""
        if self._grid is None:
            step = grid_step(self.luma.shape[1])
            self._grid = self.luma[::step, ::step].astype(np.int16)
        return self._grid

    @property
    def half(self) -> npt.NDArray[np.int16]:
        """Every other grid pixel each way, contiguous: freeze's per-pixel tests subtract it
        from up to three other pictures' (a strided view costs four times as much each time)."""
        if self._half is None:
            self._half = np.ascontiguousarray(self.grid[::2, ::2])
        return self._half

    @property
    def cells(self) -> npt.NDArray[np.float32]:
        """Means of CELL x CELL blocks of the grid: a low-pass picture, insensitive to grain."""
        if self._cells is None:
            self._cells = cell_means(self.grid)
        return self._cells

    def pixel_change(self, other: VideoFrame) -> npt.NDArray[np.int16]:
        """``|half - other.half|``: how far each half-grid pixel moved since ``other``."""
        kept = self._pixel_change
        if kept is not None and kept[0]() is other:
            return kept[1]
        diff: npt.NDArray[np.int16] = np.abs(self.half - other.half)
        self._pixel_change = (weakref.ref(other), diff)
        return diff

    def cell_change(self, other: VideoFrame) -> tuple[npt.NDArray[np.float32], float]:
        """``|cells - other.cells|`` and its mean (luma levels)."""
        kept = self._cell_change
        if kept is not None and kept[0]() is other:
            return kept[1], kept[2]
        diff = np.abs(self.cells - other.cells)
        mean = mean_of(diff)
        self._cell_change = (weakref.ref(other), diff, mean)
        return diff, mean


def mean_of(values: npt.NDArray[np.float32]) -> float:
    """``float(values.mean())`` to the last bit (a float32 sum divided as float32), without
    numpy's Python wrapper around it (a third of the cost on a 45x80 array)."""
    return float(np.add.reduce(values, axis=None) / values.size)


def cell_means(grid: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    """Means of CELL x CELL blocks of ``grid``, 8-bit levels (0..255) as int16 (edges that do
    not fill a cell are dropped).

    Summed as CELL strided row views, then CELL strided column views: ten times faster than
    numpy's reduction over a reshaped array (24 against 238 us for a 180x320 grid), and unlike
    a matrix product it does not wake BLAS threads that burn CPU. The sums stay int16, exact:
    CELL x CELL levels add up to at most 16 x 255 = 4080 (int32 sums cost a quarter more, the
    conversion and twice the memory).
    """
    rows, cols = grid.shape[0] // CELL, grid.shape[1] // CELL
    if rows == 0 or cols == 0:
        return grid.astype(np.float32)
    g = grid[: rows * CELL, : cols * CELL]
    by_rows = g[0::CELL] + g[1::CELL]
    for k in range(2, CELL):
        by_rows += g[k::CELL]
    sums = by_rows[:, 0::CELL] + by_rows[:, 1::CELL]
    for k in range(2, CELL):
        sums += by_rows[:, k::CELL]
    means: npt.NDArray[np.float32] = sums.astype(np.float32) * np.float32(1.0 / (CELL * CELL))
    return means


@dataclass(frozen=True, slots=True)
class AudioBuffer:
    """Decoded audio: ``samples`` is float32, shape (channels, n), full scale = 1.0.

    ``channels`` names the rows by the stream's layout, as FFmpeg does ("FL", "FR", "FC", "LFE",
    "BL", "BR", "SL", "SR" ...); empty when the layout is unknown.
    """

    t: float
    sample_rate: int
    samples: Samples
    channels: tuple[str, ...] = ()

    @property
    def duration(self) -> float:
        return float(self.samples.shape[1]) / self.sample_rate

    def end(self) -> float:
        return self.t + self.duration


class AudioBatcher:
    """Joins consecutive audio buffers into batches of at least ``seconds``.

    Decoders hand out about 21 ms at a time; the audio scanners are vectorised, so feeding them
    half-second batches removes most of the per-call cost. A gap in the timestamps (lost audio)
    ends a batch, so times stay exact.
    """

    def __init__(self, seconds: float = 0.5) -> None:
        self.seconds = seconds
        self._parts: list[AudioBuffer] = []
        self._samples = 0

    def push(self, buf: AudioBuffer) -> AudioBuffer | None:
        """Add ``buf``; returns a full batch when there is one (then holds only ``buf``)."""
        out = None
        if self._parts:
            last = self._parts[-1]
            contiguous = (abs(buf.t - last.end()) < 1.5 / buf.sample_rate + 1e-6
                          and buf.sample_rate == last.sample_rate
                          and buf.samples.shape[0] == last.samples.shape[0])
            if not contiguous:
                out = self.flush()
        self._parts.append(buf)
        self._samples += buf.samples.shape[1]
        if out is None and self._samples >= self.seconds * buf.sample_rate:
            out = self.flush()
        return out

    def flush(self) -> AudioBuffer | None:
        if not self._parts:
            return None
        first = self._parts[0]
        samples = (first.samples if len(self._parts) == 1
                   else np.concatenate([p.samples for p in self._parts], axis=1))
        self._parts, self._samples = [], 0
        return AudioBuffer(first.t, first.sample_rate, samples, first.channels)
