"""Where a prompt is decoded: the whole plane, a tile, or a window embedded on demand.

Tiled images: a prompt is routed to the tile that sees it with the largest margin to the tile's
cut borders (borders that lie inside the image); :mod:`samscope.prompting` routes it again around
the predicted mask when the mask reaches a cut border, and :class:`Router` embeds the region
around the object on demand when no tile holds it. A scale-aware model and a box far larger than
its working size get a zoomed-out window (:data:`ZOOM_ABOVE`). :func:`decode_at` decodes a batch of
prompts in one window through the model's single decoder (prompt-independent decoder state is
kept per window on the embeddings object, :data:`DECODER_CACHE_SIZE` most recent).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
import torch.nn.functional as F

from samscope.embeddings import ImageEmbeddings
from samscope.errors import InputError
from samscope.image import Transform, prepare_input
from samscope.models.sam import SamscopeModel
from samscope.tiling import window_around

__all__ = ["Router", "decode_at", "mask_to_logits", "upscale_logits"]

log = logging.getLogger(__name__)

#: How often a prompt whose mask reaches a cut tile border is decoded again in a larger window.
MAX_REROUTES = 2
#: Prompt-independent decoder states kept per embeddings object (≈20 MB each for ViT-B).
DECODER_CACHE_SIZE = 4


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


#: Boxes larger than this many working diameters are decoded in a zoomed-out window.
ZOOM_ABOVE = 3.0


class Router:
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
        if side <= ZOOM_ABOVE * working:
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
        while len(store) > DECODER_CACHE_SIZE:
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
            from samscope.embedding_fill import plane_value_range

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


def decode_at(
    model: SamscopeModel,
    router: Router,
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
    up = up.reshape(n, logits.shape[1], y1 - y0, x1 - x0).cpu().numpy()
    if (y0, x0, y1, x1) == (0, 0, h, w):  # the whole plane: the fresh array is the result
        masks = up
    else:
        masks = np.zeros((n, logits.shape[1], h, w), bool)
        masks[:, :, y0:y1, x0:x1] = up
    return masks, iou.cpu().numpy().astype(np.float32), logits.cpu().numpy().astype(np.float32)
