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
from math import prod

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from samscope.errors import InputError

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
    "overlap_table",
    "segmentation_accuracy",
]

#: IoU thresholds of the mean segmentation accuracy: 0.50, 0.55, …, 0.95.
DEFAULT_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))


# --------------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MaskStack:
    """Instance masks that may overlap, stored sparsely.

    Build one with :meth:`from_dense`, :meth:`from_labels` or :meth:`from_flat_indices`.

    Attributes
    ----------
    matrix : scipy.sparse.csr_array, shape (n, P), bool
        Row ``i`` holds the flat (C-order) pixel indices of object ``i``; ``P = prod(shape)``.
    shape : tuple of int
        Spatial shape of the image the masks live in, e.g. ``(y, x)``.
    ids : numpy.ndarray, shape (n,), int64
        Object ids (positive, unique); ``1..n`` unless given.

    Notes
    -----
    An empty mask is not an object: metrics ignore rows without pixels.
    """

    matrix: sparse.csr_array
    shape: tuple[int, ...]
    ids: np.ndarray

    def __post_init__(self) -> None:
        n = self.matrix.shape[0]
        if self.matrix.shape[1] != prod(self.shape):
            raise InputError(
                f"mask stack has {self.matrix.shape[1]} pixel columns, "
                f"but its shape {self.shape} has {prod(self.shape)} pixels"
            )
        if self.ids.shape != (n,):
            raise InputError(f"mask stack has {n} masks but {self.ids.shape[0]} ids")
        if n and (self.ids.min() < 1 or np.unique(self.ids).size != n):
            raise InputError("mask stack ids must be positive and unique")

    @classmethod
    def from_dense(cls, masks: np.ndarray, *, ids: Sequence[int] | None = None) -> MaskStack:
        """Stack from a dense array.

        Parameters
        ----------
        masks : numpy.ndarray, shape (n, *spatial), bool or integer
            Mask ``i`` is ``masks[i] != 0``.
        ids : sequence of int, optional
            Object ids, default ``1..n``.
        """
        masks = np.asarray(masks)
        if masks.ndim < 2:
            raise InputError(f"a mask stack needs shape (n, *spatial), got {masks.shape}")
        if not (masks.dtype == bool or np.issubdtype(masks.dtype, np.integer)):
            raise InputError(f"masks must be bool or integer, got dtype {masks.dtype}")
        n = masks.shape[0]
        rows, cols = np.nonzero(masks.reshape(n, -1))
        matrix = sparse.csr_array(
            (np.ones(rows.size, bool), (rows, cols)), shape=(n, prod(masks.shape[1:]))
        )
        return cls(matrix, tuple(int(s) for s in masks.shape[1:]), _ids(ids, n))

    @classmethod
    def from_flat_indices(
        cls,
        indices: Sequence[np.ndarray],
        shape: Sequence[int],
        *,
        ids: Sequence[int] | None = None,
    ) -> MaskStack:
        """Stack from per-object flat pixel indices (``numpy.flatnonzero(mask)`` of each mask)."""
        shape = tuple(int(s) for s in shape)
        n = len(indices)
        lengths = np.array([len(i) for i in indices], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)])
        cols = (
            np.concatenate([np.asarray(i, dtype=np.int64) for i in indices])
            if n
            else np.zeros(0, np.int64)
        )
        if cols.size and (cols.min() < 0 or cols.max() >= prod(shape)):
            raise InputError("flat mask indices fall outside the image")
        matrix = sparse.csr_array((np.ones(cols.size, bool), cols, indptr), shape=(n, prod(shape)))
        matrix.sum_duplicates()
        return cls(matrix, shape, _ids(ids, n))

    @classmethod
    def from_labels(cls, labels: np.ndarray) -> MaskStack:
        """One mask per object of a label image, ids kept."""
        labels = _check_labels(labels, "labels")
        ids, matrix = _label_matrix(labels)
        return cls(matrix, tuple(int(s) for s in labels.shape), ids)

    def __len__(self) -> int:
        return self.matrix.shape[0]

    def to_dense(self) -> np.ndarray:
        """The masks as a dense ``(n, *shape)`` bool array."""
        return self.matrix.toarray().reshape((len(self), *self.shape))


def _ids(ids: Sequence[int] | None, n: int) -> np.ndarray:
    if ids is None:
        return np.arange(1, n + 1, dtype=np.int64)
    return np.asarray(ids, dtype=np.int64).reshape(-1)


Segmentation = np.ndarray | MaskStack


def _check_labels(labels: np.ndarray, name: str) -> np.ndarray:
    """Validate a label image; returns it (bool becomes uint8, never copied otherwise)."""
    if isinstance(labels, MaskStack):
        raise InputError(f"{name}: expected a label image here, got a MaskStack")
    labels = np.asarray(labels)
    if labels.dtype == bool:
        return labels.view(np.uint8)
    if np.issubdtype(labels.dtype, np.floating):
        raise InputError(
            f"{name} has float dtype {labels.dtype}; instance labels must be integers "
            "(cast whole-number floats with .astype(np.uint32))"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{name} has dtype {labels.dtype}; instance labels must be integers")
    if labels.ndim == 0:
        raise InputError(f"{name} is a scalar, not a label image")
    if np.issubdtype(labels.dtype, np.signedinteger) and labels.size and labels.min() < 0:
        raise InputError(f"{name} has negative labels (min {labels.min()}); 0 is background")
    if labels.dtype == np.uint64 and labels.size and labels.max() > np.iinfo(np.int64).max:
        raise InputError(f"{name} has ids above 2**63 - 1, which samscope does not support")
    return labels


def _label_matrix(labels: np.ndarray) -> tuple[np.ndarray, sparse.csr_array]:
    flat = labels.reshape(-1)
    where = np.flatnonzero(flat)
    values = flat[where]
    top = int(values.max()) if values.size else 0
    if top <= 4 * values.size + 4096:  # ids small enough for a lookup table
        counts = np.bincount(values.astype(np.intp), minlength=top + 1)
        ids = np.flatnonzero(counts)
        lut = np.zeros(top + 1, np.int64)
        lut[ids] = np.arange(ids.size)
        rows = lut[values]
    else:
        ids, rows = np.unique(values, return_inverse=True)
    matrix = sparse.csr_array(
        (np.ones(where.size, bool), (rows, where)), shape=(ids.size, flat.size)
    )
    return ids.astype(np.int64), matrix


# --------------------------------------------------------------------------------------------
# overlaps
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Overlap:
    """Sparse contingency table between ground-truth and predicted objects.

    Only pairs that share at least one pixel are stored. Objects without pixels are absent.

    Attributes
    ----------
    gt_ids, pred_ids : numpy.ndarray, shapes (n_gt,), (n_pred,)
        Object ids, ascending.
    gt_sizes, pred_sizes : numpy.ndarray, shapes (n_gt,), (n_pred,), int64
        Pixels per object.
    gt_index, pred_index : numpy.ndarray, shape (k,), int64
        For each overlapping pair, the positions of its objects in ``gt_ids`` / ``pred_ids``.
    intersection : numpy.ndarray, shape (k,), int64
        Shared pixels of each pair (> 0).
    """

    gt_ids: np.ndarray
    pred_ids: np.ndarray
    gt_sizes: np.ndarray
    pred_sizes: np.ndarray
    gt_index: np.ndarray
    pred_index: np.ndarray
    intersection: np.ndarray

    @property
    def n_gt(self) -> int:
        """Number of ground-truth objects."""
        return int(self.gt_ids.size)

    @property
    def n_pred(self) -> int:
        """Number of predicted objects."""
        return int(self.pred_ids.size)

    def union(self) -> np.ndarray:
        """Union size of each pair, shape (k,)."""
        return self.gt_sizes[self.gt_index] + self.pred_sizes[self.pred_index] - self.intersection

    def iou(self) -> np.ndarray:
        """Intersection over union of each pair, shape (k,), float64."""
        return self.intersection / self.union()

    def dice(self) -> np.ndarray:
        """Dice coefficient ``2|A∩B| / (|A| + |B|)`` of each pair, shape (k,), float64."""
        total = self.gt_sizes[self.gt_index] + self.pred_sizes[self.pred_index]
        return 2.0 * self.intersection / total

    def keep_predictions(self, keep: np.ndarray) -> Overlap:
        """Table restricted to the predicted objects where ``keep`` (shape (n_pred,)) is True."""
        keep = np.asarray(keep, bool)
        new_index = np.cumsum(keep) - 1
        pair = keep[self.pred_index]
        return Overlap(
            self.gt_ids,
            self.pred_ids[keep],
            self.gt_sizes,
            self.pred_sizes[keep],
            self.gt_index[pair],
            new_index[self.pred_index[pair]],
            self.intersection[pair],
        )


def overlap_table(gt: Segmentation, pred: Segmentation) -> Overlap:
    """Count the pixels shared by every ground-truth and predicted object.

    Parameters
    ----------
    gt, pred : numpy.ndarray or MaskStack
        Label images of equal shape (any dimensionality, integer, 0 = background), or mask
        stacks whose spatial shape equals the other side's.

    Returns
    -------
    Overlap
        Sparse table of the pairs that overlap.

    Examples
    --------
    >>> gt = np.array([[1, 1, 0], [0, 2, 2]])
    >>> pred = np.array([[3, 3, 3], [0, 0, 5]])
    >>> t = overlap_table(gt, pred)
    >>> t.gt_ids.tolist(), t.pred_ids.tolist(), t.intersection.tolist()
    ([1, 2], [3, 5], [2, 1])
    """
    gt_stack, pred_stack = isinstance(gt, MaskStack), isinstance(pred, MaskStack)
    gt_shape = gt.shape if gt_stack else _check_labels(gt, "ground truth").shape
    pred_shape = pred.shape if pred_stack else _check_labels(pred, "prediction").shape
    if tuple(gt_shape) != tuple(pred_shape):
        raise InputError(
            f"shape mismatch: ground truth {tuple(gt_shape)} vs prediction {tuple(pred_shape)}"
        )
    if not gt_stack and not pred_stack:
        return _label_overlap(_check_labels(gt, "ground truth"), _check_labels(pred, "prediction"))
    if gt_stack and pred_stack:
        return _stack_overlap(gt, pred)
    if gt_stack:
        return _stack_label_overlap(gt, _check_labels(pred, "prediction"), stack_is_gt=True)
    return _stack_label_overlap(pred, _check_labels(gt, "ground truth"), stack_is_gt=False)


def _grouped_runs(*columns: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct value tuples of equally long 1-D arrays and how often each occurs.

    The arrays are run-length encoded first (a run ends where any of them changes), so only the
    runs are sorted: linear in the length plus a sort of the boundary crossings.

    Returns
    -------
    values : list of numpy.ndarray, each shape (u,), uint64
        Distinct tuples, sorted lexicographically (first column slowest).
    counts : numpy.ndarray, shape (u,), int64
    """
    n = columns[0].size
    if n == 0:
        return [np.zeros(0, np.uint64) for _ in columns], np.zeros(0, np.int64)
    change = np.empty(n, bool)
    change[0] = True
    np.not_equal(columns[0][1:], columns[0][:-1], out=change[1:])
    for col in columns[1:]:
        change[1:] |= col[1:] != col[:-1]
    starts = np.flatnonzero(change)
    del change
    lengths = np.diff(np.append(starts, n)).astype(np.int64)
    runs = [col[starts].astype(np.uint64) for col in columns]
    order = np.lexsort(runs[::-1])
    runs = [r[order] for r in runs]
    lengths = lengths[order]
    new = np.zeros(lengths.size, bool)
    new[0] = True
    for r in runs:
        new[1:] |= r[1:] != r[:-1]
    first = np.flatnonzero(new)
    return [r[first] for r in runs], np.add.reduceat(lengths, first)


def _sizes(values: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ids (> 0, ascending) and summed counts of a column of :func:`_grouped_runs`."""
    fg = values > 0
    ids, inverse = np.unique(values[fg], return_inverse=True)
    sizes = np.bincount(inverse, weights=counts[fg], minlength=ids.size)
    return ids.astype(np.int64), sizes.astype(np.int64)


def _label_overlap(gt: np.ndarray, pred: np.ndarray) -> Overlap:
    (pg, pp), counts = _grouped_runs(gt.reshape(-1), pred.reshape(-1))
    gt_ids, gt_sizes = _sizes(pg, counts)
    pred_ids, pred_sizes = _sizes(pp, counts)
    both = (pg > 0) & (pp > 0)
    return Overlap(
        gt_ids,
        pred_ids,
        gt_sizes,
        pred_sizes,
        np.searchsorted(gt_ids, pg[both].astype(np.int64)).astype(np.int64),
        np.searchsorted(pred_ids, pp[both].astype(np.int64)).astype(np.int64),
        counts[both],
    )


def _canonical(matrix: sparse.csr_array) -> sparse.csr_array:
    """CSR without duplicate or explicitly stored False entries (a copy if it must change)."""
    matrix = sparse.csr_array(matrix)
    if not matrix.has_canonical_format or (matrix.data == 0).any():
        matrix = matrix.copy()
        matrix.sum_duplicates()
        matrix.eliminate_zeros()
    return matrix


def _stack_order(stack: MaskStack) -> tuple[np.ndarray, np.ndarray, sparse.csr_array]:
    """Non-empty masks of a stack sorted by id: (ids, sizes, canonical matrix)."""
    matrix = _canonical(stack.matrix)
    sizes = np.diff(matrix.indptr).astype(np.int64)
    keep = np.flatnonzero(sizes > 0)
    order = keep[np.argsort(stack.ids[keep], kind="stable")]
    return stack.ids[order].astype(np.int64), sizes[order], matrix[order]


def _stack_label_overlap(stack: MaskStack, labels: np.ndarray, stack_is_gt: bool) -> Overlap:
    """Overlaps of a mask stack with a label image by gathering the labels under each mask."""
    ids, sizes, matrix = _stack_order(stack)
    flat = labels.reshape(-1)
    rows = np.repeat(np.arange(ids.size, dtype=np.int64), np.diff(matrix.indptr))
    (pr, pl), counts = _grouped_runs(rows, flat[matrix.indices])
    (lv,), lcounts = _grouped_runs(flat)
    label_ids, label_sizes = _sizes(lv, lcounts)
    fg = pl > 0
    s_index = pr[fg].astype(np.int64)
    l_index = np.searchsorted(label_ids, pl[fg].astype(np.int64)).astype(np.int64)
    if stack_is_gt:
        return Overlap(ids, label_ids, sizes, label_sizes, s_index, l_index, counts[fg])
    return Overlap(label_ids, ids, label_sizes, sizes, l_index, s_index, counts[fg])


def _stack_overlap(gt: MaskStack, pred: MaskStack) -> Overlap:
    gid, gsz, gm = _stack_order(gt)
    pid, psz, pm = _stack_order(pred)
    inter = (gm.astype(np.int64) @ pm.astype(np.int64).T).tocoo()
    nz = inter.data > 0
    return Overlap(
        gid,
        pid,
        gsz,
        psz,
        inter.row[nz].astype(np.int64),
        inter.col[nz].astype(np.int64),
        inter.data[nz].astype(np.int64),
    )


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
    """Segmentation accuracy SA(t) = TP / (TP + FP + FN) over IoU thresholds (seed 002).

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
    return _accuracy_from_table(table, np.sort(ts))


def _accuracy_from_table(table: Overlap, thresholds: np.ndarray) -> SegmentationAccuracy:
    iou = table.iou()
    tp = np.array([_assign(table, iou, t).size for t in thresholds], dtype=np.int64)
    return SegmentationAccuracy(thresholds, tp, table.n_gt, table.n_pred)


def mean_segmentation_accuracy(gt: Segmentation, pred: Segmentation) -> float:
    """mSA: SA averaged over IoU 0.50:0.05:0.95. See :func:`segmentation_accuracy`."""
    return segmentation_accuracy(gt, pred).msa


# --------------------------------------------------------------------------------------------
# the dice protocol of seed 000, §4.1
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
    """The mitochondria paper's evaluation (seed 000, §4.1), as written there.

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
