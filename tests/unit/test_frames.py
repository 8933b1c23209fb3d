"""The shared per-picture statistics of ``avmon.frames``, against plain numpy."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from avmon.frames import CELL, VideoFrame, cell_means, grid_step, mean_of


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


def test_mean_of_equals_numpys_mean_to_the_bit() -> None:
    rng = np.random.default_rng(11)
    for shape in [(45, 80), (68, 120), (1, 1), (3, 7)]:
        for scale in (0.01, 1.0, 50.0):
            values = np.abs(rng.normal(0, scale, shape)).astype(np.float32)
            assert mean_of(values) == float(values.mean())


def test_comparisons_are_kept_for_the_last_picture_and_do_not_keep_it_alive() -> None:
    rng = np.random.default_rng(5)
    lumas = [rng.integers(0, 256, (72, 128), dtype=np.uint8) for _ in range(3)]
    a, b, c = (VideoFrame(i * 0.04, 0.04, luma) for i, luma in enumerate(lumas))
    diff = c.pixel_change(b)
    assert np.array_equal(diff, np.abs(c.half - b.half))
    assert c.pixel_change(b) is diff  # asked twice (freeze's noise and its reference test)
    cells, mean = c.cell_change(b)
    assert np.array_equal(cells, np.abs(c.cells - b.cells))
    assert mean == float(np.abs(c.cells - b.cells).mean())
    assert c.cell_change(b)[0] is cells
    assert not np.array_equal(c.pixel_change(a), diff)  # another picture: computed anew
    # held weakly: a picture does not keep the one it was compared with (nor its chain) alive
    gone = weakref.ref(b)
    del b
    gc.collect()
    assert gone() is None
