"""Matching, SA/mSA, precision/recall/F1 and the dice protocol: hand-computed cases and brute force."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from samscope.errors import InputError
from samscope.evaluation.metrics import (
    DEFAULT_THRESHOLDS,
    MaskStack,
    dice_protocol,
    match_instances,
    mean_segmentation_accuracy,
    overlap_table,
    segmentation_accuracy,
)

HELA = Path(__file__).resolve().parents[3] / "shared" / "data" / "hela" / "masks.tif"


# ------------------------------------------------------------------------------------------
# independent reference implementations (dense, slow, obviously correct)
# ------------------------------------------------------------------------------------------


def dense_contingency(gt: np.ndarray, pred: np.ndarray) -> dict[tuple[int, int], int]:
    out: dict[tuple[int, int], int] = {}
    for g, p in zip(gt.ravel().tolist(), pred.ravel().tolist(), strict=True):
        if g and p:
            out[(g, p)] = out.get((g, p), 0) + 1
    return out


def dense_iou(gt_masks: dict[int, np.ndarray], pred_masks: dict[int, np.ndarray]) -> dict:
    iou = {}
    for g, gm in gt_masks.items():
        for p, pm in pred_masks.items():
            inter = np.count_nonzero(gm & pm)
            if inter:
                iou[(g, p)] = inter / np.count_nonzero(gm | pm)
    return iou


def brute_force_tp(iou: dict, gt_ids: list, pred_ids: list, t: float) -> int:
    """Maximum number of disjoint pairs with IoU >= t, by enumerating assignments."""
    small, large, flip = (
        (gt_ids, pred_ids, False) if len(gt_ids) <= len(pred_ids) else (pred_ids, gt_ids, True)
    )
    best = 0
    for perm in itertools.permutations(large, len(small)):
        n = 0
        for a, b in zip(small, perm, strict=True):
            key = (b, a) if flip else (a, b)
            n += iou.get(key, 0.0) >= t
        best = max(best, n)
    return best


def masks_of(labels: np.ndarray) -> dict[int, np.ndarray]:
    return {int(i): labels == i for i in np.unique(labels) if i}


# ------------------------------------------------------------------------------------------
# overlap counting
# ------------------------------------------------------------------------------------------


def test_overlap_table_hand_case():
    gt = np.array([[1, 1, 0, 0], [0, 2, 2, 2]])
    pred = np.array([[9, 9, 9, 0], [0, 0, 4, 4]])
    t = overlap_table(gt, pred)
    assert t.gt_ids.tolist() == [1, 2]
    assert t.pred_ids.tolist() == [4, 9]
    assert t.gt_sizes.tolist() == [2, 3]
    assert t.pred_sizes.tolist() == [2, 3]
    pairs = {
        (int(t.gt_ids[g]), int(t.pred_ids[p])): int(c)
        for g, p, c in zip(t.gt_index, t.pred_index, t.intersection, strict=True)
    }
    assert pairs == {(1, 9): 2, (2, 4): 2}
    np.testing.assert_allclose(sorted(t.iou()), [2 / 3, 2 / 3])
    np.testing.assert_allclose(sorted(t.dice()), [0.8, 0.8])


@pytest.mark.parametrize("seed", range(6))
def test_overlap_table_matches_dense_count(seed):
    rng = np.random.default_rng(seed)
    shape = (3, 17, 23) if seed % 2 else (31, 29)
    ids_g = rng.choice(np.arange(1, 70_000), size=12, replace=False)  # gaps, non-consecutive
    ids_p = rng.choice(np.arange(1, 70_000), size=9, replace=False)
    # blocky random labels: upsampled noise so that runs exist
    small = tuple(max(s // 3, 1) for s in shape)
    gt = np.concatenate([[0], ids_g])[rng.integers(0, 13, small)]
    pred = np.concatenate([[0], ids_p])[rng.integers(0, 10, small)]
    gt = ndi.zoom(gt, [s / q for s, q in zip(shape, small, strict=True)], order=0)[
        tuple(slice(0, s) for s in shape)
    ]
    pred = np.roll(
        ndi.zoom(pred, [s / q for s, q in zip(shape, small, strict=True)], order=0), 1, axis=-1
    )[tuple(slice(0, s) for s in shape)]
    gt, pred = gt.astype(np.uint32), pred.astype(np.int64)
    t = overlap_table(gt, pred)
    want = dense_contingency(gt, pred)
    got = {
        (int(t.gt_ids[g]), int(t.pred_ids[p])): int(c)
        for g, p, c in zip(t.gt_index, t.pred_index, t.intersection, strict=True)
    }
    assert got == want
    for ids, sizes, img in ((t.gt_ids, t.gt_sizes, gt), (t.pred_ids, t.pred_sizes, pred)):
        assert ids.tolist() == [i for i in np.unique(img).tolist() if i]
        assert sizes.tolist() == [int(np.count_nonzero(img == i)) for i in ids]
    # the same counts through the sparse mask-stack paths
    for a, b in (
        (MaskStack.from_labels(gt), pred),
        (gt, MaskStack.from_labels(pred)),
        (MaskStack.from_labels(gt), MaskStack.from_labels(pred)),
    ):
        s = overlap_table(a, b)
        got_s = {
            (int(s.gt_ids[g]), int(s.pred_ids[p])): int(c)
            for g, p, c in zip(s.gt_index, s.pred_index, s.intersection, strict=True)
        }
        assert got_s == want
        assert (
            s.gt_sizes.tolist() == t.gt_sizes.tolist()
            and s.pred_sizes.tolist() == t.pred_sizes.tolist()
        )


def test_huge_ids_do_not_overflow():
    big = np.iinfo(np.int64).max
    gt = np.array([[big, big, 0, 5]], dtype=np.uint64)
    pred = np.array([[big - 1, big - 1, 0, 5]], dtype=np.int64)
    t = overlap_table(gt, pred)
    assert t.gt_ids.tolist() == [5, big] and t.pred_ids.tolist() == [5, big - 1]
    assert sorted(t.intersection.tolist()) == [1, 2]
    assert segmentation_accuracy(gt, pred).msa == 1.0
    with pytest.raises(InputError, match="2\\*\\*63"):
        overlap_table(gt + np.uint64(2), pred)


# ------------------------------------------------------------------------------------------
# segmentation accuracy
# ------------------------------------------------------------------------------------------


def test_sa_hand_case():
    # object 1: 4 px, prediction covers 3 of them (IoU 0.75); object 2 missed; one false positive
    gt = np.array([[1, 1, 1, 1, 0, 2, 0, 0]])
    pred = np.array([[7, 7, 7, 0, 0, 0, 0, 3]])
    sa = segmentation_accuracy(gt, pred)
    np.testing.assert_array_equal(sa.thresholds, DEFAULT_THRESHOLDS)
    # t <= 0.75: TP 1, FP 1, FN 1 -> 1/3; t > 0.75: TP 0, FP 2, FN 2 -> 0
    expected = np.array([1 / 3] * 6 + [0.0] * 4)
    np.testing.assert_allclose(sa.accuracy, expected)
    assert sa.sa50 == pytest.approx(1 / 3) and sa.sa75 == pytest.approx(1 / 3)
    assert sa.msa == pytest.approx(0.2)
    assert mean_segmentation_accuracy(gt, pred) == pytest.approx(0.2)
    assert sa.tp.tolist() == [1] * 6 + [0] * 4
    assert sa.fp.tolist() == [1] * 6 + [2] * 4
    assert sa.fn.tolist() == [1] * 6 + [2] * 4
    i = sa.at(0.5)
    assert (sa.precision[i], sa.recall[i], sa.f1[i]) == pytest.approx((0.5, 0.5, 0.5))


def test_threshold_is_inclusive():
    gt = np.array([[1, 1, 1, 1]])
    pred = np.array([[1, 1, 1, 0]])  # IoU exactly 0.75
    assert match_instances(gt, pred, threshold=0.75).tp == 1
    assert match_instances(gt, pred, threshold=0.76).tp == 0


def test_empty_ground_truth_and_prediction():
    z = np.zeros((4, 5), np.uint16)
    one = z.copy()
    one[1:3, 1:3] = 4
    both = segmentation_accuracy(z, z)
    assert both.msa == 1.0 and both.n_gt == 0 and both.n_pred == 0
    assert (both.precision == 1).all() and (both.recall == 1).all() and (both.f1 == 1).all()
    no_gt = match_instances(z, one)
    assert (no_gt.tp, no_gt.fp, no_gt.fn) == (0, 1, 0)
    assert (no_gt.accuracy, no_gt.precision, no_gt.recall, no_gt.f1) == (0.0, 0.0, 1.0, 0.0)
    no_pred = match_instances(one, z)
    assert (no_pred.tp, no_pred.fp, no_pred.fn) == (0, 0, 1)
    assert (no_pred.accuracy, no_pred.precision, no_pred.recall, no_pred.f1) == (0.0, 1.0, 0.0, 0.0)
    assert segmentation_accuracy(one, z).msa == 0.0


def test_one_pixel_objects_and_non_consecutive_ids():
    gt = np.zeros((5, 5), np.int32)
    pred = np.zeros((5, 5), np.uint16)
    gt[0, 0], gt[2, 2], gt[4, 4] = 3, 1000, 7  # single pixels, gaps in the ids
    pred[0, 0], pred[2, 2], pred[4, 3] = 65535, 2, 9  # last one misses by a pixel
    m = match_instances(gt, pred, threshold=0.95)
    assert sorted(zip(m.gt_ids.tolist(), m.pred_ids.tolist(), strict=True)) == [
        (3, 65535),
        (1000, 2),
    ]
    assert (m.tp, m.fp, m.fn) == (2, 1, 1)
    assert segmentation_accuracy(gt, pred).msa == pytest.approx(0.5)


def test_optimal_assignment_beats_greedy():
    gt = np.zeros((1, 20), np.uint8)
    gt[0, :10], gt[0, 10:] = 1, 2
    p1 = np.zeros((1, 20), bool)
    p1[0, :16] = True  # IoU 10/16 with object 1, 6/20 with object 2
    p2 = np.zeros((1, 20), bool)
    p2[0, 4:10] = True  # IoU 6/10 with object 1
    pred = MaskStack.from_dense(np.stack([p1, p2]))
    # greedy (best IoU first) takes p1-1 and leaves 2 unmatched; optimal is p1-2, p2-1
    m = match_instances(gt, pred, threshold=0.3)
    assert sorted(zip(m.gt_ids.tolist(), m.pred_ids.tolist(), strict=True)) == [(1, 2), (2, 1)]
    np.testing.assert_allclose(sorted(m.iou), [0.3, 0.6])
    m = match_instances(gt, pred, threshold=0.5)
    assert (m.tp, m.gt_ids.tolist(), m.pred_ids.tolist()) == (1, [1], [1])  # tie-break: larger IoU


@pytest.mark.parametrize("seed", range(40))
def test_matching_equals_brute_force_on_overlapping_stacks(seed):
    rng = np.random.default_rng(seed)
    shape = (12, 12)

    def random_stack(n):
        masks = np.zeros((n, *shape), bool)
        for i in range(n):
            y, x = rng.integers(0, 8, 2)
            h, w = rng.integers(2, 6, 2)
            masks[i, y : y + h, x : x + w] = True
        return masks

    gm, pm = random_stack(int(rng.integers(1, 6))), random_stack(int(rng.integers(1, 6)))
    iou = dense_iou(dict(enumerate(gm, 1)), dict(enumerate(pm, 1)))
    gids, pids = list(range(1, len(gm) + 1)), list(range(1, len(pm) + 1))
    ts = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7)
    sa = segmentation_accuracy(MaskStack.from_dense(gm), MaskStack.from_dense(pm), thresholds=ts)
    assert sa.tp.tolist() == [brute_force_tp(iou, gids, pids, t) for t in ts]
    for t in ts:
        m = match_instances(MaskStack.from_dense(gm), MaskStack.from_dense(pm), threshold=t)
        assert len(set(m.gt_ids.tolist())) == m.tp == len(set(m.pred_ids.tolist()))
        for g, p, v in zip(m.gt_ids, m.pred_ids, m.iou, strict=True):
            assert v == pytest.approx(iou[(int(g), int(p))]) and v >= t


def test_overlapping_duplicate_predictions():
    gt = np.zeros((6, 6), np.uint8)
    gt[1:4, 1:4] = 1
    mask = gt == 1
    pred = MaskStack.from_dense(np.stack([mask, mask, np.zeros_like(mask)]), ids=[5, 6, 7])
    sa = segmentation_accuracy(gt, pred)
    assert sa.n_pred == 2  # the empty mask is not an object
    np.testing.assert_allclose(sa.accuracy, 0.5)  # one TP, one FP (the duplicate)


def test_volume_labels_and_label_stack_equivalence():
    rng = np.random.default_rng(3)
    gt = ndi.label(rng.random((8, 30, 30)) > 0.7)[0]
    pred = ndi.label(ndi.binary_dilation(gt > 0))[0]
    a = segmentation_accuracy(gt, pred)
    b = segmentation_accuracy(MaskStack.from_labels(gt), MaskStack.from_labels(pred))
    c = segmentation_accuracy(gt, MaskStack.from_labels(pred))
    assert a.tp.tolist() == b.tp.tolist() == c.tp.tolist()
    assert a.n_gt == b.n_gt == c.n_gt


@pytest.mark.skipif(not HELA.exists(), reason="HeLa data not present")
def test_hela_against_dense_reference():
    import tifffile

    gt = tifffile.imread(HELA, key=3)
    # prediction: eroded nuclei, a few dropped, two merged
    pred = ndi.grey_erosion(gt, size=(5, 5)) * (
        ndi.minimum_filter(gt, 5) == ndi.maximum_filter(gt, 5)
    )
    pred[np.isin(pred, [5, 17, 40])] = 0
    pred[pred == 60] = 61
    sa = segmentation_accuracy(gt, pred)
    # dense reference: contingency via bincount, unique matches at t >= 0.5
    k = int(pred.max()) + 1
    cont = np.bincount(
        gt.astype(np.int64).ravel() * k + pred.ravel(), minlength=(int(gt.max()) + 1) * k
    )
    cont = cont.reshape(-1, k)
    sg, sp = cont.sum(1), cont.sum(0)
    union = sg[:, None] + sp[None, :] - cont
    iou = np.where(cont > 0, cont / np.maximum(union, 1), 0)[1:, 1:]
    n_gt, n_pred = int((sg[1:] > 0).sum()), int((sp[1:] > 0).sum())
    assert (sa.n_gt, sa.n_pred) == (n_gt, n_pred)
    want = [(iou >= t).sum() / (n_gt + n_pred - (iou >= t).sum()) for t in DEFAULT_THRESHOLDS]
    np.testing.assert_allclose(sa.accuracy, want)
    assert 0.2 < sa.msa < 0.9


# ------------------------------------------------------------------------------------------
# dice protocol (seed 000, §4.1)
# ------------------------------------------------------------------------------------------


def test_dice_protocol_hand_case():
    gt = np.zeros((10, 20), np.uint16)
    gt[0, 0:10] = 1  # 10 px
    gt[2, 0:10] = 2  # 10 px
    gt[4, 0:4] = 3  # 4 px
    gt[6, 0:4] = 4  # 4 px, never overlapped
    pred = np.zeros_like(gt)
    pred[0, 0:10] = 11  # exact: dice 1
    pred[2, 5:15] = 12  # 5 px on object 2 + 5 outside: dice 2*5/20 = 0.5 (valid, inclusive)
    pred[4, 0:5] = 13  # 5 px: covers object 3 but is dropped (< 10 px)
    pred[8, 0:12] = 14  # 12 px in the background: false positive
    d = dice_protocol(gt, pred)
    assert d.n_dropped == 1 and d.n_pred == 3
    assert d.gt_ids.tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(d.dice, [1.0, 0.5, 0.0, 0.0])
    assert d.best_pred_ids.tolist() == [11, 12, 0, 0]
    assert (d.tp, d.fp, d.fn) == (2, 1, 2)
    assert d.precision == pytest.approx(2 / 3)
    assert d.recall == pytest.approx(0.5)
    assert d.mean_dice == pytest.approx(1.5 / 4)
    assert d.nonzero_dice == pytest.approx(0.75)
    # without the size filter the small prediction becomes a valid match of object 3
    d0 = dice_protocol(gt, pred, min_size=0)
    assert (d0.tp, d0.fp, d0.fn) == (3, 1, 1)
    assert d0.dice[2] == pytest.approx(2 * 4 / 9)


def test_dice_protocol_invalid_match_keeps_its_dice_and_merges_count_once():
    gt = np.zeros((4, 12), np.uint8)
    gt[0, 0:6], gt[0, 6:12] = 1, 2  # two touching 6-px objects
    gt[2, 0:12] = 3  # 12 px
    pred = np.zeros_like(gt)
    pred[0, 0:12] = 5  # merges 1 and 2: dice 12/18 = 0.667 with each -> valid for both
    pred[2, 0:5], pred[3, 0:7] = 8, 8  # 12 px, 5 on object 3: dice 10/24 < 0.5 -> invalid, kept
    d = dice_protocol(gt, pred)
    np.testing.assert_allclose(d.dice, [2 / 3, 2 / 3, 10 / 24])
    assert (d.tp, d.fp, d.fn) == (1, 1, 1)  # 5 counted once; 8 is no valid match; 3 is FN
    assert d.recall == pytest.approx(0.5)  # TP / (TP + FN) as written in the paper
    assert d.mean_dice == pytest.approx((4 / 3 + 10 / 24) / 3)
    assert d.nonzero_dice == d.mean_dice


def test_dice_protocol_ties_and_empty():
    gt = np.zeros((3, 12), np.uint8)
    gt[0, 0:10] = 1
    pred = MaskStack.from_dense(np.stack([gt == 1, gt == 1]), ids=[9, 4])
    d = dice_protocol(gt, pred)
    assert d.best_pred_ids.tolist() == [4]  # tie -> lowest id
    assert (d.tp, d.fp, d.fn) == (1, 1, 0)
    z = np.zeros_like(gt)
    e = dice_protocol(z, z)
    assert (e.precision, e.recall, e.mean_dice, e.nonzero_dice) == (1.0, 1.0, 1.0, 1.0)
    e = dice_protocol(gt, z)
    assert (e.tp, e.fp, e.fn, e.precision, e.recall, e.mean_dice, e.nonzero_dice) == (
        0,
        0,
        1,
        1.0,
        0.0,
        0.0,
        0.0,
    )


# ------------------------------------------------------------------------------------------
# bad input, purity
# ------------------------------------------------------------------------------------------


def test_bad_inputs_raise_input_error():
    a = np.zeros((4, 4), np.uint8)
    with pytest.raises(InputError, match="shape mismatch"):
        segmentation_accuracy(a, np.zeros((4, 5), np.uint8))
    with pytest.raises(InputError, match="float"):
        segmentation_accuracy(a.astype(np.float32), a)
    with pytest.raises(InputError, match="negative"):
        segmentation_accuracy(a, a.astype(np.int8) - 1)
    with pytest.raises(InputError, match="threshold"):
        match_instances(a, a, threshold=0.0)
    with pytest.raises(InputError, match="shape mismatch"):
        overlap_table(a, MaskStack.from_dense(np.zeros((2, 4, 5), bool)))
    with pytest.raises(InputError, match="unique"):
        MaskStack.from_dense(np.zeros((2, 4, 4), bool), ids=[3, 3])
    with pytest.raises(InputError, match="float|bool or integer"):
        MaskStack.from_dense(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(InputError):
        MaskStack.from_flat_indices([np.array([0, 99])], (4, 4))


def test_inputs_not_modified_and_read_only_ok():
    rng = np.random.default_rng(1)
    gt = ndi.label(rng.random((20, 20)) > 0.6)[0]
    pred = np.ascontiguousarray(gt[:, ::-1])[:, ::-1].copy()
    gt.setflags(write=False)
    pred.setflags(write=False)
    before = (gt.copy(), pred.copy())
    segmentation_accuracy(gt, pred)
    dice_protocol(gt, pred)
    stack = MaskStack.from_labels(pred)
    data = stack.matrix.data.copy()
    segmentation_accuracy(gt, stack)
    np.testing.assert_array_equal(gt, before[0])
    np.testing.assert_array_equal(pred, before[1])
    np.testing.assert_array_equal(stack.matrix.data, data)
    # non-contiguous views are read in C order like everything else
    assert segmentation_accuracy(gt.T, pred.T).msa == 1.0


def test_bool_labels_are_one_object():
    a = np.zeros((5, 5), bool)
    a[1:3, 1:3] = True
    assert match_instances(a, a.astype(np.uint8) * 3).tp == 1
