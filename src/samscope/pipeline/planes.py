"""How a read image becomes the 2-D planes a mode segments, and what its label image looks like.

The one place that decides it: ``YX`` and ``YXC`` images are one plane; ``ZYX``/``TYX`` stacks
(with or without ``C``) are segmented plane by plane into a label stack with the same axes (less
``C``); anything else (``TZYX``, multi-position series) is an error that says what to select.
"""

from __future__ import annotations

import math

import numpy as np

from samscope.errors import InputError
from samscope.io import ImageData

__all__ = ["label_axes", "label_pixel_size", "pixel_size_nm", "planes_of"]

#: Axes segmented as one plane, and axes segmented plane by plane along the first axis.
SINGLE_PLANE = ("YX", "YXC")
PLANE_STACKS = ("ZYX", "TYX", "ZYXC", "TYXC")


def planes_of(image: ImageData) -> tuple[list[np.ndarray], bool]:
    """The 2-D planes of ``image`` (``(y, x)`` or ``(y, x, c)``) and whether it is a stack.

    Examples
    --------
    >>> planes, stacked = planes_of(ImageData(np.zeros((3, 4, 5), np.uint16), "ZYX"))
    >>> len(planes), planes[0].shape, stacked
    (3, (4, 5), True)
    """
    axes, data = image.axes, image.data
    if axes in SINGLE_PLANE:
        return [np.asarray(data)], False
    if axes in PLANE_STACKS:
        return [np.asarray(data[i]) for i in range(data.shape[0])], True
    where = f"'{image.path}': " if image.path is not None else ""
    raise InputError(
        f"{where}cannot segment an image with axes {axes} (shape {tuple(data.shape)}); "
        "pass --axes, or select a channel / a single time point first"
    )


def label_axes(image: ImageData, ndim: int) -> str | None:
    """Axes of the label image of ``image`` (its axes without ``C``), None if they do not fit."""
    axes = image.axes.replace("C", "")
    return axes if len(axes) == ndim else None


def pixel_size_nm(image: ImageData, override: float | None = None) -> float | None:
    """The in-plane (x) pixel size in nm: ``override``, else the file's, else None."""
    if override is not None:
        return float(override)
    if image.pixel_size is None:
        return None
    px = image.pixel_size[-1]
    return float(px) if math.isfinite(px) and px > 0 else None


def label_pixel_size(image: ImageData, override: float | None = None) -> tuple[float, ...] | None:
    """Pixel size to store with the label image of ``image`` (spatial axes, nm), or None.

    ``override`` (``--pixel-size``) replaces the in-plane size; a z spacing from the file is kept.

    >>> label_pixel_size(ImageData(np.zeros((2, 4, 4)), "ZYX", pixel_size=(500, 100, 100)), 80)
    (500.0, 80.0, 80.0)
    """
    n = image.ndim_spatial
    if override is not None:
        z = image.pixel_size[:-2] if image.pixel_size is not None else (math.nan,) * (n - 2)
        return (*(float(v) for v in z), float(override), float(override))
    size = image.pixel_size
    if size is None or not all(math.isfinite(v) and v > 0 for v in size[-2:]):
        return None
    return tuple(float(v) for v in size)
