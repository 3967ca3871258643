"""Instance-segmentation metrics over label images and stacks of overlapping masks.

Everything here is pure numpy/scipy: ground truth first, prediction second, options keyword-only,
inputs never modified.

Two kinds of input are accepted wherever a segmentation is expected:

* a **label image** — an integer :class:`numpy.ndarray` of any dimensionality (``(y, x)`` or
  ``(z, y, x)``), 0 = background, every other value one object (ids need not be consecutive);
* a :class:`MaskStack` — ``n`` possibly overlapping binary masks, for methods that let a pixel
  belong to several objects.

Overlaps are counted sparsely: two label images are run-length encoded along the flattened
pixel order (a run ends wherever either image changes) and only the runs are sorted, so the cost
is one linear pass plus a sort of the boundary crossings; mask stacks are sparse
``objects × pixels`` matrices multiplied once. No dense mask is ever made per object.

Conventions
-----------
* A ratio whose denominator is zero counts as *vacuously perfect*: precision is 1.0 when nothing
  was predicted, recall is 1.0 when there is nothing to find, and SA/F1 are 1.0 when both images
  are empty (they are 0.0 as soon as there is an error). Summaries over images should therefore
  report the number of objects next to the scores.
* Matching thresholds are inclusive: a pair matches at ``t`` when ``IoU >= t``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from samscope.errors import InputError
from samscope.evaluation.overlap import MaskStack, Overlap, Segmentation, overlap_table

__all__ = [
    "DEFAULT_THRESHOLDS",
    "DiceEvaluation",
    "Matching",
    "MaskStack",
    "Overlap",
    "SegmentationAccuracy",
    "dice_protocol",
    "match_instances",
    "mean_segmentation_accuracy",
    "Segmentation",
    "overlap_table",
    "segmentation_accuracy",
]

#: IoU thresholds of the mean segmentation accuracy: 0.50, 0.55, …, 0.95.
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


# --------------------------------------------------------------------------------------------
# one-to-one matching
# --------------------------------------------------------------------------------------------


def _assign(table: Overlap, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Optimal one-to-one matching among pairs with ``score >= threshold``.

    Maximises the number of matched pairs, ties broken by the largest total score (the
    StarDist/elf formulation). Pairs without conflict are matched directly; only connected
    components of the candidate graph with a conflict go through
    :func:`scipy.optimize.linear_sum_assignment`.

    Returns
    -------
    numpy.ndarray, shape (m,), int64
        Indices into the table's pairs of the matched pairs.
    """
    cand = np.flatnonzero(scores >= threshold)
    if cand.size == 0:
        return cand.astype(np.int64)
    gi, pi = table.gt_index[cand], table.pred_index[cand]
    gdeg = np.bincount(gi, minlength=table.n_gt)
    pdeg = np.bincount(pi, minlength=table.n_pred)
    simple = (gdeg[gi] == 1) & (pdeg[pi] == 1)
    chosen = [cand[simple]]
    rest = cand[~simple]
    if rest.size:
        from scipy.optimize import linear_sum_assignment  # only needed for conflicts

        ug, gl = np.unique(table.gt_index[rest], return_inverse=True)
        up, pl = np.unique(table.pred_index[rest], return_inverse=True)
        n_nodes = ug.size + up.size
        graph = sparse.coo_array((np.ones(rest.size), (gl, pl + ug.size)), shape=(n_nodes, n_nodes))
        n_comp, comp = connected_components(graph, directed=False)
        edge_comp = comp[gl]
        # a component with a single node on one side matches exactly one pair: its best score
        g_nodes = np.bincount(comp[: ug.size], minlength=n_comp)
        p_nodes = np.bincount(comp[ug.size :], minlength=n_comp)
        star = ((g_nodes == 1) | (p_nodes == 1))[edge_comp]
        if star.any():
            s_idx = np.flatnonzero(star)
            s_order = s_idx[np.lexsort((-scores[rest[s_idx]], edge_comp[s_idx]))]
            first = np.r_[True, edge_comp[s_order][1:] != edge_comp[s_order][:-1]]
            chosen.append(rest[s_order[first]])
        general = np.flatnonzero(~star)
        order = general[np.argsort(edge_comp[general], kind="stable")]
        bounds = np.flatnonzero(np.diff(edge_comp[order])) + 1
        for group in np.split(order, bounds) if order.size else []:
            rows, r = np.unique(gl[group], return_inverse=True)
            cols, c = np.unique(pl[group], return_inverse=True)
            k = min(rows.size, cols.size)
            weight = np.zeros((rows.size, cols.size))
            weight[r, c] = 1.0 + scores[rest[group]] / (2.0 * k)
            pair = np.full((rows.size, cols.size), -1, np.int64)
            pair[r, c] = rest[group]
            ri, ci = linear_sum_assignment(weight, maximize=True)
            hit = pair[ri, ci]
            chosen.append(hit[hit >= 0])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"matching threshold must be in (0, 1], got {threshold}")
    return threshold


def _ratio(num: float, den: float) -> float:
    return 1.0 if den == 0 else num / den


@dataclass(frozen=True, eq=False)
class Matching:
    """One-to-one matching of ground-truth and predicted objects at one IoU threshold.

    Attributes
    ----------
    threshold : float
        Pairs match when ``IoU >= threshold``.
    gt_ids, pred_ids : numpy.ndarray, shape (m,), int64
        Matched pairs (ascending ground-truth id).
    iou : numpy.ndarray, shape (m,), float64
        IoU of each matched pair.
    n_gt, n_pred : int
        Objects on each side.
    """

    threshold: float
    gt_ids: np.ndarray
    pred_ids: np.ndarray
    iou: np.ndarray
    n_gt: int
    n_pred: int

    @property
    def tp(self) -> int:
        """Matched pairs."""
        return int(self.gt_ids.size)

    @property
    def fp(self) -> int:
        """Unmatched predictions."""
        return self.n_pred - self.tp

    @property
    def fn(self) -> int:
        """Unmatched ground-truth objects."""
        return self.n_gt - self.tp

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was predicted."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when there is no ground truth."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        """2 TP / (2 TP + FP + FN); 1.0 when both sides are empty."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def accuracy(self) -> float:
        """Segmentation accuracy TP / (TP + FP + FN); 1.0 when both sides are empty."""
        return _ratio(self.tp, self.tp + self.fp + self.fn)


def match_instances(gt: Segmentation, pred: Segmentation, *, threshold: float = 0.5) -> Matching:
    """Match objects one-to-one by IoU (optimal assignment).

    Parameters
    ----------
    gt, pred : numpy.ndarray or MaskStack
        Label images of equal shape, or mask stacks of that spatial shape.
    threshold : float
        Minimum IoU of a match, in (0, 1]. Above 0.5 matches in label images are unique
        anyway; below it, or for overlapping masks, the assignment maximises the number of
        matches (ties: largest total IoU).

    Returns
    -------
    Matching

    Examples
    --------
    >>> gt = np.array([[1, 1, 0, 2, 2]])
    >>> pred = np.array([[4, 4, 4, 0, 7]])
    >>> m = match_instances(gt, pred, threshold=0.5)
    >>> m.gt_ids.tolist(), m.pred_ids.tolist(), m.tp, m.fp, m.fn
    ([1, 2], [4, 7], 2, 0, 0)
    """
    threshold = _check_threshold(threshold)
    table = overlap_table(gt, pred)
    iou = table.iou()
    chosen = _assign(table, iou, threshold)
    return Matching(
        threshold,
        table.gt_ids[table.gt_index[chosen]],
        table.pred_ids[table.pred_index[chosen]],
        iou[chosen],
        table.n_gt,
        table.n_pred,
    )


# --------------------------------------------------------------------------------------------
# segmentation accuracy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SegmentationAccuracy:
    """True positives over a range of IoU thresholds and the scores derived from them.

    Attributes
    ----------
    thresholds : numpy.ndarray, shape (m,)
        IoU thresholds, ascending.
    tp : numpy.ndarray, shape (m,), int64
        Matched pairs at each threshold (optimal one-to-one matching).
    n_gt, n_pred : int
        Objects on each side.
    """

    thresholds: np.ndarray
    tp: np.ndarray
    n_gt: int
    n_pred: int

    @property
    def fp(self) -> np.ndarray:
        """Unmatched predictions per threshold, shape (m,)."""
        return self.n_pred - self.tp

    @property
    def fn(self) -> np.ndarray:
        """Unmatched ground-truth objects per threshold, shape (m,)."""
        return self.n_gt - self.tp

    def _div(self, num: np.ndarray, den: np.ndarray) -> np.ndarray:
        num, den = np.asarray(num, float), np.asarray(den, float)
        return np.where(den == 0, 1.0, num / np.maximum(den, 1))

    @property
    def accuracy(self) -> np.ndarray:
        """SA(t) = TP / (TP + FP + FN) per threshold, shape (m,)."""
        return self._div(self.tp, self.tp + self.fp + self.fn)

    @property
    def precision(self) -> np.ndarray:
        """TP / (TP + FP) per threshold, shape (m,)."""
        return self._div(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> np.ndarray:
        """TP / (TP + FN) per threshold, shape (m,)."""
        return self._div(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> np.ndarray:
        """2 TP / (2 TP + FP + FN) per threshold, shape (m,)."""
        return self._div(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def msa(self) -> float:
        """Mean segmentation accuracy over the thresholds."""
        return float(self.accuracy.mean())

    def at(self, threshold: float) -> int:
        """Position of ``threshold`` in :attr:`thresholds` (ValueError if it was not evaluated)."""
        hit = np.flatnonzero(np.isclose(self.thresholds, threshold, rtol=0, atol=1e-9))
        if hit.size == 0:
            raise ValueError(f"threshold {threshold} was not evaluated ({self.thresholds})")
        return int(hit[0])

    @property
    def sa50(self) -> float:
        """SA at IoU 0.5."""
        return float(self.accuracy[self.at(0.5)])

    @property
    def sa75(self) -> float:
        """SA at IoU 0.75."""
        return float(self.accuracy[self.at(0.75)])


def segmentation_accuracy(
    gt: Segmentation,
    pred: Segmentation,
    *,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> SegmentationAccuracy:
    """Segmentation accuracy SA(t) = TP / (TP + FP + FN) over IoU thresholds (µSAM: Archit et al. 2025).

    The overlaps are counted once; the optimal one-to-one matching is solved per threshold.

    Parameters
    ----------
    gt, pred : numpy.ndarray or MaskStack
        Label images of equal shape, or mask stacks of that spatial shape.
    thresholds : sequence of float
        IoU thresholds in (0, 1]; default 0.50, 0.55, …, 0.95 (mSA).

    Returns
    -------
    SegmentationAccuracy
        ``.msa``, ``.sa50``, ``.sa75``, per-threshold ``.accuracy``, ``.precision``,
        ``.recall``, ``.f1``.

    Examples
    --------
    >>> gt = np.array([[1, 1, 1, 1, 0, 2]])
    >>> pred = np.array([[5, 5, 5, 0, 0, 0]])          # IoU 0.75 with object 1, object 2 missed
    >>> sa = segmentation_accuracy(gt, pred)
    >>> sa.sa50, sa.sa75, round(sa.msa, 3)           # 1/2 up to t = 0.75, then 0/3
    (0.5, 0.5, 0.3)
    """
    ts = np.asarray([_check_threshold(t) for t in thresholds], dtype=np.float64)
    if ts.size == 0:
        raise InputError("at least one threshold is needed")
    table = overlap_table(gt, pred)
    return accuracy_from_table(table, np.sort(ts))


def accuracy_from_table(table: Overlap, thresholds: np.ndarray) -> SegmentationAccuracy:
    """Matches at each IoU threshold (sorted) of an overlap table, as :class:`SegmentationAccuracy`."""
    iou = table.iou()
    tp = np.array([_assign(table, iou, t).size for t in thresholds], dtype=np.int64)
    return SegmentationAccuracy(thresholds, tp, table.n_gt, table.n_pred)


def mean_segmentation_accuracy(gt: Segmentation, pred: Segmentation) -> float:
    """mSA: SA averaged over IoU 0.50:0.05:0.95. See :func:`segmentation_accuracy`."""
    return segmentation_accuracy(gt, pred).msa


# --------------------------------------------------------------------------------------------
# the dice protocol of Jadhav et al. 2026 (SAM for mitochondria), §4.1
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DiceEvaluation:
    """Result of :func:`dice_protocol`.

    Attributes
    ----------
    gt_ids : numpy.ndarray, shape (n_gt,)
        Ground-truth objects.
    dice : numpy.ndarray, shape (n_gt,), float64
        Dice of each ground-truth object with its best prediction (0 when nothing overlaps).
    best_pred_ids : numpy.ndarray, shape (n_gt,), int64
        That best prediction (0 when nothing overlaps).
    tp : int
        Predictions that are a valid match (dice >= threshold) of some ground-truth object.
    fp : int
        Predictions that are no valid match.
    fn : int
        Ground-truth objects without a valid match.
    n_pred : int
        Predictions evaluated (after dropping small ones).
    n_dropped : int
        Predictions dropped for being smaller than ``min_size``.
    """

    gt_ids: np.ndarray
    dice: np.ndarray
    best_pred_ids: np.ndarray
    tp: int
    fp: int
    fn: int
    n_pred: int
    n_dropped: int

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was predicted."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when there is no ground truth."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def mean_dice(self) -> float:
        """Mean of :attr:`dice` over all ground-truth objects (objects without overlap count 0).

        Without ground-truth objects: 1.0 if nothing was predicted, else 0.0.
        """
        if self.dice.size == 0:
            return 1.0 if self.n_pred == 0 else 0.0
        return float(self.dice.mean())

    @property
    def nonzero_dice(self) -> float:
        """Mean of :attr:`dice` over the objects with dice > 0 (0.0 if there are none)."""
        nz = self.dice[self.dice > 0]
        if nz.size == 0:
            return 1.0 if self.dice.size == 0 and self.n_pred == 0 else 0.0
        return float(nz.mean())


def dice_protocol(
    gt: Segmentation,
    pred: Segmentation,
    *,
    threshold: float = 0.5,
    min_size: int = 10,
) -> DiceEvaluation:
    """The mitochondria paper's evaluation (Jadhav et al. 2026, §4.1), as written there.

    1. Predictions smaller than ``min_size`` pixels are dropped.
    2. Each ground-truth object is matched to its best prediction (highest dice; ties go to the
       lowest prediction id); the match is valid when ``dice >= threshold``.
    3. TP = predictions that are the valid match of at least one ground-truth object; FP = the
       other predictions; FN = ground-truth objects without a valid match.
       Precision = TP / (TP + FP), recall = TP / (TP + FN).
    4. Mean dice averages each ground-truth object's best dice over *all* ground-truth objects,
       an object that no prediction overlaps counting 0; non-zero dice averages only the
       objects with dice > 0.

    Notes
    -----
    Step 4 keeps best-match dice values below the validity threshold: the paper's reported
    figures (e.g. recall 0.252 with mean dice 0.428 and non-zero dice 0.510) are impossible if
    invalid matches counted 0. The matching is not one-to-one: a prediction covering two
    ground-truth objects well can be the valid match of both and then counts as one TP while
    neither object is an FN — as the paper defines it.

    Parameters
    ----------
    gt, pred : numpy.ndarray or MaskStack
        Label images of equal shape, or mask stacks of that spatial shape.
    threshold : float
        Minimum dice of a valid match.
    min_size : int
        Predictions with fewer pixels are removed first.

    Returns
    -------
    DiceEvaluation
    """
    threshold = _check_threshold(threshold)
    table = overlap_table(gt, pred)
    keep = table.pred_sizes >= min_size
    n_dropped = int(np.count_nonzero(~keep))
    table = table.keep_predictions(keep)
    dice = table.dice()
    best_dice = np.zeros(table.n_gt)
    best_pred = np.zeros(table.n_gt, np.int64)
    valid_pred = np.zeros(table.n_pred, bool)
    if dice.size:
        # per ground-truth object: highest dice first, then lowest prediction id
        order = np.lexsort((table.pred_index, -dice, table.gt_index))
        gi = table.gt_index[order]
        first = order[np.r_[True, gi[1:] != gi[:-1]]]
        best_dice[table.gt_index[first]] = dice[first]
        best_pred[table.gt_index[first]] = table.pred_ids[table.pred_index[first]]
        ok = first[dice[first] >= threshold]
        valid_pred[table.pred_index[ok]] = True
    tp = int(np.count_nonzero(valid_pred))
    fn = int(np.count_nonzero(best_dice < threshold))
    return DiceEvaluation(
        table.gt_ids,
        best_dice,
        best_pred,
        tp,
        table.n_pred - tp,
        fn,
        table.n_pred,
        n_dropped,
    )
