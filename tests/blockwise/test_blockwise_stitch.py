"""Stitching by overlap matching: objects across borders and corners get one id, none twice."""

import numpy as np
import pytest

from samscope.blockwise.grid import BlockGrid
from samscope.blockwise.stitch import global_lookups, match_overlap, stitch_in_memory


def _discs(shape, n, rng, rmin=3, rmax=9):
    rng = np.random.default_rng(rng)
    grids = np.indices(shape)
    lab = np.zeros(shape, np.int64)
    for i in range(1, n + 1):
        centre = rng.uniform(0, shape)
        r = rng.uniform(rmin, rmax)
        inside = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) < r * r
        lab[inside & (lab == 0)] = i
    from skimage.segmentation import relabel_sequential

    return relabel_sequential(lab)[0]


def _blocks_as_a_segmenter_would_see(truth, grid, rng):
    """Each block: the truth inside its outer region, objects cut at the outer edge kept as
    fragments, local ids shuffled (as independent segmentations would number them)."""
    rng = np.random.default_rng(rng)
    local = {}
    for b in grid:
        region = truth[b.outer_slices]
        ids = np.unique(region[region > 0])
        perm = np.zeros(int(truth.max()) + 1, np.int64)
        perm[ids] = rng.permutation(len(ids)) + 1
        local[b.flat] = perm[region]
    return local


def _same_partition(a, b):
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))


@pytest.mark.parametrize("shape,block,halo", [((120, 150), (32, 40), (12, 12)),
                                              ((24, 60, 60), (8, 24, 24), (4, 10, 10))])
def test_objects_crossing_borders_and_corners_come_out_once(shape, block, halo):
    truth = _discs(shape, 60 if len(shape) == 2 else 40, rng=1, rmax=9 if len(shape) == 2 else 5)
    grid = BlockGrid(shape, block, halo)
    # an object on a four-block corner (2-D) must be among them
    crossing = [i for i in np.unique(truth[truth > 0])
                if len({b.flat for b in grid if (truth[b.core_slices] == i).any()}) >= 3]
    assert crossing, "the test image should have objects spanning three or more blocks"
    stitched = stitch_in_memory(grid, _blocks_as_a_segmenter_would_see(truth, grid, rng=2))
    assert _same_partition(truth, stitched)  # no object split, none merged, none duplicated
    ids = np.unique(stitched[stitched > 0])
    assert ids.tolist() == list(range(1, len(ids) + 1))  # sequential


def test_ids_do_not_depend_on_the_local_numbering():
    truth = _discs((100, 100), 40, rng=3)
    grid = BlockGrid(truth.shape, (25, 25), (10, 10))
    a = stitch_in_memory(grid, _blocks_as_a_segmenter_would_see(truth, grid, rng=4))
    b = stitch_in_memory(grid, _blocks_as_a_segmenter_would_see(truth, grid, rng=5))
    assert _same_partition(a, b) and a.max() == b.max()


def test_slightly_different_borders_in_two_blocks_still_match():
    truth = np.zeros((40, 80), np.int64)
    truth[10:30, 30:50] = 1  # crosses the border at x = 40
    grid = BlockGrid(truth.shape, (40, 40), (0, 16))
    left = truth[grid.block_at(0).outer_slices].copy()
    right = truth[grid.block_at(1).outer_slices].copy()
    right[10:12, :] = 0  # the right block sees the object two rows shorter
    out = stitch_in_memory(grid, {0: left, 1: right * 7})
    assert set(np.unique(out)) == {0, 1}


def test_disagreeing_blocks_never_fuse_two_objects():
    # block 0 sees one merged object where block 1 sees two: IoU <= 0.5 with each, no fusion
    grid = BlockGrid((20, 40), (20, 20), (0, 10))
    left = np.zeros((20, 30), np.int64)
    left[2:18, 12:30] = 1
    right = np.zeros((20, 30), np.int64)
    right[2:10, 2:20] = 1
    right[10:18, 2:20] = 2
    out = stitch_in_memory(grid, {0: left, 1: right})
    left_ids = set(np.unique(out[:, :20])) - {0}
    right_ids = set(np.unique(out[:, 20:])) - {0}
    assert len(left_ids) == 1 and len(right_ids) == 2 and not left_ids & right_ids


def test_match_overlap_is_one_to_one_above_one_half():
    a = np.array([[1, 1, 1, 1, 0, 2, 2]])
    b = np.array([[3, 3, 4, 4, 0, 5, 5]])
    assert match_overlap(a, b).tolist() == [[2, 5]]
    with pytest.raises(ValueError):
        match_overlap(a, b, iou_threshold=0.3)


def test_global_lookups_leave_out_objects_without_core_pixels():
    # block 1's object 2 lies only in its halo and matches nothing: no id, ids stay sequential
    lut, n = global_lookups([1, 2], [np.array([1]), np.array([1])], np.zeros((0, 4)))
    assert n == 2 and lut[0].tolist() == [0, 1] and lut[1].tolist() == [0, 2, 0]
