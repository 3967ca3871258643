"""Lazy block readers: an image file opened once per process, read one region at a time.

:class:`ImageSource` names the file (and its zarr key / TIFF series, axes, channel); it is small
and picklable, so a Dask worker opens the file itself (through :func:`samscope.io.read_image` with
``lazy=True``: a ``numpy.memmap`` for uncompressed TIFF, tifffile's zarr view of its pages or tiles
for compressed TIFF, a ``zarr.Array`` for zarr / OME-Zarr) and reads only the region a block needs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError

__all__ = ["ImageSource"]

_OPEN: dict[tuple, Any] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ImageSource:
    """A 2-D (``YX``, RGB ``YXC``) or 3-D (``ZYX``) image read block by block.

    Parameters
    ----------
    path : str
        TIFF / OME-TIFF, zarr / OME-Zarr store or ``.npy``.
    key : str, optional
        Array inside a zarr group, or TIFF series.
    axes : str, optional
        Stored axes when the file does not say (``YX``, ``ZYX``, ``YXC``).
    channel : int, optional
        One channel of a multichannel image.
    """

    path: str
    key: str | None = None
    axes: str | None = None
    channel: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", str(Path(self.path)))

    def image(self):
        """The lazily opened :class:`samscope.io.ImageData` (opened once per process)."""
        ident = (self.path, self.key, self.axes, self.channel)
        with _LOCK:
            img = _OPEN.get(ident)
            if img is None:
                from samscope.io import read_image

                img = read_image(self.path, axes=self.axes, key=self.key,
                                 channel=self.channel, lazy=True)
                if img.axes not in ("YX", "YXC", "ZYX"):
                    raise InputError(
                        f"'{self.path}' has axes {img.axes!r}; blockwise segmentation takes YX, "
                        "RGB YXC or a ZYX volume (choose a channel, or give --axes)"
                    )
                _OPEN[ident] = img
            return img

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """``(y, x)`` or ``(z, y, x)``."""
        img = self.image()
        shape = tuple(int(s) for s in img.data.shape)
        return shape[:2] if img.axes == "YXC" else shape

    @property
    def spatial_axes(self) -> str:
        """``"YX"`` or ``"ZYX"``."""
        return "ZYX" if self.image().axes == "ZYX" else "YX"

    def read(self, slices: tuple[slice, ...]) -> np.ndarray:
        """The pixels of a spatial region (channels kept for RGB)."""
        img = self.image()
        try:
            out = np.asarray(img.data[tuple(slices)])
        except (MemoryError, InputError):
            raise
        except Exception as err:  # noqa: BLE001 - tifffile, zarr, memmap errors
            raise InputError(
                f"cannot read region {slices} of '{self.path}' ({type(err).__name__}: {err}); "
                "the file is probably damaged or truncated"
            ) from None
        return out.astype(np.uint8) if out.dtype == bool else out

    def describe(self) -> dict:
        """What identifies the input in an output's settings."""
        img = self.image()
        return {
            "path": str(Path(self.path).resolve()),
            "key": self.key,
            "channel": self.channel,
            "axes": img.axes,
            "shape": [int(s) for s in img.data.shape],
            "dtype": str(np.dtype(img.data.dtype)),
        }

    def pixel_size(self) -> tuple[float, ...] | None:
        """Spatial pixel size in nm (``(y, x)`` or ``(z, y, x)``), None when unknown."""
        px = self.image().pixel_size
        if px is None:
            return None
        return tuple(float(v) for v in px[-len(self.spatial_shape):])
