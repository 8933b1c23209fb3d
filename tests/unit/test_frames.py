"""The shared per-picture statistics of ``avmon.frames``, against plain numpy."""

from __future__ import annotations

import numpy as np
import pytest

from avmon.frames import CELL, VideoFrame, cell_means, grid_step


@pytest.mark.parametrize("shape", [(180, 320), (181, 322), (120, 213), (3, 320), (8, 8)])
def test_cell_means_equal_the_mean_of_each_block(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    grid = rng.integers(0, 256, shape).astype(np.int16)
    grid[0, :] = 255  # the largest sums (16 x 255) must not wrap around
    rows, cols = shape[0] // CELL, shape[1] // CELL
    blocks = grid[: rows * CELL, : cols * CELL].astype(np.float64)
    expected = blocks.reshape(rows, CELL, cols, CELL).mean(axis=(1, 3))
    got = cell_means(grid)
    assert got.dtype == np.float32
    if not (rows and cols):  # smaller than a cell: the grid itself
        assert np.array_equal(got, grid.astype(np.float32))
        return
    # sums of whole levels are exact and 1/16 is a power of two: equal, not approximately
    assert np.array_equal(got, expected.astype(np.float32))


def test_frame_grid_and_cells_of_a_padded_plane() -> None:
    rng = np.random.default_rng(7)
    plane = rng.integers(0, 256, (720, 1280 + 64), dtype=np.uint8)
    luma = plane[:, :1280]  # a decoded plane's rows are longer than the picture
    frame = VideoFrame(0.0, 0.04, luma)
    step = grid_step(1280)
    assert np.array_equal(frame.grid, luma[::step, ::step].astype(np.int16))
    assert frame.grid.dtype == np.int16
    assert np.array_equal(frame.cells, cell_means(frame.grid))
    assert frame.cells is frame.cells  # computed once
