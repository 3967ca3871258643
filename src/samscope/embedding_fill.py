"""Computing the pieces of :func:`samscope.embeddings.compute_embeddings`: planes, tiles, batches.

Reads each plane once (a damaged file is an :class:`~samscope.errors.InputError`), normalises
every tile with its plane's intensity range (:func:`plane_value_range`, so a dim tile is not
stretched to full contrast), encodes the tiles in batches and stores each piece with its
completeness flag after its features. Split from :mod:`samscope.embeddings` (the cache, the
signature and the public entry points live there).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from samscope.errors import InputError
from samscope.image import prepare_input
from samscope.memory import check_memory
from samscope.tiling import Tile, TileGrid

if TYPE_CHECKING:  # pragma: no cover
    from samscope.models.sam import SamscopeModel

__all__ = [
    "AXES_2D",
    "check_embedding_memory",
    "fill",
    "plane_iter",
    "plane_value_range",
    "read_pixels",
    "resized",
]

log = logging.getLogger("samscope.embeddings")

#: Axes of a single plane (grey or colour).
AXES_2D = ("YX", "YXC")


def plane_iter(data: Any, axes: str) -> Iterator[np.ndarray]:
    """The planes of ``data`` in order (one for a 2-D image), read one at a time."""
    if axes in AXES_2D:
        yield read_pixels(data)
    else:
        for i in range(data.shape[0]):
            yield read_pixels(data, i)


def resized(data: Any, axes: str, scale: float) -> np.ndarray:
    """Every plane of ``data`` resized by ``scale`` (float32, in memory)."""
    from samscope.instance.scale import resize_plane

    if axes in AXES_2D:
        return resize_plane(read_pixels(data), scale)
    return np.stack([resize_plane(plane, scale) for plane in plane_iter(data, axes)])


def check_embedding_memory(
    data: Any,
    axes: str,
    plane_shape: tuple[int, int],
    shape: tuple[int, ...],
    grid: TileGrid | None,
    cache: Any,
) -> None:
    """Fail before any work when the embeddings (in memory) and one plane cannot fit."""
    itemsize = np.dtype(data.dtype).itemsize
    channels = int(data.shape[-1]) if axes.endswith("C") else 1
    plane_pixels = int(np.prod(plane_shape, dtype=np.int64)) * channels
    # the plane as read, plus float32 working copies of it (whole-image input) or of one tile
    working = plane_pixels * (itemsize + (8 if grid is None else 0))
    features = 0 if cache is not None else int(np.prod(shape, dtype=np.int64)) * 4
    needed = working + features
    check_memory(
        needed,
        f"embedding an image of shape {tuple(int(s) for s in data.shape)} "
        f"({shape[0]} plane(s) × {shape[1]} tile(s))",
        "give an embeddings cache (samscope embed IMAGE -o CACHE.zarr, or --embeddings) so the "
        "embeddings stay on disk, use tiles (--tile-shape), or crop or bin the image",
    )


def fill(data, axes, model, grid, tiles, features, done, done_now, path, batch_size, progress,
         fixed_range=None):
    """Compute the pieces not yet stored; returns the per-plane intensity ranges used."""
    from tqdm.auto import tqdm

    norm = model.card.normalisation
    n_planes = features.shape[0]
    todo = [(p, t) for p in range(n_planes) for t in range(len(tiles)) if not done_now[p, t]]
    if todo and path is not None and done_now.any():
        log.info("resuming %s: %d of %d embeddings left", path, len(todo), done_now.size)
    bar = tqdm(total=len(todo), desc="embeddings", unit="tile", disable=not progress or not todo)
    pending: list[tuple[int, int, np.ndarray]] = []

    def flush() -> None:
        import torch

        if not pending:
            return
        batch = torch.from_numpy(np.stack([px for _, _, px in pending]))
        out = model.encode(batch).cpu().numpy()
        if not np.isfinite(out).all():
            from samscope.errors import CheckpointError

            p, t, _ = pending[0]
            raise CheckpointError(
                f"model {model.name!r} produced NaN or infinite embeddings (plane {p}, tile {t}); "
                "its weights are probably damaged"
            )
        for (p, t, _), emb in zip(pending, out, strict=True):
            features[p, t] = emb
            if done is not None:
                done[p, t] = 1  # flagged only after the features are stored
        bar.update(len(pending))
        pending.clear()

    todo_set = set(todo)
    value_ranges: dict[int, tuple[float, float]] = {}
    try:
        for p, plane in enumerate(plane_iter(data, axes) if todo else ()):
            if not any((p, t) in todo_set for t in range(len(tiles))):
                continue
            value_range = fixed_range
            if value_range is not None:
                value_ranges[p] = value_range
            elif grid is not None:
                value_range = value_ranges[p] = plane_value_range(plane, model)
            for t, tile in enumerate(tiles):
                if (p, t) not in todo_set:
                    continue
                region = read_pixels(plane, tile.outer_slices)
                _check_values(region, p, tile)
                region, tile_range = _wide_float_to_unit(region, value_range, norm)
                with np.errstate(over="ignore", invalid="ignore"):
                    pixels, _ = prepare_input(
                        region,
                        model.image_size,
                        low_percentile=norm.low_percentile,
                        high_percentile=norm.high_percentile,
                        mean=norm.mean,
                        std=norm.std,
                        value_range=tile_range,
                        pad=norm.pad,
                    )
                if not np.isfinite(pixels).all():
                    arr = np.asarray(region, dtype=np.float64)
                    raise InputError(
                        f"plane {p}, region {tile.outer}: normalising the intensities (values "
                        f"{np.nanmin(arr):.3g} to {np.nanmax(arr):.3g}) overflowed float32; "
                        "rescale the image (e.g. divide it by a large power of ten) first"
                    )
                pending.append((p, t, pixels))
                if len(pending) >= batch_size:
                    flush()
        flush()
    finally:
        bar.close()
    return value_ranges


def plane_value_range(plane: Any, model: SamscopeModel) -> tuple[float, float]:
    """The intensity range every tile (and on-demand window) of a plane is normalised with.

    The percentiles of the model card's normalisation over the whole plane (finite values), so a
    tile of dim background is not stretched to full contrast — the models see what they were
    trained on (whole images normalised at once).
    """
    from samscope.image import intensity_range

    norm = model.card.normalisation
    arr = np.asarray(plane)
    if arr.ndim == 3:  # RGB(A): channels share one range, as normalize_percentile does
        arr = arr[..., :3]
    if arr.dtype.kind == "f":
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise InputError(f"the image has {bad} NaN or infinite values; clean or mask them first")
    return intensity_range(arr, low=norm.low_percentile, high=norm.high_percentile)


def read_pixels(data: Any, index: Any = None) -> np.ndarray:
    """``data[index]`` as numpy; a file failing while its pixels are read is an InputError."""
    from samscope.errors import SamscopeError

    try:
        return np.asarray(data if index is None else data[index])
    except (SamscopeError, MemoryError):
        raise
    except Exception as err:  # noqa: BLE001 - tifffile, zarr, numpy memmap errors
        first = str(err).splitlines()[0] if str(err) else ""
        raise InputError(
            f"cannot read the image's pixels ({type(err).__name__}: {first[:200]}); the file is "
            "probably damaged or truncated"
        ) from None


def _wide_float_to_unit(
    region: np.ndarray, value_range: tuple[float, float] | None, norm: Any
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Normalise a float64 plane region in float64, exactly as the float32 normalisation would.

    float32 holds neither 1e300 nor 1e-300, so float64 data (any finite values) are mapped to
    their ``[low, high]``-percentile range here and handed on with the range ``(0, 1)``; the
    result is the same affine map and clip, without overflow or underflow.
    """
    if region.dtype.kind != "f" or region.dtype.itemsize <= 4 or region.ndim != 2:
        return region, value_range
    from samscope.image import intensity_range

    arr = np.asarray(region, dtype=np.float64)
    if value_range is None:
        lo, hi = intensity_range(arr, low=norm.low_percentile, high=norm.high_percentile)
    else:
        lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        return np.zeros(arr.shape, np.float32), (0.0, 1.0)
    scale = max(abs(lo), abs(hi))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        low, high = lo / scale, hi / scale
        unit = (arr / scale - low) / (high - low)
    return np.clip(unit, 0.0, 1.0).astype(np.float32), (0.0, 1.0)


def _check_values(region: np.ndarray, plane: int, tile: Tile) -> None:
    if region.dtype.kind == "f" and not np.isfinite(region).all():
        bad = int((~np.isfinite(region)).sum())
        raise InputError(
            f"plane {plane}, region {tile.outer} has {bad} NaN or infinite values; clean or mask them first"
        )
    if region.dtype.kind not in "buif":
        raise InputError(f"cannot embed an image of dtype {region.dtype}")
