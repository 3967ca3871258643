"""``read_image``, ``read_labels`` and ``list_images``: format dispatch and axis resolution."""

from __future__ import annotations

import glob
import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.io._core import (
    SPATIAL_AXES,
    ImageData,
    LazyView,
    RawImage,
    canonical_axes,
    check_axes,
    default_axes,
    fill_unknown_axes,
)
from samscope.labels import label_dtype

logger = logging.getLogger("samscope.io")

#: file suffix (lower case) → reader
SUFFIXES = {
    ".tif": "tiff", ".tiff": "tiff", ".png": "pillow", ".jpg": "pillow", ".jpeg": "pillow",
    ".bmp": "pillow", ".npy": "npy", ".zarr": "zarr",
}  # fmt: skip
SUPPORTED = ("TIFF / OME-TIFF (.tif, .tiff), PNG (.png), JPEG (.jpg, .jpeg), BMP (.bmp), "
             "NumPy (.npy) and zarr / OME-Zarr (.zarr folder)")
#: what :func:`list_images` takes from a folder
DEFAULT_PATTERNS = ("*.tif", "*.tiff", "*.png", "*.jpg", "*.jpeg", "*.bmp", "*.npy", "*.zarr")


def _is_zarr_dir(path: Path) -> bool:
    return path.is_dir() and (
        path.suffix.lower() == ".zarr"
        or any((path / m).is_file() for m in (".zgroup", ".zarray", "zarr.json"))
    )


def format_of(path: Path) -> str:
    """The reader for ``path``: ``"tiff"``, ``"pillow"``, ``"npy"`` or ``"zarr"``.

    Raises
    ------
    InputError
        For a plain folder or an unknown extension, listing the supported formats.
    """
    if path.is_dir():
        if _is_zarr_dir(path):
            return "zarr"
        raise InputError(f"'{path}' is a folder, not an image or zarr store; "
                         "use list_images() to find the images in a folder")
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None or fmt == "zarr":
        raise InputError(f"'{path}': unknown image format {path.suffix or '(no extension)'!r}; "
                         f"supported: {SUPPORTED}")
    return fmt


def _read_raw(path: Path, *, key: str | None, lazy: bool, labels: bool) -> RawImage:
    if not path.exists():
        raise InputError(f"no such file: '{path}'")
    fmt = format_of(path)
    if key is not None and fmt in ("pillow", "npy"):
        raise InputError(f"'{path}': key= selects an array of a zarr group or a TIFF series; "
                         f"a {path.suffix} file holds one image")
    if fmt == "tiff":
        from samscope.io._tiff import read_tiff

        return read_tiff(path, key=key, lazy=lazy)
    if fmt == "zarr":
        from samscope.io._zarr import read_zarr

        return read_zarr(path, key=key, lazy=lazy)
    from samscope.io._raster import read_npy, read_pillow

    return read_npy(path, lazy=lazy) if fmt == "npy" else read_pillow(path, labels=labels)


def _stored_axes(raw: RawImage, path: Path, axes: str | None, *, allow_rgb: bool
                 ) -> tuple[str, bool]:
    """Axis letters of ``raw.data`` in stored order, and whether its C axis is RGB."""
    shape = tuple(raw.data.shape)
    dtype = np.dtype(raw.data.dtype)
    if len(shape) < 2:
        raise InputError(f"'{path}': expected an image with at least 2 dimensions (Y, X); "
                         f"got shape {shape}")
    if 0 in shape:
        raise InputError(f"'{path}' is empty: shape {shape} has a zero-size axis")
    if dtype.kind not in "biuf":
        raise InputError(f"'{path}': dtype {dtype} is not an image type "
                         "(expected bool, integer or float)")
    if axes is not None:
        letters = check_axes(axes, shape, source=path)
        rgb = raw.rgb and "C" in letters and shape[letters.index("C")] == 3
    elif raw.axes is not None:
        letters = check_axes(fill_unknown_axes(raw.axes, shape, source=path), shape, source=path)
        rgb = raw.rgb
    else:
        letters = default_axes(shape, dtype, source=path, allow_rgb=allow_rgb)
        rgb = "C" in letters and shape[-1] == 3
    return letters, rgb


def _pixel_tuple(pixel: dict[str, float] | None, axes: str) -> tuple[float, ...] | None:
    if not pixel or "X" not in pixel or "Y" not in pixel:
        return None
    return tuple(pixel.get(a, math.nan) for a in axes if a in SPATIAL_AXES)


def read_image(path: str | os.PathLike, *, axes: str | None = None, key: str | None = None,
               channel: int | None = None, lazy: bool = False) -> ImageData:
    """Read an image with its axes and physical pixel size.

    Parameters
    ----------
    path : str or path-like
        A TIFF / OME-TIFF / ImageJ TIFF, PNG, JPEG, BMP, ``.npy`` file or a zarr / OME-Zarr store.
    axes : str, optional
        The stored axis letters (any order of ``"TZYXC"``, one per stored dimension after
        tifffile drops size-1 axes), overriding the file's metadata. Without it the axes come from
        OME / ImageJ / tifffile / OME-Zarr metadata; where there is none a 2-D array is ``"YX"``,
        a 3-D one ``"ZYX"``, or ``"YXC"`` when its last dimension is 3 or 4 and it is uint8.
    key : str, optional
        The array inside a zarr group (e.g. ``"raw"`` or ``"0"``), or the series number of a TIFF
        holding several. A zarr group with several arrays and no ``key`` is an error listing them.
    channel : int, optional
        Keep only this index of the C axis (the result has no C axis).
    lazy : bool
        Do not load the pixels: ``data`` is a ``numpy.memmap`` (uncompressed TIFF, ``.npy``),
        a ``zarr.Array`` (zarr, compressed TIFF), or a :class:`~samscope.io.LazyView` over one
        when axes had to be reordered or a channel selected. Bool data stays bool.

    Returns
    -------
    ImageData
        ``data`` with axes in samscope order (a subsequence of ``"TZYXC"``; a transposed view,
        not a copy), dtype preserved except bool → uint8; ``pixel_size`` in nm or None.

    Raises
    ------
    InputError
        Missing file, unknown format, corrupted file, empty image, axes that do not fit the
        shape, or an out-of-range ``channel``. NaN values are *not* checked here: call
        :func:`validate_image` before segmenting.
    """
    path = Path(path)
    raw = _read_raw(path, key=key, lazy=lazy, labels=False)
    letters, rgb = _stored_axes(raw, path, axes, allow_rgb=True)
    canon = canonical_axes(letters)
    fixed: dict[int, int] = {}
    if channel is not None:
        if "C" not in letters:
            raise InputError(f"'{path}': channel={channel} given but the image has no channel "
                             f"axis (axes {canon!r}, shape {tuple(raw.data.shape)})")
        n = raw.data.shape[letters.index("C")]
        if isinstance(channel, bool) or not isinstance(channel, int | np.integer) \
                or not -n <= channel < n:
            raise InputError(f"'{path}': channel={channel!r} is out of range; the C axis has {n} "
                             f"channel(s), 0..{n - 1}")
        fixed = {letters.index("C"): int(channel) % n}
        canon, rgb = canon.replace("C", ""), False
    perm = tuple(letters.index(a) for a in canon)
    data = raw.data
    if isinstance(data, np.ndarray):
        data = np.transpose(data, perm + tuple(fixed))
        if fixed:
            data = data[..., fixed[letters.index("C")]]
        if data.dtype == bool and not lazy:
            data = data.astype(np.uint8)
    elif fixed or perm != tuple(range(len(perm))):
        data = LazyView(data, perm, fixed)
    return ImageData(data=data, axes=canon, pixel_size=_pixel_tuple(raw.pixel_size, canon),
                     path=path, rgb=rgb)


def check_labels(labels: np.ndarray, *, source: Any) -> np.ndarray:
    """Return ``labels`` as an integer array, raising for values that are not label ids.

    bool → uint8; float → uint16/uint32/uint64 when every value is a whole number; integers are
    returned unchanged. Negative, fractional, NaN or infinite values raise :class:`InputError`.
    """
    where = f"'{source}'" if isinstance(source, Path) else str(source)
    kind = labels.dtype.kind
    if kind == "b":
        return labels.astype(np.uint8)
    if kind not in "iuf":
        raise InputError(f"{where}: labels must be integers, got dtype {labels.dtype}")
    if labels.size == 0:
        raise InputError(f"{where}: the label image is empty (shape {labels.shape})")
    if kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(labels)))
        if bad:
            raise InputError(f"{where}: {bad} NaN or infinite value(s) in a label image")
        frac = labels != np.round(labels)
        if frac.any():
            raise InputError(f"{where}: labels must be whole numbers; {int(frac.sum())} "
                             f"fractional value(s), e.g. {labels[frac].flat[0].item()}")
    if kind in "if":
        negative = labels < 0
        if negative.any():
            raise InputError(f"{where}: labels must be >= 0; {int(negative.sum())} negative "
                             f"value(s), minimum {labels.min().item()}")
    if kind == "f":
        return labels.astype(label_dtype(int(labels.max())))
    return labels


def read_labels(path: str | os.PathLike, *, key: str | None = None,
                axes: str | None = None) -> np.ndarray:
    """Read a label image (0 = background, 1.. = object ids).

    Parameters
    ----------
    path : str or path-like
        Any format :func:`read_image` reads; a palette PNG gives its indices.
    key : str, optional
        Array inside a zarr group, or TIFF series number.
    axes : str, optional
        Stored axes, overriding metadata (default: 2-D ``YX``, 3-D ``ZYX``, never RGB).

    Returns
    -------
    numpy.ndarray
        Integer labels with axes in samscope order (e.g. (Y, X) or (Z, Y, X)); integer dtypes as
        stored, bool → uint8, whole-number floats → uint16 / uint32.

    Raises
    ------
    InputError
        For colour or multi-channel data, negative or fractional values, and every error of
        :func:`read_image`.
    """
    path = Path(path)
    raw = _read_raw(path, key=key, lazy=False, labels=True)
    letters, _ = _stored_axes(raw, path, axes, allow_rgb=False)
    data = np.transpose(raw.data, [letters.index(a) for a in canonical_axes(letters)])
    canon = canonical_axes(letters)
    if "C" in canon:
        if data.shape[-1] != 1:
            raise InputError(f"'{path}': a label image has one channel, got axes {canon!r} with "
                             f"shape {data.shape} (a colour image? labels must be integer ids)")
        data = data[..., 0]
    return check_labels(data, source=path)


def _natural_key(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", str(path))]


def _matches(path: Path, patterns: Sequence[str]) -> bool:
    from fnmatch import fnmatch

    return any(fnmatch(path.name.lower(), p.lower()) for p in patterns)


def list_images(paths: str | os.PathLike | Sequence[str | os.PathLike], *,
                patterns: Sequence[str] = DEFAULT_PATTERNS) -> list[Path]:
    """Expand files, folders and glob patterns into a sorted, duplicate-free list of images.

    Parameters
    ----------
    paths : path or sequence of paths
        Image files, zarr stores, folders (their images matching ``patterns``, not recursive,
        hidden files skipped) and glob patterns (``"data/*.tif"``, ``"**/*.png"``; matches of a
        supported format are kept).
    patterns : sequence of str
        File-name patterns (case-insensitive) taken from folders.

    Returns
    -------
    list of pathlib.Path
        In the order given; each folder's and pattern's matches in natural order (``img2``
        before ``img10``).

    Raises
    ------
    InputError
        For a missing path, a folder or pattern with no image, or a file of unknown format.
    """
    entries = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    out: list[Path] = []
    for entry in entries:
        text, path = str(entry), Path(entry)
        if path.is_dir() and not _is_zarr_dir(path):
            found = [c for c in path.iterdir() if not c.name.startswith(".")
                     and _matches(c, patterns) and (c.is_file() or _is_zarr_dir(c))]
            if not found:
                raise InputError(f"folder '{path}' holds no images matching "
                                 f"{', '.join(patterns)}")
        elif path.exists():
            format_of(path)
            found = [path]
        elif any(c in text for c in "*?["):
            found = [Path(m) for m in glob.glob(text, recursive=True)
                     if not Path(m).name.startswith(".") and Path(m).suffix.lower() in SUFFIXES
                     and (Path(m).is_file() or _is_zarr_dir(Path(m)))]
            if not found:
                raise InputError(f"no image files match '{text}' (supported: {SUPPORTED})")
        else:
            raise InputError(f"no such file or folder: '{path}'")
        for f in sorted(found, key=_natural_key):
            if f not in out:
                out.append(f)
    if not out:
        raise InputError("no images given")
    return out
