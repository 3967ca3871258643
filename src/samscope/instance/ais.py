"""Automatic instance segmentation (AIS): instance-distance head + seeded watershed (µSAM).

The expensive part is the network: the image encoder (cached in :class:`ImageEmbeddings`) and
the instance head (:func:`predict_ais_maps`, one pass per tile). The cheap part is the
post-processing from the three maps (:func:`ais_from_maps`, thresholds in :class:`AISConfig`),
so re-thresholding never runs the network again::

    maps = predict_ais_maps(model, embeddings)           # (3, H, W), once
    inst = ais_from_maps(maps, config=AISConfig(center_distance_thresh=0.4))   # many times

The target encoding the head is trained on and its decoder live in :mod:`samscope.instance.targets`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from samscope.errors import InputError
from samscope.instance.instances import Instances
from samscope.instance.settings import check_count, check_sigma, check_unit, resolve_settings

if TYPE_CHECKING:  # pragma: no cover
    from samscope.embeddings import ImageEmbeddings
    from samscope.models.sam import SamscopeModel

__all__ = [
    "AISConfig",
    "ais_from_maps",
    "drop_small_border_objects",
    "predict_ais_maps",
    "predict_image_maps",
    "segment_ais",
]


@dataclass(frozen=True)
class AISConfig:
    """Post-processing thresholds of AIS; the field names are the CLI flags.

    Every field left None takes the model card's calibrated default
    (:class:`~samscope.models.card.AutomaticDefaults`; µSAM's 0.5 / 0.5 / 0.5, 1.0, 1.6, 0 for
    most models) when resolved with :meth:`resolve`. Values are validated on construction, so a
    bad threshold fails before any work.

    Attributes
    ----------
    center_distance_thresh : float or None
        Seeds need a (smoothed) centre distance below this, in [0, 1].
    boundary_distance_thresh : float or None
        Seeds need a (smoothed) boundary distance below this, in [0, 1].
    foreground_thresh : float or None
        Foreground probability above this is object, in [0, 1].
    foreground_smoothing : float or None
        Gaussian sigma (pixels) on the foreground map, >= 0.
    distance_smoothing : float or None
        Gaussian sigma (pixels) on both distance maps, >= 0.
    min_size : int or None
        Objects with fewer pixels are dropped, >= 0.
    border_min_size : int or None
        Objects touching the image border with fewer pixels are dropped (partially visible
        objects, which many reference annotations leave out), >= 0; 0 keeps them.
    """

    center_distance_thresh: float | None = None
    boundary_distance_thresh: float | None = None
    foreground_thresh: float | None = None
    foreground_smoothing: float | None = None
    distance_smoothing: float | None = None
    min_size: int | None = None
    border_min_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("center_distance_thresh", "boundary_distance_thresh", "foreground_thresh"):
            if getattr(self, name) is not None:
                check_unit(name, getattr(self, name))
        for name in ("foreground_smoothing", "distance_smoothing"):
            if getattr(self, name) is not None:
                check_sigma(name, getattr(self, name))
        for name in ("min_size", "border_min_size"):
            if getattr(self, name) is not None:
                check_count(name, getattr(self, name))

    def resolve(self, defaults: Any = None) -> AISConfig:
        """This config with every None field taken from ``defaults`` (a card or its automatic
        defaults; µSAM's when None): :func:`samscope.instance.settings.resolve_settings`."""
        return resolve_settings(self, defaults)


def _require_head(model: SamscopeModel, mode: str, attribute: str):
    from samscope.instance.modes import require_mode

    require_mode(model, mode)
    return getattr(model, attribute)


def check_tile(embeddings: ImageEmbeddings, plane: int, tile: int) -> None:
    """Raise InputError unless ``plane`` and ``tile`` exist in ``embeddings``."""
    if not 0 <= plane < embeddings.n_planes:
        raise InputError(f"plane {plane} out of range: the image has {embeddings.n_planes}")
    if not 0 <= tile < len(embeddings.tiles):
        raise InputError(f"tile {tile} out of range: the embeddings have {len(embeddings.tiles)}")


def constant_tile(embeddings: ImageEmbeddings, plane: int = 0, tile: int = 0) -> bool:
    """Whether the image region behind an embedding has a single value (nothing to segment).

    Known only when the embeddings still reference their image (``embeddings.source``, as
    :func:`~samscope.embeddings.compute_embeddings` leaves it); False otherwise.
    """
    data = embeddings.source
    if data is None:
        return False
    region = data if embeddings.axes in ("YX", "YXC") else data[plane]
    region = np.asarray(region[embeddings.tiles[tile].outer_slices])
    return bool(region.size == 0 or np.all(region == region.flat[0]))


def predict_ais_maps(
    model: SamscopeModel,
    embeddings: ImageEmbeddings,
    *,
    plane: int = 0,
    tile: int = 0,
    last_level: str = "full",
) -> np.ndarray:
    """Foreground, centre- and boundary-distance maps of one plane and tile (the network part).

    Runs the model's instance head on the cached embedding, crops the padding and resizes to the
    tile's outer region (the whole image when untiled), as µSAM does before its watershed. A head
    that predicts on a coarser grid than the encoder input (e.g. a
    :class:`~samscope.models.distance_head.DistanceMapHead` with three outputs, at ``4 g``) is
    first up-sampled bilinearly to the encoder input.

    Parameters
    ----------
    model : SamscopeModel
        A model with an instance head (else :class:`InputError` listing the modes it supports).
    embeddings : ImageEmbeddings
        Embeddings computed with this model.
    plane, tile : int
        Which slice/frame and which tile.
    last_level : {"full", "half"}
        ``"half"`` runs the last level of µSAM's UNETR head
        (:class:`~samscope.models.heads.InstanceDistanceHead`) at half resolution, ≈ 1.4× fewer
        operations, and up-samples its logits: an approximation of the trained head, not the
        same maps (see ``InstanceDistanceHead.logits``). Only for that head.

    Returns
    -------
    ndarray of float32, (3, h, w)
        In 0–1; ``(h, w)`` is the tile's outer shape (the image shape when untiled).
    """
    import torch
    import torch.nn.functional as F

    from samscope.models.heads import to_original

    head = _require_head(model, "ais", "instance_head")
    check_tile(embeddings, plane, tile)
    head_kwargs = _last_level_kwargs(head, last_level)
    transform = embeddings.transform(tile)
    emb = embeddings.get(plane, tile).to(model.device)
    size = embeddings.input_size
    with torch.inference_mode():
        maps = head(emb, **head_kwargs)
        if maps.ndim != 4 or maps.shape[1] != 3:
            raise InputError(
                f"the instance head gave maps of shape {tuple(maps.shape)}, not (1, 3, S, S)"
            )
        if maps.shape[-2:] != (size, size):  # a head predicting at a coarser grid (e.g. 4 g)
            maps = F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=False)
        maps = to_original(maps, transform.resized_shape, transform.original_shape)
    return maps[0].float().cpu().numpy()


def _last_level_kwargs(head: Any, last_level: str) -> dict[str, str]:
    """The head's keyword for ``last_level`` (none for "full"); InputError where it cannot apply."""
    from samscope.models.heads import LAST_LEVELS, InstanceDistanceHead

    if last_level not in LAST_LEVELS:
        raise InputError(f"last_level must be one of {', '.join(LAST_LEVELS)}, not {last_level!r}")
    if last_level == "full":
        return {}
    if not isinstance(head, InstanceDistanceHead):
        raise InputError(
            f"last_level={last_level!r} needs µSAM's UNETR instance head; this model's is "
            f"{type(head).__name__}"
        )
    return {"last_level": last_level}


def ais_from_maps(maps: np.ndarray, *, config: AISConfig | None = None) -> Instances:
    """Instances from instance-distance maps by seeded watershed (the cheap part).

    Parameters
    ----------
    maps : ndarray, (3, H, W)
        Foreground, centre distance, boundary distance (from :func:`predict_ais_maps`, or
        targets from :func:`samscope.instance.targets.instance_distance_targets`).
    config : AISConfig, optional
        None fields take µSAM's defaults; resolve against a model card first for its calibrated
        defaults (``config.resolve(model.card.automatic)``).

    Returns
    -------
    Instances
        ``mode="ais"``, no overlapping masks; each score is the object's mean foreground
        probability.
    """
    from samscope.instance.targets import watershed_from_instance_distances

    cfg = (config if config is not None else AISConfig()).resolve(None)
    maps = np.asarray(maps)
    labels = watershed_from_instance_distances(maps, config=cfg)
    if cfg.border_min_size:
        labels = drop_small_border_objects(labels, cfg.border_min_size)
    n = int(labels.max())
    if n == 0:
        return Instances.empty(labels.shape, mode="ais")
    from scipy import ndimage as ndi

    scores = ndi.mean(maps[0].astype(np.float64), labels, index=np.arange(1, n + 1))
    return Instances.from_labels(labels, np.asarray(scores, np.float32), mode="ais")


def drop_small_border_objects(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Remove objects that touch the image border and have fewer than ``min_size`` pixels.

    Returns a new label image, renumbered ``1..n`` in the order of the kept ids.

    Examples
    --------
    >>> lab = np.zeros((6, 6), int); lab[0, 0:2] = 1; lab[2:5, 2:5] = 2; lab[5, 3:6] = 3
    >>> drop_small_border_objects(lab, 3).max(), drop_small_border_objects(lab, 3)[3, 3]
    (np.int64(2), np.int64(1))
    """
    from skimage.segmentation import relabel_sequential

    labels = np.asarray(labels)
    if min_size <= 0 or not labels.any():
        return labels.copy()
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge = edge[edge > 0]
    small = edge[np.bincount(labels.ravel())[edge] < min_size]
    return relabel_sequential(np.where(np.isin(labels, small), 0, labels))[0]


def predict_image_maps(
    model: SamscopeModel, embeddings: ImageEmbeddings, *, plane: int = 0, progress: bool = False
) -> np.ndarray:
    """Instance-distance maps ``(3, H, W)`` of a whole plane: one tile, or tiles blended."""
    from samscope.instance.tiled import blend_tile_maps

    tiles = embeddings.tiles
    if len(tiles) == 1:
        return predict_ais_maps(model, embeddings, plane=plane, tile=0)
    from tqdm.auto import tqdm

    bar = tqdm(tiles, desc="tiles", unit="tile", disable=not progress)
    maps = [predict_ais_maps(model, embeddings, plane=plane, tile=t.index) for t in bar]
    return blend_tile_maps(embeddings.image_shape, tiles, maps)


def segment_ais(
    model: SamscopeModel,
    embeddings: ImageEmbeddings,
    *,
    plane: int = 0,
    tile: int = 0,
    config: AISConfig | None = None,
    last_level: str = "full",
) -> Instances:
    """AIS of one plane and tile: :func:`predict_ais_maps` then :func:`ais_from_maps`.

    ``config``'s None fields take ``model.card.automatic``'s defaults. The config is validated
    (on construction) and the model's head checked before the network runs. ``last_level``:
    see :func:`predict_ais_maps` (``"half"`` is faster and approximate).

    Returns
    -------
    Instances
        Labels of shape ``(h, w)``, the tile's outer region (the image when untiled); empty,
        without running the network, when that region of the image is constant.
    """
    cfg = (config if config is not None else AISConfig()).resolve(model.card.automatic)
    _last_level_kwargs(_require_head(model, "ais", "instance_head"), last_level)
    check_tile(embeddings, plane, tile)
    if constant_tile(embeddings, plane, tile):
        return Instances.empty(embeddings.tiles[tile].outer_shape, mode="ais")
    maps = predict_ais_maps(model, embeddings, plane=plane, tile=tile, last_level=last_level)
    return ais_from_maps(maps, config=cfg)
