"""Volumes: automatic 3-D instance segmentation and interactive prompts that follow an object in z.

Automatic (:func:`segment_volume`), three methods:

- ``link`` (default, chosen on CHO time points 0–13, see ``benchmarks/eval_volume.py``): every
  plane segmented with the library's automatic 2-D segmentation, objects linked plane to plane
  by overlap (:func:`~samscope.multidim.link.link_planes`);
- ``watershed``: the per-plane AIS maps stacked and flooded in 3-D
  (:func:`~samscope.multidim.link.watershed_3d`), for models with an instance head;
- ``per-plane``: the planes labelled independently (ids restart in every plane), as before.

Object size: a scale-aware model (its card has a ``working_diameter``) gets one diameter for the
whole volume (given, or estimated once on the most textured plane) so every plane is segmented at
the same scale; for other models ``scale`` resizes the planes explicitly.

Interactive 3-D (prompts on a plane → a 3-D mask per object) is
:func:`~samscope.multidim.propagate.propagate` / :class:`~samscope.multidim.propagate.Propagator`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.multidim.link import LinkConfig, link_planes, trim_faded, watershed_3d
from samscope.multidim.stack import PlaneStack

__all__ = ["METHODS", "VolumeResult", "link_stack", "segment_volume", "volume_scale", "z_scale_of"]

log = logging.getLogger(__name__)

METHODS = ("link", "watershed", "per-plane")


@dataclass(frozen=True)
class VolumeResult:
    """3-D instance labels of a volume and how they were made.

    Attributes
    ----------
    labels : ndarray, (Z, H, W)
        One id per 3-D object (``per-plane``: ids restart in every plane).
    method : str
    mode : str
        The 2-D mode used per plane.
    scale : float
        Resize factor the planes were segmented at (1: native).
    diameter : float or None
        Object diameter (native pixels) the scale came from.
    """

    labels: np.ndarray
    method: str
    mode: str
    scale: float
    diameter: float | None

    @property
    def n_objects(self) -> int:
        """Number of objects (3-D; summed over planes for ``per-plane``)."""
        if self.method == "per-plane":
            return int(sum(len(np.unique(p)) - 1 for p in self.labels))
        return int(len(np.unique(self.labels)) - 1)


def volume_scale(
    stack: Any, model: Any, *, diameter: float | None = None, scale: float | None = None
) -> tuple[float, float | None]:
    """The resize factor for a stack: ``(scale, diameter)``.

    ``scale`` given wins. Otherwise a scale-aware model (card ``working_diameter``) brings
    ``diameter`` (given, or estimated on the plane with the largest intensity spread) to its
    working size; any other model works at the native scale (a ``diameter`` is then an error,
    as for :func:`samscope.segment`).
    """
    from samscope.instance.scale import estimate_diameter, scale_for, widest_plane

    if scale is not None:
        if not (np.isfinite(scale) and scale > 0):
            raise InputError(f"scale must be a positive number, got {scale!r}")
        return float(scale), diameter
    working = getattr(getattr(model, "card", None), "working_diameter", None)
    if diameter is not None:
        d = float(diameter)
        if not np.isfinite(d) or d <= 0:
            raise InputError(f"diameter must be a positive number of pixels, got {diameter!r}")
        if not working:
            raise InputError(
                f"model {model.card.name!r} works at one scale (its card has no working diameter), "
                "so a diameter cannot be applied; give scale= (e.g. --scale) or use a scale-aware model"
            )
        return scale_for(d, working), d
    if not working or getattr(model, "instance_head", None) is None:
        return 1.0, None
    data = stack.data if isinstance(stack, PlaneStack) else stack
    best = widest_plane(data)
    est = estimate_diameter(np.asarray(data[best]), model)
    if est.diameter is None:
        return 1.0, None
    log.info("objects of about %.1f px (estimated on plane %d)", est.diameter, best)
    return scale_for(est.diameter, working), est.diameter


def z_scale_of(image: Any) -> float | None:
    """Plane spacing over the in-plane pixel size from an ImageData's pixel size, or None."""
    size = getattr(image, "pixel_size", None)
    axes = getattr(image, "axes", "")
    if size is None or not axes or axes[0] not in "Z" or len(size) < 3:
        return None
    z, x = float(size[0]), float(size[-1])
    if not (np.isfinite(z) and np.isfinite(x) and z > 0 and x > 0):
        return None
    return z / x


def segment_volume(
    volume: Any,
    model: Any,
    *,
    method: str = "link",
    mode: str = "auto",
    axes: str | None = None,
    diameter: float | None = None,
    scale: float | None = None,
    link: LinkConfig | None = None,
    config: Any = None,
    z_scale: float | None = None,
    embeddings: Any = None,
    min_contrast: float = 0.15,
    progress: bool = False,
) -> VolumeResult:
    """Segment every object of a volume in 3-D.

    Parameters
    ----------
    volume : array-like, samscope.io.ImageData or PlaneStack
        ``(Z, H, W)`` (or ``(Z, H, W, C)``); a single plane ``(1, H, W)`` works. A
        :class:`~samscope.multidim.stack.PlaneStack` brings its own scale and embeddings.
    model : SamscopeModel
    method : {"link", "watershed", "per-plane"}
        See the module docstring.
    mode : str
        Automatic 2-D mode per plane (``link``, ``per-plane``); ``watershed`` needs AIS maps.
    axes : str, optional
        ``ZYX`` (``ZYXC``); from ``volume.axes`` or inferred when None.
    diameter : float, optional
        Object diameter in native pixels (scale-aware models).
    scale : float, optional
        Explicit resize factor of the planes (overrides ``diameter``).
    link : LinkConfig, optional
        Linking thresholds (``link``).
    config : AISConfig (or the chosen mode's config), optional
        Thresholds of the 2-D mode; the model card's defaults otherwise.
    z_scale : float, optional
        Plane spacing over the in-plane pixel size (``watershed``: smoothing across planes);
        from the file's pixel size (:func:`z_scale_of`) when None, else 1.
    embeddings : ImageEmbeddings, optional
        Embeddings of the (resized) volume, e.g. from a cache.
    min_contrast : float
        Remove each 3-D object from the planes where its contrast is below this fraction of its
        best plane's (:func:`~samscope.multidim.link.trim_faded`: out-of-focus ghosts); 0 keeps
        them. Not applied to ``per-plane``.
    progress : bool

    Returns
    -------
    VolumeResult

    Raises
    ------
    InputError
        A 2-D image, an unknown method, ``watershed`` with a model or mode without AIS maps.
    """
    from samscope.instance.segment import choose_mode

    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(volume, PlaneStack):  # planes, scale and embeddings already settled
        stack, factor, diam = volume, volume.scale, diameter
    else:
        probe = PlaneStack(volume, model, axes=axes)
        factor, diam = volume_scale(probe, model, diameter=diameter, scale=scale)
        stack = PlaneStack(volume, model, axes=axes, scale=factor, embeddings=embeddings)
    if z_scale is None:
        z_scale = z_scale_of(volume) or 1.0
    chosen = choose_mode(model, mode)
    if method == "watershed" and chosen != "ais":
        raise InputError(
            f"method 'watershed' floods the AIS maps in 3-D; mode {chosen!r} has none "
            "(use method 'link', or a model with an instance head and mode ais)"
        )
    from tqdm.auto import tqdm

    planes = tqdm(range(stack.n_planes), desc="planes", unit="plane", disable=not progress)
    if method == "watershed":
        maps = np.stack([_native_maps(stack, k, model) for k in planes])
        cfg = _ais_config(model, config)
        labels = watershed_3d(
            maps,
            center_distance_thresh=cfg.center_distance_thresh,
            boundary_distance_thresh=cfg.boundary_distance_thresh,
            foreground_thresh=cfg.foreground_thresh,
            foreground_smoothing=cfg.foreground_smoothing,
            distance_smoothing=cfg.distance_smoothing,
            min_size=int(round((cfg.min_size or 0) / stack.scale**2)),  # given at working scale
            z_scale=z_scale,
        )
        from samscope.labels import label_dtype

        labels = _trim(labels, stack, min_contrast)
        return VolumeResult(labels.astype(label_dtype(int(labels.max()))), method, chosen, factor, diam)
    per_plane = [_plane_labels(stack, k, model, chosen, config) for k in planes]
    from samscope.labels import label_dtype

    top = max((int(p.max()) for p in per_plane), default=0)
    stacked = np.stack(per_plane).astype(label_dtype(top), copy=False)
    if method == "per-plane":
        return VolumeResult(stacked, method, chosen, factor, diam)
    linked = _trim(link_planes(stacked, config=link), stack, min_contrast)
    return VolumeResult(linked, method, chosen, factor, diam)


def link_stack(
    labels: np.ndarray,
    volume: Any,
    *,
    link: LinkConfig | None = None,
    min_contrast: float = 0.15,
) -> tuple[np.ndarray, list[dict[int, int]]]:
    """3-D labels from a stack of per-plane labels (what the batch runner segmented), and per
    plane the map from each 2-D id to its 3-D id (objects trimmed from a plane are not in it).

    ``link_planes`` then ``trim_faded`` with the defaults of :func:`segment_volume`.
    """
    per_plane = np.asarray(labels)
    linked = link_planes(per_plane, config=link)
    if min_contrast and per_plane.shape[0] > 1 and linked.any():
        vol = np.stack([np.asarray(volume[k]) for k in range(per_plane.shape[0])])
        linked = trim_faded(linked, vol, min_contrast=min_contrast)
    maps: list[dict[int, int]] = []
    for old, new in zip(per_plane, linked, strict=True):
        both = (old > 0) & (new > 0)
        pairs = np.unique(np.stack([old[both], new[both]]).astype(np.int64), axis=1)
        maps.append({int(a): int(b) for a, b in pairs.T})
    return linked, maps


def _trim(labels: np.ndarray, stack: PlaneStack, min_contrast: float) -> np.ndarray:
    if not min_contrast or stack.n_planes < 2 or not labels.any():
        return labels
    volume = np.stack([np.asarray(stack.data[k]) for k in range(stack.n_planes)])
    return trim_faded(labels, volume, min_contrast=min_contrast)


def _ais_config(model: Any, config: Any):
    from samscope.instance.ais import AISConfig

    if config is not None and not isinstance(config, AISConfig):
        raise InputError(f"method 'watershed' takes an AISConfig, got {type(config).__name__}")
    return (config or AISConfig()).resolve(model.card.automatic)


def _native_maps(stack: PlaneStack, k: int, model: Any) -> np.ndarray:
    """AIS maps of plane ``k`` at the native resolution ``(3, H, W)``."""
    from samscope.instance.ais import predict_image_maps

    if stack.is_constant(k):  # an empty plane: background everywhere, no network
        return np.concatenate([np.zeros((1, *stack.plane_shape)), np.ones((2, *stack.plane_shape))]).astype(np.float32)
    emb, index = stack.embeddings(k)
    maps = predict_image_maps(model, emb, plane=index)
    if stack.scale == 1.0:
        return maps
    from skimage.transform import resize

    return resize(maps, (3, *stack.plane_shape), order=1, anti_aliasing=False).astype(np.float32)


def _plane_labels(stack: PlaneStack, k: int, model: Any, mode: str, config: Any) -> np.ndarray:
    """2-D labels of plane ``k`` at the native resolution."""
    from samscope.instance.segment import segment

    working = getattr(model.card, "working_diameter", None)
    emb, index = stack.embeddings(k)
    if mode == "ais":  # maps resized to the native grid before the watershed: native borders
        from samscope.instance.ais import predict_image_maps
        from samscope.instance.segment import ais_from_scaled_maps

        if stack.is_constant(k):
            return np.zeros(stack.plane_shape, np.uint16)
        maps = predict_image_maps(model, emb, plane=index)
        return np.asarray(
            ais_from_scaled_maps(maps, stack.plane_shape, config=_ais_config(model, config)).labels
        )
    plane = stack.image(k)
    if emb.n_planes > 1:  # a whole-stack embeddings object: hand segment this plane's part
        emb = _plane_view(emb, index)
    # the plane is already at the working scale: tell a scale-aware model so (no second resize)
    inst = segment(plane, model, mode=mode, embeddings=emb, config=config, diameter=working or None)
    labels = np.asarray(inst.labels)
    if stack.scale == 1.0:
        return labels
    from skimage.transform import resize

    return resize(labels, stack.plane_shape, order=0, anti_aliasing=False, preserve_range=True).astype(
        labels.dtype
    )


def _plane_view(emb: Any, index: int) -> Any:
    """A one-plane :class:`ImageEmbeddings` over plane ``index`` of a stack's embeddings."""
    from dataclasses import replace

    view = replace(
        emb, features=emb.features[index : index + 1], axes="YX", path=None,
        value_ranges={0: emb.value_ranges[index]} if index in emb.value_ranges else {},
    )  # fmt: skip
    view.source = None
    return view


def interactive_propagator(volume: Any, model: Any, *, diameter: float | None = None, config: Any = None) -> Any:
    """A :class:`~samscope.multidim.propagate.Propagator` over ``volume`` at the prompting scale.

    The planes are resized as :func:`volume_scale` says (a scale-aware model: the objects brought
    to its working diameter, estimated once on the widest plane), as ``eval_volume.py`` and the
    3-D interactive protocol (:func:`samscope.evaluation.interactive_volume.run_interactive_volume`)
    use it.
    """
    from samscope.multidim.propagate import Propagator

    s, _ = volume_scale(volume, model, diameter=diameter)
    stack = volume if isinstance(volume, PlaneStack) else PlaneStack(volume, model, scale=s)
    return Propagator(model, stack, config=config)
