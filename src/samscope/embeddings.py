"""Image embeddings for 2-D images, volumes and time series, tiled or whole, with a checked zarr cache.

The encoder is the expensive step (seconds per image on a CPU), so embeddings are computed once
and reused by every prompt and automatic mode. :func:`compute_embeddings` returns an
:class:`ImageEmbeddings` holding features of shape ``(planes, tiles, C, g, g)``: one plane for a
2-D image, one per slice or frame for a stack; one tile unless ``tile_shape`` is given.

The cache (a zarr group) stores the features with a *signature*: samscope's embedding format
version, the model (name and a hash of its weights), its input size and normalisation, the
tiling, the encoder's precision when it is not fp32 (a bf16 or int8 cache is never reused as
fp32, and fp32 caches keep the signature they had before precisions existed), and the data (shape, dtype, axes and a streaming xxh3 hash that reads the image block by
block and never holds a large array whole). Reusing a cache whose signature differs raises
:class:`~samscope.errors.CacheMismatchError` that names what differs; a damaged cache raises it
too. Planes and tiles are flagged done as they are written, so an interrupted volume resumes
where it stopped.

The cache verifies itself (format 2): every chunk carries a crc32c checksum (zarr's ``crc32c``
codec), missing chunks read as NaN (the fill value; an encoder never outputs NaN), and the
``done`` array is the completeness record — one chunk per plane, written after the features it
flags. Opening a cache with the image (:func:`compute_embeddings`) reads every piece flagged
done and recomputes the damaged, truncated or missing ones (reported in
:attr:`ImageEmbeddings.repaired`); reading a piece of a cache opened without the image
(:func:`load_embeddings`) raises :class:`~samscope.errors.CacheMismatchError` naming it. A cache
created by a call that then fails (NaN in the image, a bad model) is removed; one left by an
interruption (Ctrl-C) is kept and completed by the next call. A new cache appears atomically
(built beside its path, then renamed), so no half-made cache ever has the right name. The store
itself lives in :mod:`samscope.embedding_cache`; the early memory check in :mod:`samscope.memory`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from samscope.embedding_cache import (
    FORMAT_VERSION,
    cache_progress,
    check_cache_location,
    open_cache,
    piece_name,
    read_flags,
    read_piece,
    remove_new_cache,
    stored_signature,
)
from samscope.embedding_fill import (  # plane_value_range re-exported (public here before)
    AXES_2D,
    check_embedding_memory,
    fill,
    plane_value_range,
    read_pixels,
    resized,
)
from samscope.errors import CacheMismatchError, InputError
from samscope.image import Transform
from samscope.io import array_axes, has_colour_axis
from samscope.memory import check_memory
from samscope.tiling import Tile, TileGrid

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from samscope.models.sam import SamscopeModel

__all__ = [
    "ImageEmbeddings",
    "cache_progress",
    "check_cache_location",
    "check_memory",
    "compute_embeddings",
    "data_hash",
    "load_embeddings",
    "plane_value_range",
]

log = logging.getLogger(__name__)

_HASH_BLOCK_BYTES = 64 * 2**20


def data_hash(data: Any) -> str:
    """Streaming xxh3-128 hash of an array's shape, dtype and values.

    Reads ``data`` in blocks of about 64 MB along its first axes, so numpy memmaps, zarr and
    dask arrays of any size hash in bounded memory.

    Parameters
    ----------
    data : array-like
        Anything with ``shape``, ``dtype`` and numpy-style slicing.

    Returns
    -------
    str
        32 hex digits.
    """
    import xxhash

    digest = xxhash.xxh3_128()
    shape = tuple(int(s) for s in data.shape)
    dtype = np.dtype(data.dtype)
    digest.update(f"{shape}|{dtype.str}".encode())
    if len(shape) == 0:
        digest.update(np.ascontiguousarray(read_pixels(data)).tobytes())
        return digest.hexdigest()
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
    if row_bytes > _HASH_BLOCK_BYTES and len(shape) > 1:
        for i in range(shape[0]):  # one row is already large: recurse into it
            digest.update(data_hash(data[i]).encode())
        return digest.hexdigest()
    step = max(1, _HASH_BLOCK_BYTES // max(row_bytes, 1))
    for start in range(0, shape[0], step):
        block = np.ascontiguousarray(read_pixels(data, slice(start, start + step)))
        digest.update(block.tobytes())
    return digest.hexdigest()


_AXES_2D = AXES_2D
_AXES_PLANES = ("ZYX", "TYX", "ZYXC", "TYXC")


def _infer_axes(shape: tuple[int, ...], axes: str | None) -> str:
    if axes is not None:
        axes = axes.upper()
        if axes not in _AXES_2D + _AXES_PLANES:
            raise InputError(
                f"axes {axes!r} not supported for embeddings; use one of {_AXES_2D + _AXES_PLANES} "
                "(select a channel first for multi-channel stacks)"
            )
        if len(axes) != len(shape):
            raise InputError(
                f"axes {axes!r} has {len(axes)} letters but the image has shape {shape}"
            )
        return axes
    if len(shape) in (2, 3) or (len(shape) == 4 and has_colour_axis(shape)):
        return array_axes(shape)  # the one axes/RGB rule
    raise InputError(
        f"cannot tell the axes of an image of shape {shape}: expected (y, x), (y, x, 3), "
        "(z|t, y, x) or (z|t, y, x, 3); pass axes="
    )


@dataclass
class ImageEmbeddings:
    """Embeddings of every plane and tile of an image.

    Attributes
    ----------
    features : array-like
        ``(planes, tiles, C, g, g)`` float32 (numpy in memory, or a zarr array for a cache).
    image_shape : (int, int)
        ``(H, W)`` of each plane.
    axes : str
        Axes of the embedded image (``YX``, ``YXC``, ``ZYX``, ``TYX``, ...).
    input_size : int
        Encoder input side ``S``.
    tiling : TileGrid or None
        The tiling, or None for whole-image embeddings.
    model_name : str
    signature : dict
        What the embeddings were computed from (see module docstring).
    path : Path or None
        The cache, when there is one.
    scale : float
        The factor the image was resized by before embedding (1 = native). Prompts and masks
        stay in the native grid: :mod:`samscope.prompting` maps them (see
        :func:`compute_embeddings`'s ``scale``).
    native_shape : (int, int) or None
        ``(H, W)`` of the planes before resizing (None: same as ``image_shape``).
    """

    features: Any
    image_shape: tuple[int, int]
    axes: str
    input_size: int
    tiling: TileGrid | None
    model_name: str
    signature: dict = field(default_factory=dict)
    path: Path | None = None
    source: Any = field(default=None, repr=False, compare=False)
    value_ranges: dict[int, tuple[float, float]] = field(default_factory=dict, repr=False, compare=False)
    repaired: tuple[str, ...] = field(default=(), compare=False)
    scale: float = 1.0
    native_shape: tuple[int, int] | None = None

    @property
    def precision(self) -> str:
        """The encoder arithmetic the features come from (``fp32``, ``bf16`` or ``int8``)."""
        return str(self.signature.get("precision", "fp32"))

    @property
    def plane_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the planes in the image's own grid: where prompts and masks live."""
        return tuple(self.native_shape) if self.native_shape is not None else self.image_shape

    @property
    def n_planes(self) -> int:
        """Number of slices/frames (1 for a 2-D image)."""
        return int(self.features.shape[0])

    @property
    def tiles(self) -> list[Tile]:
        """The tiles (a single whole-image tile when untiled)."""
        if self.tiling is None:
            h, w = self.image_shape
            return [Tile(0, (0, 0), (0, 0, h, w), (0, 0, h, w))]
        return self.tiling.tiles

    def transform(self, tile: int = 0) -> Transform:
        """Geometry from a tile's outer region to encoder input."""
        return Transform(self.tiles[tile].outer_shape, self.input_size)

    def get(self, plane: int = 0, tile: int = 0) -> torch.Tensor:
        """The ``(1, C, g, g)`` embedding of one plane and tile as a torch tensor."""
        import torch

        if not 0 <= plane < self.n_planes:
            raise InputError(f"plane {plane} out of range: the image has {self.n_planes} plane(s)")
        if self.path is None:
            values = np.array(self.features[plane, tile], dtype=np.float32)
        else:
            values, problem = read_piece(self.features, plane, tile)
            if problem is not None:
                raise CacheMismatchError(
                    f"embeddings cache {self.path}: {piece_name(plane, tile)} is {problem}; run "
                    f"`samscope embed IMAGE -o {self.path}` with its image to recompute it"
                )
        return torch.from_numpy(values)[None]


def _signature(model: SamscopeModel, data: Any, axes: str, grid: TileGrid | None) -> dict:
    import samscope

    norm = model.card.normalisation
    return {
        "format_version": FORMAT_VERSION,
        "samscope_version": samscope.__version__,
        "model_name": model.name,
        "model_weights_hash": model.weights_hash,
        "input_size": model.image_size,
        "normalisation": [
            norm.low_percentile,
            norm.high_percentile,
            list(norm.mean),
            list(norm.std),
            norm.pad,
            "plane-range" if grid else "image-range",
        ],
        "tile_shape": list(grid.tile_shape) if grid else None,
        "halo": list(grid.halo) if grid else None,
        "data_shape": [int(s) for s in data.shape],
        "data_dtype": np.dtype(data.dtype).str,
        "axes": axes,
        "data_hash": data_hash(data),
    }


def compute_embeddings(
    image: Any,
    model: SamscopeModel,
    *,
    tile_shape: tuple[int, int] | int | None = None,
    halo: tuple[int, int] | int | None = None,
    axes: str | None = None,
    cache: str | Path | None = None,
    batch_size: int = 1,
    progress: bool = False,
    scale: float = 1.0,
    precision: str | None = None,
    value_range: tuple[float, float] | None = None,
) -> ImageEmbeddings:
    """Compute (or load from a cache) the image embeddings of a 2-D image, a stack or a time series.

    Parameters
    ----------
    image : array-like or samscope.io.ImageData
        ``(y, x)``, ``(y, x, 3)``, ``(z|t, y, x)`` or ``(z|t, y, x, 3)``; numpy, memmap or zarr.
    model : SamscopeModel
    tile_shape : int or (int, int), optional
        Inner tile size for tiled embeddings (images larger than one encoder input). When neither
        this nor ``halo`` is given, the model card's default tiling applies
        (:meth:`~samscope.models.card.ModelCard.default_tiling`; none for SAM's 1024² models).
    halo : int or (int, int), optional
        Overlap added on each side of a tile; default ``tile_shape // 8``.
    axes : str, optional
        Axes of ``image`` (``YX``, ``YXC``, ``ZYX``, ``TYX``, ``ZYXC``, ``TYXC``); inferred if None.
    cache : path, optional
        A zarr directory; created if absent, checked and completed if present.
    batch_size : int
        Encoder inputs per forward pass.
    progress : bool
        Show a progress bar.
    scale : float
        Resize every plane by this factor before embedding, so that objects reach a scale-aware
        model's working size (:func:`samscope.instance.scale.interactive_scale` chooses it from
        the object diameter). Prompts and masks stay in the image's own grid: the prompting
        functions map points and boxes in and masks back out.
    precision : {"fp32", "bf16", "int8"}, optional
        The encoder's arithmetic for this call (default: the model's
        :attr:`~samscope.models.sam.SamscopeModel.precision`); recorded in the signature.
    value_range : (float, float), optional
        Intensities mapped to 0 and 1 for every plane and tile, in place of each plane's own
        percentiles (e.g. one range for all blocks of a larger image); recorded in the signature.

    Returns
    -------
    ImageEmbeddings

    Raises
    ------
    InputError
        Unsupported axes, empty image, NaN values, a scale that is not a positive number, an
        unknown precision.
    CacheMismatchError
        ``cache`` holds embeddings of other data, model or settings, or is not a samscope cache
        (damaged or missing pieces of a samscope cache are recomputed and listed in
        :attr:`ImageEmbeddings.repaired`).
    """
    if precision is not None:
        model = model.with_precision(precision)
    data = image
    if hasattr(image, "data") and hasattr(image, "axes"):  # samscope.io.ImageData
        data, axes = image.data, axes or image.axes
    if not hasattr(data, "shape"):
        data = np.asarray(data)
    axes = _infer_axes(tuple(data.shape), axes)
    if any(int(s) == 0 for s in data.shape):
        raise InputError(f"image of shape {tuple(data.shape)} is empty")
    plane_shape = tuple(
        int(s) for s in (data.shape[-3:-1] if axes.endswith("C") else data.shape[-2:])
    )
    n_planes = 1 if axes in _AXES_2D else int(data.shape[0])
    native_shape = None
    if not (isinstance(scale, (int, float)) and np.isfinite(scale) and scale > 0):
        raise InputError(f"scale must be a positive number, got {scale!r}")
    if abs(scale - 1.0) > 1e-6:
        native_shape = plane_shape
        data = resized(data, axes, float(scale))
        plane_shape = tuple(int(s) for s in (data.shape[-3:-1] if axes.endswith("C") else data.shape[-2:]))
    else:
        scale = 1.0

    grid = None
    if tile_shape is None and halo is None:
        tile_shape, halo = model.card.default_tiling(plane_shape)
    if tile_shape is not None:
        ts = (tile_shape, tile_shape) if np.isscalar(tile_shape) else tuple(tile_shape)
        if halo is None:
            hl = (ts[0] // 8, ts[1] // 8)
        else:
            hl = (halo, halo) if np.isscalar(halo) else tuple(halo)
        grid = TileGrid(plane_shape, (int(ts[0]), int(ts[1])), (int(hl[0]), int(hl[1])))
    elif halo is not None:
        raise InputError("halo given without tile_shape")
    tiles = grid.tiles if grid else [Tile(0, (0, 0), (0, 0) + plane_shape, (0, 0) + plane_shape)]

    arch = model.arch
    channels = getattr(model, "feature_channels", arch.embed_dim)  # SAM2: packed multi-scale
    shape = (n_planes, len(tiles), channels, arch.grid_size, arch.grid_size)
    check_embedding_memory(data, axes, plane_shape, shape, grid, cache)
    signature = _signature(model, data, axes, grid)
    if native_shape is not None:  # only then, so caches of native embeddings keep their signature
        signature["scale"] = float(scale)
        signature["native_shape"] = list(native_shape)
    if model.precision != "fp32":  # the same trick: fp32 caches keep their signature
        signature["precision"] = model.precision
    if value_range is not None:
        value_range = (float(value_range[0]), float(value_range[1]))
        signature["value_range"] = list(value_range)
    if getattr(model, "feature_layout", None):  # SAM2's multi-scale features (SAM1: none)
        signature["feature_layout"] = model.feature_layout
    problems: list[str] = []
    created = False
    if cache is not None:
        path = Path(cache)
        features, done, done_now, problems, created = open_cache(path, signature, shape)
        if problems:
            log.warning(
                "embeddings cache %s: recomputing %d damaged or missing piece(s): %s",
                path, len(problems), "; ".join(problems[:5]) + (" …" if len(problems) > 5 else ""),
            )  # fmt: skip
    else:
        path = None
        features = np.zeros(shape, np.float32)
        done = None
        done_now = np.zeros(shape[:2], bool)
    try:
        value_ranges = fill(
            data, axes, model, grid, tiles, features, done, done_now, path, batch_size, progress,
            value_range,
        )
    except Exception:
        if created:  # a cache this call made and could not finish holds nothing worth keeping
            remove_new_cache(path)
        raise
    result = ImageEmbeddings(
        features=features,
        image_shape=plane_shape,
        axes=axes,
        input_size=model.image_size,
        tiling=grid,
        model_name=model.name,
        signature=signature,
        path=path,
        value_ranges=value_ranges,
        repaired=tuple(problems),
        scale=float(scale),
        native_shape=native_shape,
    )
    result.source = data  # a reference (never a copy): lets prompting embed on-demand windows
    return result


def load_embeddings(path: str | Path) -> ImageEmbeddings:
    """Open an embeddings cache without the image (e.g. to prompt from a saved cache).

    The signature is not checked against data here; use :func:`compute_embeddings` with
    ``cache=`` to check it (and to recompute damaged pieces). Each piece is checked when read
    (:meth:`ImageEmbeddings.get`): a damaged or missing one raises
    :class:`~samscope.errors.CacheMismatchError` naming it.

    Raises
    ------
    CacheMismatchError
        Not a samscope cache, a cache of an older format, or an incomplete one (an interrupted
        run: finish it with :func:`compute_embeddings` and the image).
    """
    import zarr

    path = Path(path)
    sig = stored_signature(path)
    if sig.get("format_version") != FORMAT_VERSION:
        raise CacheMismatchError(
            f"embeddings cache {path} has format {sig.get('format_version')!r}; this samscope "
            f"reads format {FORMAT_VERSION}: compute it again"
        )
    try:
        group = zarr.open_group(str(path), mode="r")
        features = group["features"]
        done_arr = group["done"]
    except Exception as err:  # noqa: BLE001
        raise CacheMismatchError(f"{path} is not a readable samscope embeddings cache ({err})") from err
    n_done = 0
    for p in range(done_arr.shape[0]):
        flags = read_flags(done_arr, p)
        if flags is None:
            raise CacheMismatchError(
                f"embeddings cache {path}: the completeness record of plane {p} (chunk done/c/{p}/0) "
                "is damaged; run compute_embeddings (samscope embed) with the image to repair it"
            )
        n_done += int(flags.sum())
    if n_done < int(np.prod(done_arr.shape)):
        raise CacheMismatchError(
            f"embeddings cache {path} is incomplete ({n_done} of {int(np.prod(done_arr.shape))} "
            "done); run compute_embeddings (samscope embed) with the image to finish it"
        )
    axes = sig["axes"]
    shape = sig["data_shape"]
    plane_shape = tuple(shape[-3:-1] if axes.endswith("C") else shape[-2:])
    grid = (
        TileGrid(plane_shape, tuple(sig["tile_shape"]), tuple(sig["halo"]))
        if sig["tile_shape"]
        else None
    )
    native = sig.get("native_shape")
    return ImageEmbeddings(
        features, plane_shape, axes, int(sig["input_size"]), grid, sig["model_name"], sig, path,
        scale=float(sig.get("scale", 1.0)),
        native_shape=tuple(int(v) for v in native) if native else None,
    )
