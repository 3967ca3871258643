"""The prompts of :mod:`samscope.prompting`: checks, boxes, and mapping onto scaled embeddings.

Coordinates are those of the image plane: points ``(y, x)``, boxes ``(y0, x0, y1, x1)`` with
exclusive ends, masks ``(H, W)``. Embeddings made at a scale (``compute_embeddings(...,
scale=s)``) hold resized planes: points and boxes are mapped onto that working grid
(:func:`points_to_working`, :func:`box_to_working`, :func:`mask_to_working`), decoded there, and
the masks resized back (:func:`result_to_native`).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from samscope.embeddings import ImageEmbeddings
from samscope.errors import InputError
from samscope.models.sam import SamscopeModel


def validate_points(points, labels, shape) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(N, 2)`` float points inside ``shape`` and their ``(N,)`` 0/1 labels (all 1 by default)."""
    if points is None:
        if labels is not None:
            raise InputError("labels given without points")
        return None, None
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 1 and pts.size == 2:
        pts = pts[None]
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
        raise InputError(f"points must be an (N, 2) array of (y, x), got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise InputError("points contain NaN or infinite coordinates")
    h, w = shape
    outside = (pts[:, 0] < 0) | (pts[:, 0] >= h) | (pts[:, 1] < 0) | (pts[:, 1] >= w)
    if outside.any():
        bad = pts[outside][0]
        raise InputError(
            f"point (y={bad[0]:g}, x={bad[1]:g}) lies outside the image of shape (y={h}, x={w})"
        )
    lab = (
        np.ones(len(pts), np.int64)
        if labels is None
        else np.asarray(labels).astype(np.int64).ravel()
    )
    if lab.shape != (len(pts),):
        raise InputError(f"got {len(pts)} points but {lab.size} labels")
    if not np.isin(lab, (0, 1)).all():
        raise InputError(
            f"point labels must be 1 (positive) or 0 (negative), got {sorted(set(lab.tolist()))}"
        )
    return pts, lab


def validate_box(box, shape) -> np.ndarray | None:
    """A ``(y0, x0, y1, x1)`` box of positive area that meets ``shape``, clipped to it."""
    if box is None:
        return None
    b = np.asarray(box, dtype=np.float64).ravel()
    if b.shape != (4,) or not np.isfinite(b).all():
        raise InputError(f"a box is (y0, x0, y1, x1), got {box!r}")
    h, w = shape
    if b[2] <= b[0] or b[3] <= b[1]:
        raise InputError(
            f"box (y0={b[0]:g}, x0={b[1]:g}, y1={b[2]:g}, x1={b[3]:g}) has zero or negative area"
        )
    if b[2] <= 0 or b[3] <= 0 or b[0] >= h or b[1] >= w:
        raise InputError(f"box {b.tolist()} lies outside the image of shape (y={h}, x={w})")
    return np.array([max(b[0], 0), max(b[1], 0), min(b[2], h), min(b[3], w)])


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """The bounding box of a mask (ends exclusive), None when it is empty."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return np.array([ys[0], xs[0], ys[-1] + 1, xs[-1] + 1], dtype=np.float64)


def validate_boxes(boxes, shape) -> np.ndarray:
    """``(N, 4)`` boxes, each checked and clipped by :func:`validate_box`."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InputError(f"boxes must be an (N, 4) array of (y0, x0, y1, x1), got shape {arr.shape}")
    return np.stack([validate_box(b, shape) for b in arr]) if len(arr) else np.zeros((0, 4))


def object_points(points, labels, n: int, shape, *, boxed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Points ``(N, M, 2)`` and labels ``(N, M)`` of ``N`` objects; label -1 rows are padding.

    Padding rows come back at (0, 0); an object without a box (``boxed`` False) needs a point.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 3 or pts.shape[0] != n or pts.shape[2] != 2:
        raise InputError(f"points must be an (N={n}, M, 2) array of (y, x), got shape {pts.shape}")
    lab = np.ones(pts.shape[:2], np.int64) if labels is None else np.asarray(labels).astype(np.int64)
    if lab.shape != pts.shape[:2]:
        raise InputError(f"labels must have shape {pts.shape[:2]}, got {lab.shape}")
    if not np.isin(lab, (-1, 0, 1)).all():
        raise InputError("point labels must be 1 (positive), 0 (negative) or -1 (padding)")
    real = lab >= 0
    if real.any():
        validate_points(pts[real], lab[real], shape)
    if not boxed and not real.any(axis=1).all():
        raise InputError("an object without a box needs at least one point")
    return np.where(real[..., None], pts, 0.0), lab


def is_scaled(embeddings: ImageEmbeddings) -> bool:
    """Whether ``embeddings`` were made at a scale other than 1 (prompts must be mapped)."""
    return getattr(embeddings, "native_shape", None) is not None and embeddings.scale != 1.0


def working_view(embeddings: ImageEmbeddings) -> ImageEmbeddings:
    """The same embeddings seen in the resized grid (kept, so its decoder caches persist)."""
    view = embeddings.__dict__.get("_working_view")
    if view is None:
        view = replace(embeddings, scale=1.0, native_shape=None)
        view.source = embeddings.source
        embeddings.__dict__["_working_view"] = view
    return view


def points_to_working(pts: np.ndarray, scale: float, shape: tuple[int, int]) -> np.ndarray:
    """Pixel-centre mapping of ``(..., 2)`` points onto the resized grid, kept inside it."""
    out = (np.asarray(pts, np.float64) + 0.5) * scale - 0.5
    out[..., 0] = np.clip(out[..., 0], 0, shape[0] - 1)
    out[..., 1] = np.clip(out[..., 1], 0, shape[1] - 1)
    return out


def box_to_working(box: np.ndarray, scale: float, shape: tuple[int, int]) -> np.ndarray:
    """A box on the resized grid, at least one pixel wide and inside it."""
    b = np.asarray(box, np.float64) * scale
    y0 = min(max(math.floor(b[0]), 0), shape[0] - 1)
    x0 = min(max(math.floor(b[1]), 0), shape[1] - 1)
    y1 = min(max(math.ceil(b[2]), y0 + 1), shape[0])
    x1 = min(max(math.ceil(b[3]), x0 + 1), shape[1])
    return np.array([y0, x0, y1, x1], np.float64)


def mask_to_working(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A plane-sized mask resized onto the working grid ``shape`` (bilinear, > 0.5)."""
    from skimage.transform import resize

    arr = np.asarray(mask, np.float32)
    return resize(arr, shape, order=1, anti_aliasing=False) > 0.5


def result_to_native(result, native: tuple[int, int]):
    """The result's masks resized back to the image's own grid (each mask around its extent)."""
    from skimage.transform import resize

    masks = np.asarray(result.masks)
    h, w = masks.shape[-2:]
    fy, fx = native[0] / h, native[1] / w
    out = np.zeros((masks.shape[0], *native), bool)
    for k, m in enumerate(masks):
        rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
        if rows.size == 0:
            continue
        y0, y1 = max(rows[0] - 1, 0), min(rows[-1] + 2, h)
        x0, x1 = max(cols[0] - 1, 0), min(cols[-1] + 2, w)
        ny0, ny1 = int(round(y0 * fy)), max(int(round(y1 * fy)), int(round(y0 * fy)) + 1)
        nx0, nx1 = int(round(x0 * fx)), max(int(round(x1 * fx)), int(round(x0 * fx)) + 1)
        crop = resize(m[y0:y1, x0:x1].astype(np.float32), (ny1 - ny0, nx1 - nx0), order=1,
                      anti_aliasing=False)  # fmt: skip
        out[k, ny0:ny1, nx0:nx1] = crop > 0.5
    return replace(result, masks=out)


def points_box(pts: np.ndarray | None, lab: np.ndarray | None) -> np.ndarray | None:
    """The box around the positive points (all points when none is positive)."""
    if pts is None:
        return None
    pos = pts[lab == 1] if (lab == 1).any() else pts
    return np.array([pos[:, 0].min(), pos[:, 1].min(), pos[:, 0].max() + 1, pos[:, 1].max() + 1])


def union_box(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest box holding boxes ``a`` and ``b``."""
    return np.array([min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])])


def check_model(model: SamscopeModel, embeddings: ImageEmbeddings) -> None:
    """InputError unless ``embeddings`` were computed with ``model`` at its input size."""
    sig = embeddings.signature
    if sig and sig.get("model_weights_hash") not in (None, model.weights_hash):
        raise InputError(
            f"these embeddings were computed with model {sig.get('model_name')!r} "
            f"(weights {str(sig.get('model_weights_hash'))[:12]}…), not with {model.name!r}; "
            "recompute them with this model"
        )
    if embeddings.input_size != model.image_size:
        raise InputError(
            f"embeddings were made for {embeddings.input_size}-px input, the model takes {model.image_size}"
        )


#: Radius of :func:`local_update`, in working diameters (a quarter of an object at the working
#: scale): chosen on the tuning split among 0.15, 0.25, 0.35, 0.5 and 0.75 (eval/clicks_tune_r*).
LOCAL_RADIUS = 0.25


def local_radius(model, embeddings: ImageEmbeddings, factor: float = LOCAL_RADIUS) -> float | None:
    """The radius of :func:`local_update` in the plane's pixels: ``factor`` working diameters,
    mapped back by the embeddings' scale (None for a model without a working diameter)."""
    working = getattr(getattr(model, "card", None), "working_diameter", None)
    if not working:
        return None
    return float(factor * working / float(getattr(embeddings, "scale", 1.0) or 1.0))


def local_update(
    previous: np.ndarray, new: np.ndarray, points: np.ndarray, radius: float
) -> np.ndarray:
    """A corrected mask that changes the previous one only near the new clicks.

    The decoder re-predicts the whole object from the accumulated prompts, and a click placed
    within a pixel or two of the boundary (the usual correction of a good mask) also moves the
    boundary far from the click, where the previous mask was right: on the generalist's tuning
    planes the first correction lowered the IoU of about a third of the objects. Taking the new
    mask within ``radius`` of the new clicks and the previous one elsewhere (FocalClick's local
    refinement: Chen et al., CVPR 2022) keeps what the user did not click on.

    Parameters
    ----------
    previous, new : numpy.ndarray of bool, (H, W)
        The object's mask before the clicks and the decoder's mask after them.
    points : numpy.ndarray, (n, 2)
        The new clicks ``(y, x)`` (positive and negative alike).
    radius : float
        In pixels of the plane (:func:`local_radius`).

    Returns
    -------
    numpy.ndarray of bool
        ``new`` within ``radius`` (Euclidean) of any new click, ``previous`` elsewhere; ``new``
        when there are no new clicks.

    Examples
    --------
    >>> prev = np.zeros((5, 12), bool); prev[1:4, 1:4] = True
    >>> new = np.zeros((5, 12), bool); new[1:4, 1:6] = True; new[1:4, 9:11] = True
    >>> out = local_update(prev, new, np.array([[2, 5]]), 2.5)
    >>> out[2].astype(int).tolist()  # grown at the click, the far blob not taken
    [0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    """
    previous, new = np.asarray(previous, bool), np.asarray(new, bool)
    if previous.shape != new.shape:
        raise InputError(f"mask shapes differ: {previous.shape} vs {new.shape}")
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return new
    h, w = new.shape
    near = np.zeros((h, w), bool)
    r = float(radius)
    for y, x in pts:
        y0, y1 = max(int(np.floor(y - r)), 0), min(int(np.ceil(y + r)) + 1, h)
        x0, x1 = max(int(np.floor(x - r)), 0), min(int(np.ceil(x + r)) + 1, w)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.ogrid[y0:y1, x0:x1]
        near[y0:y1, x0:x1] |= (yy - y) ** 2 + (xx - x) ** 2 <= r * r
    return np.where(near, new, previous)

