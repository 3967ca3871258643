"""Culture metrics of a segmented image: cell count, mean cell area, confluency, neighbours.

These are the numbers the SAMCell interface reports for each image (VandeLoo et al., PLOS One
2025, Fig. 7d: "number of cells detected, average cell area, confluency, and number of
neighbors for each cell"), plus the mean aspect ratio the same paper lists among a culture's
health parameters. The paper does not define a neighbour; samscope does:

**Neighbours.** Two cells are neighbours when a pixel of one lies within
``neighbour_distance_px`` of a pixel of the other (Euclidean distance between pixel centres).
The default, 2 px, counts cells that touch (distance 1 or √2) and cells separated by a gap of
one pixel, as segmentations often leave between touching cells; 1 counts only cells that share
an edge. The number of neighbours of cells cut by the image border is too low, so the mean is
also given over the cells that do not touch the border.

**Confluency** is the fraction of the image covered by cells (label > 0); in 3-D the fraction
of the volume. **Mean cell area** is the mean number of pixels per cell (µm² with a pixel
size).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from samscope.analysis.measure import check_labels, measure_objects
from samscope.analysis.table import Table
from samscope.errors import InputError

__all__ = ["CultureMetrics", "culture_metrics", "neighbour_counts", "neighbour_pairs"]

#: Default neighbour distance, px.
NEIGHBOUR_DISTANCE_PX = 2.0


def neighbour_offsets(ndim: int, distance: float) -> list[tuple[int, ...]]:
    """Integer offsets within ``distance`` in one half-space (each pair of pixels seen once)."""
    r = int(math.floor(distance))
    out = []
    for off in itertools.product(range(-r, r + 1), repeat=ndim):
        if sum(o * o for o in off) > distance * distance + 1e-9 or not any(off):
            continue
        first = next(o for o in off if o)
        if first > 0:
            out.append(off)
    return out


def neighbour_pairs(labels: np.ndarray, *, distance_px: float = NEIGHBOUR_DISTANCE_PX
                    ) -> np.ndarray:
    """Pairs of objects that come within ``distance_px`` of each other.

    Parameters
    ----------
    labels : ndarray of int, (y, x) or (z, y, x)
    distance_px : float
        Largest distance between pixel centres of two neighbours (>= 1), in pixels.

    Returns
    -------
    ndarray of int64, (n_pairs, 2)
        Id pairs ``(a, b)`` with ``a < b``, sorted.

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.array([[1, 1, 0, 2], [0, 0, 0, 0], [3, 0, 0, 0]])
    >>> neighbour_pairs(lab, distance_px=2).tolist()
    [[1, 2], [1, 3]]
    """
    lab = check_labels(labels)
    d = float(distance_px)
    if not (math.isfinite(d) and d >= 1):
        raise InputError(f"the neighbour distance must be at least 1 pixel, got {distance_px!r}")
    top = int(lab.max()) if lab.size else 0
    codes = []
    for off in neighbour_offsets(lab.ndim, d):
        a_sl = tuple(slice(max(0, -o), lab.shape[i] - max(0, o)) for i, o in enumerate(off))
        b_sl = tuple(slice(max(0, o), lab.shape[i] - max(0, -o)) for i, o in enumerate(off))
        a, b = lab[a_sl], lab[b_sl]
        hit = a != b
        hit &= a > 0
        hit &= b > 0
        av, bv = a[hit].astype(np.int64), b[hit].astype(np.int64)
        codes.append(np.minimum(av, bv) * (top + 1) + np.maximum(av, bv))
    if not codes or not sum(c.size for c in codes):
        return np.zeros((0, 2), np.int64)
    c = np.unique(np.concatenate(codes))
    return np.stack([c // (top + 1), c % (top + 1)], axis=1)


def neighbour_counts(labels: np.ndarray, *, distance_px: float = NEIGHBOUR_DISTANCE_PX
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Number of neighbours of every object (see the module docstring for the definition).

    Returns
    -------
    ids : ndarray of int64
        Object ids, sorted.
    counts : ndarray of int64
        Neighbours of each.
    """
    lab = check_labels(labels)
    ids = _ids(lab)
    pairs = neighbour_pairs(lab, distance_px=distance_px)
    counts = np.zeros(ids.size, np.int64)
    if pairs.size:
        both = np.searchsorted(ids, pairs.ravel())
        counts = np.bincount(both, minlength=ids.size).astype(np.int64)
    return ids, counts


def _ids(lab: np.ndarray) -> np.ndarray:
    """Sorted ids present (bincount for compact ids, else unique)."""
    top = int(lab.max()) if lab.size else 0
    if top <= max(4 * lab.size, 1 << 20):
        ids = np.flatnonzero(np.bincount(lab.ravel(), minlength=top + 1))
    else:
        ids = np.unique(lab)
    return ids[ids > 0].astype(np.int64)


@dataclass(frozen=True)
class CultureMetrics:
    """SAMCell's per-image culture metrics.

    Attributes
    ----------
    n_cells : int
    mean_area_px : float
        Mean pixels (voxels in 3-D) per cell; NaN without cells.
    mean_area_um2 : float
        The same in µm² (µm³ in 3-D); NaN without a pixel size.
    confluency : float
        Fraction of the image covered by cells, 0–1.
    mean_neighbours : float
        Mean number of neighbours over all cells.
    mean_neighbours_interior : float
        Mean over the cells that do not touch the image border (NaN if none).
    mean_aspect_ratio : float
        Mean major / minor axis of the cells' moment ellipses (cells with a minor axis of 0,
        one pixel thin, left out).
    neighbour_distance_px : float
        The neighbour definition used.
    """

    n_cells: int
    mean_area_px: float
    mean_area_um2: float
    confluency: float
    mean_neighbours: float
    mean_neighbours_interior: float
    mean_aspect_ratio: float
    neighbour_distance_px: float

    def as_row(self) -> dict[str, float | int]:
        """Flat values for a per-image table."""
        return {
            "n_cells": self.n_cells,
            "mean_area_px": self.mean_area_px,
            "mean_area_um2": self.mean_area_um2,
            "confluency": self.confluency,
            "mean_neighbours": self.mean_neighbours,
            "mean_neighbours_interior": self.mean_neighbours_interior,
            "mean_aspect_ratio": self.mean_aspect_ratio,
        }


def _mean(values: np.ndarray) -> float:
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def culture_metrics(
    labels: np.ndarray,
    *,
    pixel_size_nm: float | Sequence[float] | None = None,
    neighbour_distance_px: float = NEIGHBOUR_DISTANCE_PX,
    objects: Table | None = None,
) -> CultureMetrics:
    """Cell count, mean cell area, confluency, neighbours per cell and mean aspect ratio.

    Parameters
    ----------
    labels : ndarray of int, (y, x) or (z, y, x)
        One id per cell, 0 = background.
    pixel_size_nm : float or sequence of float, optional
        For the mean area in µm² (µm³ in 3-D).
    neighbour_distance_px : float
        See the module docstring (default 2 px).
    objects : Table, optional
        :func:`~samscope.analysis.measure_objects` of ``labels`` if already computed (it must
        have ``id``, ``touches_border`` and ``aspect_ratio``, and ``n_neighbours`` if given
        is used as is).

    Returns
    -------
    CultureMetrics

    Examples
    --------
    >>> import numpy as np
    >>> lab = np.zeros((10, 10), np.uint16); lab[2:5, 2:5] = 1; lab[2:5, 5:8] = 2
    >>> m = culture_metrics(lab)
    >>> m.n_cells, m.mean_area_px, m.confluency, m.mean_neighbours
    (2, 9.0, 0.18, 1.0)
    """
    lab = check_labels(labels)
    if objects is None:
        objects = measure_objects(lab, pixel_size_nm=pixel_size_nm)
    if "n_neighbours" in objects:
        counts = np.asarray(objects["n_neighbours"], np.float64)
    else:
        ids, n_nb = neighbour_counts(lab, distance_px=neighbour_distance_px)
        if not np.array_equal(ids, np.asarray(objects["id"], np.int64)):
            raise InputError("the objects table does not list the ids of the label image")
        counts = n_nb.astype(np.float64)
    area_key = "volume_vox" if "volume_vox" in objects else "area_px"
    area_um_key = "volume_um3" if "volume_vox" in objects else "area_um2"
    interior = ~np.asarray(objects["touches_border"], bool)
    return CultureMetrics(
        n_cells=len(objects),
        mean_area_px=_mean(objects[area_key]),
        mean_area_um2=_mean(objects[area_um_key]) if len(objects) and
        np.isfinite(objects[area_um_key]).all() else math.nan,
        confluency=float(np.count_nonzero(lab)) / lab.size if lab.size else math.nan,
        mean_neighbours=_mean(counts),
        mean_neighbours_interior=_mean(counts[interior]),
        mean_aspect_ratio=_mean(objects["aspect_ratio"]),
        neighbour_distance_px=float(neighbour_distance_px),
    )


#: Former private names kept for modules of other owners that still import them.
