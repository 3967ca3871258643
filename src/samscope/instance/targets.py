"""Training targets from label images, and the decoders that turn predicted targets back into labels.

Each target's encoder (labels → maps, used to train a head) sits beside its inference decoder
(maps → labels), as Cellpose keeps its flows and their dynamics together, so training and
inference cannot drift apart. A round trip ``labels → targets → decoder`` recovers the labels.

Two target families:

- **Instance distances** (µSAM's AIS/APG decoder; :func:`instance_distance_targets`, decoded by
  :func:`watershed_from_instance_distances`): three channels — foreground, distance to the object
  centre and distance to the object boundary, each distance normalised per object to 0–1. The
  definitions are those of ``torch_em.transform.label.PerObjectDistanceTransform`` as µSAM trains
  with it (``distances=True, boundary_distances=True, foreground=True``).
- **Distance map** (SAMCell; :func:`distance_map_target`, decoded by
  :func:`watershed_from_distance_map`): one channel, each pixel's Euclidean distance to its cell's
  border divided by the cell's maximum, 0 outside cells.

Pure numpy / scipy / scikit-image (no torch). 2-D only; axes ``(y, x)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

from samscope.errors import InputError
from samscope.instance.settings import check_count, check_sigma, check_unit, resolve_settings

if TYPE_CHECKING:  # pragma: no cover
    from samscope.instance.ais import AISConfig

__all__ = [
    "TARGET_CHANNELS",
    "check_count",
    "check_distance_thresholds",
    "check_sigma",
    "check_unit",
    "distance_map_target",
    "instance_distance_targets",
    "instance_seeds",
    "seeds_from_settings",
    "watershed_from_distance_map",
    "watershed_from_instance_distances",
]

#: Channels of :func:`instance_distance_targets`, in order (as the instance head's outputs).
TARGET_CHANNELS = ("foreground", "center_distance", "boundary_distance")

#: Added to per-object maxima before dividing, as ``torch_em`` does (1-pixel objects give 0, not NaN).
_EPS = 1e-7

#: Gaussian smoothing as vigra / bioimage-cpp do it (µSAM's ``gaussian_smoothing``): a kernel cut
#: at 3 sigma and mirrored borders; scipy with these settings agrees to float precision.
_GAUSS = {"mode": "mirror", "truncate": 3.0}


# -- helpers ----------------------------------------------------------------------------------


def _check_labels(labels: np.ndarray) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise InputError(f"labels must be 2-D (y, x), got shape {lab.shape}")
    if lab.dtype == bool:
        return lab.astype(np.int32)
    if lab.dtype.kind not in "iu":
        raise InputError(f"labels must be integers, got {lab.dtype}")
    if lab.dtype.kind == "i" and lab.size and lab.min() < 0:
        raise InputError("labels must be non-negative (0 is background)")
    return lab


def _prepare_labels(labels: np.ndarray, *, min_size: int, split_components: bool) -> np.ndarray:
    """Connected components (or consecutive ids), small objects removed; a new int32/int64 array."""
    from skimage.measure import label as cc_label
    from skimage.segmentation import relabel_sequential

    lab = _check_labels(labels)
    if split_components:
        # Components of equal value, 8-connected, as bioimage-cpp's (and skimage's) default.
        lab = cc_label(lab, background=0, connectivity=2)
    else:
        lab = relabel_sequential(lab)[0]
    if min_size > 0:
        lab = _remove_small(lab, min_size)
    return lab


def _remove_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Drop objects with fewer than ``min_size`` pixels and relabel ``1..n`` (order kept)."""
    from skimage.segmentation import relabel_sequential

    if min_size > 0 and labels.max() > 0:
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        if small.any():
            labels = np.where(small[labels], 0, labels)
    return relabel_sequential(labels)[0]


def _as_float_map(x: np.ndarray, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise InputError(f"{name} must be numeric, got {arr.dtype}")
    if shape is not None and arr.shape != shape:
        raise InputError(f"{name} must have shape {shape}, got {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN or infinite values")
    return arr


# -- instance distances (µSAM AIS / APG) ------------------------------------------------------


def instance_distance_targets(
    labels: np.ndarray,
    *,
    min_size: int = 0,
    split_components: bool = True,
    background_distance: float = 1.0,
) -> np.ndarray:
    """Foreground, centre-distance and boundary-distance targets of a label image.

    The definitions follow ``torch_em``'s ``PerObjectDistanceTransform`` as µSAM trains its
    instance decoder with it; per object, inside its bounding box:

    - **centre distance**: Euclidean distance to the object's centre — its centroid rounded to a
      pixel, or, when that pixel is outside the object (a crescent), the object's most interior
      pixel — divided by the object's maximum: 0 at the centre, 1 at the farthest pixel;
    - **boundary distance**: with ``d`` the Euclidean distance to the nearest *inner boundary*
      pixel (an object pixel with a 4-neighbour of another label; ``skimage``'s
      ``find_boundaries(mode="inner")``; the image edge is not a boundary),
      ``(max(d) - d) / max(max(d) - d)``: 0 at the most interior pixel, 1 on the boundary.

    Background pixels get ``background_distance`` (1.0, as ``torch_em``) in both distance
    channels and 0 in the foreground channel. A one-pixel object has both distances 0.

    Parameters
    ----------
    labels : ndarray of int, (H, W)
        0 background, other values objects. Not modified.
    min_size : int
        Objects (after ``split_components``) with fewer pixels are removed first: they become
        background in every channel. µSAM trains with 25; 0 keeps everything.
    split_components : bool
        Split each id into its 8-connected components first (``torch_em``'s ``apply_label``),
        so a label drawn in two pieces yields two centres.
    background_distance : float
        Value of both distance channels outside objects.

    Returns
    -------
    ndarray of float32, (3, H, W)
        Channels as :data:`TARGET_CHANNELS`.

    Examples
    --------
    >>> lab = np.zeros((7, 7), int); lab[1:6, 1:6] = 1
    >>> t = instance_distance_targets(lab)
    >>> t[:, 3, 3].round(3).tolist(), round(float(t[2, 1, 3]), 3), float(t[1, 0, 0])
    ([1.0, 0.0, 0.0], 1.0, 1.0)
    """
    if min_size < 0:
        raise InputError(f"min_size must be >= 0, got {min_size}")
    lab = _prepare_labels(labels, min_size=min_size, split_components=split_components)
    from skimage.segmentation import find_boundaries

    out = np.empty((3,) + lab.shape, np.float32)
    out[0] = lab > 0
    out[1:] = background_distance
    if lab.size == 0 or lab.max() == 0:
        return out
    boundaries = find_boundaries(lab, mode="inner", connectivity=1)
    center_out, boundary_out = out[1], out[2]
    for index, sl in enumerate(ndi.find_objects(lab)):
        if sl is None:
            continue
        mask = lab[sl] == index + 1
        # Boundary distance on the crop of the *global* boundary mask, as torch_em.
        d = ndi.distance_transform_edt(~boundaries[sl])
        d[~mask] = 0
        peak = np.unravel_index(int(np.argmax(d)), d.shape)
        yy, xx = np.nonzero(mask)
        center = (int(np.round(yy.mean())), int(np.round(xx.mean())))
        if not mask[center]:
            center = peak
        h, w = mask.shape
        cd = np.hypot(
            (np.arange(h, dtype=np.float64) - center[0])[:, None],
            (np.arange(w, dtype=np.float64) - center[1])[None, :],
        )[mask]
        bd = d[peak] - d[mask]
        center_out[sl][mask] = cd / (cd.max() + _EPS)
        boundary_out[sl][mask] = bd / (np.abs(bd).max() + _EPS)
    return out


def instance_seeds(
    maps: np.ndarray,
    *,
    center_distance_thresh: float = 0.5,
    boundary_distance_thresh: float = 0.5,
    foreground_thresh: float = 0.5,
    foreground_smoothing: float = 1.0,
    distance_smoothing: float = 1.6,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeds, foreground mask and flooding surface from instance-distance maps (AIS and APG).

    As µSAM: the foreground map is smoothed with ``foreground_smoothing`` and both distance maps
    with ``distance_smoothing`` (Gaussian sigmas, 0 = none); seeds are the 8-connected components
    of ``(centre < t_c) & (boundary < t_b) & (foreground > t_f)``.

    Parameters
    ----------
    maps : ndarray, (3, H, W)
        Foreground, centre distance, boundary distance (as :func:`instance_distance_targets` or
        the instance head).
    center_distance_thresh, boundary_distance_thresh, foreground_thresh : float
        Thresholds in 0–1.
    foreground_smoothing, distance_smoothing : float
        Gaussian sigmas in pixels, >= 0.

    Returns
    -------
    seeds : ndarray of int32, (H, W)
        0 background, ``1..n`` seed components.
    foreground : ndarray of bool, (H, W)
        Smoothed foreground above its threshold.
    surface : ndarray of float32, (H, W)
        The smoothed boundary distance (low inside objects), the watershed's height map.
    """
    maps = _as_float_map(maps, "maps")
    if maps.ndim != 3 or maps.shape[0] != 3:
        raise InputError(f"maps must have shape (3, H, W), got {maps.shape}")
    fg, center, boundary = maps
    if foreground_smoothing > 0:
        fg = ndi.gaussian_filter(fg, foreground_smoothing, **_GAUSS)
    if distance_smoothing > 0:
        center = ndi.gaussian_filter(center, distance_smoothing, **_GAUSS)
        boundary = ndi.gaussian_filter(boundary, distance_smoothing, **_GAUSS)
    foreground = fg > foreground_thresh
    seed_mask = (
        (center < center_distance_thresh) & (boundary < boundary_distance_thresh) & foreground
    )
    seeds, _ = ndi.label(seed_mask, structure=np.ones((3, 3), bool))
    return seeds.astype(np.int32, copy=False), foreground, boundary


def seeds_from_settings(maps: np.ndarray, cfg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`instance_seeds` with the five thresholds of a mode's settings (AIS, APG, a card's
    :class:`~samscope.models.card.AutomaticDefaults`)."""
    return instance_seeds(
        maps,
        center_distance_thresh=cfg.center_distance_thresh,
        boundary_distance_thresh=cfg.boundary_distance_thresh,
        foreground_thresh=cfg.foreground_thresh,
        foreground_smoothing=cfg.foreground_smoothing,
        distance_smoothing=cfg.distance_smoothing,
    )


def watershed_from_instance_distances(
    maps: np.ndarray, *, config: AISConfig | None = None
) -> np.ndarray:
    """Labels from instance-distance maps: seeded watershed on the boundary distance (AIS).

    µSAM's ``watershed_from_center_and_boundary_distances``: seeds from :func:`instance_seeds`,
    a watershed of the smoothed boundary distance from those seeds restricted to the foreground
    mask (4-connected flooding), then objects smaller than ``min_size`` are dropped.

    Parameters
    ----------
    maps : ndarray, (3, H, W)
        Foreground, centre distance, boundary distance, each in 0–1.
    config : AISConfig, optional
        Thresholds; fields left None (and a None config) take µSAM's defaults
        (0.5 / 0.5 / 0.5, smoothing 1.0 / 1.6, minimum size 0). Use
        :meth:`samscope.instance.ais.AISConfig.resolve` for a model's calibrated defaults.

    Returns
    -------
    ndarray of int32, (H, W)
        0 background, objects ``1..n`` (consecutive).
    """
    from skimage.segmentation import watershed

    from samscope.models.card import AutomaticDefaults

    cfg = resolve_settings(config) if config is not None else AutomaticDefaults()
    seeds, foreground, surface = seeds_from_settings(maps, cfg)
    if seeds.max() == 0:
        return np.zeros(seeds.shape, np.int32)
    labels = watershed(surface, markers=seeds, mask=foreground)
    return _remove_small(labels.astype(np.int32, copy=False), cfg.min_size).astype(np.int32)


# -- distance map (SAMCell) -------------------------------------------------------------------


def distance_map_target(labels: np.ndarray) -> np.ndarray:
    """SAMCell's target: each pixel's distance to its cell's border over the cell's maximum.

    Per object, the Euclidean distance transform of its own mask (distance to the nearest pixel
    that is not this object — background or a touching neighbour, so touching cells stay apart),
    divided by its maximum: 1 at the most interior pixel, ``1 / max`` on the outermost ring, 0
    outside objects. As for :func:`instance_distance_targets`, the image edge is not a border
    (an object cut by the edge continues beyond it). SAMCell's published code computes one
    transform of the binary foreground normalised by the global maximum; the paper (and this
    function) normalises per cell, so small and large cells both reach 1 at their centre.

    Parameters
    ----------
    labels : ndarray of int, (H, W)
        0 background. Not modified.

    Returns
    -------
    ndarray of float32, (H, W)
        In 0–1.

    Examples
    --------
    >>> lab = np.zeros((5, 5), int); lab[1:4, 1:4] = 1
    >>> distance_map_target(lab)[1:4, 2].tolist()
    [0.5, 1.0, 0.5]
    """
    lab = _check_labels(labels)
    out = np.zeros(lab.shape, np.float32)
    if lab.size == 0 or lab.max() == 0:
        return out
    from skimage.segmentation import relabel_sequential

    lab = relabel_sequential(lab)[0]
    H, W = lab.shape
    for index, sl in enumerate(ndi.find_objects(lab)):
        if sl is None:
            continue
        # The bounding box grown by one pixel (where the image allows), so the object's own
        # border is inside the crop while the image edge is not.
        y0, y1 = max(sl[0].start - 1, 0), min(sl[0].stop + 1, H)
        x0, x1 = max(sl[1].start - 1, 0), min(sl[1].stop + 1, W)
        mask = lab[y0:y1, x0:x1] == index + 1
        if mask.all():  # the object is the whole image: no border anywhere
            out[y0:y1, x0:x1] = 1.0
            continue
        d = ndi.distance_transform_edt(mask)
        out[y0:y1, x0:x1][mask] = d[mask] / d.max()
    return out


def watershed_from_distance_map(
    dist: np.ndarray,
    *,
    peak_thresh: float = 0.47,
    fill_thresh: float = 0.09,
    min_size: int = 0,
) -> np.ndarray:
    """Labels from a SAMCell distance map: watershed of ``-dist`` from its peaks.

    Seeds are the 8-connected components of ``dist > peak_thresh`` (SAMCell's "cell peak
    threshold", 0.47); the watershed floods ``-dist`` from them within ``dist > fill_thresh``
    ("cell fill threshold", 0.09); objects smaller than ``min_size`` are dropped. SAMCell's code
    seeds one pixel at each peak region's contour centroid, which can fall outside a curved peak
    region; whole components cannot.

    Parameters
    ----------
    dist : ndarray, (H, W)
        Predicted (or target) distance map in 0–1.
    peak_thresh, fill_thresh : float
        In 0–1, ``fill_thresh <= peak_thresh``.
    min_size : int
        Minimum object size in pixels (0 keeps all).

    Returns
    -------
    ndarray of int32, (H, W)
        0 background, objects ``1..n``.
    """
    from skimage.segmentation import watershed

    check_distance_thresholds(peak_thresh=peak_thresh, fill_thresh=fill_thresh, min_size=min_size)
    d = _as_float_map(dist, "dist")
    if d.ndim != 2:
        raise InputError(f"dist must be 2-D (H, W), got shape {d.shape}")
    seeds, n = ndi.label(d > peak_thresh, structure=np.ones((3, 3), bool))
    if n == 0:
        return np.zeros(d.shape, np.int32)
    labels = watershed(-d, markers=seeds, mask=d > fill_thresh)
    return _remove_small(labels.astype(np.int32, copy=False), min_size).astype(np.int32)


def check_distance_thresholds(*, peak_thresh: float, fill_thresh: float, min_size: int) -> None:
    """Raise :class:`InputError` unless ``0 <= fill_thresh <= peak_thresh <= 1`` and ``min_size >= 0``."""
    check_unit("peak_thresh", peak_thresh)
    check_unit("fill_thresh", fill_thresh)
    if fill_thresh > peak_thresh:
        raise InputError(f"fill_thresh ({fill_thresh}) must not exceed peak_thresh ({peak_thresh})")
    check_count("min_size", min_size)
