"""Inputs of the instance-segmentation metrics (label images, :class:`MaskStack`) and their sparse
overlap tables (:func:`overlap_table`), split from :mod:`samscope.evaluation.metrics`.

Overlaps are counted sparsely: two label images are run-length encoded along the flattened
pixel order (a run ends wherever either image changes) and only the runs are sorted, so the cost
is one linear pass plus a sort of the boundary crossings; mask stacks are sparse
``objects × pixels`` matrices multiplied once. No dense mask is ever made per object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from math import prod

import numpy as np
from scipy import sparse

from samscope.errors import InputError

__all__ = ["MaskStack", "Overlap", "Segmentation", "overlap_table"]


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
