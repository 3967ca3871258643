"""Classical baselines that model cards compare against: Otsu components and Otsu + watershed.

Both methods find the foreground the same way: the image is normalised between two percentiles
(:func:`samscope.image.normalize_percentile`), smoothed with a Gaussian of ``smoothing`` pixels,
and thresholded at Otsu's threshold; background holes smaller than ``min_size`` pixels are
filled. Objects are assumed brighter than the background (fluorescence); invert dark-object
images first.

- :func:`otsu_components` labels the 8-connected components of the foreground, so touching
  objects merge into one.
- :func:`otsu_watershed` splits them: it floods the inverted Euclidean distance transform of the
  foreground from its local maxima (one or more seeds per component).

Pure numpy / scipy / scikit-image (no torch), 2-D only, axes ``(y, x)``. Inputs are never
modified. The CLI front end is ``samscope baseline``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage as ndi

from samscope.errors import InputError
from samscope.image import normalize_percentile
from samscope.instance.settings import check_count, check_sigma

__all__ = [
    "BASELINES",
    "DISTANCE_SMOOTHING",
    "LABEL_DTYPE",
    "default_min_distance",
    "otsu_components",
    "otsu_foreground",
    "otsu_watershed",
]

#: Label dtype of every baseline's output (as the label decoders of
#: :mod:`samscope.instance.targets`): one fixed dtype, whatever the number of objects.
LABEL_DTYPE = np.dtype(np.int32)

#: Gaussian sigma (pixels) applied to the distance transform before seeds are picked, so jagged
#: boundaries do not create spurious maxima.
DISTANCE_SMOOTHING = 1.0


# -- helpers ----------------------------------------------------------------------------------


def _check_image(image: np.ndarray) -> np.ndarray:
    """The image as an array; InputError unless it is a real-valued, finite 2-D array."""
    arr = np.asarray(image)
    if arr.ndim != 2:
        raise InputError(
            f"baselines take a 2-D image (y, x), got shape {arr.shape}; "
            "segment stacks plane by plane and select one channel first"
        )
    if arr.dtype.kind not in "buif":
        raise InputError(f"image must be numeric (bool, integer or float), got {arr.dtype}")
    if arr.dtype.kind == "f":
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise InputError(
                f"image has {bad} NaN or infinite value(s) out of {arr.size}; "
                "clean or replace them first"
            )
    return arr


def _check_options(smoothing: object, min_size: object) -> None:
    check_sigma("smoothing", smoothing)
    check_count("min_size", min_size)


def _drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Objects smaller than ``min_size`` pixels removed, ids relabelled ``1..n`` in order."""
    from skimage.segmentation import relabel_sequential

    labels = labels.astype(LABEL_DTYPE, copy=False)
    if labels.size == 0 or labels.max() == 0:
        return np.zeros(labels.shape, LABEL_DTYPE)
    if min_size > 0:
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        if small.any():
            labels = np.where(small[labels], 0, labels)
    return relabel_sequential(labels)[0].astype(LABEL_DTYPE, copy=False)


def _fill_small_holes(foreground: np.ndarray, max_size: int) -> np.ndarray:
    """Fill background regions enclosed by foreground with fewer than ``max_size`` pixels."""
    if max_size <= 0:
        return foreground
    holes = ndi.binary_fill_holes(foreground) & ~foreground
    # 4-connected holes: the complement of 8-connected objects.
    hole_labels, n = ndi.label(holes)
    if n == 0:
        return foreground
    sizes = np.bincount(hole_labels.ravel())
    fill = sizes < max_size
    fill[0] = False
    return foreground | fill[hole_labels]


def _components(foreground: np.ndarray, min_size: int) -> np.ndarray:
    """8-connected components of ``foreground``, small ones dropped, ids ``1..n``."""
    from skimage.measure import label as cc_label

    return _drop_small(cc_label(foreground, background=0, connectivity=2), min_size)


def otsu_foreground(
    image: np.ndarray,
    *,
    smoothing: float = 1.0,
    min_size: int = 10,
    low_percentile: float = 1.0,
    high_percentile: float = 99.8,
) -> np.ndarray:
    """Foreground mask shared by the baselines: normalise, smooth, Otsu threshold, fill holes.

    Parameters
    ----------
    image : ndarray, (H, W)
        Any real dtype (uint8, uint16, signed, float, bool); objects brighter than background.
    smoothing : float
        Gaussian sigma in pixels applied before thresholding (0: none).
    min_size : int
        Background holes enclosed by foreground with fewer pixels than this are filled.
    low_percentile, high_percentile : float
        Percentiles mapped to 0 and 1 before smoothing (``0 <= low < high <= 100``).

    Returns
    -------
    ndarray of bool, (H, W)
        All False for a constant or size-0 image.

    Raises
    ------
    InputError
        For a non-2-D or non-numeric image, NaN/inf values (with their count), a negative or
        non-finite ``smoothing``, a negative ``min_size`` or bad percentiles.
    """
    from skimage.filters import threshold_otsu

    arr = _check_image(image)
    _check_options(smoothing, min_size)
    if arr.size == 0:
        return np.zeros(arr.shape, bool)
    norm = normalize_percentile(arr, low=low_percentile, high=high_percentile)
    if float(smoothing) > 0:
        norm = ndi.gaussian_filter(norm, sigma=float(smoothing), mode="reflect")
    lo, hi = float(norm.min()), float(norm.max())
    if hi <= lo:  # constant image (or flattened by clipping): no foreground
        return np.zeros(arr.shape, bool)
    foreground = norm > threshold_otsu(norm)
    return _fill_small_holes(foreground, int(min_size))


def default_min_distance(components: np.ndarray) -> int:
    """Seed spacing of :func:`otsu_watershed` when none is given.

    The rule: ``max(3, round(0.25 * d))`` pixels, where ``d`` is the median equivalent diameter
    (``sqrt(4 * area / pi)``) of the labelled ``components``; 3 when there are none. Touching
    objects merged into one component inflate ``d`` a little, which only spaces seeds further
    apart than a quarter of a typical object.

    Parameters
    ----------
    components : ndarray of int, (H, W)
        0 background, objects ``1..n``.

    Returns
    -------
    int
        At least 3.

    Examples
    --------
    >>> disc = np.zeros((64, 64), int)
    >>> yy, xx = np.ogrid[:64, :64]
    >>> disc[(yy - 32) ** 2 + (xx - 32) ** 2 <= 20 ** 2] = 1
    >>> default_min_distance(disc)
    10
    """
    lab = np.asarray(components)
    if lab.size == 0 or lab.max() <= 0:
        return 3
    areas = np.bincount(lab.ravel())[1:]
    areas = areas[areas > 0]
    diameter = float(np.median(np.sqrt(4.0 * areas / np.pi)))
    return max(3, round(0.25 * diameter))


# -- the baselines ----------------------------------------------------------------------------


def otsu_components(
    image: np.ndarray,
    *,
    smoothing: float = 1.0,
    min_size: int = 10,
    low_percentile: float = 1.0,
    high_percentile: float = 99.8,
) -> np.ndarray:
    """Label the connected components of the Otsu foreground (touching objects merge).

    Steps: percentile normalisation, Gaussian smoothing (sigma ``smoothing``), Otsu threshold,
    holes smaller than ``min_size`` filled (:func:`otsu_foreground`), 8-connected components,
    objects smaller than ``min_size`` pixels dropped, ids relabelled ``1..n``.

    Parameters
    ----------
    image : ndarray, (H, W)
        Any real dtype (uint8, uint16, signed, float, bool); objects brighter than background.
    smoothing : float
        Gaussian sigma in pixels before thresholding (0: none).
    min_size : int
        Smallest object kept, and smallest hole kept open, in pixels (0 keeps all).
    low_percentile, high_percentile : float
        Percentiles mapped to 0 and 1 before smoothing (``0 <= low < high <= 100``).

    Returns
    -------
    ndarray of int32, (H, W)
        0 background, objects ``1..n`` in raster order of their first pixel; all zeros for a
        constant or size-0 image.

    Raises
    ------
    InputError
        As :func:`otsu_foreground`.

    Examples
    --------
    >>> img = np.zeros((40, 40), np.uint16)
    >>> img[5:15, 5:15] = 1000
    >>> img[25:35, 20:30] = 1200
    >>> int(otsu_components(img).max())
    2
    """
    foreground = otsu_foreground(
        image,
        smoothing=smoothing,
        min_size=min_size,
        low_percentile=low_percentile,
        high_percentile=high_percentile,
    )
    return _components(foreground, int(min_size))


def otsu_watershed(
    image: np.ndarray,
    *,
    smoothing: float = 1.0,
    min_size: int = 10,
    min_distance: int | None = None,
    low_percentile: float = 1.0,
    high_percentile: float = 99.8,
) -> np.ndarray:
    """Split the Otsu foreground into objects by a watershed of its distance transform.

    Steps: the foreground of :func:`otsu_foreground` and its components (as
    :func:`otsu_components`); the Euclidean distance transform of the foreground, smoothed with
    a Gaussian of :data:`DISTANCE_SMOOTHING` pixels; seeds at its local maxima within each
    component (:func:`skimage.feature.peak_local_max`, at least ``min_distance`` apart, border
    peaks kept), plus the highest point of any component left without one; a watershed of the
    negated distance from the seeds, restricted to the foreground; pieces smaller than
    ``min_size`` pixels dropped (a dropped piece leaves a gap in its neighbour); ids relabelled
    ``1..n``.

    Parameters
    ----------
    image : ndarray, (H, W)
        Any real dtype (uint8, uint16, signed, float, bool); objects brighter than background.
    smoothing : float
        Gaussian sigma in pixels before thresholding (0: none).
    min_size : int
        Smallest object kept, and smallest hole kept open, in pixels (0 keeps all).
    min_distance : int, optional
        Smallest distance in pixels between two seeds (>= 1). Default:
        :func:`default_min_distance` of the components, ``max(3, round(0.25 * d))`` with ``d``
        their median equivalent diameter. Smaller values split more.
    low_percentile, high_percentile : float
        Percentiles mapped to 0 and 1 before smoothing (``0 <= low < high <= 100``).

    Returns
    -------
    ndarray of int32, (H, W)
        0 background, objects ``1..n``; all zeros for a constant or size-0 image.

    Raises
    ------
    InputError
        As :func:`otsu_foreground`, and for a ``min_distance`` that is not an integer >= 1.

    Examples
    --------
    >>> yy, xx = np.ogrid[:60, :80]
    >>> img = ((yy - 30) ** 2 + (xx - 25) ** 2 <= 144) | ((yy - 30) ** 2 + (xx - 48) ** 2 <= 144)
    >>> img = img.astype(np.uint8)
    >>> int(otsu_components(img).max()), int(otsu_watershed(img).max())
    (1, 2)
    """
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    if min_distance is not None:
        check_count("min_distance", min_distance, minimum=1)
    foreground = otsu_foreground(
        image,
        smoothing=smoothing,
        min_size=min_size,
        low_percentile=low_percentile,
        high_percentile=high_percentile,
    )
    components = _components(foreground, int(min_size))
    n = int(components.max()) if components.size else 0
    if n == 0:
        return np.zeros(foreground.shape, LABEL_DTYPE)
    spacing = default_min_distance(components) if min_distance is None else int(min_distance)
    inside = components > 0
    distance = ndi.distance_transform_edt(inside).astype(np.float32)
    if DISTANCE_SMOOTHING > 0:
        distance = ndi.gaussian_filter(distance, sigma=DISTANCE_SMOOTHING)
        distance[~inside] = 0.0
    peaks = peak_local_max(distance, min_distance=spacing, labels=components, exclude_border=False)
    markers = np.zeros(components.shape, LABEL_DTYPE)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1, dtype=LABEL_DTYPE)
    # Every component gets a seed, so none is lost (e.g. a flat, tiny one without a strict peak).
    seeded = np.zeros(n + 1, bool)
    seeded[components[tuple(peaks.T)]] = True
    missing = np.flatnonzero(~seeded[1:]) + 1
    if missing.size:
        positions = ndi.maximum_position(distance, labels=components, index=missing)
        for k, pos in enumerate(positions, start=len(peaks) + 1):
            markers[pos] = k
    labels = watershed(-distance, markers=markers, mask=inside)
    return _drop_small(labels, int(min_size))


#: The baselines by name, as ``samscope baseline METHOD`` selects them. Each is called as
#: ``fn(image, smoothing=..., min_size=...)`` and returns an int32 label image.
BASELINES: dict[str, Callable[..., np.ndarray]] = {
    "otsu_watershed": otsu_watershed,
    "otsu_components": otsu_components,
}
