"""Threshold grid search on cached predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from samscope.errors import InputError
from samscope.evaluation.metrics import segmentation_accuracy
from samscope.evaluation.search import grid_search

HELA = Path(__file__).resolve().parents[3] / "shared" / "data" / "hela" / "masks.tif"


def signed_distance_map(labels: np.ndarray, *, level: float, scale: float) -> np.ndarray:
    """``level + scale * signed distance`` to the object boundary (>= 1 inside, <= -1 outside).

    Thresholding at ``t`` recovers the objects exactly iff ``(t - level) / scale`` lies in
    (-1, 1]; lower thresholds grow them, higher ones shrink them.
    """
    fg = labels > 0
    sd = ndi.distance_transform_edt(fg) - ndi.distance_transform_edt(~fg)
    return level + scale * sd


def threshold_and_label(pred: np.ndarray, params) -> np.ndarray:
    labels, _ = ndi.label(pred >= params["threshold"])
    sizes = np.bincount(labels.ravel())
    small = sizes < params.get("min_size", 0)
    small[0] = False
    labels[small[labels]] = 0
    return labels


def isolated_objects(labels: np.ndarray) -> np.ndarray:
    """Drop objects that touch another object (thresholding a foreground map would merge them)."""
    big = labels.max() + 1
    largest = ndi.grey_dilation(labels, size=(3, 3))
    smallest = ndi.grey_erosion(np.where(labels > 0, labels, big), size=(3, 3))
    contact = (labels > 0) & ((largest != labels) | ((smallest != labels) & (smallest < big)))
    return np.where(np.isin(labels, np.unique(labels[contact])), 0, labels)


def test_hand_case_and_table():
    gt = [np.array([[0, 1, 1, 1, 0, 0, 2, 2]])]
    maps = [np.array([[0.1, 0.6, 0.9, 0.6, 0.3, 0.2, 0.8, 0.7]])]
    r = grid_search(maps, gt, threshold_and_label, {"threshold": [0.2, 0.5, 0.65, 0.75]})
    assert r.metric == "msa"
    assert r.best == {"threshold": 0.5} and r.best_score == 1.0
    expected = [
        segmentation_accuracy(gt[0], threshold_and_label(maps[0], {"threshold": t})).msa
        for t in (0.2, 0.5, 0.65, 0.75)
    ]
    assert [row["msa"] for row in r.table] == expected
    assert [row["threshold"] for row in r.table] == [0.2, 0.5, 0.65, 0.75]
    assert r.per_image.shape == (4, 1)


@pytest.mark.skipif(not HELA.exists(), reason="HeLa data not present")
def test_recovers_known_best_threshold_and_min_size_on_hela():
    import tifffile

    rng = np.random.default_rng(0)
    gts, maps = [], []
    for t in (0, 5, 10):  # validation frames of the split
        gt = isolated_objects(tifffile.imread(HELA, key=t)[:350, :550].astype(np.int32))
        pred = signed_distance_map(gt, level=0.6, scale=0.05)
        # a few bright specks in the background: removed only with a minimum size
        for _ in range(8):
            y, x = rng.integers(0, 348), rng.integers(0, 548)
            if not gt[max(y - 3, 0) : y + 6, max(x - 3, 0) : x + 6].any():
                pred[y : y + 2, x : x + 2] = 1.0
        gts.append(gt)
        maps.append(pred)
    before = [m.copy() for m in maps]
    grid = {"threshold": [0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.8], "min_size": [0, 10, 5000]}
    r = grid_search(maps, gts, threshold_and_label, grid, metric="msa")
    # exact recovery for thresholds in (0.55, 0.65]: 0.6 comes first; specks need min_size 10
    assert r.best == {"threshold": 0.6, "min_size": 10}
    assert r.best_score == pytest.approx(1.0)
    assert len(r.table) == 21
    row = {(x["threshold"], x["min_size"]): x["msa"] for x in r.table}
    assert row[(0.65, 10)] == pytest.approx(1.0)  # the tie that loses on grid order
    assert row[(0.6, 0)] < 1.0  # specks are false positives
    assert row[(0.4, 10)] < row[(0.6, 10)] and row[(0.8, 10)] < row[(0.6, 10)]
    assert row[(0.6, 5000)] == 0.0
    for a, b in zip(maps, before, strict=True):
        np.testing.assert_array_equal(a, b)
    # other metrics agree on the optimum
    for metric in ("sa50", "f1", "op_csb", "mean_dice"):
        assert grid_search(
            maps[:1], gts[:1], threshold_and_label, grid, metric=metric
        ).best_score == pytest.approx(1.0)


def test_custom_metric_and_errors():
    gt = [np.array([[1, 1, 0]])]
    maps = [np.array([[0.9, 0.4, 0.1]])]

    def covered(g, p):
        return float(np.count_nonzero((g > 0) & (p > 0)))

    r = grid_search(maps, gt, threshold_and_label, {"threshold": [0.5, 0.3]}, metric=covered)
    assert r.metric == "covered" and r.best == {"threshold": 0.3}
    with pytest.raises(InputError, match="unknown metric"):
        grid_search(maps, gt, threshold_and_label, {"threshold": [0.5]}, metric="nope")
    with pytest.raises(InputError, match="predictions"):
        grid_search(maps * 2, gt, threshold_and_label, {"threshold": [0.5]})
    with pytest.raises(InputError, match="at least one value"):
        grid_search(maps, gt, threshold_and_label, {"threshold": []})
