"""Turning segmentations into pictures and numbers: overlays of objects on their image.

The overlay is what a user looks at first after ``samscope segment``: the image, percentile-
normalised to grey, each object outlined in its own saturated colour and lightly tinted, so
touching and overlapping objects stay distinguishable. Pure numpy (scikit-image for the
outlines); the writer is atomic.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from samscope.errors import InputError
from samscope.image import normalize_percentile

__all__ = ["label_colours", "overlay_rgb", "write_overlay"]


def label_colours(ids: np.ndarray) -> np.ndarray:
    """Saturated, well-separated RGB colours (0–1) for object ids (golden-ratio hues).

    Parameters
    ----------
    ids : ndarray of int

    Returns
    -------
    ndarray of float, (..., 3)
    """
    # skimage's hsv2rgb gives matplotlib's hsv_to_rgb colours; importing matplotlib costs 0.6 s
    from skimage.color import hsv2rgb

    hue = (np.asarray(ids, np.float64) * 0.618034) % 1.0
    return hsv2rgb(np.stack([hue, np.ones_like(hue), np.ones_like(hue)], axis=-1))


def _grey(image: np.ndarray) -> np.ndarray:
    from samscope.io import colour_to_grey

    arr = colour_to_grey(np.asarray(image))
    if arr.ndim != 2:
        raise InputError(f"an overlay needs a 2-D image (y, x) or RGB, got shape {arr.shape}")
    finite = np.isfinite(arr) if arr.dtype.kind == "f" else np.ones(arr.shape, bool)
    if not finite.any():
        return np.zeros(arr.shape, np.float32)
    out = normalize_percentile(arr, mask=finite)  # 1–99.8 %, as the models see it
    return np.where(finite, out, 0.0)


def overlay_rgb(
    image: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    masks: np.ndarray | None = None,
    tint: float = 0.25,
) -> np.ndarray:
    """The image in grey with every object outlined and tinted in its own colour.

    Parameters
    ----------
    image : ndarray, (y, x) or (y, x, 3)
        Any numeric type; shown percentile-normalised (1–99.8 %).
    labels : ndarray of int, (y, x), optional
        Instance labels (0 = background).
    masks : ndarray of bool, (n, y, x), optional
        Overlapping masks; outlined one by one (drawn over ``labels``), so crossing objects stay
        visible.
    tint : float
        Opacity of the fill (0 = outlines only).

    Returns
    -------
    ndarray of uint8, (y, x, 3)

    Raises
    ------
    InputError
        Labels or masks whose shape differs from the image's.
    """
    from skimage.segmentation import find_boundaries

    grey = _grey(image)
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.float64)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != grey.shape:
            raise InputError(f"labels of shape {labels.shape} do not fit the image {grey.shape}")
        inside = labels > 0
        if inside.any():
            colours = label_colours(labels[inside])
            rgb[inside] = (1 - tint) * rgb[inside] + tint * colours
            edge = find_boundaries(labels, mode="inner")
            rgb[edge] = label_colours(labels[edge])
    if masks is not None:
        masks = np.asarray(masks).astype(bool)
        if masks.ndim != 3 or masks.shape[1:] != grey.shape:
            raise InputError(f"masks of shape {masks.shape} do not fit the image {grey.shape}")
        for j, m in enumerate(masks):
            ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
            if not ys.size:
                continue
            win = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
            edge = find_boundaries(np.pad(m[win], 1), mode="inner")[1:-1, 1:-1]
            rgb[win][edge] = label_colours(np.array([j + 1]))[0]
    return np.round(rgb * 255).astype(np.uint8)


def write_overlay(
    path: str | os.PathLike,
    image: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    masks: np.ndarray | None = None,
    overwrite: bool = False,
) -> Path:
    """Write :func:`overlay_rgb` as a PNG (atomically; never over an existing file unless asked).

    Returns
    -------
    Path
    """
    from samscope.io import write_image

    rgb = overlay_rgb(image, labels, masks=masks)
    path = Path(path)
    write_image(path, rgb, axes="YXC", overwrite=overwrite)
    return path
