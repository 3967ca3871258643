"""Exact stitching of blockwise label images by matching their overlaps (pure numpy / scipy).

Every block is segmented on its outer region (core + halo) into *local* ids ``1..n``. Where the
outer regions of two neighbouring blocks overlap, both saw the same pixels; an object of one and
an object of the other whose masks inside that overlap have an IoU above ``iou_threshold`` are the
same object (:func:`match_overlap`). Those matches are the edges of a graph whose nodes are all
blocks' local objects; its connected components (union-find, via
:func:`scipy.sparse.csgraph.connected_components`) are the global objects
(:func:`global_lookups`). Each output pixel then takes the global id of the local object that the
block whose *core* contains it found there, so every block writes only its core (no two writers
share an output chunk), and an object crossing a border has one id on both sides.

Why IoU > 0.5: two masks with IoU above one half cannot both match a third mask of the same
block, so a match is one-to-one per pair of blocks and chains of matches never fuse two distinct
objects (the merged-object failure of stitching by "labels touching across the face"). No block
"owns" an object by its centre: objects are whole because the blocks agree on the overlap, which
they do when the halo is larger than the objects (default: twice the diameter).

Global ids are sequential ``1..N`` in the order of the first block (C order) and local id in
which each object has core pixels, so they do not depend on the order blocks finished in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from samscope.blockwise.grid import BlockGrid, local_slices

__all__ = ["global_lookups", "match_overlap", "stitch_in_memory"]


def match_overlap(a: np.ndarray, b: np.ndarray, *, iou_threshold: float = 0.5) -> np.ndarray:
    """Pairs of ids of two label images of the same region whose masks have IoU > ``iou_threshold``.

    Parameters
    ----------
    a, b : numpy.ndarray of int
        Labels of the same pixels (any shape, equal), 0 background.
    iou_threshold : float
        In ``[0.5, 1)``: above one half a match is one-to-one.

    Returns
    -------
    numpy.ndarray of int64, (k, 2)
        ``(id in a, id in b)`` per matched pair, sorted.

    Examples
    --------
    >>> a = np.array([[1, 1, 0, 2, 2]])
    >>> b = np.array([[5, 5, 0, 0, 7]])
    >>> match_overlap(a, b).tolist()
    [[1, 5]]
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"overlaps of different shapes {a.shape} and {b.shape}")
    if not 0.5 <= iou_threshold < 1:
        raise ValueError(f"iou_threshold must be in [0.5, 1), got {iou_threshold}")
    fa, fb = a.ravel().astype(np.int64), b.ravel().astype(np.int64)
    both = (fa > 0) & (fb > 0)
    if not both.any():
        return np.zeros((0, 2), np.int64)
    ida, area_a = np.unique(fa[fa > 0], return_counts=True)
    idb, area_b = np.unique(fb[fb > 0], return_counts=True)
    width = int(fb.max()) + 1
    keys, inter = np.unique(fa[both] * width + fb[both], return_counts=True)
    pa, pb = keys // width, keys % width
    union = area_a[np.searchsorted(ida, pa)] + area_b[np.searchsorted(idb, pb)] - inter
    keep = inter > iou_threshold * union
    return np.stack([pa[keep], pb[keep]], axis=1)


def global_lookups(
    counts: Sequence[int],
    present: Sequence[np.ndarray],
    matches: np.ndarray,
) -> tuple[list[np.ndarray], int]:
    """Global ids for every block's local ids, from the matches between blocks.

    Parameters
    ----------
    counts : sequence of int
        Number of local objects of each block (local ids ``1..counts[k]``).
    present : sequence of numpy.ndarray
        Per block, the local ids with pixels in its core (only those objects get an id).
    matches : numpy.ndarray of int, (m, 4)
        ``(block a, id in a, block b, id in b)`` per matched pair.

    Returns
    -------
    lookups : list of numpy.ndarray
        Per block an array of length ``counts[k] + 1``: global id of each local id (0 stays 0;
        objects merged with none that has core pixels get 0).
    n : int
        Number of global objects, ids ``1..n``.

    Examples
    --------
    Object 1 of block 0 and object 2 of block 1 are one object:

    >>> lut, n = global_lookups([2, 2], [np.array([1, 2]), np.array([1, 2])],
    ...                         np.array([[0, 1, 1, 2]]))
    >>> [x.tolist() for x in lut], n
    ([[0, 1, 2], [0, 3, 1]], 3)
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    counts = [int(c) for c in counts]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    total = int(offsets[-1])
    matches = np.asarray(matches, np.int64).reshape(-1, 4)
    if total == 0:
        return [np.zeros(c + 1, np.int64) for c in counts], 0
    for name, blk, ids in (("a", matches[:, 0], matches[:, 1]), ("b", matches[:, 2], matches[:, 3])):
        bad = (ids < 1) | (ids > np.asarray(counts, np.int64)[blk]) if len(blk) else np.zeros(0, bool)
        if bad.any():
            raise ValueError(f"match {name} names a local id outside its block's 1..n")
    src = offsets[matches[:, 0]] + matches[:, 1] - 1
    dst = offsets[matches[:, 2]] + matches[:, 3] - 1
    graph = coo_matrix((np.ones(len(src), np.int8), (src, dst)), shape=(total, total))
    _, comp = connected_components(graph, directed=False)
    nodes = [offsets[k] + np.asarray(p, np.int64) - 1 for k, p in enumerate(present)]
    present_nodes = np.unique(np.concatenate(nodes)) if nodes else np.zeros(0, np.int64)
    comp_of_present = comp[present_nodes]
    uniq, first = np.unique(comp_of_present, return_index=True)
    new_id = np.zeros(int(comp.max()) + 1, np.int64)
    new_id[uniq[np.argsort(first, kind="stable")]] = np.arange(1, len(uniq) + 1)
    lookups = []
    for k, c in enumerate(counts):
        lut = np.zeros(c + 1, np.int64)
        lut[1:] = new_id[comp[offsets[k]:offsets[k + 1]]]
        lookups.append(lut)
    return lookups, len(uniq)


def block_matches(
    grid: BlockGrid, a: int, b: int, labels_a: np.ndarray, labels_b: np.ndarray, *,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """``(a, id in a, b, id in b)`` rows for two blocks' outer-region labels."""
    box = grid.overlap(a, b)
    if box is None:
        return np.zeros((0, 4), np.int64)
    ra = labels_a[local_slices(box, grid.block_at(a).outer)]
    rb = labels_b[local_slices(box, grid.block_at(b).outer)]
    pairs = match_overlap(ra, rb, iou_threshold=iou_threshold)
    out = np.empty((len(pairs), 4), np.int64)
    out[:, 0], out[:, 1], out[:, 2], out[:, 3] = a, pairs[:, 0], b, pairs[:, 1]
    return out


def stitch_in_memory(
    grid: BlockGrid, local: Mapping[int, np.ndarray], *, iou_threshold: float = 0.5
) -> np.ndarray:
    """The stitched label image of blocks held in memory (small images, tests).

    Parameters
    ----------
    grid : BlockGrid
    local : mapping of int to numpy.ndarray
        Per block (flat index) its local labels of the outer region, ids ``1..n``.
    iou_threshold : float

    Returns
    -------
    numpy.ndarray of int64
        Labels of the whole image, globally unique sequential ids.
    """
    blocks = list(grid)
    counts = [int(np.asarray(local[b.flat]).max(initial=0)) for b in blocks]
    present = [np.unique(np.asarray(local[b.flat])[b.core_in_outer]) for b in blocks]
    present = [p[p > 0] for p in present]
    rows = [np.zeros((0, 4), np.int64)]
    for b in blocks:
        for n in grid.neighbours(b.flat, forward=True):
            rows.append(block_matches(grid, b.flat, n, local[b.flat], local[n],
                                      iou_threshold=iou_threshold))
    lookups, _ = global_lookups(counts, present, np.concatenate(rows))
    out = np.zeros(grid.shape, np.int64)
    for b in blocks:
        out[b.core_slices] = lookups[b.flat][np.asarray(local[b.flat])[b.core_in_outer]]
    return out
