"""The three per-block tasks, as plain functions of picklable arguments (run in-process or on Dask).

1. :func:`segment_task`: read the block's outer region, segment it, store its local labels and
   the ``segmented`` marker.
2. :func:`match_task`: match the block's local objects with those of its later neighbours on
   their overlaps (reads only the overlap regions).
3. :func:`write_task`: map the block's core through its local → global lookup into the output and
   measure its objects there (area, coordinate sums, box) for the table.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from samscope.blockwise.grid import BlockGrid, local_slices
from samscope.blockwise.source import ImageSource
from samscope.blockwise.stitch import match_overlap
from samscope.blockwise.store import BlockStore

__all__ = ["Job", "match_task", "measure_objects", "segment_task", "write_task"]


@dataclass(frozen=True)
class Job:
    """Everything a task needs (small: paths and settings, no pixels)."""

    source: ImageSource
    store: BlockStore
    grid: BlockGrid
    segmenter: Any
    iou_threshold: float = 0.5


def segment_task(job: Job, flat: int) -> dict:
    """Segment block ``flat``; returns its marker (``n`` local objects, ``present`` core ids)."""
    start = time.perf_counter()
    block = job.grid.block_at(flat)
    pixels = job.source.read(block.outer_slices)
    axes = job.source.image().axes
    if pixels.size == 0 or np.all(pixels == pixels.flat[0]):
        labels = np.zeros(block.outer_shape, np.uint32)
    else:
        labels = job.segmenter.segment(pixels, axes)
    if tuple(labels.shape) != block.outer_shape:
        raise ValueError(f"segmenter returned labels of shape {labels.shape} for a block of "
                         f"shape {block.outer_shape}")
    present = np.unique(labels[block.core_in_outer])
    meta = {
        "n": int(labels.max(initial=0)),
        "present": [int(v) for v in present[present > 0]],
        "seconds": round(time.perf_counter() - start, 3),
        "pid": os.getpid(),
    }
    job.store.write_local(flat, labels, meta)
    return {"flat": flat, **meta}


def match_task(job: Job, flat: int) -> np.ndarray:
    """``(a, id in a, b, id in b)`` rows of block ``flat`` with each later neighbour."""
    grid = job.grid
    rows = [np.zeros((0, 4), np.int64)]
    outer_a = grid.block_at(flat).outer
    for other in grid.neighbours(flat, forward=True):
        box = grid.overlap(flat, other)
        if box is None:
            continue
        la = job.store.read_local(flat, local_slices(box, outer_a))
        lb = job.store.read_local(other, local_slices(box, grid.block_at(other).outer))
        pairs = match_overlap(la, lb, iou_threshold=job.iou_threshold)
        part = np.empty((len(pairs), 4), np.int64)
        part[:, 0], part[:, 1], part[:, 2], part[:, 3] = flat, pairs[:, 0], other, pairs[:, 1]
        rows.append(part)
    return np.concatenate(rows)


def write_task(job: Job, flat: int, lookup: np.ndarray) -> dict:
    """Write block ``flat``'s core with global ids; returns (and records) its objects' measures.

    ``lookup`` maps local to global ids (any integer dtype; the caller passes it in the output's
    label dtype, so the mapped core is made in that dtype, not int64). The measures are taken
    slab by slab (:func:`measure_objects`), so the task holds the core's labels and its mapped
    copy and a few slab-sized arrays, never a full-size coordinate or float array.
    """
    block = job.grid.block_at(flat)
    local = job.store.read_local(flat, block.core_in_outer)
    lookup = np.asarray(lookup)
    if lookup.dtype.kind not in "iu":
        lookup = lookup.astype(np.int64)
    out = lookup[local]
    ids, areas, sums, lo, hi = measure_objects(local, len(lookup) - 1,
                                               tuple(start for start, _ in block.core))
    stats = {
        "id": lookup[ids].tolist(),
        "area": areas.tolist(),
        "sum": [s.tolist() for s in sums],
        "lo": lo.tolist(),
        "hi": hi.tolist(),
    }
    job.store.write_final(flat, block.core_slices, out, stats)
    return stats


def measure_objects(labels: np.ndarray, n: int, origin: tuple[int, ...], *,
                    slab_pixels: int = 1 << 19):
    """Area, coordinate sums and bounding box of each object of ``labels`` (ids ``1..n``).

    Computed over slabs of the first axis (about ``slab_pixels`` pixels each), so the
    temporary arrays are slab-sized whatever the block. Coordinates are integers, so the float
    sums are exact and do not depend on the slabs.

    Parameters
    ----------
    labels : numpy.ndarray of unsigned or signed integers
    n : int
        The largest id ``labels`` may hold.
    origin : tuple of int
        Coordinates of ``labels[0, …, 0]`` in the image.

    Returns
    -------
    ids : numpy.ndarray of int64
        The ids present, ascending.
    areas : numpy.ndarray of int64
    sums : list of numpy.ndarray of float64
        Per axis, the sum of the objects' pixel coordinates.
    lo, hi : numpy.ndarray of int64, shape (ndim, len(ids))
        Box start (inclusive) and stop (exclusive) per axis, in image coordinates.
    """
    from scipy import ndimage as ndi

    labels = np.asarray(labels)
    ndim = labels.ndim
    areas = np.zeros(n + 1, np.int64)
    sums = [np.zeros(n + 1) for _ in range(ndim)]
    rows = max(1, slab_pixels // max(1, int(np.prod(labels.shape[1:], dtype=np.int64))))
    for start in range(0, labels.shape[0], rows):
        slab = labels[start:start + rows]
        flat = slab.ravel()
        areas += np.bincount(flat, minlength=n + 1)
        grids = np.indices(slab.shape, sparse=True)
        offsets = (start + origin[0], *origin[1:])
        for d in range(ndim):
            weights = np.broadcast_to(grids[d] + offsets[d], slab.shape).ravel()
            sums[d] += np.bincount(flat, weights=weights, minlength=n + 1)
    ids = np.flatnonzero(areas[1:]) + 1
    boxes = ndi.find_objects(labels, max_label=n)
    lo = np.array([[boxes[i - 1][d].start + origin[d] for i in ids] for d in range(ndim)],
                  np.int64).reshape(ndim, len(ids))
    hi = np.array([[boxes[i - 1][d].stop + origin[d] for i in ids] for d in range(ndim)],
                  np.int64).reshape(ndim, len(ids))
    return ids, areas[ids], [s[ids] for s in sums], lo, hi
