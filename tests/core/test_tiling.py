import numpy as np
import pytest

from samscope.errors import InputError
from samscope.tiling import TileGrid, blend_weights, window_around


def test_inner_regions_partition_the_image():
    grid = TileGrid((250, 130), (64, 48), (10, 7))
    cover = np.zeros((250, 130), int)
    for t in grid:
        cover[t.inner_slices] += 1
        oy0, ox0, oy1, ox1 = t.outer
        assert oy0 >= 0 and ox0 >= 0 and oy1 <= 250 and ox1 <= 130
        inner = np.zeros((250, 130), bool)
        inner[t.inner_slices] = True
        outer = np.zeros((250, 130), bool)
        outer[t.outer_slices] = True
        assert (inner <= outer).all()
        # inner_in_outer maps back to the same pixels
        region = np.arange(250 * 130).reshape(250, 130)
        assert (region[t.outer_slices][t.inner_in_outer] == region[t.inner_slices]).all()
    assert (cover == 1).all()
    assert len(grid) == 4 * 3


def test_tile_at_and_best_tile_for_box():
    grid = TileGrid((200, 200), (100, 100), (20, 20))
    assert grid.tile_at((150, 30)).grid_position == (1, 0)
    with pytest.raises(InputError, match="outside"):
        grid.tile_at((200, 5))
    box = np.array([90, 90, 112, 112])  # straddles the seam in both axes
    best = grid.best_tile_for_box(box)
    assert grid.margin(best, box) > 0 and best.contains_box(box)


def test_window_around_and_blend():
    y0, x0, y1, x1 = window_around(np.array([10, 10, 30, 300]), (400, 400), (128, 128))
    assert y1 - y0 == 128 and 0 <= y0 and x1 - x0 >= 290 * 1.5 - 1 or x1 - x0 == 400
    w = blend_weights((64, 64), (8, 8))
    assert w.shape == (64, 64) and w.min() > 0 and w[32, 32] == 1
    assert w[0, 32] < w[4, 32] < w[8, 32]


def test_fitted_tiling_uses_fewer_tiles_that_fit_the_input():
    from samscope.tiling import fitted_tiling

    # HeLa's frame: the card's 224 + 2 x 16 tiles need 4 x 5; fitted: 3 x 5, each outer <= 256
    tile, halo = fitted_tiling((700, 1100), 256)
    assert (tile, halo) == ((234, 220), (11, 18))
    grid = TileGrid((700, 1100), tile, halo)
    assert len(grid) == 15 < len(TileGrid((700, 1100), (224, 224), (16, 16))) == 20
    cover = np.zeros((700, 1100), int)
    for t in grid:
        cover[t.inner_slices] += 1
        assert max(t.outer_shape) <= 256
        if 0 < t.inner[0] and t.inner[2] < 700:  # a cut border on both sides keeps its halo
            assert t.inner[0] - t.outer[0] >= 8 and t.outer[2] - t.inner[2] >= 8
    assert (cover == 1).all()
    # an axis that fits one input is not cut; an image that fits is not tiled
    assert fitted_tiling((200, 1100), 256) == ((200, 220), (0, 18))
    assert fitted_tiling((256, 100), 256) == (None, None)
    # the halo never falls below min_halo: 5000 px at min_halo 8 need 21 rows of 239
    (ty, _), (hy, _) = fitted_tiling((5000, 300), 256, min_halo=8)
    assert ty + 2 * hy <= 256 and hy >= 8
    with pytest.raises(InputError, match="halo"):
        fitted_tiling((500, 500), 16, min_halo=8)
