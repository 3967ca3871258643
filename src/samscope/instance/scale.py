"""Object-size estimation and rescaling to a model's working scale.

A model that segments objects of one size well (its card's ``working_diameter``, 28 px for
samscope's own models) segments objects of any size once the image is resized so that its objects
have that diameter. :func:`estimate_diameter` finds the typical object diameter of an image with
the model itself, the way an analyst would zoom until the cells look right:

1. For each candidate zoom ``s`` (a geometric ladder; by default ×4 … ×¼, so that objects of
   about 7–110 px, and with the model's tolerance 4–220 px, reach the working size), take up to
   ``crops`` windows (one by default) of the image that become one encoder input at that zoom (the most textured
   windows; the whole image when it is smaller), resize them by ``s`` and run the instance head
   (AIS maps and seeded watershed).
2. At each zoom, the median equivalent diameter ``d_s`` of the objects found (objects cut by the
   window's border are ignored when enough others remain) says how large objects look there.
   At the right zoom objects look like the working size; too far in, the model sees object
   interiors, texture or nothing; too far out, objects shrink below what it can separate.
3. Each zoom gives an estimate ``d_s / s`` in the input's pixels. Real objects give the same
   estimate at every zoom where the model sees them whole, while fragments (a zoom too far in)
   and merged clusters (too far out) give outliers; so the estimate that most zooms agree with
   (within a factor 1.35) wins, taken from the zoom at which objects look closest to the
   working size. When that zoom is off by more than ``refine_above``, one more look at the
   implied zoom refines it.

Rescaling (:func:`resize_plane`, :func:`rescale_instances`) uses bilinear interpolation with
anti-aliasing for images and nearest-neighbour for labels and masks; AIS maps are resized back
before their watershed (in :mod:`samscope.instance.segment`), so object borders keep the input's
resolution.

The estimate is the median over objects: images that mix very different sizes get the size of the
typical object.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from samscope.errors import InputError

__all__ = [
    "SizeEstimate",
    "estimate_diameter",
    "interactive_scale",
    "median_diameter",
    "prompt_scale",
    "rescale_instances",
    "resize_plane",
    "scale_for",
    "widest_plane",
]

log = logging.getLogger(__name__)

#: Default zoom ladder of :func:`estimate_diameter`.
DEFAULT_ZOOMS = (4.0, 2.0, 1.0, 0.5, 0.25)
#: Rescaling closer to 1 than this factor is skipped (no interpolation for native-size objects).
SCALE_TOLERANCE = 1.15


@dataclass(frozen=True)
class SizeEstimate:
    """The object size of an image and how it was found.

    Attributes
    ----------
    diameter : float or None
        Typical (median) equivalent object diameter in the input's pixels; None when no object was
        found at any zoom.
    source : str
        ``"estimated"``, ``"given"`` (by the user) or ``"none"`` (no estimate: empty image).
    candidates : tuple of tuple
        ``(zoom, median diameter at that zoom, objects, foreground confidence)`` per zoom tried.
    """

    diameter: float | None
    source: str = "estimated"
    candidates: tuple[tuple[float, float, int, float], ...] = field(default=())


def scale_for(diameter: float | None, working_diameter: float | None) -> float:
    """The resize factor that brings objects of ``diameter`` px to ``working_diameter`` px.

    1.0 when either is unknown or when the factor is within :data:`SCALE_TOLERANCE` of 1.
    """
    if not diameter or not working_diameter:
        return 1.0
    s = float(working_diameter) / float(diameter)
    if 1 / SCALE_TOLERANCE <= s <= SCALE_TOLERANCE:
        return 1.0
    return s


def widest_plane(stack: Any) -> int:
    """Index of the plane of a stack with the largest intensity spread (where a size estimate sees
    the most objects)."""
    spreads = [float(np.ptp(np.asarray(stack[k], dtype=np.float32))) for k in range(stack.shape[0])]
    return int(np.argmax(spreads))


def interactive_scale(
    plane: np.ndarray, model: Any, *, diameter: float | None = None
) -> tuple[float, float | None]:
    """The factor to embed an image by for prompting a scale-aware model, and the diameter behind it.

    Parameters
    ----------
    plane : numpy.ndarray
        ``(y, x)`` or ``(y, x, 3)``: the image, or the plane of a stack the size is estimated on
        (:func:`widest_plane` picks one).
    model : SamscopeModel
    diameter : float, optional
        The typical object diameter in pixels, when known (e.g. ``--diameter``); estimated with
        :func:`estimate_diameter` otherwise.

    Returns
    -------
    (float, float or None)
        The scale for :func:`samscope.embeddings.compute_embeddings` (1.0 for a model without a
        working diameter, for an image without objects, and within :data:`SCALE_TOLERANCE` of 1)
        and the diameter it was derived from.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model = SimpleNamespace(card=SimpleNamespace(working_diameter=28.0))
    >>> interactive_scale(np.zeros((64, 64)), model, diameter=70.0)
    (0.4, 70.0)
    >>> interactive_scale(np.zeros((64, 64)), SimpleNamespace(card=None), diameter=70.0)
    (1.0, 70.0)
    """
    working = getattr(getattr(model, "card", None), "working_diameter", None)
    if not working:
        return 1.0, diameter
    if diameter is None:
        if getattr(model, "instance_head", None) is None:
            return 1.0, None
        diameter = estimate_diameter(np.asarray(plane), model).diameter
        if diameter is not None:
            log.info("prompting at the estimated object diameter %.1f px", diameter)
    return scale_for(diameter, working), diameter


def prompt_scale(
    plane: np.ndarray, model: Any, *, diameter: float | None = None, cache: Any = None
) -> tuple[float, float | None]:
    """The embedding scale of an interactive session: an existing cache's own, else :func:`interactive_scale`.

    What ``samscope prompt`` and the napari 2-D annotator both use, so a click means the same in
    each: an embeddings cache that exists keeps the scale it was made at (its features are only
    valid there; :func:`samscope.embeddings.compute_embeddings` checks the rest of its signature),
    otherwise the scale comes from ``diameter`` or the model's size estimate on ``plane``.

    Parameters
    ----------
    plane : numpy.ndarray
        ``(y, x)`` or ``(y, x, 3)``: the image, or the prompted plane of a stack.
    model : SamscopeModel
    diameter : float, optional
        The typical object diameter in pixels (estimated when None and no cache exists).
    cache : path-like, optional
        The embeddings cache the session will use.

    Returns
    -------
    (float, float or None)
        The scale and the diameter it came from (None when it was the cache's, or unknown).
    """
    if cache is not None:
        from pathlib import Path

        from samscope.embedding_cache import stored_signature

        if Path(cache).exists():
            try:
                return float(stored_signature(Path(cache)).get("scale", 1.0)), None
            except Exception:  # noqa: BLE001 - compute_embeddings reports what is wrong with it
                return 1.0, None
    return interactive_scale(plane, model, diameter=diameter)


def median_diameter(labels: np.ndarray, *, exclude_border: bool = True, min_area: int = 4) -> tuple[float, int]:
    """Median equivalent diameter ``sqrt(4 A / π)`` of the objects of a label image.

    Objects touching the border are left out when at least three others remain.

    Returns
    -------
    (float, int)
        The median diameter (``nan`` without objects) and the number of objects it is taken over.
    """
    lab = np.asarray(labels)
    areas = np.bincount(lab.ravel())[1:].astype(np.float64)
    ids = np.flatnonzero(areas >= min_area) + 1
    if ids.size == 0:
        return float("nan"), 0
    if exclude_border:
        edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
        inner = ids[~np.isin(ids, edge)]
        if inner.size >= 3:
            ids = inner
    d = np.sqrt(4.0 * areas[ids - 1] / np.pi)
    return float(np.median(d)), int(ids.size)


def resize_plane(plane: np.ndarray, scale: float) -> np.ndarray:
    """Resize a 2-D (or ``(y, x, c)``) image by ``scale`` (bilinear, anti-aliased when shrinking).

    Returns float32 (the model normalises intensities itself).
    """
    from skimage.transform import resize

    arr = np.asarray(plane)
    if arr.dtype.kind not in "fiub":
        raise InputError(f"cannot resize an image of dtype {arr.dtype}")
    h, w = arr.shape[:2]
    shape = (max(1, int(round(h * scale))), max(1, int(round(w * scale)))) + arr.shape[2:]
    return resize(
        arr.astype(np.float32, copy=False), shape, order=1, anti_aliasing=scale < 1,
        preserve_range=True,
    ).astype(np.float32)


def _resize_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    return resize(labels, shape, order=0, anti_aliasing=False, preserve_range=True).astype(labels.dtype)


def rescale_instances(instances: Any, shape: tuple[int, int]) -> Any:
    """Map :class:`~samscope.instance.instances.Instances` found on a resized image back to ``shape``.

    Labels are resized by nearest neighbour; overlapping masks are resized crop by crop (each
    box mapped to the new grid), so objects keep their overlaps. Objects that vanish (smaller
    than one pixel of the target grid) are dropped with their scores.
    """
    from samscope.instance.instances import CroppedMasks, Instances

    shape = (int(shape[0]), int(shape[1]))
    src = instances.labels.shape
    if tuple(src) == shape:
        return instances
    fy, fx = shape[0] / src[0], shape[1] / src[1]
    if instances.masks is None:
        labels = _resize_labels(instances.labels, shape)
        present = np.zeros(instances.n + 1, bool)
        present[np.unique(labels)] = True
        keep = np.flatnonzero(present[1:]) + 1
        if keep.size == instances.n:
            return Instances(labels, instances.scores, None, instances.mode)
        return Instances.from_labels(labels, instances.scores, mode=instances.mode)
    boxes, crops, scores = [], [], []
    for i in range(len(instances.masks)):
        y0, x0, y1, x1 = (int(v) for v in instances.masks.boxes[i])
        ny0, nx0 = int(np.floor(y0 * fy)), int(np.floor(x0 * fx))
        ny1 = min(shape[0], max(ny0 + 1, int(np.ceil(y1 * fy))))
        nx1 = min(shape[1], max(nx0 + 1, int(np.ceil(x1 * fx))))
        crop = _resize_labels(instances.masks.crops[i].astype(np.uint8), (ny1 - ny0, nx1 - nx0)) > 0
        if not crop.any():
            continue
        boxes.append((ny0, nx0, ny1, nx1))
        crops.append(crop)
        scores.append(instances.scores[i])
    masks = CroppedMasks(shape, np.asarray(boxes, np.int64).reshape(-1, 4), tuple(crops))
    return Instances.from_masks(masks, np.asarray(scores, np.float32), mode=instances.mode)


def _windows(plane: np.ndarray, side: int, count: int) -> list[tuple[slice, slice]]:
    """Up to ``count`` non-overlapping ``side``² windows with the most structure (local std)."""
    h, w = plane.shape[:2]
    if side >= h and side >= w:
        return [(slice(0, h), slice(0, w))]
    side_y, side_x = min(side, h), min(side, w)
    grey = plane if plane.ndim == 2 else plane.mean(axis=-1)
    step = max(1, side // 2)
    ys = sorted({*range(0, max(1, h - side_y + 1), step), max(0, h - side_y)})
    xs = sorted({*range(0, max(1, w - side_x + 1), step), max(0, w - side_x)})
    stride = max(1, side // 32)
    scored = []
    for y in ys:
        for x in xs:
            patch = grey[y : y + side_y : stride, x : x + side_x : stride]
            scored.append((float(np.std(patch)), y, x))
    scored.sort(reverse=True)
    chosen: list[tuple[int, int]] = []
    for _, y, x in scored:
        if all(abs(y - cy) >= side_y or abs(x - cx) >= side_x for cy, cx in chosen):
            chosen.append((y, x))
        if len(chosen) >= count:
            break
    return [(slice(y, y + side_y), slice(x, x + side_x)) for y, x in chosen]


def _look(model: Any, window: np.ndarray, zoom: float, config: Any) -> tuple[float, int, float]:
    """Objects found in ``window`` zoomed by ``zoom``: (median diameter, count, confidence)."""
    from samscope.embeddings import compute_embeddings
    from samscope.instance.ais import ais_from_maps, predict_image_maps

    small = resize_plane(window, zoom) if zoom != 1 else window
    if min(small.shape[:2]) < 16 or np.ptp(small) == 0:
        return float("nan"), 0, 0.0
    emb = compute_embeddings(small, model, tile_shape=None, halo=None)
    maps = predict_image_maps(model, emb)
    inst = ais_from_maps(maps, config=config)
    d, n = median_diameter(inst.labels)
    confidence = float(np.mean(np.abs(2.0 * maps[0] - 1.0)))
    return d, n, confidence


def estimate_diameter(
    image: np.ndarray,
    model: Any,
    *,
    zooms: tuple[float, ...] = DEFAULT_ZOOMS,
    crops: int = 1,
    refine_above: float = 1.3,
) -> SizeEstimate:
    """Estimate the typical object diameter (px) of a 2-D image with the model's instance head.

    Parameters
    ----------
    image : numpy.ndarray
        ``(y, x)`` or ``(y, x, 3)``.
    model : SamscopeModel
        A model with an instance head and a card with ``working_diameter``.
    zooms : tuple of float
        Zoom factors tried (see the module docstring).
    crops : int
        Windows looked at per zoom (the most textured first). One by default: a second window
        per zoom changed no result on the tuning splits (HeLa 12–13, CHO 12–13: identical mSA,
        ``benchmarks/check_speed_settings.py estimate``) and cost ≈ 40 % more estimate time.
    refine_above : float
        Refine when the best zoom's objects are off the working size by more than this factor.

    Returns
    -------
    SizeEstimate
        ``diameter=None, source="none"`` when no zoom finds an object.

    Raises
    ------
    InputError
        The model has no instance head or no working diameter.
    """
    from samscope.instance.ais import AISConfig

    card = getattr(model, "card", None)
    working = getattr(card, "working_diameter", None)
    if not working:
        raise InputError(
            f"model {getattr(card, 'name', '?')!r} has no working diameter: it cannot estimate "
            "object sizes; give --diameter or use a scale-aware model"
        )
    if getattr(model, "instance_head", None) is None:
        raise InputError("object-size estimation needs a model with an instance head (AIS)")
    plane = np.asarray(image)
    cfg = AISConfig().resolve(card.automatic)
    cfg = _without_size_filters(cfg)
    side = int(getattr(model, "image_size", None) or getattr(card, "tile_shape", None) or 256)
    rows = []
    for zoom in zooms:
        window_side = int(np.ceil(side / zoom))
        found = [
            _look(model, plane[w], zoom, cfg) for w in _windows(plane, window_side, crops)
        ]
        ds = [d for d, n, _ in found if n > 0 and np.isfinite(d)]
        n_total = int(sum(n for _, n, _ in found))
        conf = float(np.mean([c for *_, c in found])) if found else 0.0
        rows.append((float(zoom), float(np.median(ds)) if ds else float("nan"), n_total, conf))
    best = _choose(rows, float(working))
    if best is None:
        return SizeEstimate(None, "none", tuple(rows))
    zoom, d_zoom, _, _ = best
    estimate = d_zoom / zoom
    if max(d_zoom, working) / min(d_zoom, working) > refine_above:
        z2 = float(working) / estimate
        window_side = int(np.ceil(side / z2))
        found = [_look(model, plane[w], z2, cfg) for w in _windows(plane, window_side, crops)]
        ds = [d for d, n, _ in found if n > 0 and np.isfinite(d)]
        if ds:
            n2 = int(sum(n for _, n, _ in found))
            rows.append((z2, float(np.median(ds)), n2, float(np.mean([c for *_, c in found]))))
            estimate = float(np.median(ds)) / z2
    log.info("estimated object diameter %.1f px (zooms tried: %s)", estimate, rows)
    return SizeEstimate(float(estimate), "estimated", tuple(rows))


def _choose(rows, working: float, agree: float = 1.35):
    """The zoom to trust: the one whose native estimate most other zooms agree with.

    Real objects give the same size in input pixels at every zoom where the model sees them
    whole; fragments (a zoom too far in) or merged clusters (too far out) give outliers. Among the
    estimates supported by the most zooms (within a factor ``agree``), the zoom at which objects
    look closest to the working size wins.
    """
    usable = [r for r in rows if r[2] >= 2 and np.isfinite(r[1])]
    if not usable:
        usable = [r for r in rows if r[2] >= 1 and np.isfinite(r[1])]
    if not usable:
        return None
    native = np.array([r[1] / r[0] for r in usable])
    support = [int(np.sum(np.abs(np.log(native / e)) <= np.log(agree))) for e in native]
    return max(
        zip(usable, support, strict=True),
        key=lambda rs: (rs[1], -abs(np.log(rs[0][1] / working)), rs[0][3]),
    )[0]


def _without_size_filters(cfg):
    from dataclasses import replace

    return replace(cfg, min_size=0, border_min_size=0)
