"""One entry point for every automatic mode: :func:`segment`.

``segment(image, model, mode=...)`` picks the mode (``auto`` = the model card's default, else
the best mode the model supports), computes or reuses the embeddings, runs the mode tile by tile
when the image is tiled, and stitches the tiles (dense maps are blended before the watershed;
instances are kept by the tile that owns their centre, see :mod:`samscope.instance.tiled`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.instance.instances import Instances
from samscope.instance.modes import MODES, require_mode, supported_modes
from samscope.io import array_axes

__all__ = ["ais_from_scaled_maps", "choose_mode", "scaled_ais_maps", "segment"]

log = logging.getLogger(__name__)

#: ``auto`` picks the first mode of this list the model supports, unless its card names one.
AUTO_PREFERENCE = ("ais", "apg", "distance", "amg")


def choose_mode(model: Any, mode: str = "auto") -> str:
    """Resolve ``mode`` (``auto`` or a mode name) for ``model``; errors list the supported modes."""
    if mode != "auto":
        require_mode(model, mode)
        return mode
    supported = supported_modes(model)
    preferred = getattr(getattr(model, "card", None), "default_mode", None)
    if preferred in supported:
        return preferred
    for candidate in AUTO_PREFERENCE:
        if candidate in supported:
            return candidate
    raise InputError(f"model supports none of the automatic modes {MODES}")  # pragma: no cover


def _plane_2d(image: Any) -> tuple[np.ndarray, str]:
    data = image.data if hasattr(image, "data") and hasattr(image, "axes") else image
    axes = getattr(image, "axes", None)
    arr = np.asarray(data)
    if arr.ndim == 2:
        return arr, "YX"
    if arr.ndim == 3 and (axes == "YXC" or (axes is None and array_axes(arr.shape) == "YXC")):
        return arr, "YXC"
    raise InputError(
        f"segment takes one 2-D image (y, x) or RGB (y, x, 3); got shape {arr.shape}"
        + (f" with axes {axes}" if axes else "")
        + ". Segment stacks and time series plane by plane (samscope segment does)"
    )


def _is_constant(arr: np.ndarray) -> bool:
    if arr.size == 0:
        return True
    flat = arr.reshape(-1, arr.shape[-1]) if arr.ndim == 3 else arr.ravel()
    return bool(np.all(flat == flat[0]))


def segment(
    image: Any,
    model: Any,
    *,
    mode: str = "auto",
    embeddings: Any = None,
    tile_shape: int | tuple[int, int] | None = None,
    halo: int | tuple[int, int] | None = None,
    pixel_size_nm: float | None = None,
    config: Any = None,
    progress: bool = False,
    diameter: float | None = None,
) -> Instances:
    """Segment every object of a 2-D image automatically.

    Parameters
    ----------
    image : ndarray or samscope.io.ImageData
        ``(y, x)`` or RGB ``(y, x, 3)``.
    model : SamscopeModel
    mode : {"auto", "amg", "ais", "apg", "distance", "foreground"}
        ``auto``: the card's default mode, else the first of ais, apg, distance, amg the model
        supports.
    embeddings : ImageEmbeddings, optional
        Precomputed embeddings of ``image`` (computed here otherwise; not used by ``distance`` and
        ``foreground``, which window the image their own way).
    tile_shape, halo : int or (int, int), optional
        Tile the image (amg, ais, apg). Choose a halo larger than the largest object.
    pixel_size_nm : float, optional
        Pixel size of the image, for modes that rescale to the model's training pixel size
        (foreground); taken from ``image.pixel_size`` when that is an ImageData.
    config : AMGConfig, AISConfig, APGConfig, DistanceConfig or ForegroundConfig, optional
        Thresholds of the chosen mode (the model card's defaults otherwise).
    progress : bool
        Progress bars for embeddings and tiles.
    diameter : float, optional
        Typical object diameter in pixels of ``image``. For a scale-aware model (its card has a
        ``working_diameter``) the image is resized so that objects of this diameter reach the
        working size, segmented, and the result mapped back; None estimates it
        (:func:`samscope.instance.scale.estimate_diameter`). The foreground mode rescales by pixel
        size instead and ignores it.

    Returns
    -------
    Instances
        Empty (no error) for an empty or constant image. ``diameter`` and ``scale`` record the
        object size used and the resize factor.

    Raises
    ------
    InputError
        A mode the model does not support (the message lists the ones it does), a config of
        another mode, an image that is not 2-D.
    """
    chosen = choose_mode(model, mode)
    plane, _ = _plane_2d(image)
    if pixel_size_nm is None and getattr(image, "pixel_size", None) is not None:
        px = image.pixel_size[-1]
        pixel_size_nm = float(px) if px is not None and np.isfinite(px) else None
    _check_config(chosen, config)
    if chosen == "concept":  # SAM3's detector sees the whole image at its own size
        from samscope.instance.concept import segment_concept

        return segment_concept(model, plane, config=config)
    if _is_constant(plane):
        return Instances.empty(
            plane.shape[:2], mode=chosen, overlapping=chosen in ("amg", "apg", "foreground")
        )
    used, scale = _object_scale(plane, model, chosen, diameter)
    if scale != 1.0:
        from samscope.instance.scale import resize_plane

        if embeddings is not None:
            log.info("embeddings given for the unresized image are not used (image resized ×%.3g)", scale)
        native_shape = plane.shape[:2]
        plane, embeddings = resize_plane(plane, scale), None
        log.info(
            "objects of %.1f px: image resized ×%.3g to %s for the model's working size",
            used, scale, plane.shape[:2],
        )
    if scale != 1.0 and chosen == "ais":
        result = _ais_resized(plane, model, native_shape, tile_shape, halo, config, progress)
    else:
        result = _segment_native(
            plane, model, chosen, embeddings=embeddings, tile_shape=tile_shape, halo=halo,
            pixel_size_nm=pixel_size_nm, config=config, progress=progress,
        )
        if scale != 1.0:
            from samscope.instance.scale import rescale_instances

            result = rescale_instances(result, native_shape)
    from dataclasses import replace

    return replace(result, diameter=used, scale=float(scale))


def _object_scale(plane: np.ndarray, model: Any, mode: str, diameter: float | None):
    """(diameter used or None, resize factor) for this image, model and mode."""
    from samscope.instance.scale import estimate_diameter, scale_for

    working = getattr(getattr(model, "card", None), "working_diameter", None)
    if diameter is not None:
        try:
            d = float(diameter)
        except (TypeError, ValueError):
            raise InputError(f"diameter must be a number of pixels, got {diameter!r}") from None
        if not np.isfinite(d) or d <= 0:
            raise InputError(f"diameter must be a positive number of pixels, got {diameter!r}")
        if mode == "foreground":
            return None, 1.0
        if not working:
            raise InputError(
                f"model {model.card.name!r} works at one scale (its card has no working "
                "diameter), so a diameter cannot be applied; resize the image yourself or use "
                "a scale-aware model such as samscope-generalist"
            )
        return d, scale_for(d, working)
    if not working or mode == "foreground" or getattr(model, "instance_head", None) is None:
        return None, 1.0
    est = estimate_diameter(plane, model)
    if est.diameter is None:
        return None, 1.0
    return est.diameter, scale_for(est.diameter, working)


def _ais_resized(plane, model, native_shape, tile_shape, halo, config, progress) -> Instances:
    """AIS on a resized plane, mapped back to ``native_shape`` (see :func:`ais_from_scaled_maps`)."""
    from samscope.embeddings import compute_embeddings
    from samscope.instance.ais import AISConfig, predict_image_maps

    cfg = (config or AISConfig()).resolve(model.card.automatic)
    emb = compute_embeddings(plane, model, tile_shape=tile_shape, halo=halo, progress=progress)
    maps = predict_image_maps(model, emb, progress=progress)
    return ais_from_scaled_maps(maps, native_shape, config=cfg)


def ais_from_scaled_maps(maps: np.ndarray, native_shape: tuple[int, int], *, config: Any) -> Instances:
    """AIS instances on the input's grid from maps predicted on a resized image.

    When the input's grid is finer than the maps' (the image was shrunk), the maps are resized
    to it before the watershed, so object borders keep the input's resolution; size thresholds
    (``min_size``, ``border_min_size``, given at the working scale) scale with the area. When it
    is coarser, the watershed runs on the maps and the labels are resized.

    Parameters
    ----------
    maps : numpy.ndarray
        ``(3, h, w)`` instance-distance maps of the resized image.
    native_shape : (int, int)
        Shape of the input image.
    config : AISConfig
        Resolved thresholds.
    """
    from dataclasses import replace

    from samscope.instance.ais import ais_from_maps
    from samscope.instance.scale import rescale_instances

    native_shape = (int(native_shape[0]), int(native_shape[1]))
    area = (native_shape[0] * native_shape[1]) / float(maps.shape[1] * maps.shape[2])
    if area <= 1.0:
        return rescale_instances(ais_from_maps(maps, config=config), native_shape)
    from skimage.transform import resize

    up = resize(maps, (maps.shape[0], *native_shape), order=1, preserve_range=True).astype(np.float32)
    cfg = replace(
        config,
        min_size=int(round((config.min_size or 0) * area)),
        border_min_size=int(round((config.border_min_size or 0) * area)),
    )
    return ais_from_maps(up, config=cfg)


def scaled_ais_maps(
    image: Any, model: Any, *, diameter: float | None = None, progress: bool = False
) -> tuple[np.ndarray, float | None, float]:
    """AIS maps of ``image`` at the model's working scale (the expensive half of AIS).

    Returns ``(maps, diameter used, scale)``; with :func:`ais_from_scaled_maps` (the cheap half)
    this is what :func:`segment` does in AIS mode, split so that thresholds can be tuned on cached
    maps.
    """
    from samscope.embeddings import compute_embeddings
    from samscope.instance.ais import predict_image_maps
    from samscope.instance.scale import resize_plane

    plane, _ = _plane_2d(image)
    used, scale = _object_scale(plane, model, "ais", diameter)
    work = plane if scale == 1.0 else resize_plane(plane, scale)
    emb = compute_embeddings(work, model, progress=progress)
    return predict_image_maps(model, emb, progress=progress), used, float(scale)


def _segment_native(
    plane: np.ndarray,
    model: Any,
    chosen: str,
    *,
    embeddings: Any,
    tile_shape: Any,
    halo: Any,
    pixel_size_nm: float | None,
    config: Any,
    progress: bool,
) -> Instances:
    if chosen == "distance":
        from samscope.instance.distance import segment_distance

        return segment_distance(model, plane, config=config)
    if chosen == "foreground":
        from samscope.instance.foreground import segment_foreground

        return segment_foreground(model, plane, pixel_size_nm=pixel_size_nm, config=config)

    from samscope.embeddings import compute_embeddings

    if embeddings is None:
        embeddings = compute_embeddings(
            plane, model, tile_shape=tile_shape, halo=halo, progress=progress
        )
    elif tuple(embeddings.image_shape) != tuple(plane.shape[:2]):
        raise InputError(
            f"embeddings are of an image of shape {embeddings.image_shape}, not {plane.shape[:2]}"
        )
    tiles = embeddings.tiles
    if chosen == "ais":
        from samscope.instance.ais import AISConfig, ais_from_maps, predict_image_maps

        cfg = (config or AISConfig()).resolve(model.card.automatic)
        maps = predict_image_maps(model, embeddings, progress=progress)
        return ais_from_maps(maps, config=cfg)

    if chosen == "amg":
        from samscope.instance.amg import segment_amg

        def run(t):
            return segment_amg(
                model, embeddings, tile=t.index, config=config, image=plane[t.outer_slices]
            )
    else:
        from samscope.instance.apg import segment_apg

        def run(t):
            return segment_apg(model, embeddings, tile=t.index, config=config)

    if len(tiles) == 1:
        return run(tiles[0])
    from samscope.instance.tiled import stitch_tile_instances

    results = [run(t) for t in _progress(tiles, progress)]
    return stitch_tile_instances(embeddings.image_shape, tiles, results, mode=chosen)


def _progress(tiles, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(tiles, desc="tiles", unit="tile", disable=not enabled or len(tiles) < 2)


_CONFIG_CLASSES = {
    "amg": ("samscope.instance.amg", "AMGConfig"),
    "ais": ("samscope.instance.ais", "AISConfig"),
    "apg": ("samscope.instance.apg", "APGConfig"),
    "distance": ("samscope.instance.distance", "DistanceConfig"),
    "foreground": ("samscope.instance.foreground", "ForegroundConfig"),
    "concept": ("samscope.instance.concept", "ConceptConfig"),
}


def config_class(mode: str) -> type:
    """The config dataclass of ``mode``."""
    import importlib

    module, name = _CONFIG_CLASSES[mode]
    return getattr(importlib.import_module(module), name)


def _check_config(mode: str, config: Any) -> None:
    if config is None:
        return
    expected = config_class(mode)
    if not isinstance(config, expected):
        raise InputError(
            f"mode {mode!r} takes a {expected.__name__}, got a {type(config).__name__}"
        )
