"""``write_image`` and ``write_labels``: validated, atomic writers."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.io._atomic import atomic_target
from samscope.io._core import (
    SPATIAL_AXES,
    ImageData,
    canonical_axes,
    check_axes,
    default_axes,
    move_axes,
)
from samscope.io._read import check_labels, label_dtype

logger = logging.getLogger("samscope.io")

_WRITE_SUFFIXES = {".tif": "tiff", ".tiff": "tiff", ".png": "PNG", ".jpg": "JPEG",
                   ".jpeg": "JPEG", ".bmp": "BMP", ".npy": "npy", ".zarr": "zarr"}
_COMPRESSIONS = ("auto", "zlib", "none", None)


def _write_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".ome.tif", ".ome.tiff")):
        return "ome"
    fmt = _WRITE_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot write '{path}': unknown format {path.suffix or '(none)'!r}; "
                         "use .tif / .ome.tif (ImageJ / OME-TIFF), .png, .npy or .zarr")
    return fmt


def _pixel_dict(pixel_size: Sequence[float] | None, axes: str, path: Path
                ) -> dict[str, float] | None:
    if pixel_size is None:
        return None
    spatial = [a for a in axes if a in SPATIAL_AXES]
    values = [float(v) for v in np.atleast_1d(np.asarray(pixel_size, dtype=float))]
    if len(values) != len(spatial):
        raise InputError(f"cannot write '{path}': pixel_size {tuple(pixel_size)} has "
                         f"{len(values)} value(s), expected {len(spatial)} for axes "
                         f"{''.join(spatial)!r} (nanometres)")
    out = dict(zip(spatial, values, strict=True))
    for a, v in out.items():
        if not (math.isfinite(v) and v > 0) and not (a == "Z" and math.isnan(v)):
            raise InputError(f"cannot write '{path}': pixel size along {a} must be a positive "
                             f"number of nanometres, got {v}")
    return out


def _write(path: Path, arr: np.ndarray, *, axes: str | None, pixel_size: Any,
           compression: str | None, overwrite: bool, labels: bool, rgb_hint: bool) -> Path:
    fmt = _write_format(path)
    if compression not in _COMPRESSIONS:
        raise InputError(f"compression must be one of 'auto', 'zlib' or None, got {compression!r}")
    if arr.size == 0:
        raise InputError(f"cannot write '{path}': the image is empty (shape {arr.shape})")
    if arr.dtype.kind not in "biuf":
        raise InputError(f"cannot write '{path}': dtype {arr.dtype} is not an image type")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if axes is not None:
        letters = check_axes(axes, arr.shape, source=path)
    else:
        letters = default_axes(arr.shape, arr.dtype, source=path, allow_rgb=not labels)
        rgb_hint = rgb_hint or "C" in letters
    canon = canonical_axes(letters)
    if labels and "C" in canon:
        raise InputError(f"cannot write '{path}': a label image has no channel axis "
                         f"(axes {letters!r})")
    arr = move_axes(arr, letters, canon)
    pixel = _pixel_dict(pixel_size, canon, path)
    rgb = rgb_hint and "C" in canon and arr.shape[-1] == 3 and arr.dtype == np.uint8
    if pixel and fmt in ("PNG", "npy"):
        logger.info("'%s': %s files do not store the pixel size; it is dropped", path, fmt)
    with atomic_target(path, overwrite=overwrite) as tmp:
        if fmt in ("tiff", "ome"):
            from samscope.io._tiff import write_tiff

            write_tiff(tmp, arr, canon, pixel, ome=fmt == "ome", rgb=rgb,
                       compression=None if compression in ("none", None) else compression)
        elif fmt == "zarr":
            from samscope.io._zarr import write_zarr

            write_zarr(tmp, arr, canon, pixel, name=path.stem,
                       compression=None if compression in ("none", None) else "zlib")
        elif fmt == "npy":
            from samscope.io._raster import write_npy

            write_npy(tmp, arr)
        else:
            from samscope.io._raster import write_pillow

            write_pillow(tmp, arr, canon, fmt=fmt, path=path)
    return path


def write_image(path: str | os.PathLike, data: np.ndarray | ImageData, *,
                axes: str | None = None, pixel_size: Sequence[float] | None = None,
                compression: str | None = "auto", overwrite: bool = False) -> Path:
    """Write an image atomically, with its axes and pixel size where the format keeps them.

    Parameters
    ----------
    path : str or path-like
        Target; the format follows the name: ``.tif``/``.tiff`` (ImageJ hyperstack for uint8,
        uint16, float32 under 4 GB, so Fiji shows the scale; OME-TIFF otherwise), ``.ome.tif``
        (OME-TIFF), ``.png`` (uint8/uint16 (Y, X) or uint8 RGB(A)), ``.npy`` (no metadata) or
        ``.zarr`` (OME-Zarr 0.4, zarr format 2).
    data : numpy.ndarray or ImageData
        The pixels; an :class:`ImageData` also supplies ``axes``, ``pixel_size`` and RGB-ness
        unless given here. bool is written as uint8.
    axes : str, optional
        Letters of ``data``'s axes (any order of ``"TZYXC"``); default: 2-D ``YX``, 3-D ``ZYX``
        (``YXC`` colour for uint8 with 3 or 4 last), else required.
    pixel_size : sequence of float, optional
        Nanometres per spatial axis in (z, y, x) order of the axes present; z may be nan.
    compression : {"auto", "zlib", None}
        ``"auto"``: zlib for OME-TIFF and zarr, none for ImageJ TIFF (ImageJ hyperstacks do not
        support compression; with ``"zlib"`` Fiji needs Bio-Formats to open them).
    overwrite : bool
        Replace an existing ``path``; otherwise an existing target is an error.

    Returns
    -------
    pathlib.Path
        The written path. It appears complete or not at all (temp file + ``os.replace``).
    """
    rgb_hint = False
    if isinstance(data, ImageData):
        axes = data.axes if axes is None else axes
        pixel_size = data.pixel_size if pixel_size is None else pixel_size
        rgb_hint = data.rgb
        data = data.data
    return _write(Path(path), np.asarray(data), axes=axes, pixel_size=pixel_size,
                  compression=compression, overwrite=overwrite, labels=False, rgb_hint=rgb_hint)


def write_labels(path: str | os.PathLike, labels: np.ndarray, *, axes: str | None = None,
                 pixel_size: Sequence[float] | None = None, compression: str | None = "auto",
                 overwrite: bool = False) -> Path:
    """Write a label image (0 = background) in the smallest dtype that keeps every id.

    Labels are stored as uint16 when the largest id is at most 65535, else uint32 (uint64 above
    that; PNG holds uint16 only, use ``.tif`` or ``.zarr`` for more objects). Float labels are
    accepted when every value is a whole number.

    Parameters
    ----------
    path : str or path-like
        As for :func:`write_image`.
    labels : numpy.ndarray
        (Y, X) or (Z, Y, X) ids (or ``axes`` without ``C``).
    axes, pixel_size, compression, overwrite
        As for :func:`write_image`.

    Raises
    ------
    InputError
        For negative, fractional, NaN or multi-channel labels, a PNG target that cannot hold the
        ids, and every error of :func:`write_image`.
    """
    path = Path(path)
    arr = check_labels(np.asarray(labels), source=path)
    top = int(arr.max()) if arr.size else 0
    arr = arr.astype(label_dtype(top), copy=False)
    if arr.dtype != np.uint16 and _write_format(path) == "PNG":
        raise InputError(f"cannot write '{path}': label {top} does not fit a 16-bit PNG; "
                         "use .tif or .zarr")
    return _write(path, arr, axes=axes, pixel_size=pixel_size, compression=compression,
                  overwrite=overwrite, labels=True, rgb_hint=False)
