"""Segmentation accuracy of label images too large for memory, counted chunk by chunk.

The overlap table (pixels shared by each ground-truth and predicted object, and each object's
size) is a sum over any partition of the image, so it is counted region by region
(:func:`samscope.evaluation.overlap.overlap_table` on each) and the regions' tables are added.
The matching and SA per threshold are then exactly those of
:func:`samscope.evaluation.metrics.segmentation_accuracy` on the whole images, with one region
of each image in memory at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from samscope.errors import InputError

__all__ = ["chunked_accuracy", "chunked_overlap"]


def _regions(shape: tuple[int, ...], chunk: tuple[int, ...]):
    import itertools

    ranges = [range(0, n, c) for n, c in zip(shape, chunk, strict=True)]
    for start in itertools.product(*ranges):
        yield tuple(slice(s, min(s + c, n)) for s, c, n in zip(start, chunk, shape, strict=True))


def _default_chunk(shape: tuple[int, ...], arrays: Sequence[Any]) -> tuple[int, ...]:
    for arr in arrays:
        chunks = getattr(arr, "chunks", None)
        if isinstance(chunks, tuple) and len(chunks) == len(shape):
            return tuple(max(int(c), 1) for c in chunks)
    return tuple(min(n, 16) for n in shape[:-2]) + tuple(min(n, 2048) for n in shape[-2:])


def chunked_overlap(gt: Any, pred: Any, *, chunk: tuple[int, ...] | None = None):
    """The :class:`~samscope.evaluation.overlap.Overlap` of two label arrays, region by region.

    Parameters
    ----------
    gt, pred : array-like
        Label images of equal shape: numpy arrays, memmaps or ``zarr.Array`` (read lazily).
    chunk : tuple of int, optional
        Region size (default: the first input's chunks, else 2048²).

    Returns
    -------
    Overlap
        Equal to ``overlap_table(gt[...], pred[...])``.
    """
    from samscope.evaluation.overlap import Overlap, overlap_table

    shape = tuple(int(s) for s in gt.shape)
    if shape != tuple(int(s) for s in pred.shape):
        raise InputError(f"shape mismatch: ground truth {shape} vs prediction {tuple(pred.shape)}")
    chunk = tuple(chunk) if chunk is not None else _default_chunk(shape, (pred, gt))
    gts, preds, pairs = [], [], []
    for region in _regions(shape, chunk):
        t = overlap_table(np.asarray(gt[region]), np.asarray(pred[region]))
        gts.append(np.stack([t.gt_ids, t.gt_sizes]))
        preds.append(np.stack([t.pred_ids, t.pred_sizes]))
        pairs.append(np.stack([t.gt_ids[t.gt_index], t.pred_ids[t.pred_index], t.intersection]))

    def summed(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        allv = np.concatenate(parts, axis=1) if parts else np.zeros((2, 0), np.int64)
        ids, inverse = np.unique(allv[0], return_inverse=True)
        return ids.astype(np.int64), np.bincount(inverse, weights=allv[1],
                                                 minlength=ids.size).astype(np.int64)

    gt_ids, gt_sizes = summed(gts)
    pred_ids, pred_sizes = summed(preds)
    allp = np.concatenate(pairs, axis=1) if pairs else np.zeros((3, 0), np.int64)
    keys, inverse = np.unique(allp[:2].T, axis=0, return_inverse=True)
    keys = keys.reshape(-1, 2)
    inter = np.bincount(inverse.ravel(), weights=allp[2], minlength=len(keys)).astype(np.int64)
    return Overlap(
        gt_ids, pred_ids, gt_sizes, pred_sizes,
        np.searchsorted(gt_ids, keys[:, 0]).astype(np.int64),
        np.searchsorted(pred_ids, keys[:, 1]).astype(np.int64),
        inter,
    )


def chunked_accuracy(gt: Any, pred: Any, *, chunk: tuple[int, ...] | None = None,
                     thresholds: Sequence[float] | None = None):
    """:func:`~samscope.evaluation.metrics.segmentation_accuracy` of arrays read region by region.

    Examples
    --------
    >>> gt = np.array([[1, 1, 1, 1, 0, 2]])
    >>> pred = np.array([[5, 5, 5, 0, 0, 0]])
    >>> round(chunked_accuracy(gt, pred, chunk=(1, 2)).msa, 3)
    0.3
    """
    from samscope.evaluation.metrics import DEFAULT_THRESHOLDS, accuracy_from_table

    ts = np.sort(np.asarray(DEFAULT_THRESHOLDS if thresholds is None else thresholds, np.float64))
    return accuracy_from_table(chunked_overlap(gt, pred, chunk=chunk), ts)


def is_zarr(path: Any) -> bool:
    """A zarr store (a folder with zarr metadata)."""
    from pathlib import Path

    p = Path(path)
    return p.is_dir() and any((p / m).exists() for m in (".zgroup", ".zarray", "zarr.json"))


def sa_row(prediction: Any, ground_truth: Any) -> tuple[dict, Any]:
    """``samscope evaluate``'s ``sa`` row for two label files read lazily, region by region.

    Returns the same keys as :func:`samscope.cli.evaluate.evaluate_pair` with ``sa`` only, and
    the :class:`~samscope.evaluation.metrics.SegmentationAccuracy`.
    """
    from samscope.io import read_image

    gt = read_image(ground_truth, lazy=True).data
    pred = read_image(prediction, lazy=True).data
    for name, arr in (("ground truth", gt), ("prediction", pred)):
        if np.dtype(arr.dtype).kind not in "iub":
            raise InputError(f"{name} labels must be integers, got {arr.dtype}")
    sa = chunked_accuracy(gt, pred)
    i = sa.at(0.5)
    row = {
        "n_gt": sa.n_gt, "n_pred": sa.n_pred, "msa": sa.msa, "sa50": sa.sa50, "sa75": sa.sa75,
        "precision50": float(sa.precision[i]), "recall50": float(sa.recall[i]),
        "f1_50": float(sa.f1[i]),
    }
    return row, sa
