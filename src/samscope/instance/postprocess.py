"""Post-processing shared by the automatic modes: scores, suppression, size and shape filters.

Pure numpy / scipy / scikit-image (no torch), so every threshold can be re-applied to stored
predictions without the network. Conventions:

- boxes are ``(y0, x0, y1, x1)`` with exclusive ends (slice bounds), as
  :class:`~samscope.instance.instances.CroppedMasks` stores them;
- masks are either a :class:`CroppedMasks` or a dense ``(n, H, W)`` bool stack;
- "keep" functions (:func:`box_nms`, :func:`mask_overlap_filter`, :func:`filter_small`) return the
  *indices* of the kept objects, so callers can take the matching scores, points or logits with
  the same index; :func:`select` takes a subset of a :class:`CroppedMasks`;
- inputs are never modified.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from samscope.errors import InputError
from samscope.instance.instances import CroppedMasks

__all__ = [
    "box_iou",
    "box_nms",
    "boxes_near_edge",
    "filter_small",
    "largest_component",
    "mask_overlap_filter",
    "masks_to_boxes",
    "remove_small_regions",
    "select",
    "stability_score",
    "upsample_logit_crop",
    "upsample_logit_values",
]

#: 8-connectivity in 2-D (``scipy.ndimage`` structuring element).
_CONNECTIVITY = {1: ndi.generate_binary_structure(2, 1), 2: ndi.generate_binary_structure(2, 2)}


def _as_cropped(masks: CroppedMasks | np.ndarray) -> CroppedMasks:
    if isinstance(masks, CroppedMasks):
        return masks
    arr = np.asarray(masks)
    if arr.ndim != 3:
        raise InputError(f"expected CroppedMasks or an (n, H, W) mask stack, got shape {arr.shape}")
    return CroppedMasks.from_dense(arr.astype(bool, copy=False))


def _check_unit(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise InputError(f"{name} must lie in [0, 1], got {value}")
    return value


# -------------------------------------------------------------------------------------------
# scores
# -------------------------------------------------------------------------------------------


def stability_score(
    logits: np.ndarray, *, offset: float = 1.0, threshold: float = 0.0
) -> np.ndarray:
    """SAM's stability score: IoU of a mask thresholded at ``threshold ± offset``.

    Because ``logits > t + offset`` is a subset of ``logits > t − offset``, the IoU is the ratio of
    the two pixel counts. SAM evaluates it on the upsampled logits (AMG does so on its survivors);
    on low-resolution logits it is a cheaper estimate that differs on small objects.

    Parameters
    ----------
    logits : ndarray, (..., h, w)
        Mask logits (any float dtype).
    offset : float
        Shift of the cut-off (SAM's ``stability_score_offset``, default 1.0); ``>= 0``.
    threshold : float
        The mask threshold on logits (0 for SAM).

    Returns
    -------
    ndarray of float32, (...)
        In [0, 1]; 0 where the mask at ``threshold − offset`` is empty.

    Examples
    --------
    >>> lg = np.array([[[-2.0, -0.5, 0.5, 2.0]]])
    >>> stability_score(lg, offset=1.0).tolist()  # 1 pixel > 1, 3 pixels > -1
    [0.3333333432674408]
    """
    if offset < 0:
        raise InputError(f"stability offset must be >= 0, got {offset}")
    lg = np.asarray(logits)
    if lg.ndim < 2:
        raise InputError(f"logits need at least 2 dimensions (h, w), got shape {lg.shape}")
    inter = np.count_nonzero(lg > threshold + offset, axis=(-2, -1))
    union = np.count_nonzero(lg > threshold - offset, axis=(-2, -1))
    out = np.zeros(np.shape(inter), np.float32)
    np.divide(inter, union, out=out, where=union > 0, casting="unsafe")
    return out


# -------------------------------------------------------------------------------------------
# boxes
# -------------------------------------------------------------------------------------------


def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Bounding boxes of a dense mask stack.

    Parameters
    ----------
    masks : ndarray of bool, (n, H, W)

    Returns
    -------
    ndarray of int64, (n, 4)
        ``(y0, x0, y1, x1)``, ends exclusive; ``(0, 0, 0, 0)`` for an empty mask.

    Examples
    --------
    >>> m = np.zeros((1, 4, 5), bool); m[0, 1:3, 2:5] = True
    >>> masks_to_boxes(m).tolist()
    [[1, 2, 3, 5]]
    """
    m = np.asarray(masks, dtype=bool)
    if m.ndim != 3:
        raise InputError(f"expected masks of shape (n, H, W), got {m.shape}")
    n, h, w = m.shape
    rows = m.any(axis=2)  # (n, H)
    cols = m.any(axis=1)  # (n, W)
    nonempty = rows.any(axis=1)
    y0 = np.argmax(rows, axis=1)
    y1 = h - np.argmax(rows[:, ::-1], axis=1)
    x0 = np.argmax(cols, axis=1)
    x1 = w - np.argmax(cols[:, ::-1], axis=1)
    boxes = np.stack([y0, x0, y1, x1], axis=1).astype(np.int64)
    boxes[~nonempty] = 0
    return boxes


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of boxes ``(y0, x0, y1, x1)`` (ends exclusive).

    Returns
    -------
    ndarray of float64, (n, m)
        0 where both boxes are empty.

    Examples
    --------
    >>> box_iou(np.array([[0, 0, 2, 2]]), np.array([[1, 1, 3, 3], [0, 0, 2, 2]])).tolist()
    [[0.14285714285714285, 1.0]]
    """
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    wh = np.clip(hi - lo, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def box_nms(
    boxes: np.ndarray, scores: np.ndarray, *, iou_thresh: float, block: int = 1024
) -> np.ndarray:
    """Greedy non-maximum suppression of boxes (as ``torchvision.ops.nms``), vectorised in blocks.

    Boxes are visited in order of decreasing score; a box is dropped when its IoU with an
    already kept box is *greater* than ``iou_thresh``. Ties in score keep the input order.

    Parameters
    ----------
    boxes : ndarray, (n, 4)
        ``(y0, x0, y1, x1)``, ends exclusive (areas are ``(y1 - y0)·(x1 - x0)``).
    scores : ndarray, (n,)
    iou_thresh : float
        In [0, 1]; 1 keeps every box.
    block : int
        Boxes compared at once (memory is ``O(block · n)``).

    Returns
    -------
    ndarray of int64
        Indices of the kept boxes, by decreasing score.

    Examples
    --------
    >>> b = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]])
    >>> box_nms(b, np.array([0.9, 0.8, 0.7]), iou_thresh=0.5).tolist()
    [0, 2]
    """
    iou_thresh = _check_unit("iou_thresh", iou_thresh)
    bx = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sc = np.asarray(scores, dtype=np.float64).ravel()
    if len(bx) != len(sc):
        raise InputError(f"{len(bx)} boxes but {len(sc)} scores")
    order = np.argsort(-sc, kind="stable")
    kept: list[np.ndarray] = []
    kept_boxes = np.zeros((0, 4))
    for start in range(0, len(order), block):
        idx = order[start : start + block]
        cand = bx[idx]
        alive = np.ones(len(idx), bool)
        if len(kept_boxes):  # suppressed by boxes kept in earlier blocks
            alive &= ~(box_iou(cand, kept_boxes) > iou_thresh).any(axis=1)
        over = box_iou(cand, cand) > iou_thresh
        for i in range(len(idx)):  # greedy within the block, one row of the matrix per step
            if alive[i]:
                alive[i + 1 :] &= ~over[i, i + 1 :]
        new = idx[alive]
        kept.append(new)
        kept_boxes = np.concatenate([kept_boxes, bx[new]])
    return np.concatenate(kept).astype(np.int64) if kept else np.zeros(0, np.int64)


def boxes_near_edge(
    boxes: np.ndarray,
    crop_box: tuple[int, int, int, int],
    image_shape: tuple[int, int],
    *,
    atol: float = 20.0,
) -> np.ndarray:
    """Which boxes touch a crop's edge where that edge lies inside the image (SAM's crop filter).

    Parameters
    ----------
    boxes : ndarray, (n, 4)
        ``(y0, x0, y1, x1)`` in *image* coordinates, ends exclusive.
    crop_box : (int, int, int, int)
        The crop ``(y0, x0, y1, x1)``.
    image_shape : (int, int)
    atol : float
        Distance in pixels that counts as touching.

    Returns
    -------
    ndarray of bool, (n,)
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    crop = np.asarray(crop_box, dtype=np.float64)
    h, w = image_shape
    # SAM compares inclusive max coordinates; ends here are exclusive, so compare y1 - 1, x1 - 1.
    inc = b.copy()
    inc[:, 2:] -= 1
    crop_inc = crop.copy()
    crop_inc[2:] -= 1
    image_inc = np.array([0.0, 0.0, h - 1.0, w - 1.0])
    near_crop = np.abs(inc - crop_inc[None]) <= atol
    near_image = np.abs(inc - image_inc[None]) <= atol
    return (near_crop & ~near_image).any(axis=1)


# -------------------------------------------------------------------------------------------
# masks
# -------------------------------------------------------------------------------------------


def select(masks: CroppedMasks, indices: np.ndarray) -> CroppedMasks:
    """The masks at ``indices`` (in that order), sharing the crops (not copied)."""
    idx = np.asarray(indices, dtype=np.int64).ravel()
    return CroppedMasks(
        masks.shape, masks.boxes[idx].reshape(-1, 4), tuple(masks.crops[i] for i in idx)
    )


def _tight(y0: int, x0: int, crop: np.ndarray):
    """Shrink a crop at ``(y0, x0)`` to its content: ``(box, view of crop)``."""
    ys = np.flatnonzero(crop.any(axis=1))
    if ys.size == 0:
        return (0, 0, 0, 0), np.zeros((0, 0), bool)
    xs = np.flatnonzero(crop.any(axis=0))
    sub = crop[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1]
    return (y0 + ys[0], x0 + xs[0], y0 + ys[-1] + 1, x0 + xs[-1] + 1), sub


def largest_component(
    masks: CroppedMasks | np.ndarray, *, connectivity: int = 2
) -> CroppedMasks:
    """Keep only the largest connected component of each mask (boxes shrink to it).

    Parameters
    ----------
    masks : CroppedMasks or ndarray of bool, (n, H, W)
    connectivity : int
        1 (4-connected) or 2 (8-connected, default, as SAM's region filter).

    Returns
    -------
    CroppedMasks
        Same number of masks, in the same order (an empty mask stays empty). Ties between
        equally large components keep the first in raster order.
    """
    if connectivity not in _CONNECTIVITY:
        raise InputError(f"connectivity must be 1 or 2, got {connectivity}")
    cm = _as_cropped(masks)
    structure = _CONNECTIVITY[connectivity]
    boxes, crops = [], []
    for box, crop in zip(cm.boxes, cm.crops, strict=True):
        if crop.size == 0 or not crop.any():
            boxes.append((0, 0, 0, 0))
            crops.append(np.zeros((0, 0), bool))
            continue
        lab, n = ndi.label(crop, structure=structure)
        if n > 1:
            sizes = np.bincount(lab.ravel())
            sizes[0] = 0
            crop = lab == int(np.argmax(sizes))
        b, sub = _tight(int(box[0]), int(box[1]), crop)
        boxes.append(b)
        crops.append(sub.copy() if n == 1 else sub)  # never share memory with the input
    return CroppedMasks(cm.shape, np.array(boxes, np.int64).reshape(-1, 4), tuple(crops))


def filter_small(masks: CroppedMasks | np.ndarray, *, min_size: int) -> np.ndarray:
    """Indices of the masks with at least ``min_size`` pixels.

    Parameters
    ----------
    masks : CroppedMasks or ndarray of bool, (n, H, W)
    min_size : int
        ``>= 0``; 0 keeps every mask, including empty ones.

    Returns
    -------
    ndarray of int64
        Ascending indices.

    Examples
    --------
    >>> m = np.zeros((2, 5, 5), bool); m[0, :3, :3] = True; m[1, 4, 4] = True
    >>> filter_small(m, min_size=2).tolist()
    [0]
    """
    if min_size < 0:
        raise InputError(f"min_size must be >= 0, got {min_size}")
    if isinstance(masks, CroppedMasks):
        areas = masks.areas()
    else:
        arr = np.asarray(masks, dtype=bool)
        if arr.ndim != 3:
            raise InputError(f"expected masks of shape (n, H, W), got {arr.shape}")
        areas = arr.reshape(len(arr), -1).sum(axis=1)
    return np.flatnonzero(areas >= min_size).astype(np.int64)


def remove_small_regions(
    mask: np.ndarray, *, min_area: int, mode: str
) -> tuple[np.ndarray, bool]:
    """Remove islands or fill holes smaller than ``min_area`` in one mask (SAM's region filter).

    As ``segment_anything.utils.amg.remove_small_regions``: components are 8-connected; in
    ``"islands"`` mode small foreground components are removed, but if every component is small
    the largest one is kept; in ``"holes"`` mode small background components are filled (every
    background component counts, also one touching the image border, as in SAM).

    Parameters
    ----------
    mask : ndarray of bool, (H, W)
    min_area : int
    mode : {"islands", "holes"}

    Returns
    -------
    mask : ndarray of bool, (H, W)
        A new array.
    changed : bool
    """
    if mode not in ("islands", "holes"):
        raise InputError(f"mode must be 'islands' or 'holes', got {mode!r}")
    m = np.asarray(mask, dtype=bool)
    correct_holes = mode == "holes"
    work = m ^ correct_holes  # the components to consider are foreground (islands) or holes
    lab, n = ndi.label(work, structure=_CONNECTIVITY[2])
    if n == 0:
        return m.copy(), False
    sizes = np.bincount(lab.ravel())[1:]
    small = np.flatnonzero(sizes < min_area) + 1
    if small.size == 0:
        return m.copy(), False
    if correct_holes:  # label 0 of the working mask is the mask itself
        return np.isin(lab, np.concatenate([[0], small])), True
    keep = np.setdiff1d(np.arange(1, n + 1), small)
    if keep.size == 0:  # every island is small: keep the largest
        keep = np.array([int(np.argmax(sizes)) + 1])
    return np.isin(lab, keep), True


def mask_overlap_filter(
    masks: CroppedMasks | np.ndarray,
    scores: np.ndarray,
    *,
    overlap_thresh: float,
    metric: str = "fraction",
) -> np.ndarray:
    """Greedy suppression of masks that overlap a better, already kept mask (mask NMS).

    Masks are visited by decreasing score; a mask is dropped when, for *any* kept mask ``B``,

    - ``metric="fraction"``: ``|A ∩ B| / |A| > overlap_thresh`` (the share of the candidate ``A``
      covered by the better mask; the "overlap with a neighbour" of the foreground mode of
      Jadhav et al. 2026);
    - ``metric="iou"``: ``|A ∩ B| / |A ∪ B| > overlap_thresh`` (mask NMS as µSAM's APG).

    Only pairs whose boxes intersect are compared pixel by pixel. Empty masks are dropped.

    Parameters
    ----------
    masks : CroppedMasks or ndarray of bool, (n, H, W)
    scores : ndarray, (n,)
    overlap_thresh : float
        In [0, 1].
    metric : {"fraction", "iou"}

    Returns
    -------
    ndarray of int64
        Indices of the kept masks, by decreasing score.

    Examples
    --------
    >>> m = np.zeros((3, 6, 6), bool)
    >>> m[0, :4, :4] = True; m[1, 1:4, 1:4] = True; m[2, 3:6, 3:6] = True
    >>> mask_overlap_filter(m, np.array([0.9, 0.8, 0.7]), overlap_thresh=0.5).tolist()
    [0, 2]
    """
    overlap_thresh = _check_unit("overlap_thresh", overlap_thresh)
    if metric not in ("fraction", "iou"):
        raise InputError(f"metric must be 'fraction' or 'iou', got {metric!r}")
    cm = _as_cropped(masks)
    sc = np.asarray(scores, dtype=np.float64).ravel()
    if len(sc) != len(cm):
        raise InputError(f"{len(cm)} masks but {len(sc)} scores")
    areas = cm.areas()
    boxes = cm.boxes
    order = np.argsort(-sc, kind="stable")
    kept: list[int] = []
    kept_boxes = np.zeros((len(cm), 4), np.int64)
    for i in order:
        a_area = areas[i]
        if a_area == 0:
            continue
        ay0, ax0, ay1, ax1 = boxes[i]
        nk = len(kept)
        if nk:
            kb = kept_boxes[:nk]
            hit = np.flatnonzero(
                (np.maximum(kb[:, 0], ay0) < np.minimum(kb[:, 2], ay1))
                & (np.maximum(kb[:, 1], ax0) < np.minimum(kb[:, 3], ax1))
            )
            drop = False
            for j in hit:
                k = kept[j]
                by0, bx0, by1, bx1 = boxes[k]
                y0, x0 = max(ay0, by0), max(ax0, bx0)
                y1, x1 = min(ay1, by1), min(ax1, bx1)
                a_sub = cm.crops[i][y0 - ay0 : y1 - ay0, x0 - ax0 : x1 - ax0]
                b_sub = cm.crops[k][y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0]
                inter = int(np.count_nonzero(a_sub & b_sub))
                if metric == "fraction":
                    value = inter / a_area
                else:
                    value = inter / (a_area + areas[k] - inter)
                if value > overlap_thresh:
                    drop = True
                    break
            if drop:
                continue
        kept_boxes[nk] = boxes[i]
        kept.append(int(i))
    return np.array(kept, np.int64)


# -------------------------------------------------------------------------------------------
# low-resolution logits → original pixels
# -------------------------------------------------------------------------------------------


def upsample_logit_values(
    crop: np.ndarray, origin: tuple[int, int], ay: np.ndarray, ax: np.ndarray
) -> tuple[tuple[int, int], np.ndarray]:
    """Upsampled values of a crop of low-resolution logits, on the pixels the crop decides.

    With the separable bilinear maps ``ay`` (``H × L``) and ``ax`` (``W × L``) of
    :meth:`samscope.image.Transform.interpolation_matrices`, the original-resolution logits are
    ``ay @ logits @ ax.T``. Every pixel samples two neighbouring low-resolution nodes per axis;
    only the pixels whose nodes all lie in the crop are evaluated. When the crop covers the nodes
    above a level plus one node of margin wherever the logits continue, every pixel above that
    level is among them (a pixel can only exceed a level if one of its nodes does), so counts and
    masks at that level computed here equal those of the full map.

    Parameters
    ----------
    crop : ndarray, (h, w)
        Low-resolution logits ``logits[r0:r0+h, c0:c0+w]``.
    origin : (int, int)
        ``(r0, c0)``.
    ay, ax : ndarray of float32
        ``(H, L)`` and ``(W, L)`` interpolation matrices.

    Returns
    -------
    (y0, x0) : (int, int)
        Original-pixel position of the first evaluated row and column.
    values : ndarray of float32, (n_rows, n_cols)
        Empty when no pixel has all its nodes in the crop.
    """
    r0, c0 = origin
    h, w = crop.shape
    rows = _support(ay, r0, r0 + h)
    cols = _support(ax, c0, c0 + w)
    if rows[1] <= rows[0] or cols[1] <= cols[0]:
        return (0, 0), np.zeros((0, 0), np.float32)
    my = ay[rows[0] : rows[1], r0 : r0 + h]
    mx = ax[cols[0] : cols[1], c0 : c0 + w]
    return (rows[0], cols[0]), my @ np.asarray(crop, np.float32) @ mx.T


def upsample_logit_crop(
    crop: np.ndarray,
    origin: tuple[int, int],
    ay: np.ndarray,
    ax: np.ndarray,
    *,
    threshold: float = 0.0,
) -> tuple[tuple[int, int, int, int], np.ndarray]:
    """The mask ``upsampled logits > threshold`` of a crop of low-resolution logits.

    See :func:`upsample_logit_values`; the crop must cover the nodes above ``threshold`` plus one
    node of margin.

    Returns
    -------
    box : (int, int, int, int)
        ``(y0, x0, y1, x1)`` of the mask in original pixels (``(0, 0, 0, 0)`` if empty).
    mask : ndarray of bool
        The mask cropped to ``box``.
    """
    (y0, x0), values = upsample_logit_values(crop, origin, ay, ax)
    if values.size == 0:
        return (0, 0, 0, 0), np.zeros((0, 0), bool)
    return _tight(y0, x0, values > threshold)


def _support(mat: np.ndarray, lo: int, hi: int) -> tuple[int, int]:
    """Rows of an interpolation matrix whose non-zero weights all lie in columns ``[lo, hi)``.

    A bilinear row has its weights on two adjacent columns, so a row that reaches outside the
    range has a weight in column ``lo - 1`` or ``hi``. The rows are ordered by position, so the
    rows inside form one run.
    """
    inside = (mat[:, lo:hi] != 0).any(axis=1)
    if lo > 0:
        inside &= mat[:, lo - 1] == 0
    if hi < mat.shape[1]:
        inside &= mat[:, hi] == 0
    idx = np.flatnonzero(inside)
    if idx.size == 0:
        return 0, 0
    return int(idx[0]), int(idx[-1]) + 1
