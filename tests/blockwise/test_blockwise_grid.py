"""Block geometry: cores tile the image, outer regions add the halo, bad sizes are refused."""

import numpy as np
import pytest

from samscope.blockwise.grid import BlockGrid
from samscope.errors import InputError


def test_cores_tile_the_image_and_outer_regions_add_the_halo():
    grid = BlockGrid((100, 250), (40, 64), (8, 16))
    cover = np.zeros(grid.shape, int)
    for block in grid:
        cover[block.core_slices] += 1
        for (c0, c1), (o0, o1), n, h in zip(block.core, block.outer, grid.shape, grid.halo, strict=True):
            assert o0 == max(0, c0 - h) and o1 == min(n, c1 + h)
    assert (cover == 1).all()
    assert grid.counts == (3, 4) and len(grid) == 12


def test_neighbours_are_the_touching_blocks_and_only_they_overlap():
    grid = BlockGrid((90, 90), (30, 30), (15, 15))
    assert grid.neighbours(4) == [0, 1, 2, 3, 5, 6, 7, 8]
    assert grid.neighbours(0, forward=True) == [1, 3, 4]
    for a in range(len(grid)):
        for b in range(len(grid)):
            if a != b and b not in grid.neighbours(a):
                assert grid.overlap(a, b) is None
    assert grid.overlap(0, 4) == ((15, 45), (15, 45))


def test_3d_grid():
    grid = BlockGrid((10, 64, 64), (5, 32, 32), (2, 8, 8))
    assert grid.counts == (2, 2, 2)
    assert len(grid.neighbours(0)) == 7


@pytest.mark.parametrize(
    ("block", "halo", "words"),
    [
        (200, 8, "larger than the image"),
        (32, 17, "more than half the block"),
        (32, 0, "cannot be matched without an overlap"),
        ((32, 32, 32), 8, "needs 2 value(s)"),
        (0, 0, "must be positive"),
    ],
)
def test_bad_sizes_are_clear_errors(block, halo, words):
    with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
        BlockGrid((100, 120), block, halo)


def test_an_unsplit_axis_may_have_no_halo():
    grid = BlockGrid((4, 100, 100), (4, 50, 50), (0, 10, 10))
    assert grid.counts == (1, 2, 2)
