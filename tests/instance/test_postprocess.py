"""Hand-computed cases for samscope.instance.postprocess."""

from __future__ import annotations

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.image import Transform
from samscope.instance.instances import CroppedMasks
from samscope.instance.postprocess import (
    box_iou,
    box_nms,
    boxes_near_edge,
    filter_small,
    largest_component,
    mask_overlap_filter,
    masks_to_boxes,
    remove_small_regions,
    select,
    stability_score,
    upsample_logit_crop,
)


def test_stability_score_by_hand():
    lg = np.array([[[3.0, 0.5, -0.5, -3.0], [2.0, 1.5, 0.0, -2.0]]])  # (1, 2, 4)
    # > +1: 3.0, 2.0, 1.5 (3 px); > -1: 3.0, 0.5, -0.5, 2.0, 1.5, 0.0 (6 px)
    assert stability_score(lg, offset=1.0).tolist() == [0.5]
    assert stability_score(lg, offset=0.0).tolist() == [pytest.approx(4 / 4)]  # > 0 both
    assert stability_score(lg, offset=1.0, threshold=1.0).tolist() == [0.25]  # 1 of 4
    assert stability_score(np.full((2, 3, 3), -5.0)).tolist() == [0.0, 0.0]  # empty union
    with pytest.raises(InputError):
        stability_score(lg, offset=-1)


def test_masks_to_boxes_and_box_iou():
    m = np.zeros((3, 6, 7), bool)
    m[0, 1:3, 2:6] = True
    m[1, 5, 6] = True
    assert masks_to_boxes(m).tolist() == [[1, 2, 3, 6], [5, 6, 6, 7], [0, 0, 0, 0]]
    a = np.array([[0, 0, 4, 4]])
    b = np.array([[2, 2, 6, 6], [0, 0, 4, 4], [4, 4, 8, 8], [0, 0, 0, 0]])
    # overlap 2×2 = 4 of union 16 + 16 - 4 = 28; touching boxes do not overlap
    assert box_iou(a, b)[0].tolist() == pytest.approx([4 / 28, 1.0, 0.0, 0.0])


def test_box_nms_greedy_by_hand():
    boxes = np.array(
        [
            [0, 0, 10, 10],  # a, score 0.5
            [0, 1, 10, 11],  # b overlaps a: 90 / 110 = 0.818
            [0, 5, 10, 15],  # c overlaps b: 60 / 140 = 0.43, a: 50 / 150 = 0.33
            [20, 20, 30, 30],  # d alone
        ]
    )
    scores = np.array([0.5, 0.9, 0.8, 0.1])
    assert box_nms(boxes, scores, iou_thresh=0.7).tolist() == [1, 2, 3]
    assert box_nms(boxes, scores, iou_thresh=0.4).tolist() == [1, 3]
    assert box_nms(boxes, scores, iou_thresh=1.0).tolist() == [1, 2, 0, 3]
    assert box_nms(np.zeros((0, 4)), np.zeros(0), iou_thresh=0.5).tolist() == []
    with pytest.raises(InputError):
        box_nms(boxes, scores, iou_thresh=1.5)


def test_box_nms_blocks_match_one_block():
    rng = np.random.default_rng(0)
    yx = rng.uniform(0, 200, (500, 2))
    hw = rng.uniform(5, 40, (500, 2))
    boxes = np.concatenate([yx, yx + hw], axis=1)
    scores = rng.uniform(size=500)
    one = box_nms(boxes, scores, iou_thresh=0.3, block=1000)
    assert np.array_equal(box_nms(boxes, scores, iou_thresh=0.3, block=7), one)
    # brute force greedy
    order, kept = np.argsort(-scores, kind="stable"), []
    for i in order:
        if all(box_iou(boxes[i : i + 1], boxes[j : j + 1])[0, 0] <= 0.3 for j in kept):
            kept.append(i)
    assert one.tolist() == kept


def test_boxes_near_edge():
    crop = (0, 0, 100, 100)  # top-left crop of a 200 × 200 image
    boxes = np.array([[10, 10, 50, 50], [10, 10, 50, 95], [0, 0, 30, 30], [60, 10, 100, 40]])
    # inner edges are y = 100 and x = 100; boxes ending within 20 px of them touch
    assert boxes_near_edge(boxes, crop, (200, 200)).tolist() == [False, True, False, True]
    # the whole image as the crop: nothing is near an inner edge
    assert not boxes_near_edge(boxes, (0, 0, 200, 200), (200, 200)).any()


def test_largest_component_and_filter_small():
    m = np.zeros((2, 8, 8), bool)
    m[0, 0:2, 0:2] = True  # 4 px
    m[0, 4:7, 4:7] = True  # 9 px, the largest
    m[0, 3, 3] = True  # touches the 9-px block diagonally: 8-connected, not 4-connected
    m[1, 7, 7] = True
    lc = largest_component(m)
    assert lc.areas().tolist() == [10, 1]
    assert lc.boxes[0].tolist() == [3, 3, 7, 7]
    assert largest_component(m, connectivity=1).areas().tolist() == [9, 1]
    assert filter_small(lc, min_size=2).tolist() == [0]
    assert filter_small(m, min_size=0).tolist() == [0, 1]
    assert m[0].sum() == 14  # input untouched
    empty = largest_component(CroppedMasks.from_dense(np.zeros((1, 4, 4), bool)))
    assert empty.areas().tolist() == [0]


def test_remove_small_regions_holes_and_islands():
    m = np.zeros((10, 10), bool)
    m[1:8, 1:8] = True
    m[4, 4] = False  # a 1-px hole
    m[9, 9] = True  # a 1-px island
    filled, changed = remove_small_regions(m, min_area=2, mode="holes")
    assert changed and filled[4, 4] and filled.sum() == m.sum() + 1
    cleaned, changed = remove_small_regions(m, min_area=2, mode="islands")
    assert changed and not cleaned[9, 9] and cleaned.sum() == m.sum() - 1
    same, changed = remove_small_regions(m, min_area=1, mode="islands")
    assert not changed and np.array_equal(same, m)
    tiny = np.zeros((5, 5), bool)
    tiny[0, 0] = tiny[4, 4] = tiny[3, 4] = True  # every island small: the largest stays
    kept, _ = remove_small_regions(tiny, min_area=10, mode="islands")
    assert kept.sum() == 2


def test_mask_overlap_filter_fraction_and_iou():
    m = np.zeros((4, 10, 10), bool)
    m[0, 0:4, 0:4] = True  # 16 px, best
    m[1, 0:4, 2:6] = True  # 16 px, half covered by 0 (8 / 16 = 0.5: not > 0.5)
    m[2, 1:4, 1:4] = True  # 9 px, all inside 0
    m[3, 6:10, 6:10] = True
    scores = np.array([0.9, 0.8, 0.7, 0.1])
    assert mask_overlap_filter(m, scores, overlap_thresh=0.5).tolist() == [0, 1, 3]
    assert mask_overlap_filter(m, scores, overlap_thresh=0.4).tolist() == [0, 3]
    # IoU(0, 2) = 9 / 16; IoU(0, 1) = 8 / 24
    assert mask_overlap_filter(m, scores, overlap_thresh=0.5, metric="iou").tolist() == [0, 1, 3]
    assert mask_overlap_filter(m, scores, overlap_thresh=0.3, metric="iou").tolist() == [0, 3]
    cm = CroppedMasks.from_dense(m)
    assert mask_overlap_filter(cm, scores, overlap_thresh=0.5).tolist() == [0, 1, 3]
    with pytest.raises(InputError):
        mask_overlap_filter(m, scores[:2], overlap_thresh=0.5)
    with pytest.raises(InputError):
        mask_overlap_filter(m, scores, overlap_thresh=0.5, metric="dice")


def test_select_keeps_order():
    m = np.zeros((3, 5, 5), bool)
    m[0, 0, 0] = m[1, 1, 1] = m[2, 2, 2] = True
    sub = select(CroppedMasks.from_dense(m), np.array([2, 0]))
    assert sub.boxes.tolist() == [[2, 2, 3, 3], [0, 0, 1, 1]]


@pytest.mark.parametrize("shape", [(100, 70), (37, 300), (256, 256)])
def test_upsample_logit_crop_equals_full_upsampling(shape):
    t = Transform(shape, 256)
    ay, ax = t.interpolation_matrices(64)
    yy, xx = np.mgrid[:64, :64]
    logits = (6.0 - np.hypot(yy - 4.2, xx - 30.7)).astype(np.float32)
    full = ay @ logits @ ax.T > 0
    pos = np.argwhere(logits > 0)
    r0, c0 = np.maximum(pos.min(0) - 1, 0)
    r1, c1 = np.minimum(pos.max(0) + 2, 64)
    (y0, x0, y1, x1), crop = upsample_logit_crop(logits[r0:r1, c0:c1], (r0, c0), ay, ax)
    out = np.zeros(shape, bool)
    out[y0:y1, x0:x1] = crop
    assert full.any() and np.array_equal(out, full)
