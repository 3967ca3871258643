"""Stitching of tiled automatic segmentations: objects on the seams come out whole, once."""

import numpy as np
import pytest
from skimage.draw import disk

from samscope.instance.instances import CroppedMasks, Instances
from samscope.instance.tiled import blend_tile_maps, stitch_tile_instances, tile_weights
from samscope.tiling import TileGrid


def seam_objects(shape=(200, 260)):
    """Disks centred on tile seams (tiles of 100×128) and some inside tiles."""
    gt = np.zeros(shape, np.int32)
    centres = [(100, 60), (40, 128), (100, 128), (160, 200), (30, 30), (170, 250), (100, 256)]
    for i, (cy, cx) in enumerate(centres, start=1):
        rr, cc = disk((cy, cx), 14, shape=shape)
        gt[rr, cc] = i
    return gt


def perfect_tile_result(gt, tile, overlapping):
    """What a perfect model returns for one tile: the GT objects visible in its outer region."""
    crop = gt[tile.outer_slices]
    ids = [i for i in np.unique(crop) if i]
    masks = np.stack([crop == i for i in ids]) if ids else np.zeros((0,) + crop.shape, bool)
    cm = CroppedMasks.from_dense(masks)
    inst = Instances.from_masks(cm, np.linspace(0.9, 0.5, len(ids)).astype(np.float32))
    return inst if overlapping else Instances(inst.labels, inst.scores, None)


@pytest.mark.parametrize("overlapping", [True, False])
def test_objects_across_seams_come_out_whole_and_once(overlapping):
    gt = seam_objects()
    grid = TileGrid(gt.shape, (100, 128), (20, 20))  # halo > object radius
    results = [perfect_tile_result(gt, t, overlapping) for t in grid.tiles]
    merged = stitch_tile_instances(gt.shape, grid.tiles, results, mode="amg")
    assert merged.n == gt.max()
    assert (merged.masks is not None) == overlapping
    for i in range(1, gt.max() + 1):
        ids = np.unique(merged.labels[gt == i])
        assert len(ids) == 1 and ids[0] > 0, f"object {i} split into {ids}"
        assert ((merged.labels == ids[0]) == (gt == i)).all()


def test_without_stitching_rule_objects_would_be_duplicated():
    gt = seam_objects()
    grid = TileGrid(gt.shape, (100, 128), (20, 20))
    total = sum(perfect_tile_result(gt, t, True).n for t in grid.tiles)
    assert total > gt.max()  # seam objects are seen by several tiles ...
    merged = stitch_tile_instances(
        gt.shape, grid.tiles, [perfect_tile_result(gt, t, True) for t in grid.tiles]
    )
    assert merged.n == gt.max()  # ... and kept once


def test_blended_maps_equal_whole_image_maps():
    rng = np.random.default_rng(0)
    full = rng.random((2, 150, 170)).astype(np.float32)
    grid = TileGrid((150, 170), (64, 64), (12, 12))
    maps = [full[(slice(None),) + t.outer_slices] for t in grid.tiles]
    np.testing.assert_allclose(blend_tile_maps((150, 170), grid.tiles, maps), full, rtol=1e-5)
    # weights fall off only at cut borders
    w = tile_weights(grid.tiles[0], (150, 170))
    assert w[0, 0] == pytest.approx(1.0) and w[-1, -1] < 0.1


def test_blend_with_short_last_tiles():
    rng = np.random.default_rng(1)
    full = rng.random((1, 300, 260)).astype(np.float32)
    grid = TileGrid((300, 260), (128, 128), (32, 32))  # last tiles are 44 and 4 px wide
    maps = [full[(slice(None),) + t.outer_slices] for t in grid.tiles]
    np.testing.assert_allclose(blend_tile_maps((300, 260), grid.tiles, maps), full, rtol=1e-5)
