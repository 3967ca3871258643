"""A stack of planes (z slices or t frames) and its embeddings, plane by plane, computed lazily.

:class:`PlaneStack` is what propagation and volumetric segmentation read: plane ``k`` of a
``(P, H, W)`` or ``(P, H, W, C)`` array, optionally resized by ``scale`` (so that objects reach a
model's working size), and that plane's embeddings. Embeddings come from, in order of preference:

1. ``embeddings=``: an :class:`~samscope.embeddings.ImageEmbeddings` of the whole (resized) stack,
   e.g. loaded from a zarr cache (read plane by plane, never whole);
2. ``cache=``: a zarr cache that :func:`~samscope.embeddings.compute_embeddings` creates or
   completes for the whole stack (resumable, signature-checked);
3. otherwise on demand, plane by plane, keeping the ``keep`` most recently used planes: memory is
   bounded by the planes in flight, not by the stack.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import numpy as np

from samscope.embeddings import ImageEmbeddings, compute_embeddings
from samscope.errors import InputError

__all__ = ["PlaneStack"]

log = logging.getLogger(__name__)

_STACK_AXES = ("ZYX", "TYX", "ZYXC", "TYXC")


def _stack_axes(shape: tuple[int, ...], axes: str | None) -> str:
    if axes is not None:
        axes = axes.upper()
        if axes in ("YX", "YXC"):
            raise InputError(
                f"a 2-D image (axes {axes}, shape {shape}) was given where a stack of planes is "
                "needed; use the 2-D functions (samscope.segment, samscope.prompting) or give "
                "axes ZYX / TYX"
            )
        if axes not in _STACK_AXES:
            raise InputError(f"axes {axes!r} not supported for a stack; use one of {_STACK_AXES}")
        if len(axes) != len(shape):
            raise InputError(f"axes {axes!r} has {len(axes)} letters but the image has shape {shape}")
        return axes
    if len(shape) == 3 and shape[-1] not in (3, 4):
        return "ZYX"
    if len(shape) == 4 and shape[-1] in (3, 4):
        return "ZYXC"
    if len(shape) == 2 or (len(shape) == 3 and shape[-1] in (3, 4)):
        raise InputError(
            f"a 2-D image of shape {shape} was given where a stack of planes (z, y, x) is needed; "
            "use the 2-D functions, or pass axes='ZYX' for a stack of 3 or 4 planes"
        )
    raise InputError(f"cannot tell the axes of an image of shape {shape}; pass axes='ZYX' or 'TYX'")


class PlaneStack:
    """Planes of a stack and their embeddings, optionally resized to a model's working scale.

    Parameters
    ----------
    image : array-like or samscope.io.ImageData
        ``(P, H, W)`` or ``(P, H, W, C)``; numpy, memmap or zarr (planes are read one at a time).
    model : SamscopeModel
    axes : str, optional
        ``ZYX``, ``TYX``, ``ZYXC`` or ``TYXC`` (from ``image.axes`` or inferred when None).
    scale : float
        Resize factor applied to every plane before it is embedded (1: native). Prompts and
        masks are given and returned at the native resolution; the stack maps them.
    embeddings : ImageEmbeddings, optional
        Precomputed embeddings of the (resized) stack.
    cache : path, optional
        Zarr cache for the embeddings of the whole (resized) stack.
    keep : int
        Planes whose embeddings stay in memory when computed on demand.
    tile_shape, halo : int or (int, int), optional
        Tiling of the embeddings (the model card's default when None).

    Raises
    ------
    InputError
        A 2-D image, axes that are not a stack, an empty stack, embeddings of another shape.
    """

    def __init__(
        self,
        image: Any,
        model: Any,
        *,
        axes: str | None = None,
        scale: float = 1.0,
        embeddings: ImageEmbeddings | None = None,
        cache: Any = None,
        keep: int = 3,
        tile_shape: Any = None,
        halo: Any = None,
    ) -> None:
        data = image
        if hasattr(image, "data") and hasattr(image, "axes"):  # samscope.io.ImageData
            data, axes = image.data, axes or image.axes
        if not hasattr(data, "shape"):
            data = np.asarray(data)
        self.axes = _stack_axes(tuple(int(s) for s in data.shape), axes)
        if any(int(s) == 0 for s in data.shape):
            raise InputError(f"image of shape {tuple(data.shape)} is empty")
        if not (np.isfinite(scale) and scale > 0):
            raise InputError(f"scale must be a positive number, got {scale!r}")
        if keep < 1:
            raise InputError(f"keep must be at least 1, got {keep}")
        self.data = data
        self.model = model
        self.scale = 1.0 if abs(scale - 1.0) < 1e-6 else float(scale)
        self.n_planes = int(data.shape[0])
        self.plane_shape = tuple(
            int(s) for s in (data.shape[1:3] if self.axes.endswith("C") else data.shape[1:])
        )
        self.work_shape = (
            self.plane_shape
            if self.scale == 1.0
            else tuple(max(1, int(round(s * self.scale))) for s in self.plane_shape)
        )
        self._tiling = (tile_shape, halo)
        self._keep = int(keep)
        self._lazy: OrderedDict[int, ImageEmbeddings] = OrderedDict()
        if embeddings is None and cache is not None:
            embeddings = compute_embeddings(
                self._work_stack(), model, axes=self.axes, cache=cache,
                tile_shape=tile_shape, halo=halo,
            )  # fmt: skip
        if embeddings is not None:
            if embeddings.n_planes != self.n_planes or tuple(embeddings.image_shape) != self.work_shape:
                raise InputError(
                    f"the embeddings hold {embeddings.n_planes} plane(s) of {embeddings.image_shape}, "
                    f"but the stack has {self.n_planes} plane(s) of {self.work_shape}"
                    + (f" (planes resized ×{self.scale:.3g})" if self.scale != 1.0 else "")
                )
        self._whole = embeddings

    # -- planes ---------------------------------------------------------------------------------

    def check_plane(self, plane: int) -> int:
        """``plane`` as an int if it lies in the stack, else :class:`InputError`."""
        if isinstance(plane, bool) or int(plane) != plane:
            raise InputError(f"plane must be an integer, got {plane!r}")
        if not 0 <= int(plane) < self.n_planes:
            raise InputError(
                f"plane {plane} lies outside the stack: it has {self.n_planes} plane(s), 0–{self.n_planes - 1}"
            )
        return int(plane)

    def image(self, plane: int) -> np.ndarray:
        """Plane ``plane`` at the working resolution (resized when ``scale`` is not 1)."""
        arr = np.asarray(self.data[self.check_plane(plane)])
        if self.scale == 1.0:
            return arr
        from samscope.instance.scale import resize_plane

        return resize_plane(arr, self.scale)

    def is_constant(self, plane: int) -> bool:
        """Whether plane ``plane`` holds a single value (nothing to segment there)."""
        arr = np.asarray(self.data[self.check_plane(plane)])
        return bool(arr.size == 0 or arr.min() == arr.max())

    def _work_stack(self) -> Any:
        if self.scale == 1.0:
            return self.data
        return np.stack([self.image(k) for k in range(self.n_planes)])

    def embeddings(self, plane: int) -> tuple[ImageEmbeddings, int]:
        """The embeddings that hold ``plane`` and the plane's index in them."""
        plane = self.check_plane(plane)
        if self._whole is not None:
            return self._whole, plane
        got = self._lazy.pop(plane, None)
        if got is None:
            tile_shape, halo = self._tiling
            got = compute_embeddings(self.image(plane), self.model, tile_shape=tile_shape, halo=halo)
        self._lazy[plane] = got
        while len(self._lazy) > self._keep:
            self._lazy.popitem(last=False)
        return got, 0

    # -- coordinates ----------------------------------------------------------------------------

    def points_to_work(self, points: np.ndarray) -> np.ndarray:
        """``(y, x)`` points from native to working pixels (clipped into the plane)."""
        pts = np.asarray(points, dtype=np.float64)
        if self.scale == 1.0:
            return pts
        out = (pts + 0.5) * self.scale - 0.5
        hi = np.array(self.work_shape, np.float64) - 1
        return np.clip(out, 0, hi)

    def box_to_work(self, box: np.ndarray) -> np.ndarray:
        """A ``(y0, x0, y1, x1)`` box from native to working pixels."""
        b = np.asarray(box, dtype=np.float64)
        if self.scale == 1.0:
            return b
        h, w = self.work_shape
        out = b * self.scale
        return np.array([
            min(max(out[0], 0), h - 1), min(max(out[1], 0), w - 1),
            min(max(out[2], out[0] + 1), h), min(max(out[3], out[1] + 1), w),
        ])  # fmt: skip

    def mask_to_work(self, mask: np.ndarray) -> np.ndarray:
        """A native-resolution mask at the working resolution (bool)."""
        m = np.asarray(mask, dtype=bool)
        if self.scale == 1.0:
            return m
        return _resize_bool(m, self.work_shape)

    def mask_to_native(self, mask: np.ndarray) -> np.ndarray:
        """A working-resolution mask at the native resolution (bool)."""
        m = np.asarray(mask, dtype=bool)
        if self.scale == 1.0:
            return m
        return _resize_bool(m, self.plane_shape)


def _resize_bool(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask smoothly (bilinear on 0/1, then > 0.5), not in nearest-pixel blocks."""
    from skimage.transform import resize

    if not mask.any():
        return np.zeros(shape, bool)
    return resize(mask.astype(np.float32), shape, order=1, anti_aliasing=False) > 0.5
