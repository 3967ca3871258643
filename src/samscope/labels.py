"""The one label-dtype rule: uint16 up to 65,535 objects, uint32 beyond, uint64 beyond that.

Every label image samscope makes or writes (modes, the batch runner, simulated datasets, the
writers) goes through :func:`label_dtype`, so the same objects always give the same file.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from samscope.errors import InputError

__all__ = ["add_object", "label_dtype", "stack_labels"]


def label_dtype(max_label: int) -> np.dtype:
    """The smallest of uint16, uint32, uint64 that holds the ids ``0..max_label``.

    >>> label_dtype(65535), label_dtype(65536), label_dtype(2**32)
    (dtype('uint16'), dtype('uint32'), dtype('uint64'))

    Raises
    ------
    InputError
        Beyond uint64.
    """
    for dt in (np.uint16, np.uint32, np.uint64):
        if max_label <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise InputError(f"label {max_label} does not fit uint64")


def stack_labels(planes: Sequence[np.ndarray], *, stacked: bool) -> np.ndarray:
    """One label image from per-plane labels, in :func:`label_dtype` of the largest id.

    ``stacked``: an ``(n, y, x)`` stack; otherwise the single plane.

    >>> stack_labels([np.array([[0, 3]]), np.array([[1, 0]])], stacked=True).shape
    (2, 1, 2)
    """
    top = max((int(p.max()) for p in planes if p.size), default=0)
    dtype = label_dtype(top)
    if stacked:
        return np.stack([np.asarray(p).astype(dtype, copy=False) for p in planes])
    if len(planes) != 1:
        raise InputError(f"one plane expected, got {len(planes)}")
    return np.asarray(planes[0]).astype(dtype, copy=False)


def add_object(
    labels: np.ndarray, mask: np.ndarray, *, object_id: int | None = None
) -> tuple[np.ndarray, int, np.ndarray]:
    """The one rule for adding an object to a label image: it takes the *free* pixels of its mask.

    Pixels of ``mask`` that already belong to an object keep their id; the rest (``labels ==
    0``) get ``object_id`` (default: one above the largest id). The napari annotators' commit
    and the web app's click-to-add both use it.

    Parameters
    ----------
    labels : ndarray of int
        Painted in place when its dtype holds ``object_id``; otherwise a copy in
        :func:`label_dtype` of it is painted and returned.
    mask : ndarray of bool
        The new object, same shape as ``labels``.
    object_id : int, optional
        The new id.

    Returns
    -------
    labels : ndarray
        ``labels`` (or its widened copy).
    object_id : int
        The id painted; 0 when the mask has no free pixel (nothing changed).
    where : ndarray of int
        Flat indices of the painted pixels (empty when nothing changed).

    >>> lab = np.array([[0, 1], [0, 0]], np.uint16)
    >>> lab, new, where = add_object(lab, np.array([[True, True], [False, False]]))
    >>> lab.tolist(), new, where.tolist()
    ([[2, 1], [0, 0]], 2, [0])
    """
    mask = np.asarray(mask, bool)
    if mask.shape != labels.shape:
        raise InputError(f"mask of shape {mask.shape} does not fit labels {labels.shape}")
    where = np.flatnonzero(mask & (labels == 0))
    if where.size == 0:
        return labels, 0, where
    if object_id is None:
        object_id = int(labels.max()) + 1 if labels.size else 1
    dtype = label_dtype(object_id)
    if np.dtype(labels.dtype).itemsize < dtype.itemsize:
        labels = labels.astype(dtype)
    labels.flat[where] = object_id
    return labels, int(object_id), where
