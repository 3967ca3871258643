"""The one label-dtype rule: uint16 up to 65,535 objects, uint32 beyond, uint64 beyond that.

Every label image samscope makes or writes (modes, the batch runner, simulated datasets, the
writers) goes through :func:`label_dtype`, so the same objects always give the same file.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from samscope.errors import InputError

__all__ = ["label_dtype", "stack_labels"]


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
