"""Interactive segmentation: points, boxes and masks → masks, on whole or tiled embeddings.

Coordinates are those of the image plane: points ``(y, x)``, boxes ``(y0, x0, y1, x1)`` with
exclusive ends, masks ``(H, W)``. Masks come back at the plane's resolution.

Embeddings made at a scale (``compute_embeddings(..., scale=s)``, for a scale-aware model and
objects far from its working size): prompts are still given in the image's own grid; points and
boxes are mapped onto the resized planes, decoded there, and the masks are resized back.

Tiled images: a prompt is routed to the tile that sees it with the largest margin to the tile's
cut borders (borders that lie inside the image). If the predicted mask reaches a cut border the
object continues outside that tile, so the prompt is routed again around the mask's extent, and
if no tile holds it the region around the object is embedded on demand (from the image the
embeddings were computed from) — an object that crosses tile borders comes out whole.

Prompt checks and the mapping onto scaled embeddings are :mod:`samscope.prompt_inputs`; the routing
and the decoder calls are :mod:`samscope.prompt_routing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samscope.embeddings import ImageEmbeddings
from samscope.errors import InputError
from samscope.image import Transform
from samscope.models.sam import SamscopeModel
from samscope.prompt_inputs import (
    box_to_working,
    check_model,
    is_scaled,
    mask_box,
    mask_to_working,
    object_points,
    points_box,
    points_to_working,
    result_to_native,
    union_box,
    validate_box,
    validate_boxes,
    validate_points,
    working_view,
)
from samscope.prompt_routing import MAX_REROUTES, Router, decode_at, mask_to_logits, upscale_logits

__all__ = [
    "PromptResult",
    "mask_to_logits",
    "segment_from_boxes",
    "segment_from_prompts",
    "segment_objects",
    "upscale_logits",
]


@dataclass(frozen=True)
class PromptResult:
    """Masks predicted for prompts.

    Attributes
    ----------
    masks : ndarray of bool, (K, H, W)
        At the plane's resolution.
    iou : ndarray of float32, (K,)
        The decoder's predicted IoU of each mask.
    logits : ndarray of float32, (K, L, L)
        Low-resolution logits (feed one back as ``mask_logits`` with ``previous=``).
    windows : ndarray of int, (K, 4)
        Image region ``(y0, x0, y1, x1)`` each mask's logits refer to (the whole plane when untiled).
    """

    masks: np.ndarray
    iou: np.ndarray
    logits: np.ndarray
    windows: np.ndarray

    @property
    def best(self) -> int:
        """Index of the mask with the highest predicted IoU."""
        return int(np.argmax(self.iou))

    @property
    def best_mask(self) -> np.ndarray:
        """The mask with the highest predicted IoU, ``(H, W)`` bool."""
        return self.masks[self.best]


def segment_from_prompts(
    model: SamscopeModel,
    embeddings: ImageEmbeddings,
    *,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    box: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    mask_logits: np.ndarray | None = None,
    previous: PromptResult | None = None,
    multimask: bool = False,
    plane: int = 0,
) -> PromptResult:
    """Segment one object from points, a box, a mask, or a combination.

    Parameters
    ----------
    model : SamscopeModel
        The model the embeddings were computed with.
    embeddings : ImageEmbeddings
    points : ndarray, (N, 2), optional
        ``(y, x)`` positions in the plane.
    labels : ndarray, (N,), optional
        1 positive (default), 0 negative.
    box : ndarray, (4,), optional
        ``(y0, x0, y1, x1)``, ends exclusive.
    mask : ndarray of bool, (H, W), optional
        A previous or rough mask: used as a dense prompt, and (without points or box) its
        bounding box as a box prompt.
    mask_logits : ndarray, (L, L), optional
        Low-resolution logits of an earlier result (``previous.logits[i]``); give ``previous``
        too on tiled embeddings so they are decoded in the same window.
    previous : PromptResult, optional
        The result ``mask_logits`` came from.
    multimask : bool
        Return three candidate masks (recommended for a single point) instead of one.
    plane : int
        Slice or frame of a stack.

    Returns
    -------
    PromptResult
        ``K`` = 3 masks with ``multimask`` else 1.

    Raises
    ------
    InputError
        Points outside the image, labels not 0/1, a zero-area box, no prompt at all, a mask of
        the wrong shape, embeddings of another model.
    """
    check_model(model, embeddings)
    if is_scaled(embeddings):
        native = embeddings.plane_shape
        pts, lab = validate_points(points, labels, native)
        bx = validate_box(box, native)
        if mask is not None and np.asarray(mask).shape != native:
            raise InputError(f"mask has shape {np.asarray(mask).shape}, expected the plane shape {native}")
        view, s = working_view(embeddings), embeddings.scale
        result = segment_from_prompts(
            model,
            view,
            points=None if pts is None else points_to_working(pts, s, view.image_shape),
            labels=lab,
            box=None if bx is None else box_to_working(bx, s, view.image_shape),
            mask=None if mask is None else mask_to_working(mask, view.image_shape),
            mask_logits=mask_logits,
            previous=previous,
            multimask=multimask,
            plane=plane,
        )
        return result_to_native(result, native)
    shape = embeddings.image_shape
    pts, lab = validate_points(points, labels, shape)
    bx = validate_box(box, shape)
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != shape:
            raise InputError(f"mask has shape {mask.shape}, expected the plane shape {shape}")
        if bx is None and pts is None:
            bx = mask_box(mask)
            if bx is None:
                raise InputError("the mask prompt is empty and no points or box were given")
    if pts is None and bx is None:
        if mask_logits is None:
            raise InputError("give at least one prompt: points, a box or a mask")
    router = Router(model, embeddings, plane)
    if previous is not None and mask_logits is not None:
        window = tuple(int(v) for v in previous.windows[0])
    else:
        extent = bx if bx is not None else points_box(pts, lab)
        window = router.choose(extent) if extent is not None else router.whole()

    low = model.arch.low_res_size
    for attempt in range(MAX_REROUTES + 1):
        logits_in = mask_logits
        if mask is not None and mask_logits is None:
            y0, x0, y1, x1 = window
            logits_in = mask_to_logits(
                mask[y0:y1, x0:x1], Transform((y1 - y0, x1 - x0), model.image_size), low
            )
        masks, iou, logits = decode_at(
            model,
            router,
            window,
            points=pts[None] if pts is not None else None,
            labels=lab[None] if lab is not None else None,
            boxes=bx[None] if bx is not None else None,
            mask_logits=logits_in[None] if logits_in is not None else None,
            multimask=multimask,
        )
        if embeddings.tiling is None or (previous is not None and mask_logits is not None):
            break
        best = masks[0, int(np.argmax(iou[0]))]
        mbox = mask_box(best)
        if mbox is None or router.margin(window, mbox) > 0 or attempt == MAX_REROUTES:
            break
        new = router.escape_window(mbox if bx is None else union_box(mbox, bx))
        if new == window:
            break
        window = new
    k = masks.shape[1]
    return PromptResult(
        masks=masks[0],
        iou=iou[0],
        logits=logits[0],
        windows=np.tile(np.array(window, dtype=np.int64), (k, 1)),
    )


def segment_from_boxes(
    model: SamscopeModel,
    embeddings: ImageEmbeddings,
    boxes: np.ndarray,
    *,
    multimask: bool = False,
    plane: int = 0,
    batch_size: int = 32,
) -> PromptResult:
    """Segment one object per box, many boxes per decoder batch.

    Parameters
    ----------
    boxes : ndarray, (N, 4)
        ``(y0, x0, y1, x1)`` boxes, ends exclusive.
    multimask : bool
        Decode three candidates per box and keep the one with the highest predicted IoU.
    batch_size : int
        Boxes per decoder call.

    Returns
    -------
    PromptResult
        ``K = N``: mask ``i`` belongs to box ``i``.
    """
    check_model(model, embeddings)
    if is_scaled(embeddings):
        return _segment_objects_scaled(
            model, embeddings, boxes=boxes, multimask=multimask, plane=plane, batch_size=batch_size,
            reroute=False,
        )  # fmt: skip
    valid = validate_boxes(boxes, embeddings.image_shape)
    router = Router(model, embeddings, plane)
    windows = [router.choose(b) for b in valid]
    found = _decode_objects(
        model, router, windows, valid, boxes=valid, multimask=multimask, batch_size=batch_size,
        reroute=False,
    )  # fmt: skip
    return PromptResult(*found, np.array(windows, dtype=np.int64).reshape(-1, 4))


def segment_objects(
    model: SamscopeModel,
    embeddings: ImageEmbeddings,
    *,
    boxes: np.ndarray | None = None,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    masks: np.ndarray | None = None,
    multimask: bool = False,
    plane: int = 0,
    batch_size: int = 32,
) -> PromptResult:
    """Segment ``N`` objects at once, each from a box plus optional points and a mask prompt.

    The batched form of :func:`segment_from_prompts` (used by volume propagation and tracking):
    every object has the same kinds of prompt (boxes and/or points, optionally masks); objects
    that route to the same window share decoder calls; on tiled embeddings an object whose mask
    reaches a cut tile border is decoded again in a window that holds it.

    Parameters
    ----------
    boxes : ndarray, (N, 4), optional
        ``(y0, x0, y1, x1)`` per object, ends exclusive. Boxes or points (or both) are needed.
    points : ndarray, (N, M, 2), optional
        ``(y, x)`` points per object; rows with label -1 are padding (objects with fewer points).
    labels : ndarray, (N, M), optional
        1 positive, 0 negative, -1 padding; all 1 when None.
    masks : ndarray of bool or float, (N, H, W), optional
        Dense mask prompts at the plane's resolution (e.g. the object on the neighbouring plane),
        converted to confident logits in each object's window.
    multimask : bool
        Decode three candidates per object and keep the one with the highest predicted IoU.
    plane : int
        Slice or frame of a stack.
    batch_size : int
        Objects per decoder call.

    Returns
    -------
    PromptResult
        ``K = N``: mask ``i`` belongs to object ``i``.

    Raises
    ------
    InputError
        Shapes that do not match ``N``, points outside the plane, labels not in {1, 0, -1}, a box
        of zero area or outside the plane.
    """
    check_model(model, embeddings)
    if is_scaled(embeddings):
        return _segment_objects_scaled(
            model, embeddings, boxes=boxes, points=points, labels=labels, masks=masks,
            multimask=multimask, plane=plane, batch_size=batch_size,
        )  # fmt: skip
    shape = embeddings.image_shape
    if boxes is None and points is None:
        raise InputError("give boxes or points (one row per object)")
    valid = None if boxes is None else validate_boxes(boxes, shape)
    n = len(valid) if valid is not None else len(np.asarray(points))
    pts = lab = None
    if points is not None:
        pts, lab = object_points(points, labels, n, shape, boxed=valid is not None)
    elif labels is not None:
        raise InputError("labels given without points")
    if masks is not None:
        masks = np.asarray(masks)
        if masks.shape != (n, *shape):
            raise InputError(f"masks must have shape {(n, *shape)}, got {masks.shape}")
    router = Router(model, embeddings, plane)
    if valid is not None:
        extents = valid
    elif n:
        extents = np.stack([points_box(p[k >= 0], k[k >= 0]) for p, k in zip(pts, lab, strict=True)])
    else:
        extents = np.zeros((0, 4))
    windows = [router.choose(b) for b in extents]
    found = _decode_objects(
        model, router, windows, extents, boxes=valid, points=pts, labels=lab, masks=masks,
        multimask=multimask, batch_size=batch_size, reroute=embeddings.tiling is not None,
    )  # fmt: skip
    return PromptResult(*found, np.array(windows, dtype=np.int64).reshape(-1, 4))


def _decode_objects(
    model: SamscopeModel,
    router: Router,
    windows: list,
    extents: np.ndarray,
    *,
    boxes: np.ndarray | None = None,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    masks: np.ndarray | None = None,
    multimask: bool,
    batch_size: int,
    reroute: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one object per row, grouped by window, in batches; best candidate of each.

    With ``reroute``, an object whose mask reaches a cut border of its window is decoded again in
    a window that holds it (``windows`` is updated in place), at most :data:`MAX_REROUTES` times.
    Returns masks ``(N, H, W)``, predicted IoU ``(N,)`` and low-resolution logits ``(N, L, L)``.
    """
    n = len(extents)
    h, w = router.emb.image_shape
    low = model.arch.low_res_size
    out_masks = np.zeros((n, h, w), bool)
    out_iou = np.zeros(n, np.float32)
    out_logits = np.zeros((n, low, low), np.float32)
    todo = list(range(n))
    for attempt in range(MAX_REROUTES + 1):
        groups: dict[tuple[int, int, int, int], list[int]] = {}
        for i in todo:
            groups.setdefault(windows[i], []).append(i)
        for win, idx in groups.items():
            y0, x0, y1, x1 = win
            transform = Transform((y1 - y0, x1 - x0), model.image_size)
            for start in range(0, len(idx), batch_size):
                chunk = idx[start : start + batch_size]
                logits_in = None
                if masks is not None:
                    logits_in = np.stack(
                        [mask_to_logits(masks[i, y0:y1, x0:x1], transform, low) for i in chunk]
                    )
                m, iou, logits = decode_at(
                    model,
                    router,
                    win,
                    points=points[chunk] if points is not None else None,
                    labels=labels[chunk] if labels is not None else None,
                    boxes=boxes[chunk] if boxes is not None else None,
                    mask_logits=logits_in,
                    multimask=multimask,
                )
                pick = iou.argmax(axis=1)
                rows = np.arange(len(chunk))
                out_masks[chunk] = m[rows, pick]
                out_iou[chunk] = iou[rows, pick]
                out_logits[chunk] = logits[rows, pick]
        if not reroute or attempt == MAX_REROUTES:
            break
        todo = _escaping(router, todo, windows, extents, out_masks)
        if not todo:
            break
    return out_masks, out_iou, out_logits


def _escaping(router: Router, todo: list[int], windows: list, extents: np.ndarray, masks: np.ndarray) -> list[int]:
    """The objects whose mask reaches a cut border, each given a window that holds it."""
    again = []
    for i in todo:
        mbox = mask_box(masks[i])
        if mbox is None or router.margin(windows[i], mbox) > 0:
            continue
        new = router.escape_window(union_box(mbox, extents[i]))
        if new != windows[i]:
            windows[i] = new
            again.append(i)
    return again


def _segment_objects_scaled(
    model, embeddings, *, boxes=None, points=None, labels=None, masks=None, reroute=True, **kwargs
):
    """:func:`segment_objects` (``reroute=False``: :func:`segment_from_boxes`) on embeddings made
    at a scale: prompts mapped in, masks out."""
    native = embeddings.plane_shape
    view, s = working_view(embeddings), embeddings.scale
    work_boxes = work_points = work_masks = None
    if boxes is not None:
        arr = np.asarray(boxes, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise InputError(f"boxes must be an (N, 4) array of (y0, x0, y1, x1), got shape {arr.shape}")
        for b in arr:
            validate_box(b, native)
        work_boxes = np.array([box_to_working(b, s, view.image_shape) for b in arr]).reshape(-1, 4)
    if points is not None:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim == 3 and pts.shape[-1] == 2:
            real = (np.ones(pts.shape[:2], bool) if labels is None else np.asarray(labels) >= 0)
            if real.shape == pts.shape[:2] and real.any():
                validate_points(pts[real], None, native)
            work_points = points_to_working(pts, s, view.image_shape)
        else:
            work_points = pts  # the unscaled call reports the shape error
    if masks is not None:
        arr = np.asarray(masks)
        if arr.ndim != 3 or arr.shape[1:] != native:
            raise InputError(f"masks must have shape (N, {native[0]}, {native[1]}), got {arr.shape}")
        work_masks = np.stack([mask_to_working(m, view.image_shape) for m in arr]) if len(arr) else (
            np.zeros((0, *view.image_shape), bool)
        )
    if not reroute:
        result = segment_from_boxes(model, view, work_boxes, **kwargs)
    else:
        result = segment_objects(
            model, view, boxes=work_boxes, points=work_points, labels=labels, masks=work_masks, **kwargs
        )
    return result_to_native(result, native)
