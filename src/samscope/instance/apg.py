"""Automatic prompt generation (APG: Archit & Pape, MIDL 2026): seeds from the instance head become SAM prompts.

As µSAM's ``AutomaticPromptGenerator``:

1. the instance head's maps (:func:`~samscope.instance.ais.predict_ais_maps`, or maps passed in)
   are thresholded into seed components, as AIS does (:func:`~samscope.instance.targets.instance_seeds`);
2. each component gives one positive point at the maximum of its distance transform (its most
   interior pixel; the image edge counts as a border) — :func:`seed_points`;
3. SAM's prompt decoder turns the points into masks, ``batch_size`` prompts per call, on the
   cached decoder state of the embedding;
4. optionally (``box_refinement``) each mask's box, grown by 1 % per side, prompts a second pass;
5. masks smaller than ``min_size`` are dropped and mask NMS (IoU > ``nms_thresh``, greedy by
   predicted IoU) removes duplicates.

Scores are the decoder's predicted IoU. µSAM ranks its NMS by predicted IoU × stability score
and drops masks with ``area <= min_size``; samscope ranks by predicted IoU alone (the score it
reports) and keeps ``area >= min_size``, as every other size filter in samscope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage as ndi

from samscope.errors import InputError
from samscope.instance.instances import CroppedMasks, Instances
from samscope.instance.settings import (
    automatic_defaults,
    check_count,
    check_sigma,
    check_unit,
    resolve_settings,
)
from samscope.instance.targets import seeds_from_settings

if TYPE_CHECKING:  # pragma: no cover
    from samscope.embeddings import ImageEmbeddings
    from samscope.models.sam import SamscopeModel

__all__ = ["APGConfig", "seed_points", "segment_apg"]

#: Growth of the refinement boxes on each side, as a fraction of the box size (µSAM's 0.01).
BOX_EXTENSION = 0.01
#: µSAM's APG values of the fields the card does not share with AIS.
MICROSAM_APG = {"min_size": 25, "nms_thresh": 0.9}


@dataclass(frozen=True)
class APGConfig:
    """Settings of APG; the field names are the CLI flags.

    Fields left None are filled by :meth:`resolve`: the three seed thresholds from the model
    card's defaults (as AIS), ``min_size`` and ``nms_thresh`` from µSAM's APG (25 and 0.9); values
    the card calibrated for APG alone (its ``mode_settings``) win over both. Validated on
    construction.

    Attributes
    ----------
    center_distance_thresh, boundary_distance_thresh, foreground_thresh : float or None
        Seed thresholds in [0, 1], as :class:`~samscope.instance.ais.AISConfig`.
    foreground_smoothing, distance_smoothing : float
        Gaussian sigmas on the maps before thresholding; 0 (µSAM's APG uses the raw maps).
    min_size : int or None
        Masks with fewer pixels are dropped before NMS (µSAM: 25).
    nms_thresh : float or None
        A mask whose IoU with a better kept mask exceeds this is dropped (µSAM: 0.9).
    batch_size : int
        Prompts per decoder call (µSAM: 32).
    multimask : bool
        Decode three masks per point and keep the one with the highest predicted IoU.
    box_refinement : bool
        Prompt again with each first-pass mask's box.
    """

    center_distance_thresh: float | None = None
    boundary_distance_thresh: float | None = None
    foreground_thresh: float | None = None
    foreground_smoothing: float = 0.0
    distance_smoothing: float = 0.0
    min_size: int | None = None
    nms_thresh: float | None = None
    batch_size: int = 32
    multimask: bool = False
    box_refinement: bool = False

    def __post_init__(self) -> None:
        for name in ("center_distance_thresh", "boundary_distance_thresh", "foreground_thresh"):
            if getattr(self, name) is not None:
                check_unit(name, getattr(self, name))
        check_sigma("foreground_smoothing", self.foreground_smoothing)
        check_sigma("distance_smoothing", self.distance_smoothing)
        if self.min_size is not None:
            check_count("min_size", self.min_size)
        if self.nms_thresh is not None:
            check_unit("nms_thresh", self.nms_thresh)
        check_count("batch_size", self.batch_size, minimum=1)
        for name in ("multimask", "box_refinement"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be True or False, got {getattr(self, name)!r}")

    def card_defaults(self, card: Any = None) -> dict[str, Any]:
        """What None fields become: the card's seed thresholds, µSAM's APG size and NMS cuts."""
        auto = automatic_defaults(card)
        names = ("center_distance_thresh", "boundary_distance_thresh", "foreground_thresh")
        return {**{n: getattr(auto, n) for n in names}, **MICROSAM_APG}

    def resolve(self, defaults: Any = None) -> APGConfig:
        """This config with every None field taken from ``defaults`` (a card or its automatic
        defaults; µSAM's when None): :func:`samscope.instance.settings.resolve_settings`."""
        return resolve_settings(self, defaults)


def seed_points(seeds: np.ndarray) -> np.ndarray:
    """One point per seed component: the pixel farthest from the component's border.

    The image edge counts as a border (µSAM avoids points on the image border the same way).
    Ties go to the first pixel in raster order.

    Parameters
    ----------
    seeds : ndarray of int, (H, W)
        0 background, ``1..n`` components.

    Returns
    -------
    ndarray of int64, (n, 2)
        ``(y, x)`` of the point of component ``i + 1`` in row ``i`` (components absent from
        ``seeds`` are skipped).
    """
    seeds = np.asarray(seeds)
    points = []
    for index, sl in enumerate(ndi.find_objects(seeds)):
        if sl is None:
            continue
        mask = np.pad(seeds[sl] == index + 1, 1)
        d = ndi.distance_transform_edt(mask)
        y, x = np.unravel_index(int(np.argmax(d)), d.shape)
        points.append((sl[0].start + y - 1, sl[1].start + x - 1))
    return np.array(points, np.int64).reshape(-1, 2)


def _decode_batches(
    model: SamscopeModel,
    cache,
    transform,
    *,
    points: np.ndarray | None,
    boxes: np.ndarray | None,
    config: APGConfig,
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Masks (boxes, crops) and predicted IoU of ``P`` prompts, ``batch_size`` at a time.

    ``points`` are ``(P, 2)`` ``(y, x)`` and ``boxes`` ``(P, 4)`` ``(y0, x0, y1, x1)`` in the
    pixels of ``transform.original_shape``.
    """
    import torch

    from samscope.prompting import upscale_logits

    n = len(points) if points is not None else len(boxes)
    all_boxes: list[np.ndarray] = []
    all_crops: list[np.ndarray] = []
    all_iou: list[np.ndarray] = []
    for start in range(0, n, config.batch_size):
        stop = min(start + config.batch_size, n)
        if points is not None:
            xy = transform.points_to_input(points[start:stop]).astype(np.float32)
            sparse, dense = model.embed_prompts(
                points=torch.from_numpy(xy)[:, None],
                labels=torch.ones((stop - start, 1), dtype=torch.long),
            )
        else:
            xyxy = transform.boxes_to_input(boxes[start:stop]).astype(np.float32)
            sparse, dense = model.embed_prompts(boxes=torch.from_numpy(xyxy))
        logits, iou = model.decode(cache, sparse, dense, multimask=config.multimask)
        best = iou.argmax(dim=1)
        rows = torch.arange(len(best))
        with torch.inference_mode():
            masks = upscale_logits(logits[rows, best].float(), transform) > 0
        all_iou.append(iou[rows, best].float().cpu().numpy())
        cm = CroppedMasks.from_dense(masks.cpu().numpy())
        all_boxes.append(cm.boxes)
        all_crops.extend(cm.crops)
    return all_boxes, all_crops, np.concatenate(all_iou) if all_iou else np.zeros(0, np.float32)


def segment_apg(
    model: SamscopeModel,
    embeddings: ImageEmbeddings,
    *,
    plane: int = 0,
    tile: int = 0,
    config: APGConfig | None = None,
    maps: np.ndarray | None = None,
) -> Instances:
    """APG of one plane and tile: seeds → point prompts → SAM masks → NMS.

    Parameters
    ----------
    model : SamscopeModel
        Needs an instance head unless ``maps`` is given (else :class:`InputError` listing the
        modes the model supports).
    embeddings : ImageEmbeddings
        Embeddings computed with this model.
    plane, tile : int
        Which slice/frame and tile.
    config : APGConfig, optional
        None seed thresholds take ``model.card.automatic``'s defaults.
    maps : ndarray, (3, h, w), optional
        Instance-distance maps of this tile's outer region (e.g. cached from
        :func:`~samscope.instance.ais.predict_ais_maps`, or targets from ground truth); the head
        is not run when given.

    Returns
    -------
    Instances
        ``mode="apg"``, shape ``(h, w)`` (the tile's outer region), overlapping masks kept in
        ``masks``, scores = predicted IoU. Empty when there are no seeds, or, without running the
        network, when the image region is constant.
    """
    from samscope.instance.ais import check_tile, constant_tile, predict_ais_maps
    from samscope.instance.modes import require_mode

    cfg = (config if config is not None else APGConfig()).resolve(model.card.automatic)
    if maps is None:
        require_mode(model, "apg")
    check_tile(embeddings, plane, tile)
    shape = embeddings.tiles[tile].outer_shape
    if maps is not None:
        maps = np.asarray(maps)
        if maps.shape != (3, *shape):
            raise InputError(f"maps must have shape {(3, *shape)} for this tile, got {maps.shape}")
    if constant_tile(embeddings, plane, tile):
        return Instances.empty(shape, mode="apg", overlapping=True)
    if maps is None:
        maps = predict_ais_maps(model, embeddings, plane=plane, tile=tile)

    seeds, _, _ = seeds_from_settings(maps, cfg)
    points = seed_points(seeds)
    if len(points) == 0:
        return Instances.empty(shape, mode="apg", overlapping=True)

    transform = embeddings.transform(tile)
    cache = model.prepare_decoder(embeddings.get(plane, tile))
    boxes, crops, iou = _decode_batches(
        model, cache, transform, points=points, boxes=None, config=cfg
    )
    masks = CroppedMasks(shape, np.concatenate(boxes).reshape(-1, 4), tuple(crops))
    if cfg.box_refinement:
        keep = np.flatnonzero(masks.areas() > 0)
        if len(keep):
            b = masks.boxes[keep].astype(np.float64)
            grow = BOX_EXTENSION * np.concatenate([b[:, 2:] - b[:, :2]] * 2, axis=1)
            grown = np.clip(
                b + grow * np.array([-1, -1, 1, 1]), 0, np.array([*shape, *shape], np.float64)
            )
            boxes, crops, iou = _decode_batches(
                model, cache, transform, points=None, boxes=grown, config=cfg
            )
            masks = CroppedMasks(shape, np.concatenate(boxes).reshape(-1, 4), tuple(crops))
    return _suppress(masks, iou, cfg)


def _suppress(masks: CroppedMasks, scores: np.ndarray, config: APGConfig) -> Instances:
    """Size filter, then mask NMS by IoU; the result as overlapping-mask Instances."""
    from samscope.instance.postprocess import filter_small, mask_overlap_filter, select

    keep = filter_small(masks, min_size=max(config.min_size, 1))
    masks, scores = select(masks, keep), np.asarray(scores)[keep]
    if len(masks) == 0:
        return Instances.empty(masks.shape, mode="apg", overlapping=True)
    keep = mask_overlap_filter(masks, scores, overlap_thresh=config.nms_thresh, metric="iou")
    return Instances.from_masks(select(masks, keep), scores[keep], mode="apg")
