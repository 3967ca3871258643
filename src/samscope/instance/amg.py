"""Automatic mask generation (SAM's AMG): point prompts → filtered, de-duplicated masks.

Two stages, so thresholds can be changed and searched without the network:

1. :func:`amg_predict` decodes point prompts in batches on cached image embeddings and keeps,
   for every candidate mask (``K`` = 3 per point with ``multimask``), its predicted IoU and its
   *low-resolution* logits, cropped and compact (what decides the upsampled mask and the
   stability score exactly; see :class:`AMGPrediction`). Nothing is upsampled to the image here.
   With ``iou_gate`` (the default) the decoder's own up-scaling (more than half of a point
   prompt's arithmetic) runs only for prompts with a candidate above ``pred_iou_thresh``, and
   only those candidates are kept (:mod:`samscope.models.decoder_batch`): the masks are the
   same as without the gate at that threshold or any higher one; to re-threshold lower without
   the network, predict with ``iou_gate=False``.
2. :func:`amg_postprocess` filters on predicted IoU, upsamples only the survivors (with the
   exact bilinear geometry of :func:`samscope.prompting.upscale_logits`, evaluated on the crop
   alone), computes SAM's stability score on them and filters on it, drops masks at inner crop
   edges, runs box NMS per crop and across crops (SAM's box convention), the optional
   small-region clean-up and size filter, and builds
   :class:`~samscope.instance.instances.Instances` (overlapping masks, scored by predicted IoU).

Schedules (``AMGConfig.schedule``):

- ``"grid"``: SAM's regular ``points_per_side²`` grid per crop, as SAM and µSAM.
- ``"foreground"``: a denser grid (``foreground_points_per_side``, default twice
  ``points_per_side``) of which only the points on foreground are decoded, in order of
  decreasing foreground evidence, in small batches; before each batch, points inside a mask
  already accepted (the best candidate of a decoded point that passes the IoU and stability
  thresholds) are skipped. Foreground evidence is the instance head's foreground probability
  when the model has one (``foreground="head"``, cut at ``card.automatic.foreground_thresh``),
  else the image (``foreground="image"``: percentile-normalised, Gaussian-smoothed, cut at
  Otsu's threshold — bright objects on a dark background, as fluorescence); both are
  maximum-filtered over a quarter of the point spacing so points on an object's rim count. On a
  sparse image this decodes a fraction of the grid's prompts and, being denser on objects, finds
  more small objects. Its prediction depends on the IoU and stability thresholds given at
  prediction time (they decide coverage); re-thresholding later filters the same candidates.

Differences from SAM/µSAM, by design: one bilinear step from the low-resolution logits to the
image (µSAM: two, via the 1024² input), so a few boundary pixels differ; boxes are exact-end
boxes; the label image paints higher predicted IoU on top (µSAM paints larger masks first).
``tests/instance/test_amg_microsam.py`` checks the masks against µSAM 1.8.14 on identical
decoder outputs.

The compact candidates live in :mod:`samscope.instance.amg_candidates`, the foreground-aware
schedule in :mod:`samscope.instance.amg_schedule`, the point decoder in
:mod:`samscope.models.decoder` and its IoU-gated batches in :mod:`samscope.models.decoder_batch`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from samscope.errors import InputError
from samscope.instance.amg_candidates import AMGPrediction, Candidates, evaluate_candidate
from samscope.instance.amg_schedule import decode_uncovered, foreground_schedule
from samscope.instance.instances import CroppedMasks, Instances
from samscope.instance.postprocess import (
    box_nms,
    boxes_near_edge,
    remove_small_regions,
    select,
)
from samscope.models.card import AutomaticDefaults
from samscope.models.decoder import valid_nodes
from samscope.models.decoder_batch import GatedPointDecoder, iou_gate

__all__ = ["AMGConfig", "AMGPrediction", "amg_postprocess", "amg_predict", "segment_amg"]

_SCHEDULES = ("grid", "foreground")
_FOREGROUND = ("auto", "head", "image")


@dataclass(frozen=True)
class AMGConfig:
    """Options of automatic mask generation (field names are the CLI flags).

    Attributes
    ----------
    points_per_side : int
        Grid of ``points_per_side²`` point prompts per crop (SAM: 32).
    points_per_batch : int
        Prompts decoded per batch for the grid schedule (SAM: 64).
    pred_iou_thresh : float or None
        Keep masks with predicted IoU ``>`` this; None = the model card's default.
    stability_score_thresh : float or None
        Keep masks with stability ``>=`` this; None = the model card's default.
    stability_score_offset : float
        Logit shift for the stability score (SAM: 1.0).
    box_nms_thresh : float or None
        Box IoU above which the lower-IoU mask is dropped; None = the card's (0.7 for SAM).
    crop_nms_thresh : float
        Box NMS between crop layers (prefers smaller crops).
    min_mask_area : int
        SAM's ``min_mask_region_area``: fill holes and remove islands smaller than this, then
        re-run NMS preferring unchanged masks. 0 = off.
    min_size : int
        Drop final masks with fewer pixels. 0 = off.
    crop_n_layers : int
        Extra layers of crops (layer ``i`` has ``(2^i)²`` crops, each embedded again; needs the
        image). 0 = the whole tile only.
    crop_overlap_ratio : float
        Overlap of neighbouring crops relative to the short side (SAM: 512 / 1500).
    crop_n_points_downscale_factor : int
        Points per side in layer ``i`` are divided by this to the power ``i``.
    multimask : bool
        Three ambiguity-aware masks per point (SAM) or one.
    schedule : {"grid", "foreground"}
        Which points are decoded (module docstring).
    foreground : {"auto", "head", "image"}
        Foreground evidence for the foreground schedule; ``auto`` = the head when the model has
        one, else the image.
    foreground_thresh : float or None
        Foreground cut-off (head probability, or normalised intensity in [0, 1]); None = the
        card's ``foreground_thresh`` for the head, Otsu's threshold for the image.
    foreground_batch : int
        Prompts per batch for the foreground schedule (smaller batches skip more points).
    foreground_points_per_side : int or None
        Grid of candidate points for the foreground schedule; None = twice ``points_per_side``
        (background points cost nothing, so the schedule can afford a denser grid on objects).
    iou_gate : bool
        Up-scale in the decoder only the prompts with a candidate of predicted IoU above
        ``pred_iou_thresh`` and keep only those candidates (same masks at that threshold or a
        higher one; False keeps every candidate, to re-threshold lower without the network).
    skip_covered : bool
        Grid schedule: before each batch of ``points_per_batch``, skip the points inside a mask
        already accepted (a decoded point's best candidate passing the IoU and stability
        thresholds), as the foreground schedule does. This changes the masks: a skipped point's
        own candidates (near-duplicates of the accepted mask, and its part/whole alternatives
        under ``multimask``) are never proposed, so NMS may keep a different one. Off by default:
        on HeLa frame 14 (32² grid, 148 points on cells) it would skip 12 of 1024 prompts.
    """

    points_per_side: int = 32
    points_per_batch: int = 64
    pred_iou_thresh: float | None = None
    stability_score_thresh: float | None = None
    stability_score_offset: float = 1.0
    box_nms_thresh: float | None = None
    crop_nms_thresh: float = 0.7
    min_mask_area: int = 0
    min_size: int = 0
    crop_n_layers: int = 0
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    multimask: bool = True
    schedule: str = "grid"
    foreground: str = "auto"
    foreground_thresh: float | None = None
    foreground_batch: int = 16
    foreground_points_per_side: int | None = None
    iou_gate: bool = True
    skip_covered: bool = False

    def __post_init__(self) -> None:
        if self.foreground_points_per_side is not None and self.foreground_points_per_side < 1:
            raise InputError("foreground_points_per_side must be >= 1")
        for name in ("points_per_side", "points_per_batch", "foreground_batch"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "pred_iou_thresh",
            "stability_score_thresh",
            "box_nms_thresh",
            "crop_nms_thresh",
            "foreground_thresh",
        ):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and 0.0 <= value <= 1.0):
                raise InputError(f"{name} must lie in [0, 1], got {value}")
        if not (np.isfinite(self.stability_score_offset) and self.stability_score_offset >= 0):
            raise InputError(f"stability_score_offset must be >= 0, got {self.stability_score_offset}")
        for name in ("min_mask_area", "min_size", "crop_n_layers"):
            if int(getattr(self, name)) < 0:
                raise InputError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.crop_overlap_ratio < 1.0:
            raise InputError(f"crop_overlap_ratio must lie in [0, 1), got {self.crop_overlap_ratio}")
        if self.crop_n_points_downscale_factor < 1:
            raise InputError("crop_n_points_downscale_factor must be >= 1")
        if self.schedule not in _SCHEDULES:
            raise InputError(f"schedule must be one of {_SCHEDULES}, got {self.schedule!r}")
        if self.foreground not in _FOREGROUND:
            raise InputError(f"foreground must be one of {_FOREGROUND}, got {self.foreground!r}")

    def card_defaults(self, card=None) -> dict:
        """The card's mask thresholds (``pred_iou_thresh``, ``stability_score_thresh``,
        ``box_nms_thresh``); the foreground options are not calibrated per card."""
        from samscope.instance.settings import automatic_defaults

        auto = automatic_defaults(card)
        names = ("pred_iou_thresh", "stability_score_thresh", "box_nms_thresh")
        return {name: getattr(auto, name) for name in names}

    def resolve(self, defaults=None) -> AMGConfig:
        """This config with the None thresholds taken from a card (or its automatic defaults;
        µSAM's when None): :func:`samscope.instance.settings.resolve_settings`."""
        from samscope.instance.settings import resolve_settings

        return resolve_settings(self, defaults)

    def thresholds(self, defaults: AutomaticDefaults) -> tuple[float, float, float]:
        """``(pred_iou, stability, box_nms)`` thresholds, None replaced by ``defaults``."""
        cfg = self.resolve(defaults)
        return cfg.pred_iou_thresh, cfg.stability_score_thresh, cfg.box_nms_thresh


# -------------------------------------------------------------------------------------------
# geometry
# -------------------------------------------------------------------------------------------


def point_grid(n_per_side: int) -> np.ndarray:
    """SAM's grid: ``(n², 2)`` points ``(y, x)`` in [0, 1], cell centres, row-major."""
    side = np.linspace(1 / (2 * n_per_side), 1 - 1 / (2 * n_per_side), n_per_side)
    yy, xx = np.meshgrid(side, side, indexing="ij")
    return np.stack([yy.ravel(), xx.ravel()], axis=1)


def crop_boxes(shape: tuple[int, int], n_layers: int, overlap_ratio: float):
    """SAM's crop boxes ``(y0, x0, y1, x1)`` and their layer, the whole image first."""
    h, w = shape
    boxes, layers = [(0, 0, h, w)], [0]
    for i in range(n_layers):
        n = 2 ** (i + 1)
        overlap = int(overlap_ratio * min(h, w) * (2 / n))
        ch = int(math.ceil((overlap * (n - 1) + h) / n))
        cw = int(math.ceil((overlap * (n - 1) + w) / n))
        for x0 in (int((cw - overlap) * j) for j in range(n)):  # SAM's order: x outer, y inner
            for y0 in (int((ch - overlap) * j) for j in range(n)):
                boxes.append((y0, x0, min(y0 + ch, h), min(x0 + cw, w)))
                layers.append(i + 1)
    return np.array(boxes, np.int64), layers


# -------------------------------------------------------------------------------------------
# decoding
# -------------------------------------------------------------------------------------------


def _embed_crop(model, region: np.ndarray):
    """Embedding ``(1, C, g, g)`` and transform of a crop (crop layers)."""
    from samscope.embeddings import compute_embeddings

    sub = compute_embeddings(region, model)
    return sub.get(0, 0), sub.transform(0)


def _decode_batch(decoder, points_xy, multimask: bool, gate=None):
    """Decode ``(P, 2)`` points (x, y, input pixels) → (logits (R, K, L, L) of the prompts
    ``gate`` keeps, iou (P, K), rows (R,)); ``gate`` is a
    :data:`samscope.models.decoder_batch.Gate` or None (all prompts).

    The seam tests and benchmarks replace to feed oracle decoder outputs or count prompts.
    """
    return decoder.decode(points_xy, multimask, gate)


def _is_constant(region: np.ndarray) -> bool:
    return region.size == 0 or bool(np.all(region == region.flat[0]))


def _tile_region(embeddings, plane: int, tile: int, image):
    """The pixels of a tile's outer region, from ``image`` or the embeddings' source, or None."""
    t = embeddings.tiles[tile]
    if image is not None:
        arr = np.asarray(image)
        if arr.shape[:2] == tuple(t.outer_shape):
            return arr
        if arr.shape[:2] == tuple(embeddings.image_shape):
            return arr[t.outer_slices]
        raise InputError(
            f"image of shape {arr.shape[:2]} matches neither the tile {t.outer_shape} "
            f"nor the embedded plane {embeddings.image_shape}"
        )
    source = embeddings.source
    if source is None:
        return None
    if embeddings.axes in ("YX", "YXC"):
        return np.asarray(source[t.outer_slices])
    return np.asarray(source[plane][t.outer_slices])


def amg_predict(
    model,
    embeddings,
    *,
    plane: int = 0,
    tile: int = 0,
    config: AMGConfig | None = None,
    image: np.ndarray | None = None,
) -> AMGPrediction:
    """Decode AMG's point prompts on one plane/tile; keep every candidate's low-res logits.

    Parameters
    ----------
    model : SamscopeModel
    embeddings : ImageEmbeddings
        From :func:`samscope.embeddings.compute_embeddings` with the same model.
    plane, tile : int
        Which plane and tile (the tile's outer region is segmented).
    config : AMGConfig, optional
    image : ndarray, optional
        The tile's outer region ``(h, w)`` (or the whole plane). Needed for crop layers and for
        the foreground schedule without an instance head; otherwise read from the embeddings'
        source when there is one (to detect constant images).

    Returns
    -------
    AMGPrediction
    """
    config = config or AMGConfig()
    if embeddings.model_name != model.name:
        raise InputError(
            f"embeddings were computed with {embeddings.model_name!r}, not {model.name!r}"
        )
    if not 0 <= tile < len(embeddings.tiles):
        raise InputError(f"tile {tile} out of range: {len(embeddings.tiles)} tile(s)")
    shape = embeddings.tiles[tile].outer_shape
    low_res = model.arch.low_res_size
    defaults = model.card.automatic
    region = _tile_region(embeddings, plane, tile, image)
    if region is not None and _is_constant(region):
        return AMGPrediction.empty(shape, model.image_size, low_res, defaults)
    boxes, layers = crop_boxes(shape, config.crop_n_layers, config.crop_overlap_ratio)
    if len(boxes) > 1 and region is None:
        raise InputError("crop layers need the image: pass image=")
    iou_t, stab_t, _ = config.thresholds(defaults)
    gated = config.iou_gate and iou_t > 0
    gate, min_iou = (iou_gate(iou_t), iou_t) if gated else (None, None)
    cands = Candidates(config.stability_score_offset)
    n_prompts = n_points = 0
    for c, (box, layer) in enumerate(zip(boxes, layers, strict=True)):
        y0, x0, y1, x1 = (int(v) for v in box)
        if c == 0:
            emb, transform = embeddings.get(plane, tile), embeddings.transform(tile)
        else:
            emb, transform = _embed_crop(model, region[y0:y1, x0:x1])
        decoder = GatedPointDecoder(model, emb, transform, (y0, x0))
        valid = valid_nodes(transform, low_res)
        per_side = config.points_per_side
        if config.schedule == "foreground":
            per_side = config.foreground_points_per_side or 2 * config.points_per_side
        n_side = max(1, int(per_side / config.crop_n_points_downscale_factor**layer))
        pts = point_grid(n_side) * np.array([y1 - y0, x1 - x0], np.float64)  # (y, x) in crop
        n_points += len(pts)
        if config.schedule == "grid" and config.skip_covered:
            n_prompts += decode_uncovered(
                model, transform, pts, np.arange(len(pts)), cands,
                batch_size=config.points_per_batch, crop=c, origin=(y0, x0), valid=valid,
                thresholds=(iou_t, stab_t), min_iou=min_iou,
                decode=partial(_decode_batch, decoder, multimask=config.multimask, gate=gate),
            )  # fmt: skip
        elif config.schedule == "grid":
            step = config.points_per_batch
            for s in range(0, len(pts), step):
                batch = pts[s : s + step]
                xy = transform.points_to_input(batch)
                logits, iou, rows = _decode_batch(decoder, xy, config.multimask, gate)
                sel = torch.as_tensor(np.asarray(rows, np.int64))
                cands.add(logits, iou[sel], batch[rows] + (y0, x0), c, valid, min_iou=min_iou)
                n_prompts += len(batch)
        else:
            crop_region = region[y0:y1, x0:x1] if region is not None else None
            n_prompts += foreground_schedule(
                model, emb, transform, pts, crop_region, cands, config,
                crop=c, origin=(y0, x0), valid=valid, thresholds=(iou_t, stab_t),
                decode=partial(_decode_batch, decoder, multimask=config.multimask, gate=gate),
                min_iou=min_iou,
            )  # fmt: skip
    return cands.finish(
        image_shape=tuple(shape), crop_boxes=boxes, input_size=model.image_size,
        low_res=low_res, defaults=defaults, n_prompts=n_prompts, n_points=n_points,
    )  # fmt: skip


# -------------------------------------------------------------------------------------------
# post-processing
# -------------------------------------------------------------------------------------------


def _clean_regions(mask: np.ndarray, box, shape, min_area: int) -> tuple[np.ndarray, bool]:
    """SAM's hole/island clean-up of one cropped mask, as if on the full image.

    The crop is padded with background on the sides away from the image border, so background
    that touches the box there counts as connected to the outside (not a hole).
    """
    y0, x0, y1, x1 = (int(v) for v in box)
    h, w = shape
    pad = ((int(y0 > 0), int(y1 < h)), (int(x0 > 0), int(x1 < w)))
    padded = np.pad(mask, pad)
    out, changed_h = remove_small_regions(padded, min_area=min_area, mode="holes")
    out, changed_i = remove_small_regions(out, min_area=min_area, mode="islands")
    out = out[pad[0][0] : out.shape[0] - pad[0][1], pad[1][0] : out.shape[1] - pad[1][1]]
    return out, changed_h or changed_i


def amg_postprocess(pred: AMGPrediction, *, config: AMGConfig | None = None) -> Instances:
    """Thresholds, upsampling of survivors, NMS and clean-up: the network-free half of AMG.

    Parameters
    ----------
    pred : AMGPrediction
    config : AMGConfig, optional
        Only the post-processing fields are read (thresholds, NMS, ``min_mask_area``,
        ``min_size``); None thresholds take the model card's defaults stored in ``pred``.

    Returns
    -------
    Instances
        ``mode="amg"``, overlapping ``masks`` in the region's coordinates, ``scores`` = predicted
        IoU, labels painted with higher predicted IoU on top.
    """
    config = config or AMGConfig()
    iou_t, stab_t, nms_t = config.thresholds(pred.defaults)
    shape = tuple(pred.image_shape)
    keep = pred.iou > iou_t if iou_t > 0 else np.ones(len(pred), bool)
    from samscope.image import Transform

    mats = {}
    idx, boxes, crops = [], [], []
    for i in np.flatnonzero(keep):
        c = int(pred.crop_index[i])
        cy0, cx0, cy1, cx1 = (int(v) for v in pred.crop_boxes[c])
        if c not in mats:
            mats[c] = Transform((cy1 - cy0, cx1 - cx0), pred.input_size).interpolation_matrices(
                pred.low_res
            )
        box, m, stab = evaluate_candidate(
            pred.crop_logits(i), tuple(pred.low_boxes[i, :2]), *mats[c], pred.stability_offset
        )
        if m.size == 0 or (stab_t > 0 and stab < stab_t):
            continue
        idx.append(i)
        boxes.append((box[0] + cy0, box[1] + cx0, box[2] + cy0, box[3] + cx0))
        crops.append(m)
    if not idx:
        return Instances.empty(shape, mode="amg", overlapping=True)
    idx = np.array(idx, np.int64)
    masks = CroppedMasks(shape, np.array(boxes, np.int64), tuple(crops))
    scores = pred.iou[idx].astype(np.float32)
    crop_of = pred.crop_index[idx]
    # per crop: drop masks at the crop's inner edges, then NMS by predicted IoU
    chosen = []
    for c, crop_box in enumerate(pred.crop_boxes):
        members = np.flatnonzero(crop_of == c)
        if len(members) == 0:
            continue
        if len(pred.crop_boxes) > 1:
            near = boxes_near_edge(masks.boxes[members], tuple(crop_box), shape)
            members = members[~near]
        members = members[box_nms(_sam_box(masks.boxes[members]), scores[members], iou_thresh=nms_t)]
        chosen.append(members)
    order = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    if len(pred.crop_boxes) > 1 and len(order):  # between crops: prefer smaller crops
        cb = pred.crop_boxes[crop_of[order]]
        area = ((cb[:, 2] - cb[:, 0]) * (cb[:, 3] - cb[:, 1])).astype(np.float64)
        keep = box_nms(_sam_box(masks.boxes[order]), 1.0 / area, iou_thresh=config.crop_nms_thresh)
        order = order[keep]
    masks, scores = select(masks, order), scores[order]
    if config.min_mask_area > 0 and len(masks):
        cleaned, unchanged = [], []
        for b, m in zip(masks.boxes, masks.crops, strict=True):
            new, changed = _clean_regions(m, b, shape, config.min_mask_area)
            cleaned.append(new)
            unchanged.append(0.0 if changed else 1.0)
        full = CroppedMasks(shape, masks.boxes, tuple(cleaned))
        tight = _shrink(full)
        nms = max(nms_t, config.crop_nms_thresh)
        kept = box_nms(_sam_box(tight.boxes), np.array(unchanged), iou_thresh=nms)
        masks, scores = select(tight, kept), scores[kept]
    if config.min_size > 0 and len(masks):
        big = np.flatnonzero(masks.areas() >= config.min_size)
        masks, scores = select(masks, big), scores[big]
    if len(masks) == 0:
        return Instances.empty(shape, mode="amg", overlapping=True)
    return Instances.from_masks(masks, scores, mode="amg")


def _sam_box(boxes: np.ndarray) -> np.ndarray:
    """Boxes as SAM compares them: inclusive last row/column (a ``w × h`` box has area
    ``(w − 1)(h − 1)`` in torchvision's IoU), so NMS decisions match SAM's and µSAM's."""
    out = np.asarray(boxes, np.float64).copy()
    out[:, 2:] -= 1
    return out


def _shrink(masks: CroppedMasks) -> CroppedMasks:
    """Recompute tight boxes (crops may have lost rows/columns in the clean-up)."""
    boxes, crops = [], []
    for b, c in zip(masks.boxes, masks.crops, strict=True):
        ys = np.flatnonzero(c.any(axis=1))
        if ys.size == 0:
            boxes.append((0, 0, 0, 0))
            crops.append(np.zeros((0, 0), bool))
            continue
        xs = np.flatnonzero(c.any(axis=0))
        crops.append(c[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1])
        boxes.append((b[0] + ys[0], b[1] + xs[0], b[0] + ys[-1] + 1, b[1] + xs[-1] + 1))
    return CroppedMasks(masks.shape, np.array(boxes, np.int64).reshape(-1, 4), tuple(crops))


def segment_amg(
    model,
    embeddings,
    *,
    plane: int = 0,
    tile: int = 0,
    config: AMGConfig | None = None,
    image: np.ndarray | None = None,
) -> Instances:
    """Automatic mask generation on one plane/tile: :func:`amg_predict` then :func:`amg_postprocess`.

    Parameters
    ----------
    model : SamscopeModel
    embeddings : ImageEmbeddings
    plane, tile : int
    config : AMGConfig, optional
    image : ndarray, optional
        See :func:`amg_predict`.

    Returns
    -------
    Instances
        In the coordinates of the tile's outer region (the whole image when untiled); empty for
        a constant image.

    Examples
    --------
    >>> from samscope.models.registry import load_model
    >>> from samscope.embeddings import compute_embeddings
    >>> model = load_model("vit_test", device="cpu")
    >>> img = np.zeros((64, 64), np.float32); img[20:40, 20:40] = 1
    >>> emb = compute_embeddings(img, model)
    >>> res = segment_amg(model, emb, config=AMGConfig(points_per_side=4))
    >>> res.labels.shape, res.mode
    ((64, 64), 'amg')
    """
    config = config or AMGConfig()
    pred = amg_predict(model, embeddings, plane=plane, tile=tile, config=config, image=image)
    return amg_postprocess(pred, config=config)
