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

__all__ = ["Job", "match_task", "segment_task", "write_task"]


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
    """Write block ``flat``'s core with global ids; returns (and records) its objects' measures."""
    from scipy import ndimage as ndi

    block = job.grid.block_at(flat)
    local = job.store.read_local(flat, block.core_in_outer)
    lookup = np.asarray(lookup, np.int64)
    out = lookup[local]
    n = len(lookup) - 1
    areas = np.bincount(local.ravel(), minlength=n + 1)
    ids = np.flatnonzero(areas[1:]) + 1
    origin = [lo for lo, _ in block.core]
    grids = np.indices(local.shape, sparse=True)
    sums = [np.bincount(local.ravel(), weights=np.broadcast_to(g + o, local.shape).ravel(),
                        minlength=n + 1)[ids] for g, o in zip(grids, origin, strict=True)]
    boxes = ndi.find_objects(local.astype(np.int64), max_label=n)
    lo = [[boxes[i - 1][d].start + origin[d] for i in ids] for d in range(local.ndim)]
    hi = [[boxes[i - 1][d].stop + origin[d] for i in ids] for d in range(local.ndim)]
    stats = {
        "id": lookup[ids].tolist(),
        "area": areas[ids].tolist(),
        "sum": [s.tolist() for s in sums],
        "lo": lo,
        "hi": hi,
    }
    job.store.write_final(flat, block.core_slices, out, stats)
    return stats
