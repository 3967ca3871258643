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
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from samscope.embeddings import ImageEmbeddings
from samscope.errors import InputError
from samscope.image import Transform, prepare_input
from samscope.models.sam import SamscopeModel
from samscope.tiling import window_around

__all__ = [
    "PromptResult",
    "mask_to_logits",
    "segment_from_boxes",
    "segment_from_prompts",
    "segment_objects",
    "upscale_logits",
]

log = logging.getLogger(__name__)

_MAX_REROUTES = 2
_DECODER_CACHE_SIZE = 4  # ≈20 MB each for ViT-B


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


def upscale_logits(logits: torch.Tensor, transform: Transform) -> torch.Tensor:
    """Bilinear upsampling of ``(K, L, L)`` decoder logits to the original ``(K, H, W)`` grid.

    Samples pixel ``i`` at low-resolution coordinate ``(i + 0.5)·f·L/S − 0.5`` (edge-clamped),
    exactly the map of :meth:`samscope.image.Transform.interpolation_matrices`, computed by one
    ``F.interpolate`` on the crop of the logits that covers the image (not on the padding).
    """
    k, lh, lw = logits.shape
    h, w = transform.original_shape
    fy, fx = transform.factors
    sy = fy * lh / transform.target_size
    sx = fx * lw / transform.target_size
    ny = min(lh, math.ceil(h * sy) + 2)
    nx = min(lw, math.ceil(w * sx) + 2)
    crop = logits[None, :, :ny, :nx]
    out = F.interpolate(
        crop,
        scale_factor=(1.0 / sy, 1.0 / sx),
        mode="bilinear",
        align_corners=False,
        recompute_scale_factor=False,
    )[0]
    if out.shape[-2] < h or out.shape[-1] < w:  # only when the crop hit the padded border
        out = F.pad(
            out, (0, max(0, w - out.shape[-1]), 0, max(0, h - out.shape[-2])), mode="replicate"
        )
    return out[:, :h, :w]


def mask_to_logits(mask: np.ndarray, transform: Transform, low_res: int) -> np.ndarray:
    """A bool/float mask at original resolution as decoder mask-prompt logits ``(L, L)``.

    The mask is resampled to the decoder grid and mapped through the inverse sigmoid, clipped to
    ±6.9 (probabilities 0.001–0.999), so a hard mask becomes a confident prompt.
    """
    prob = transform.mask_to_input(np.asarray(mask, dtype=np.float32), low_res)
    prob = np.clip(prob, 1e-3, 1 - 1e-3)
    return np.log(prob / (1 - prob)).astype(np.float32)


def _validate_points(points, labels, shape) -> tuple[np.ndarray | None, np.ndarray | None]:
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


def _validate_box(box, shape) -> np.ndarray | None:
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


def _mask_box(mask: np.ndarray) -> np.ndarray | None:
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    return np.array([ys[0], xs[0], ys[-1] + 1, xs[-1] + 1], dtype=np.float64)


#: Boxes larger than this many working diameters are decoded in a zoomed-out window.
_ZOOM_ABOVE = 3.0


class _Router:
    """Finds the embedding (tile or on-demand window) to decode a prompt with."""

    def __init__(self, model: SamscopeModel, embeddings: ImageEmbeddings, plane: int) -> None:
        self.model = model
        self.emb = embeddings
        self.plane = plane

    def whole(self) -> tuple[int, int, int, int]:
        h, w = self.emb.image_shape
        return (0, 0, h, w)

    def margin(self, window: tuple[int, int, int, int], box: np.ndarray) -> float:
        h, w = self.emb.image_shape
        y0, x0, y1, x1 = window
        gaps = [
            g
            for g, cut in (
                (box[0] - y0, y0 > 0),
                (box[1] - x0, x0 > 0),
                (y1 - box[2], y1 < h),
                (x1 - box[3], x1 < w),
            )
            if cut
        ]
        return float(min(gaps)) if gaps else math.inf

    def choose(self, box: np.ndarray) -> tuple[int, int, int, int]:
        if self.emb.tiling is None:
            return self.whole()
        zoomed = self.zoomed_window(box)
        if zoomed is not None:
            return zoomed
        best = self.emb.tiling.best_tile_for_box(box)
        return best.outer

    def zoomed_window(self, box: np.ndarray) -> tuple[int, int, int, int] | None:
        """For a scale-aware model and an object far larger than its working size, a window
        around ``box`` that the encoder input shrinks so the object appears at about twice the
        working diameter (None: the tiles are fine, or no image to embed a window from)."""
        working = getattr(self.model.card, "working_diameter", None)
        if not working or getattr(self.emb, "source", None) is None:
            return None
        side = float(max(box[2] - box[0], box[3] - box[1]))
        if side <= _ZOOM_ABOVE * working:
            return None
        extent = int(np.ceil(side * self.model.image_size / (2.0 * working)))
        return window_around(box, self.emb.image_shape, (extent, extent), pad=0.0)

    def decoder_for(self, window: tuple[int, int, int, int]):
        # Prompt-independent decoder state lives on the embeddings object (a few most recent
        # windows), so consecutive prompts on the same image skip it entirely.
        store = self.emb.__dict__.setdefault("_decoder_caches", {})
        key = (self.model.weights_hash, self.model.precision, self.plane, window)
        cache = store.pop(key, None)
        if cache is None:
            cache = self.model.prepare_decoder(self._embedding(window))
        store[key] = cache  # most recent last
        while len(store) > _DECODER_CACHE_SIZE:
            store.pop(next(iter(store)))
        return cache

    def _embedding(self, window: tuple[int, int, int, int]) -> torch.Tensor:
        for tile in self.emb.tiles:
            if tile.outer == window:
                return self.emb.get(self.plane, tile.index)
        source = getattr(self.emb, "source", None)
        if source is None:
            raise InputError(
                "this object is larger than a tile and its halo, and the embeddings carry no image to "
                "embed a larger window from; compute them with a larger tile_shape/halo or attach the "
                "image as embeddings.source"
            )
        key = (self.plane, window)
        extra = self.emb.__dict__.setdefault("_window_embeddings", {})
        if key not in extra:
            plane = np.asarray(
                source
                if self.emb.n_planes == 1 and self.emb.axes in ("YX", "YXC")
                else source[self.plane]
            )
            y0, x0, y1, x1 = window
            norm = self.model.card.normalisation
            from samscope.embeddings import plane_value_range

            ranges = self.emb.value_ranges  # the plane's tiles were normalised with this range
            if self.plane not in ranges:
                ranges[self.plane] = plane_value_range(plane, self.model)
            pixels, _ = prepare_input(
                plane[y0:y1, x0:x1],
                self.model.image_size,
                low_percentile=norm.low_percentile,
                high_percentile=norm.high_percentile,
                mean=norm.mean,
                std=norm.std,
                value_range=ranges[self.plane],
                pad=norm.pad,
            )
            log.info("embedding an on-demand window %s for an object crossing tiles", window)
            extra[key] = self.model.encode(
                torch.from_numpy(pixels)[None], precision=self.emb.precision
            )
        return extra[key]

    def escape_window(self, mask_box: np.ndarray) -> tuple[int, int, int, int]:
        """A window that holds ``mask_box`` with a margin: a tile if one does, else an on-demand window."""
        grid = self.emb.tiling
        tile = grid.best_tile_for_box(mask_box)
        if grid.margin(tile, mask_box) > 0:
            return tile.outer
        outer = max(grid.tiles, key=lambda t: t.outer_shape[0] * t.outer_shape[1]).outer_shape
        return window_around(mask_box, self.emb.image_shape, outer)


def _decode_at(
    model: SamscopeModel,
    router: _Router,
    window: tuple[int, int, int, int],
    *,
    points: np.ndarray | None,
    labels: np.ndarray | None,
    boxes: np.ndarray | None,
    mask_logits: np.ndarray | None,
    multimask: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode ``P`` prompts (one object each) in ``window``; returns masks (P, K, H, W), iou, logits."""
    y0, x0, y1, x1 = window
    transform = Transform((y1 - y0, x1 - x0), model.image_size)
    offset = np.array([y0, x0], dtype=np.float64)
    n = len(boxes) if boxes is not None else len(points)
    pts_t = lab_t = box_t = mask_t = None
    if points is not None:
        local = points - offset  # (P, N, 2)
        xy = transform.points_to_input(local.reshape(-1, 2)).reshape(local.shape)
        pts_t = torch.from_numpy(xy.astype(np.float32))
        lab_t = torch.from_numpy(labels)
    if boxes is not None:
        local = boxes - np.concatenate([offset, offset])
        box_t = torch.from_numpy(transform.boxes_to_input(local).astype(np.float32))
    if mask_logits is not None:
        mask_t = torch.from_numpy(
            np.asarray(mask_logits, np.float32).reshape(n, 1, *mask_logits.shape[-2:])
        )
    sparse, dense = model.embed_prompts(points=pts_t, labels=lab_t, boxes=box_t, masks=mask_t)
    cache = router.decoder_for(window)
    logits, iou = model.decode(cache, sparse, dense, multimask=multimask)
    with torch.inference_mode():
        up = upscale_logits(logits.reshape(-1, *logits.shape[-2:]), transform) > 0
    h, w = router.emb.image_shape
    masks = np.zeros((n, logits.shape[1], h, w), bool)
    masks[:, :, y0:y1, x0:x1] = up.reshape(n, logits.shape[1], y1 - y0, x1 - x0).cpu().numpy()
    return masks, iou.cpu().numpy().astype(np.float32), logits.cpu().numpy().astype(np.float32)


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
    _check_model(model, embeddings)
    if _is_scaled(embeddings):
        native = embeddings.plane_shape
        pts, lab = _validate_points(points, labels, native)
        bx = _validate_box(box, native)
        if mask is not None and np.asarray(mask).shape != native:
            raise InputError(f"mask has shape {np.asarray(mask).shape}, expected the plane shape {native}")
        view, s = _working_view(embeddings), embeddings.scale
        result = segment_from_prompts(
            model,
            view,
            points=None if pts is None else _points_to_working(pts, s, view.image_shape),
            labels=lab,
            box=None if bx is None else _box_to_working(bx, s, view.image_shape),
            mask=None if mask is None else _mask_to_working(mask, view.image_shape),
            mask_logits=mask_logits,
            previous=previous,
            multimask=multimask,
            plane=plane,
        )
        return _result_to_native(result, native)
    shape = embeddings.image_shape
    pts, lab = _validate_points(points, labels, shape)
    bx = _validate_box(box, shape)
    if mask is not None:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != shape:
            raise InputError(f"mask has shape {mask.shape}, expected the plane shape {shape}")
        if bx is None and pts is None:
            bx = _mask_box(mask)
            if bx is None:
                raise InputError("the mask prompt is empty and no points or box were given")
    if pts is None and bx is None:
        if mask_logits is None:
            raise InputError("give at least one prompt: points, a box or a mask")
    router = _Router(model, embeddings, plane)
    if previous is not None and mask_logits is not None:
        window = tuple(int(v) for v in previous.windows[0])
    else:
        extent = bx if bx is not None else _points_box(pts, lab)
        window = router.choose(extent) if extent is not None else router.whole()

    low = model.arch.low_res_size
    for attempt in range(_MAX_REROUTES + 1):
        logits_in = mask_logits
        if mask is not None and mask_logits is None:
            y0, x0, y1, x1 = window
            logits_in = mask_to_logits(
                mask[y0:y1, x0:x1], Transform((y1 - y0, x1 - x0), model.image_size), low
            )
        masks, iou, logits = _decode_at(
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
        mbox = _mask_box(best)
        if mbox is None or router.margin(window, mbox) > 0 or attempt == _MAX_REROUTES:
            break
        new = router.escape_window(mbox if bx is None else _union(mbox, bx))
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
    _check_model(model, embeddings)
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise InputError(
            f"boxes must be an (N, 4) array of (y0, x0, y1, x1), got shape {arr.shape}"
        )
    if _is_scaled(embeddings):
        native = embeddings.plane_shape
        for b in arr:
            _validate_box(b, native)
        view = _working_view(embeddings)
        work = np.array([_box_to_working(b, embeddings.scale, view.image_shape) for b in arr])
        result = segment_from_boxes(
            model, view, work.reshape(-1, 4), multimask=multimask, plane=plane, batch_size=batch_size
        )
        return _result_to_native(result, native)
    shape = embeddings.image_shape
    valid = np.stack([_validate_box(b, shape) for b in arr]) if len(arr) else np.zeros((0, 4))
    router = _Router(model, embeddings, plane)
    windows = [router.choose(b) for b in valid]
    h, w = shape
    low = model.arch.low_res_size
    out_masks = np.zeros((len(valid), h, w), bool)
    out_iou = np.zeros(len(valid), np.float32)
    out_logits = np.zeros((len(valid), low, low), np.float32)
    groups: dict[tuple[int, int, int, int], list[int]] = {}
    for i, win in enumerate(windows):
        groups.setdefault(win, []).append(i)
    for win, idx in groups.items():
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            masks, iou, logits = _decode_at(
                model,
                router,
                win,
                points=None,
                labels=None,
                boxes=valid[chunk],
                mask_logits=None,
                multimask=multimask,
            )
            pick = iou.argmax(axis=1)
            rows = np.arange(len(chunk))
            out_masks[chunk] = masks[rows, pick]
            out_iou[chunk] = iou[rows, pick]
            out_logits[chunk] = logits[rows, pick]
    return PromptResult(
        out_masks, out_iou, out_logits, np.array(windows, dtype=np.int64).reshape(-1, 4)
    )


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
    _check_model(model, embeddings)
    if _is_scaled(embeddings):
        return _segment_objects_scaled(
            model, embeddings, boxes=boxes, points=points, labels=labels, masks=masks,
            multimask=multimask, plane=plane, batch_size=batch_size,
        )  # fmt: skip
    shape = embeddings.image_shape
    if boxes is None and points is None:
        raise InputError("give boxes or points (one row per object)")
    valid = None
    if boxes is not None:
        arr = np.asarray(boxes, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise InputError(
                f"boxes must be an (N, 4) array of (y0, x0, y1, x1), got shape {arr.shape}"
            )
        valid = np.stack([_validate_box(b, shape) for b in arr]) if len(arr) else np.zeros((0, 4))
    n = len(valid) if valid is not None else len(np.asarray(points))
    pts = lab = None
    if points is not None:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim != 3 or pts.shape[0] != n or pts.shape[2] != 2:
            raise InputError(f"points must be an (N={n}, M, 2) array of (y, x), got shape {pts.shape}")
        lab = (
            np.ones(pts.shape[:2], np.int64)
            if labels is None
            else np.asarray(labels).astype(np.int64)
        )
        if lab.shape != pts.shape[:2]:
            raise InputError(f"labels must have shape {pts.shape[:2]}, got {lab.shape}")
        if not np.isin(lab, (-1, 0, 1)).all():
            raise InputError("point labels must be 1 (positive), 0 (negative) or -1 (padding)")
        real = lab >= 0
        if real.any():
            _validate_points(pts[real], lab[real], shape)
        if valid is None and not real.any(axis=1).all():
            raise InputError("an object without a box needs at least one point")
        pts = np.where(real[..., None], pts, 0.0)
    elif labels is not None:
        raise InputError("labels given without points")
    if masks is not None:
        masks = np.asarray(masks)
        if masks.shape != (n, *shape):
            raise InputError(f"masks must have shape {(n, *shape)}, got {masks.shape}")
    router = _Router(model, embeddings, plane)
    h, w = shape
    low = model.arch.low_res_size
    out_masks = np.zeros((n, h, w), bool)
    out_iou = np.zeros(n, np.float32)
    out_logits = np.zeros((n, low, low), np.float32)
    extents = (
        valid
        if valid is not None
        else np.stack([_points_box(p[k >= 0], k[k >= 0]) for p, k in zip(pts, lab, strict=True)])
        if n
        else np.zeros((0, 4))
    )
    windows = [router.choose(b) for b in extents]
    todo = list(range(n))
    for attempt in range(_MAX_REROUTES + 1):
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
                m, iou, logits = _decode_at(
                    model,
                    router,
                    win,
                    points=pts[chunk] if pts is not None else None,
                    labels=lab[chunk] if lab is not None else None,
                    boxes=valid[chunk] if valid is not None else None,
                    mask_logits=logits_in,
                    multimask=multimask,
                )
                pick = iou.argmax(axis=1)
                rows = np.arange(len(chunk))
                out_masks[chunk] = m[rows, pick]
                out_iou[chunk] = iou[rows, pick]
                out_logits[chunk] = logits[rows, pick]
        if embeddings.tiling is None or attempt == _MAX_REROUTES:
            break
        again = []
        for i in todo:
            mbox = _mask_box(out_masks[i])
            if mbox is None or router.margin(windows[i], mbox) > 0:
                continue
            new = router.escape_window(_union(mbox, extents[i]))
            if new != windows[i]:
                windows[i] = new
                again.append(i)
        if not again:
            break
        todo = again
    return PromptResult(
        out_masks, out_iou, out_logits, np.array(windows, dtype=np.int64).reshape(-1, 4)
    )


def _segment_objects_scaled(model, embeddings, *, boxes, points, labels, masks, **kwargs):
    """:func:`segment_objects` on embeddings made at a scale: prompts mapped in, masks out."""
    native = embeddings.plane_shape
    view, s = _working_view(embeddings), embeddings.scale
    work_boxes = work_points = work_masks = None
    if boxes is not None:
        arr = np.asarray(boxes, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise InputError(f"boxes must be an (N, 4) array of (y0, x0, y1, x1), got shape {arr.shape}")
        for b in arr:
            _validate_box(b, native)
        work_boxes = np.array([_box_to_working(b, s, view.image_shape) for b in arr]).reshape(-1, 4)
    if points is not None:
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim == 3 and pts.shape[-1] == 2:
            real = (np.ones(pts.shape[:2], bool) if labels is None else np.asarray(labels) >= 0)
            if real.shape == pts.shape[:2] and real.any():
                _validate_points(pts[real], None, native)
            work_points = _points_to_working(pts, s, view.image_shape)
        else:
            work_points = pts  # the unscaled call reports the shape error
    if masks is not None:
        arr = np.asarray(masks)
        if arr.ndim != 3 or arr.shape[1:] != native:
            raise InputError(f"masks must have shape (N, {native[0]}, {native[1]}), got {arr.shape}")
        work_masks = np.stack([_mask_to_working(m, view.image_shape) for m in arr]) if len(arr) else (
            np.zeros((0, *view.image_shape), bool)
        )
    result = segment_objects(
        model, view, boxes=work_boxes, points=work_points, labels=labels, masks=work_masks, **kwargs
    )
    return _result_to_native(result, native)


def _is_scaled(embeddings: ImageEmbeddings) -> bool:
    return getattr(embeddings, "native_shape", None) is not None and embeddings.scale != 1.0


def _working_view(embeddings: ImageEmbeddings) -> ImageEmbeddings:
    """The same embeddings seen in the resized grid (kept, so its decoder caches persist)."""
    view = embeddings.__dict__.get("_working_view")
    if view is None:
        view = replace(embeddings, scale=1.0, native_shape=None)
        view.source = embeddings.source
        embeddings.__dict__["_working_view"] = view
    return view


def _points_to_working(pts: np.ndarray, scale: float, shape: tuple[int, int]) -> np.ndarray:
    """Pixel-centre mapping of ``(..., 2)`` points onto the resized grid, kept inside it."""
    out = (np.asarray(pts, np.float64) + 0.5) * scale - 0.5
    out[..., 0] = np.clip(out[..., 0], 0, shape[0] - 1)
    out[..., 1] = np.clip(out[..., 1], 0, shape[1] - 1)
    return out


def _box_to_working(box: np.ndarray, scale: float, shape: tuple[int, int]) -> np.ndarray:
    """A box on the resized grid, at least one pixel wide and inside it."""
    b = np.asarray(box, np.float64) * scale
    y0 = min(max(math.floor(b[0]), 0), shape[0] - 1)
    x0 = min(max(math.floor(b[1]), 0), shape[1] - 1)
    y1 = min(max(math.ceil(b[2]), y0 + 1), shape[0])
    x1 = min(max(math.ceil(b[3]), x0 + 1), shape[1])
    return np.array([y0, x0, y1, x1], np.float64)


def _mask_to_working(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    arr = np.asarray(mask, np.float32)
    return resize(arr, shape, order=1, anti_aliasing=False) > 0.5


def _result_to_native(result: PromptResult, native: tuple[int, int]) -> PromptResult:
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
    return PromptResult(out, result.iou, result.logits, result.windows)


def _points_box(pts: np.ndarray | None, lab: np.ndarray | None) -> np.ndarray | None:
    if pts is None:
        return None
    pos = pts[lab == 1] if (lab == 1).any() else pts
    return np.array([pos[:, 0].min(), pos[:, 1].min(), pos[:, 0].max() + 1, pos[:, 1].max() + 1])


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])])


def _check_model(model: SamscopeModel, embeddings: ImageEmbeddings) -> None:
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
