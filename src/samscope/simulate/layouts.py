"""Instance layouts without an image: confluent and clustered cell tessellations.

The nuclei and label-free simulators place separate star-convex objects. Cells in a culture
monolayer (and epithelial sheets, yeast colonies, plant tissue) instead *fill* space: neighbours
share borders and there is little background between them. :func:`tessellation` makes such
layouts: seeds on a jittered grid, each pixel given to the nearest seed after the coordinates are
warped by a smooth random displacement (wavy, irregular borders) and stretched along one direction
(elongated, aligned cells as in fibroblast cultures); a smooth random field then cuts the sheet
into colonies to reach the requested coverage, and a thin gap may separate neighbours.

Pure numpy/scipy; the appearance is added later by :mod:`samscope.simulate.render`.
"""

from __future__ import annotations

import numpy as np

from samscope.simulate.shapes import smooth_field

__all__ = ["tessellation", "keep_largest_parts"]


def tessellation(
    shape: tuple[int, int],
    rng: np.random.Generator,
    *,
    diameter: float,
    coverage: float = 1.0,
    irregularity: float = 0.2,
    elongation: float = 1.0,
    gap_px: float = 0.0,
    min_area: int = 15,
) -> np.ndarray:
    """A label image of touching cells of equivalent diameter about ``diameter`` px.

    Parameters
    ----------
    shape : (int, int)
        Image shape ``(y, x)``.
    rng : numpy.random.Generator
    diameter : float
        Typical equivalent diameter of a cell in pixels (the grid spacing gives each seed the
        area ``π d² / 4``).
    coverage : float
        Fraction of the image covered by cells, in (0, 1]; below 1 a smooth random field keeps
        the cells of some regions only (colonies and gaps).
    irregularity : float
        Amplitude of the coordinate warp relative to ``diameter`` (0 = a plain Voronoi diagram).
    elongation : float
        >= 1: cells are stretched by this factor along one random direction.
    gap_px : float
        Width of the background gap opened between neighbours (0 = shared borders).
    min_area : int
        Cells with fewer pixels are removed.

    Returns
    -------
    numpy.ndarray
        int32 ``(y, x)`` labels, sequential from 1.
    """
    from scipy import ndimage as ndi
    from scipy.spatial import cKDTree

    h, w = (int(s) for s in shape)
    d = float(diameter)
    el = max(1.0, float(elongation))
    theta = float(rng.uniform(0, np.pi))
    c, s = np.cos(theta), np.sin(theta)
    # cells are stretched by `el` along theta: in the rotated frame the seed spacing is
    # larger along theta and smaller across, keeping the cell area
    spacing = d * np.sqrt(np.pi) / 2.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    warp = float(irregularity) * d
    if warp > 0:
        yy = yy + warp * smooth_field(rng, (h, w), max(d / 2.5, 1.0))
        xx = xx + warp * smooth_field(rng, (h, w), max(d / 2.5, 1.0))
    # rotate into the elongation frame and squash the long axis
    u = (c * xx + s * yy) / el
    v = -s * xx + c * yy
    umin, umax = float(u.min()), float(u.max())
    vmin, vmax = float(v.min()), float(v.max())
    step_u = spacing / np.sqrt(el)
    step_v = spacing / np.sqrt(el)
    gu = np.arange(umin - step_u, umax + 2 * step_u, step_u)
    gv = np.arange(vmin - step_v, vmax + 2 * step_v, step_v)
    su, sv = np.meshgrid(gu, gv, indexing="ij")
    su = su.ravel() + rng.uniform(-0.4, 0.4, su.size) * step_u
    sv = sv.ravel() + rng.uniform(-0.4, 0.4, sv.size) * step_v
    tree = cKDTree(np.column_stack([su, sv]))
    _, owner = tree.query(np.column_stack([u.ravel(), v.ravel()]), workers=1)
    labels = (owner.reshape(h, w) + 1).astype(np.int32)

    if coverage < 1.0:
        field = smooth_field(rng, (h, w), max(2.0 * d, 4.0))
        cut = np.quantile(field, 1.0 - float(coverage))
        # keep whole cells: a cell is kept when most of it lies in the kept region
        keep_px = field > cut
        n = int(labels.max())
        inside = np.bincount(labels.ravel(), weights=keep_px.ravel(), minlength=n + 1)
        total = np.bincount(labels.ravel(), minlength=n + 1)
        kept = inside > 0.5 * np.maximum(total, 1)
        kept[0] = False
        labels = np.where(kept[labels], labels, 0)
    if gap_px > 0:
        from skimage.segmentation import find_boundaries

        border = find_boundaries(labels, mode="inner")
        if gap_px > 1:
            border = ndi.binary_dilation(border, iterations=int(round(gap_px)) - 1) & (labels > 0)
        labels = np.where(border, 0, labels)
    labels = keep_largest_parts(labels)
    counts = np.bincount(labels.ravel())
    small = counts < int(min_area)
    small[0] = False
    labels = np.where(small[labels], 0, labels)
    from skimage.segmentation import relabel_sequential

    return relabel_sequential(labels)[0].astype(np.int32)


def keep_largest_parts(labels: np.ndarray) -> np.ndarray:
    """Keep only the largest connected part of every label (a copy; 4-connectivity)."""
    from scipy import ndimage as ndi

    out = np.zeros_like(labels)
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        own = labels[sl] == i
        parts, n = ndi.label(own)
        if n > 1:
            sizes = np.bincount(parts.ravel())
            sizes[0] = 0
            own = parts == int(np.argmax(sizes))
        out[sl][own] = i
    return out
