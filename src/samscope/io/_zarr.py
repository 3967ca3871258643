"""zarr stores (format 2 and 3) and OME-Zarr (multiscales level 0) through zarr-python."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr

from samscope.errors import InputError
from samscope.io._core import RawImage, move_axes, to_nm

_AXIS_NAMES = {
    "t": "T", "time": "T", "z": "Z", "y": "Y", "x": "X",
    "c": "C", "ch": "C", "channel": "C", "channels": "C",
}  # fmt: skip
# OME-Zarr 0.4 wants time, then channel, then space.
_OME_ORDER = "TCZYX"


def _multiscales(group: Any) -> list[dict] | None:
    attrs = dict(group.attrs)
    ome = attrs.get("ome")
    if isinstance(ome, dict) and ome.get("multiscales"):  # OME-Zarr 0.5 (zarr format 3)
        return ome["multiscales"]
    return attrs.get("multiscales") or None


def _array_keys(group: Any) -> list[str]:
    return sorted(k for k, m in group.members(max_depth=None) if isinstance(m, zarr.Array))


def _ome_metadata(multiscales: list[dict], dataset_path: str) -> tuple[str | None, dict | None]:
    """Axes letters and pixel size (nm) of one dataset of an OME-Zarr multiscales entry."""
    ms = multiscales[0]
    raw_axes = ms.get("axes")
    if not raw_axes:  # OME-Zarr < 0.3 has no axes: always TCZYX
        return "TCZYX", None
    names = [a.get("name") if isinstance(a, dict) else a for a in raw_axes]
    units = [a.get("unit") if isinstance(a, dict) else None for a in raw_axes]
    letters = "".join(_AXIS_NAMES.get(str(n).lower(), "?") for n in names)
    scale = [1.0] * len(names)
    dataset = next((d for d in ms.get("datasets", []) if str(d.get("path")) == dataset_path), {})
    for transform in [*dataset.get("coordinateTransformations", []),
                      *ms.get("coordinateTransformations", [])]:
        if transform.get("type") == "scale" and len(transform.get("scale", [])) == len(scale):
            scale = [a * float(b) for a, b in zip(scale, transform["scale"], strict=True)]
    pixel = {}
    for i, letter in enumerate(letters):
        if letter in "ZYX":
            nm = to_nm(scale[i], units[i])
            if nm is not None:
                pixel[letter] = nm
    return letters, (pixel if "X" in pixel and "Y" in pixel else None)


def _dimension_axes(arr: Any) -> str | None:
    names = getattr(arr.metadata, "dimension_names", None) or arr.attrs.get("_ARRAY_DIMENSIONS")
    if not names or len(names) != arr.ndim:
        return None
    letters = "".join(_AXIS_NAMES.get(str(n).lower(), "?") for n in names)
    return letters if "Y" in letters and "X" in letters else None


def read_zarr(path: Path, *, key: str | None, lazy: bool) -> RawImage:
    """Read an array from a zarr store: ``key`` inside a group, or the only / level-0 array."""
    try:
        root = zarr.open(store=str(path), mode="r")
    except Exception as err:
        raise InputError(f"cannot open zarr store '{path}': {type(err).__name__}: {err}") from err
    axes = pixel = None
    node = root
    if key is not None:
        key = str(key)
        if not isinstance(root, zarr.Group):
            raise InputError(f"'{path}' is a single zarr array; key={key!r} applies to groups")
        try:
            node = root[key]
        except KeyError:
            raise InputError(f"'{path}' has no array {key!r}; arrays: "
                             f"{', '.join(_array_keys(root)) or 'none'}") from None
        multiscales = _multiscales(root)
        if isinstance(node, zarr.Array) and multiscales:
            paths = [str(d.get("path")) for d in multiscales[0].get("datasets", [])]
            if key.strip("/") in paths:
                axes, pixel = _ome_metadata(multiscales, key.strip("/"))
    if isinstance(node, zarr.Group):
        multiscales = _multiscales(node)
        if multiscales:
            level0 = str(multiscales[0]["datasets"][0]["path"])
            node_arr = node[level0]
            axes, pixel = _ome_metadata(multiscales, level0)
            node = node_arr
        else:
            keys = _array_keys(node)
            if len(keys) != 1:
                where = f"'{path}'" + (f" (group {key!r})" if key else "")
                if not keys:
                    raise InputError(f"{where} holds no zarr arrays")
                raise InputError(f"{where} holds {len(keys)} arrays; choose one with key=: "
                                 f"{', '.join(keys)}")
            node = node[keys[0]]
    if axes is not None and len(axes) != node.ndim:
        axes, pixel = None, None  # metadata does not describe this array; fall back to defaults
    if axes is None:
        axes = _dimension_axes(node)
    data = node if lazy else node[...]
    return RawImage(data=data, axes=axes, pixel_size=pixel)


def write_zarr(target: Path, data: np.ndarray, axes: str, pixel_size: dict[str, float] | None,
               *, compression: str | None, name: str) -> None:
    """Write an OME-Zarr 0.4 image (zarr format 2, one resolution level ``"0"``)."""
    import numcodecs

    stored = "".join(a for a in _OME_ORDER if a in axes)
    arr = move_axes(data, axes, stored)
    group = zarr.open_group(str(target), mode="w", zarr_format=2)
    chunks = tuple(min(n, 1024) if a in "YX" else 1 for a, n in zip(stored, arr.shape, strict=True))
    z = group.create_array(
        "0", shape=arr.shape, dtype=arr.dtype, chunks=chunks, fill_value=0,
        compressors=numcodecs.Zlib(level=6) if compression == "zlib" else None,
    )
    z[...] = arr
    axes_meta, scale = [], []
    for a in stored:
        entry = {"name": a.lower(), "type": {"T": "time", "C": "channel"}.get(a, "space")}
        value = (pixel_size or {}).get(a, float("nan"))
        if a in "ZYX" and np.isfinite(value):
            entry["unit"] = "micrometer"
            scale.append(value / 1e3)
        else:
            scale.append(1.0)
        axes_meta.append(entry)
    group.attrs["multiscales"] = [{
        "version": "0.4",
        "name": name,
        "axes": axes_meta,
        "datasets": [{"path": "0",
                      "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
    }]
