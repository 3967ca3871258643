"""Per-object measurements of label images too large for memory, region by region.

Every measure here is a sum, a minimum or a maximum over an object's pixels, so it is counted
on one region (a zarr chunk, by default) at a time and the regions' partial results are reduced
per id: objects that cross regions are combined exactly. The columns are those of
:func:`~samscope.analysis.measure.measure_objects` (same names, same definitions, equal values
— a test holds them equal on an image that fits in memory), except ``solidity`` (the convex hull
of an object needs all its pixels at once; NaN here) and the 3-D surface area (NaN). In 2-D the
perimeter is exact too: each region is read with a 2-pixel margin, enough for the border code of
every pixel of its core. ``n_neighbours`` uses the same rule as
:func:`~samscope.analysis.culture.neighbour_pairs` (margins of the neighbour distance).
Intensity columns add the standard deviation, minimum and maximum of each object's pixels.

Memory: one region of labels (and image) plus a few numbers per object and per neighbour pair.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from samscope.analysis.measure import PERIMETER_WEIGHTS, column_units, ellipse_axes, spacing_um
from samscope.analysis.table import Table
from samscope.errors import InputError

__all__ = ["chunked_neighbour_counts", "default_regions", "measure_objects_chunked"]

#: Region size when the labels are not chunked (numpy arrays, memmaps).
DEFAULT_REGION = 2048


def default_regions(shape: tuple[int, ...], labels: Any = None,
                    chunk: Sequence[int] | None = None) -> list[tuple[slice, ...]]:
    """Regions tiling ``shape``: ``chunk``, else the labels' own zarr chunks, else 2048² (16 z)."""
    if chunk is None:
        own = getattr(labels, "chunks", None)
        if isinstance(own, tuple) and len(own) == len(shape) and all(
                isinstance(c, int | np.integer) for c in own):
            chunk = tuple(int(c) for c in own)
        else:
            chunk = tuple(min(n, 16) for n in shape[:-2]) + tuple(
                min(n, DEFAULT_REGION) for n in shape[-2:])
    chunk = tuple(max(1, int(c)) for c in chunk)
    if len(chunk) != len(shape):
        raise InputError(f"region size {chunk} does not fit labels of shape {shape}")
    starts = [range(0, n, c) for n, c in zip(shape, chunk, strict=True)]
    return [tuple(slice(s, min(s + c, n)) for s, c, n in zip(st, chunk, shape, strict=True))
            for st in itertools.product(*starts)]


def _grow(region: tuple[slice, ...], shape: tuple[int, ...], margin: int
          ) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """``region`` grown by ``margin`` (clipped), and the core's place inside the grown one."""
    outer = tuple(slice(max(0, s.start - margin), min(n, s.stop + margin))
                  for s, n in zip(region, shape, strict=True))
    inner = tuple(slice(s.start - o.start, s.stop - o.start)
                  for s, o in zip(region, outer, strict=True))
    return outer, inner


def _read_labels(labels: Any, region: tuple[slice, ...]) -> np.ndarray:
    lab = np.asarray(labels[region])
    if lab.dtype == bool:
        lab = lab.astype(np.uint8)
    if lab.dtype.kind not in "iu":
        raise InputError(f"labels must hold integer object ids, got dtype {lab.dtype}")
    if lab.dtype.kind == "i" and lab.size and lab.min() < 0:
        raise InputError(f"labels hold negative ids (min {lab.min()}); 0 is background")
    return lab


def _core_perimeter(ext: np.ndarray, inner: tuple[slice, slice]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, perimeter contributions) of the border pixels of the core ``ext[inner]``.

    The border code of :func:`samscope.analysis.measure._perimeters` (edge of ``ext`` counts as
    outside: right at the image's edges, and never reached from the core elsewhere when ``ext``
    has a margin of 2 pixels).
    """
    p = np.pad(ext, 1)
    wp = p.shape[1]
    c = p[1:-1, 1:-1]
    border = (c > 0) & ((p[:-2, 1:-1] != c) | (p[2:, 1:-1] != c)
                        | (p[1:-1, :-2] != c) | (p[1:-1, 2:] != c))
    bf = np.zeros(p.shape, bool)
    bf[1:-1, 1:-1] = border
    core = np.zeros(ext.shape, bool)
    core[inner] = True
    by, bx = np.nonzero(border & core)
    if by.size == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    idx = (by + 1) * wp + (bx + 1)
    pf, bff = p.ravel(), bf.ravel()
    own = pf[idx]
    code = np.ones(idx.size, np.int64)
    for off, weight in ((-wp, 2), (wp, 2), (-1, 2), (1, 2),
                        (-wp - 1, 10), (-wp + 1, 10), (wp - 1, 10), (wp + 1, 10)):
        nb = idx + off
        code += weight * ((pf[nb] == own) & bff[nb])
    ids, inv = np.unique(own.astype(np.int64), return_inverse=True)
    return ids, np.bincount(inv.ravel(), PERIMETER_WEIGHTS[code], minlength=ids.size)


def _pairs(ext: np.ndarray, inner: tuple[slice, ...], distance: float) -> np.ndarray:
    """Neighbour pairs (a < b) with at least one pixel of the pair in the core."""
    from samscope.analysis.culture import neighbour_offsets

    out = []
    nd = ext.ndim
    for off in neighbour_offsets(nd, distance):
        for sign in (1, -1):  # the core pixel may be either end of the pair
            o = tuple(sign * v for v in off)
            a_sl = tuple(slice(max(0, -v), ext.shape[i] - max(0, v)) for i, v in enumerate(o))
            b_sl = tuple(slice(max(0, v), ext.shape[i] - max(0, -v)) for i, v in enumerate(o))
            a, b = ext[a_sl], ext[b_sl]
            # a's pixel positions in ext: a_sl; keep those inside the core
            in_core = np.ones(a.shape, bool)
            for i, (sl, core) in enumerate(zip(a_sl, inner, strict=True)):
                pos = np.arange(sl.start, sl.stop)
                shape = [1] * nd
                shape[i] = -1
                in_core &= ((pos >= core.start) & (pos < core.stop)).reshape(shape)
            hit = (a != b) & (a > 0) & (b > 0) & in_core
            av, bv = a[hit].astype(np.int64), b[hit].astype(np.int64)
            if av.size:
                out.append(np.stack([np.minimum(av, bv), np.maximum(av, bv)], axis=1))
    if not out:
        return np.zeros((0, 2), np.int64)
    return np.unique(np.concatenate(out), axis=0)


def chunked_neighbour_counts(labels: Any, *, distance_px: float = 2.0,
                             chunk: Sequence[int] | None = None
                             ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~samscope.analysis.culture.neighbour_counts` of a label array read region by region.

    Returns
    -------
    ids, counts : ndarray of int64
        Sorted ids present and their numbers of neighbours.
    """
    d = float(distance_px)
    if not (math.isfinite(d) and d >= 1):
        raise InputError(f"the neighbour distance must be at least 1 pixel, got {distance_px!r}")
    shape = tuple(int(s) for s in labels.shape)
    margin = int(math.floor(d))
    ids_parts, pair_parts = [], []
    for region in default_regions(shape, labels, chunk):
        outer, inner = _grow(region, shape, margin)
        ext = _read_labels(labels, outer)
        core = ext[inner]
        ids_parts.append(np.unique(core[core > 0]).astype(np.int64))
        pair_parts.append(_pairs(ext, inner, d))
    ids = np.unique(np.concatenate(ids_parts)) if ids_parts else np.zeros(0, np.int64)
    pairs = np.unique(np.concatenate(pair_parts), axis=0) if pair_parts else np.zeros((0, 2))
    counts = np.zeros(ids.size, np.int64)
    if pairs.size:
        counts = np.bincount(np.searchsorted(ids, pairs.ravel()), minlength=ids.size)
    return ids, counts.astype(np.int64)


class _Partials:
    """Per-region, per-id partial sums, reduced per id at the end."""

    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, **cols: np.ndarray) -> None:
        self.parts.append(cols)

    def reduce(self, how: dict[str, str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if not self.parts:
            return np.zeros(0, np.int64), {}
        ids_all = np.concatenate([p["id"] for p in self.parts])
        ids, inv = np.unique(ids_all, return_inverse=True)
        inv = inv.ravel()
        out = {}
        for key, op in how.items():
            vals = np.concatenate([p[key] for p in self.parts])
            if op == "sum":
                acc = np.zeros((ids.size,) + vals.shape[1:], vals.dtype)
                np.add.at(acc, inv, vals)
            elif op == "min":
                acc = np.full((ids.size,) + vals.shape[1:], _top(vals.dtype), vals.dtype)
                np.minimum.at(acc, inv, vals)
            else:
                acc = np.full((ids.size,) + vals.shape[1:], _bottom(vals.dtype), vals.dtype)
                np.maximum.at(acc, inv, vals)
            out[key] = acc
        return ids, out


def _top(dtype: np.dtype):
    return np.inf if np.dtype(dtype).kind == "f" else np.iinfo(dtype).max


def _bottom(dtype: np.dtype):
    return -np.inf if np.dtype(dtype).kind == "f" else np.iinfo(dtype).min


def _image_region(image: Any, region: tuple[slice, ...], lab_shape: tuple[int, ...]
                  ) -> np.ndarray:
    img = np.asarray(image[region])
    if img.shape == lab_shape:
        img = img[..., None]
    if img.dtype.kind not in "biuf":
        raise InputError(f"intensity image must be numeric, got dtype {img.dtype}")
    return img.astype(np.float64, copy=False)


def measure_objects_chunked(
    labels: Any,
    image: Any = None,
    *,
    pixel_size_nm: float | Sequence[float] | None = None,
    chunk: Sequence[int] | None = None,
    neighbour_distance_px: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Table:
    """Measure every object of a 2-D or 3-D label array without holding it in memory.

    Parameters
    ----------
    labels : array-like of int, (y, x) or (z, y, x)
        A ``zarr.Array`` (read chunk by chunk), a memmap or a numpy array.
    image : array-like, optional
        Intensities on the same grid (optionally with channels last), read region by region.
    pixel_size_nm : float or sequence of float, optional
        As for :func:`~samscope.analysis.measure.measure_objects`.
    chunk : sequence of int, optional
        Region size (default: the labels' chunks, else 2048² / 16×2048²).
    neighbour_distance_px : float, optional
        Also count neighbours (column ``n_neighbours``) at this distance.
    progress : callable (done, total), optional
        Called after each region.

    Returns
    -------
    Table
        The columns of ``measure_objects`` (``solidity`` and ``surface_area_*`` NaN), plus
        ``std_intensity``, ``min_intensity``, ``max_intensity`` (per channel ``_c0 …``).

    Raises
    ------
    InputError
        Non-integer or negative labels, not 2-D or 3-D, an image that does not fit.

    Examples
    --------
    >>> lab = np.zeros((6, 6), np.uint8); lab[1:5, 2:4] = 3
    >>> t = measure_objects_chunked(lab, chunk=(2, 2))
    >>> int(t["area_px"][0]), float(t["centroid_y_px"][0]), int(t["bbox_y1"][0])
    (8, 2.5, 5)
    """
    return measure_with_foreground(labels, image, pixel_size_nm=pixel_size_nm, chunk=chunk,
                                   neighbour_distance_px=neighbour_distance_px,
                                   progress=progress)[0]


def measure_with_foreground(
    labels: Any,
    image: Any = None,
    *,
    pixel_size_nm: float | Sequence[float] | None = None,
    chunk: Sequence[int] | None = None,
    neighbour_distance_px: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Table, int]:
    """:func:`measure_objects_chunked` and the number of foreground pixels (for confluency)."""
    shape = tuple(int(s) for s in labels.shape)
    nd = len(shape)
    if nd not in (2, 3):
        raise InputError(f"labels must be 2-D (y, x) or 3-D (z, y, x), got shape {shape}")
    if image is not None:
        ishape = tuple(int(s) for s in image.shape)
        if ishape != shape and not (len(ishape) == nd + 1 and ishape[:-1] == shape):
            raise InputError(f"intensity image of shape {ishape} does not fit labels of shape "
                             f"{shape} (expected {shape} or {shape} + (channels,))")
    spacing = spacing_um(pixel_size_nm, nd)
    regions = default_regions(shape, labels, chunk)
    parts = _Partials()
    margin = 2 if nd == 2 else 0
    fg_total = 0
    pairs_parts = []
    nb_margin = 0 if neighbour_distance_px is None else int(math.floor(neighbour_distance_px))
    for i, region in enumerate(regions):
        outer, inner = _grow(region, shape, max(margin, nb_margin))
        ext = _read_labels(labels, outer)
        lab = ext[inner]
        flat = lab.ravel()
        fg = np.flatnonzero(flat)
        fg_total += fg.size
        if neighbour_distance_px is not None:
            pairs_parts.append(_pairs(ext, inner, float(neighbour_distance_px)))
        if fg.size == 0:
            if progress is not None:
                progress(i + 1, len(regions))
            continue
        ids, inv = np.unique(flat[fg].astype(np.int64), return_inverse=True)
        inv = inv.ravel()
        n = ids.size
        coords = np.unravel_index(fg, lab.shape)
        coords = [c.astype(np.int64) + s.start for c, s in zip(coords, region, strict=True)]
        cols: dict[str, np.ndarray] = {"id": ids, "n": np.bincount(inv, minlength=n)}
        # exact integer moments: np.add.at on int64 (bincount would go through float64)
        s2 = np.zeros((n, nd, nd), np.int64)
        for a in range(nd):
            for b in range(a, nd):
                np.add.at(s2[:, a, b], inv, coords[a] * coords[b])
                s2[:, b, a] = s2[:, a, b]
        s1 = np.zeros((n, nd), np.int64)
        for a in range(nd):
            np.add.at(s1[:, a], inv, coords[a])
        cols["s1"], cols["s2"] = s1, s2
        lo = np.full((n, nd), np.iinfo(np.int64).max)
        hi = np.full((n, nd), np.iinfo(np.int64).min)
        for a in range(nd):
            np.minimum.at(lo[:, a], inv, coords[a])
            np.maximum.at(hi[:, a], inv, coords[a])
        cols["lo"], cols["hi"] = lo, hi
        if nd == 2:
            pids, perim = _core_perimeter(ext, inner)
            pp = np.zeros(n)
            pp[np.searchsorted(ids, pids)] = perim
            cols["perimeter"] = pp
        if image is not None:
            img = _image_region(image, region, lab.shape).reshape(-1, _channels(image, shape))
            vals = img[fg]
            total = np.stack([np.bincount(inv, vals[:, c], minlength=n)
                              for c in range(vals.shape[1])], 1)
            mean = total / cols["n"][:, None]
            dev = vals - mean[inv]
            m2 = np.stack([np.bincount(inv, dev[:, c] ** 2, minlength=n)
                           for c in range(vals.shape[1])], 1)
            vmin = np.full(total.shape, np.inf)
            vmax = np.full(total.shape, -np.inf)
            np.minimum.at(vmin, inv, vals)
            np.maximum.at(vmax, inv, vals)
            cols.update(isum=total, imean=mean, im2=m2, imin=vmin, imax=vmax)
        parts.add(**cols)
        if progress is not None:
            progress(i + 1, len(regions))
    how = {"n": "sum", "s1": "sum", "s2": "sum", "lo": "min", "hi": "max"}
    if nd == 2:
        how["perimeter"] = "sum"
    if image is not None:
        how.update(isum="sum", imin="min", imax="max")
    ids, r = parts.reduce(how)
    table_cols = _columns(ids, r, parts, shape, spacing, image is not None,
                          _channels(image, shape) if image is not None else 0)
    if neighbour_distance_px is not None:
        pairs = np.unique(np.concatenate(pairs_parts), axis=0) if pairs_parts else \
            np.zeros((0, 2), np.int64)
        counts = np.zeros(ids.size, np.int64)
        if pairs.size:
            counts = np.bincount(np.searchsorted(ids, pairs.ravel()), minlength=ids.size)
        table_cols["n_neighbours"] = counts.astype(np.float64)
    return Table(table_cols, column_units(table_cols)), int(fg_total)


def _channels(image: Any, shape: tuple[int, ...]) -> int:
    ishape = tuple(int(s) for s in image.shape)
    return 1 if ishape == shape else ishape[-1]


def _columns(ids: np.ndarray, r: dict[str, np.ndarray], parts: _Partials,
             shape: tuple[int, ...], spacing: tuple[float, ...] | None, has_image: bool,
             channels: int) -> dict[str, np.ndarray]:
    nd = len(shape)
    n = ids.size
    if n == 0:
        r = {"n": np.zeros(0, np.int64), "s1": np.zeros((0, nd), np.int64),
             "s2": np.zeros((0, nd, nd), np.int64), "lo": np.zeros((0, nd), np.int64),
             "hi": np.zeros((0, nd), np.int64), "perimeter": np.zeros(0)}
    area = r["n"].astype(np.int64)
    lo, hi = r["lo"], r["hi"] + 1
    s1, s2 = r["s1"], r["s2"]
    # moments about each object's box corner, exactly in integers, then as measure_objects does
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (s1 - area[:, None] * lo) / area[:, None]  # mean local coordinate per axis
        cov = np.zeros((n, nd, nd))
        for a in range(nd):
            for b in range(nd):
                local = (s2[:, a, b] - lo[:, a] * s1[:, b] - lo[:, b] * s1[:, a]
                         + area * lo[:, a] * lo[:, b])
                cov[:, a, b] = local / area - m[:, a] * m[:, b]
    centroid = m + lo
    sp = spacing
    cols: dict[str, np.ndarray] = {"id": ids.astype(np.int64)}
    names = "zyx"[-nd:]
    if nd == 2:
        py, px = (sp[-2], sp[-1]) if sp is not None else (math.nan, math.nan)
        iso = sp is not None and math.isclose(py, px, rel_tol=1e-9)
        major, minor, ecc = ellipse_axes(cov[:, 0, 0], cov[:, 1, 1], cov[:, 0, 1])
        perim = r["perimeter"]
        cols["area_px"] = area
        cols["area_um2"] = area * (py * px)
        cols["perimeter_px"] = perim
        cols["perimeter_um"] = perim * math.sqrt(py * px)
        cols["equivalent_diameter_px"] = np.sqrt(4 * area / np.pi)
        cols["equivalent_diameter_um"] = np.sqrt(4 * cols["area_um2"] / np.pi)
        cols["major_axis_px"] = major
        if sp is None or iso:
            cols["major_axis_um"], cols["minor_axis_um"] = major * px, minor * px
        else:
            cols["major_axis_um"], cols["minor_axis_um"], _ = ellipse_axes(
                cov[:, 0, 0] * py * py, cov[:, 1, 1] * px * px, cov[:, 0, 1] * px * py)
        cols["minor_axis_px"] = minor
        order = ["id", "area_px", "area_um2", "perimeter_px", "perimeter_um",
                 "equivalent_diameter_px", "equivalent_diameter_um", "major_axis_px",
                 "major_axis_um", "minor_axis_px", "minor_axis_um"]
        cols = {k: cols[k] for k in order}
        with np.errstate(invalid="ignore", divide="ignore"):
            cols["aspect_ratio"] = np.where(minor > 0, major / np.where(minor > 0, minor, 1),
                                            np.nan)
        cols["eccentricity"] = ecc
        cols["solidity"] = np.full(n, np.nan)
    else:
        ok = sp is not None and all(math.isfinite(v) for v in sp)
        vol_um = area * (sp[0] * sp[1] * sp[2]) if ok else np.full(n, np.nan)
        ev = np.linalg.eigvalsh(cov) if n else np.zeros((0, 3))  # ascending
        major = np.sqrt(np.maximum(20 * ev[:, 2], 0)) if n else np.zeros(0)
        minor = np.sqrt(np.maximum(20 * ev[:, 0], 0)) if n else np.zeros(0)
        cols.update(volume_vox=area, volume_um3=vol_um, surface_area_vox=np.full(n, np.nan),
                    surface_area_um2=np.full(n, np.nan),
                    equivalent_diameter_px=(6 * area / np.pi) ** (1 / 3),
                    equivalent_diameter_um=(6 * vol_um / np.pi) ** (1 / 3),
                    major_axis_px=major, minor_axis_px=minor)
        if ok and math.isclose(sp[0], sp[1]) and math.isclose(sp[1], sp[2]):
            cols["major_axis_um"], cols["minor_axis_um"] = major * sp[0], minor * sp[0]
        elif ok:
            d = np.asarray(sp)
            evp = np.linalg.eigvalsh(cov * d[None, :, None] * d[None, None, :]) if n else \
                np.zeros((0, 3))
            cols["major_axis_um"] = np.sqrt(np.maximum(20 * evp[:, 2], 0)) if n else np.zeros(0)
            cols["minor_axis_um"] = np.sqrt(np.maximum(20 * evp[:, 0], 0)) if n else np.zeros(0)
        else:
            cols["major_axis_um"] = cols["minor_axis_um"] = np.full(n, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            cols["aspect_ratio"] = np.where(minor > 0, major / np.where(minor > 0, minor, 1),
                                            np.nan)
        cols["solidity"] = np.full(n, np.nan)
    for a, name in enumerate(names):
        cols[f"centroid_{name}_px"] = centroid[:, a]
    for a, name in enumerate(names):
        scale = sp[a] if sp is not None else math.nan
        cols[f"centroid_{name}_um"] = centroid[:, a] * scale
    for a, name in enumerate(names):
        cols[f"bbox_{name}0"] = lo[:, a].astype(np.int64)
    for a, name in enumerate(names):
        cols[f"bbox_{name}1"] = hi[:, a].astype(np.int64)
    touches = np.zeros(n, bool)
    for a in range(nd):
        touches |= (lo[:, a] == 0) | (hi[:, a] == shape[a])
    cols["touches_border"] = touches
    cols.update(_intensity_columns(ids, r, parts, area, has_image, channels))
    return cols


def _intensity_columns(ids, r, parts: _Partials, area, has_image: bool, channels: int
                       ) -> dict[str, np.ndarray]:
    n = ids.size
    if not has_image:
        return {"mean_intensity": np.full(n, np.nan), "integrated_intensity": np.full(n, np.nan)}
    total = r.get("isum", np.zeros((n, channels)))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / area[:, None]
    # pooled second moment: sum of the regions' M2 + n_i (mean_i - mean)^2
    m2 = np.zeros((n, channels))
    if parts.parts:
        pid = np.concatenate([p["id"] for p in parts.parts])
        k = np.searchsorted(ids, pid)
        pn = np.concatenate([p["n"] for p in parts.parts]).astype(np.float64)
        pmean = np.concatenate([p["imean"] for p in parts.parts])
        pm2 = np.concatenate([p["im2"] for p in parts.parts])
        np.add.at(m2, k, pm2 + pn[:, None] * (pmean - mean[k]) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(m2 / area[:, None])
    out = {}
    for c in range(channels):
        suffix = "" if channels == 1 else f"_c{c}"
        out[f"mean_intensity{suffix}"] = mean[:, c]
        out[f"integrated_intensity{suffix}"] = total[:, c]
    for c in range(channels):
        suffix = "" if channels == 1 else f"_c{c}"
        out[f"std_intensity{suffix}"] = std[:, c]
        out[f"min_intensity{suffix}"] = r.get("imin", np.zeros((n, channels)))[:, c]
        out[f"max_intensity{suffix}"] = r.get("imax", np.zeros((n, channels)))[:, c]
    return out
