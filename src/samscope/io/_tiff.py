"""TIFF, ImageJ-TIFF and OME-TIFF through tifffile."""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from samscope.errors import InputError
from samscope.io._core import RawImage, move_axes, to_nm

logger = logging.getLogger("samscope.io")

# tifffile's axis letters → samscope's; every other letter (Q, I, R, E, ...) is unknown ('?').
_LETTERS = {"T": "T", "Z": "Z", "Y": "Y", "X": "X", "C": "C", "S": "C"}
# ImageJ files above this size need BigTIFF, which ImageJ hyperstacks do not support.
_CLASSIC_LIMIT = 2**32 - 2**25


def _series_index(tif: tifffile.TiffFile, key: str | None, path: Path) -> int:
    n = len(tif.series)
    if n == 0:
        raise InputError(f"'{path}' holds no readable image data (corrupted or empty TIFF?)")
    if key is None:
        if n > 1:
            logger.info("'%s' holds %d image series; reading series 0 (pass key= for another)",
                        path, n)
        return 0
    try:
        idx = int(key)
    except (TypeError, ValueError):
        idx = -1
    if not 0 <= idx < n:
        raise InputError(f"'{path}': key={key!r} must be a series number 0..{n - 1} "
                         f"(this TIFF holds {n} image series)")
    return idx


def _map_axes(tiff_axes: str, path: Path) -> str:
    axes = "".join(_LETTERS.get(a, "?") for a in tiff_axes)
    if axes.count("C") > 1:
        raise InputError(f"'{path}': both channels and samples per pixel in axes "
                         f"{tiff_axes!r}; pass axes= to name them")
    return axes


def _resolution(page: Any) -> tuple[float, float] | None:
    """Pixel size (x, y) in the file's resolution unit, from XResolution/YResolution."""
    out = []
    for name in ("XResolution", "YResolution"):
        tag = page.tags.get(name)
        if tag is None:
            return None
        num, den = tag.value
        if not num or not den:
            return None
        out.append(den / num)
    return out[0], out[1]


def _ome_pixel_size(xml: str, index: int) -> dict[str, float] | None:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        logger.warning("OME-XML metadata is not well-formed (%s); no pixel size", err)
        return None
    images = [e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Image"]
    if not images:
        return None
    image = images[index] if index < len(images) else images[0]
    pixels = next((e for e in image if e.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return None
    out = {}
    for ax in "XYZ":
        nm = to_nm(pixels.get(f"PhysicalSize{ax}"), pixels.get(f"PhysicalSize{ax}Unit", "µm"))
        if nm is not None:
            out[ax] = nm
    return out if "X" in out and "Y" in out else None


def _pixel_size(tif: tifffile.TiffFile, index: int) -> dict[str, float] | None:
    if tif.is_ome and tif.ome_metadata:
        return _ome_pixel_size(tif.ome_metadata, index)
    page = tif.series[index].keyframe
    xy = _resolution(page)
    if xy is None:
        return None
    if tif.is_imagej:
        meta = tif.imagej_metadata or {}
        unit = meta.get("unit")
        out = {"X": to_nm(xy[0], unit), "Y": to_nm(xy[1], unit)}
        if meta.get("spacing") is not None:
            out["Z"] = to_nm(meta["spacing"], unit)
        return {k: v for k, v in out.items() if v is not None} if out["X"] and out["Y"] else None
    tag = page.tags.get("ResolutionUnit")
    if tag is None:
        return None
    unit = {2: "inch", 3: "cm"}.get(int(tag.value))
    out = {"X": to_nm(xy[0], unit), "Y": to_nm(xy[1], unit)}
    if out["X"] is None or out["Y"] is None:
        return None
    # 72-600 dpi are screen or print settings, not a microscope's pixel: trust inches only
    # below 50 µm per pixel.
    if unit == "inch" and max(out.values()) > 50_000:
        return None
    return out


def read_tiff(path: Path, *, key: str | None, lazy: bool) -> RawImage:
    """Read one series of a TIFF file (series 0 unless ``key`` names another)."""
    try:
        with tifffile.TiffFile(path) as tif:
            index = _series_index(tif, key, path)
            series = tif.series[index]
            axes = _map_axes(series.axes, path)
            rgb = "S" in series.axes and series.keyframe.photometric == tifffile.PHOTOMETRIC.RGB
            pixel_size = _pixel_size(tif, index)
            data = None if lazy else series.asarray()
        if lazy:
            data = _open_lazy(path, index)
    except (InputError, MemoryError):
        raise
    except Exception as err:  # tifffile raises many types on damaged files; keep the cause
        raise InputError(
            f"cannot read TIFF '{path}': the file looks corrupted, truncated or is not a TIFF "
            f"({type(err).__name__}: {err})"
        ) from err
    return RawImage(data=data, axes=axes, pixel_size=pixel_size, rgb=rgb)


def _open_lazy(path: Path, index: int) -> Any:
    try:
        return tifffile.memmap(path, series=index, mode="r")
    except ValueError:  # compressed or scattered pages: decode tiles on access through zarr
        import zarr

        store = tifffile.imread(path, aszarr=True, series=index, level=0)
        return zarr.open_array(store, mode="r")


def write_tiff(target: Path, data: np.ndarray, axes: str, pixel_size: dict[str, float] | None,
               *, compression: str | None, ome: bool, rgb: bool) -> None:
    """Write ``data`` (axes in samscope order) as ImageJ hyperstack TIFF or OME-TIFF.

    ImageJ's format is used when possible (``ome`` False, uint8/uint16/float32, under 4 GB) so that
    Fiji opens the file with its scale; otherwise OME-TIFF. ``compression`` is ``"zlib"``, None,
    or ``"auto"`` (zlib for OME-TIFF, none for ImageJ, whose hyperstacks cannot be compressed).
    """
    imagej = (not ome and data.dtype in (np.uint8, np.uint16, np.float32)
              and data.nbytes < _CLASSIC_LIMIT)
    if rgb:
        stored, tiff_axes = axes, axes[:-1] + "S"
    else:
        stored = axes.replace("C", "")
        i = stored.index("Y")
        stored = stored[:i] + ("C" if "C" in axes else "") + stored[i:]
        tiff_axes = stored
    arr = move_axes(data, axes, stored)
    common = {
        "photometric": "rgb" if rgb else "minisblack",
        "compression": "zlib" if compression == "zlib" or (compression == "auto" and not imagej)
        else None,
    }
    if imagej:
        meta: dict[str, Any] = {"axes": tiff_axes}
        resolution = None
        if pixel_size:
            meta["unit"] = "um"
            resolution = (1e3 / pixel_size["X"], 1e3 / pixel_size["Y"])
            if math.isfinite(pixel_size.get("Z", math.nan)):
                meta["spacing"] = pixel_size["Z"] / 1e3
        tifffile.imwrite(target, arr, imagej=True, ome=False, resolution=resolution,
                         metadata=meta, **common)
        return
    meta = {"axes": tiff_axes}
    for ax in "XYZ":
        value = (pixel_size or {}).get(ax, math.nan)
        if math.isfinite(value):
            meta[f"PhysicalSize{ax}"] = value / 1e3
            meta[f"PhysicalSize{ax}Unit"] = "µm"
    # the TIFF resolution tags too (pixels per cm), for readers without OME support (ImageJ's
    # plain TIFF opener, tifffile-based viewers); OME's PhysicalSize stays the reference
    resolution = {}
    if pixel_size and "X" in pixel_size and "Y" in pixel_size:
        resolution = {"resolution": (1e7 / pixel_size["X"], 1e7 / pixel_size["Y"]),
                      "resolutionunit": "CENTIMETER"}
    tifffile.imwrite(target, arr, ome=True, bigtiff=data.nbytes >= _CLASSIC_LIMIT, metadata=meta,
                     **resolution, **common)
