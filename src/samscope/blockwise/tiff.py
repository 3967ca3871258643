"""A blockwise label image as a tiled BigTIFF (``samscope segment BIG -o OUT.tif``), strip by strip.

The blockwise run itself writes OUT.zarr (chunked, resumable, what Dask workers write into in
any order); a TIFF's tiles must be written in order, so once the store is complete its labels
are streamed into a tiled, compressed BigTIFF one row of tiles at a time (one plane at a time
for a volume): memory is one strip (``tile`` rows × the image width), never the image. The file
is written under a temporary name and renamed when complete, so an interrupted conversion
leaves no TIFF that looks finished.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from samscope.errors import InputError

__all__ = ["TIFF_SUFFIXES", "tiff_store_path", "write_bigtiff"]

TIFF_SUFFIXES = (".tif", ".tiff")


def tiff_store_path(output: Path) -> Path:
    """The working zarr of a TIFF output: ``OUT.tif`` → ``OUT.zarr`` (``.ome.tif`` too)."""
    name = output.name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if name.lower().endswith(suffix):
            return output.with_name(name[: -len(suffix)] + ".zarr")
    raise InputError(f"'{output}' is not a .tif / .tiff path")


def _tiles(arr, tile: int) -> Iterator[np.ndarray]:
    """Tiles of a (planes, y, x) array in TIFF order, reading one strip of rows at a time."""
    planes, h, w = arr.shape
    for p in range(planes):
        for y in range(0, h, tile):
            strip = np.asarray(arr[p, y:y + tile, :])
            if strip.shape[0] < tile:  # edge tiles are padded to the full tile size
                strip = np.pad(strip, ((0, tile - strip.shape[0]), (0, 0)))
            for x in range(0, w, tile):
                t = strip[:, x:x + tile]
                if t.shape[1] < tile:
                    t = np.pad(t, ((0, 0), (0, tile - t.shape[1])))
                yield np.ascontiguousarray(t)


class _Planes:
    """A 2-D array seen as one plane: (1, y, x)."""

    def __init__(self, arr) -> None:
        self.arr = arr
        self.shape = (1, *arr.shape) if len(arr.shape) == 2 else tuple(arr.shape)
        self.two_d = len(arr.shape) == 2

    def __getitem__(self, index):
        p, ys, xs = index
        return self.arr[ys, xs] if self.two_d else self.arr[p, ys, xs]


def write_bigtiff(store: str | os.PathLike, output: str | os.PathLike, *, tile: int = 512,
                  overwrite: bool = False) -> Path:
    """Write a complete blockwise OUT.zarr's labels as a tiled, compressed (OME-)BigTIFF.

    Parameters
    ----------
    store : path
        A complete blockwise output (``OUT.zarr``).
    output : path
        The ``.tif`` / ``.tiff`` to write (``.ome.tif``: OME metadata with the pixel size).
    tile : int
        Tile side (a multiple of 16).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
    """
    import tifffile
    import zarr

    from samscope.blockwise.store import BlockStore

    output = Path(output)
    if output.exists() and not overwrite:
        raise InputError(f"'{output}' exists; pass --overwrite to replace it")
    if tile % 16:
        raise InputError(f"the TIFF tile size must be a multiple of 16, got {tile}")
    bs = BlockStore(store)
    if bs.n_objects() is None:
        raise InputError(f"'{store}' is not a complete blockwise output")
    group = zarr.open_group(str(store), mode="r")
    arr = group["0"]
    ms = (dict(group.attrs).get("multiscales") or [{}])[0]
    axes = "".join(a["name"].upper() for a in ms.get("axes", [])) or ("YX" if arr.ndim == 2
                                                                      else "ZYX")
    scale = next((t["scale"] for t in ms.get("datasets", [{}])[0].get(
        "coordinateTransformations", []) if t.get("type") == "scale"), None)
    units = [a.get("unit") for a in ms.get("axes", [])]
    um = None  # µm per axis, None where unknown
    if scale and len(units) == len(scale) and units[-1] and units[-2]:
        um = [float(v) if u else None for v, u in zip(scale, units, strict=True)]
    planes = _Planes(arr)
    tmp = output.with_name(f".{output.name}.partial")
    kwargs: dict = {}
    if um is not None:
        kwargs["resolution"] = (1e4 / um[-1], 1e4 / um[-2])
        kwargs["resolutionunit"] = "CENTIMETER"
    ome = output.name.lower().endswith((".ome.tif", ".ome.tiff"))
    metadata: dict = {"axes": axes}
    if ome and um is not None:
        metadata.update(PhysicalSizeX=um[-1], PhysicalSizeY=um[-2],
                        PhysicalSizeXUnit="µm", PhysicalSizeYUnit="µm")
        if len(um) == 3 and um[0] is not None:
            metadata.update(PhysicalSizeZ=um[0], PhysicalSizeZUnit="µm")
    try:
        tifffile.imwrite(
            tmp, _tiles(planes, tile), shape=tuple(arr.shape), dtype=arr.dtype,
            tile=(tile, tile), bigtiff=True, compression="zlib", ome=ome,
            metadata=metadata, photometric="minisblack", **kwargs,
        )
        os.replace(tmp, output)
    finally:
        if tmp.exists():
            tmp.unlink()
    return output
