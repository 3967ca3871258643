"""Validation: fixed patches and fixed prompts, so every validation of a run is comparable.

Prompting is validated as µSAM describes it (Archit et al. 2025) (not iteratively): each object gets one
positive click at its most interior pixel (three outputs; the one with the highest predicted IoU
is kept, as at inference) and, separately, its exact bounding box. Masks are up-sampled from the
logit grid to the patch and thresholded at 0; the metric is the mean dice over objects and both
prompt kinds. The heads are validated by their inference decoders
(:func:`samscope.instance.targets.watershed_from_instance_distances`,
:func:`~samscope.instance.targets.watershed_from_distance_map`) and the mean segmentation
accuracy (mSA) of the resulting label image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from samscope.models.decoder import decode, prepare_decoder
from samscope.training import losses, prompts
from samscope.training.config import TrainConfig
from samscope.training.data import PatchDataset, TargetSpec
from samscope.training.objectives import TrainingModel, resize_maps, sparse_embeddings

__all__ = ["ValidationItem", "ValidationSet", "validate"]


@dataclass
class ValidationItem:
    """One validation patch with its fixed prompts (tensors on the training device)."""

    image: torch.Tensor
    labels: np.ndarray
    objects: torch.Tensor | None
    low: torch.Tensor | None
    points: torch.Tensor | None
    boxes: torch.Tensor | None
    instance_target: torch.Tensor | None
    distance_target: torch.Tensor | None


@dataclass
class ValidationSet:
    """The validation patches of a run."""

    items: list[ValidationItem]
    prompt: bool
    instance: bool
    distance: bool

    @classmethod
    def build(cls, source, n: int, config: TrainConfig, model: TrainingModel, device) -> ValidationSet:
        """Draw ``n`` patches (no augmentation) and their prompts, deterministically."""
        o, d = config.objectives, config.data
        spec = TargetSpec(o.instance_head, o.distance_head)
        dataset = PatchDataset(
            source, patch_size=d.patch_size, augment=None, seed=d.split_seed + 7919,
            min_objects=max(1, d.min_objects), min_object_size=d.min_object_size, targets=spec,
        )  # fmt: skip
        rng = np.random.default_rng(d.split_seed)
        size, low_res = model.input_size, model.low_res
        items = []
        for i in range(n):
            item = dataset[i]
            image = torch.from_numpy(item["image"])[None].to(device)
            objects = low = points = boxes = None
            if o.prompt:
                if item["masks"] is not None:
                    masks = item["masks"]
                else:
                    ids = np.unique(item["labels"])
                    ids = ids[ids > 0]
                    masks = item["labels"][None] == ids[:, None, None]
                if len(masks):
                    chosen = np.sort(rng.permutation(len(masks))[: o.n_objects])
                    obj = torch.from_numpy(np.ascontiguousarray(masks[chosen]))
                    scale = size / d.patch_size
                    points = (prompts.central_points(obj).flip(-1).float() * scale)[:, None].to(device)
                    box = prompts.boxes_from_masks(obj)
                    boxes = (box[:, [1, 0, 3, 2]] * scale).to(device)
                    objects = obj.to(device)
                    low = F.interpolate(objects[:, None].float(), size=(low_res, low_res), mode="area")[:, 0]

            items.append(
                ValidationItem(
                    image, item["labels"], objects, low, points, boxes,
                    _tensor(item, "instance_target", device), _tensor(item, "distance_target", device),
                )  # fmt: skip
            )
        return cls(items, o.prompt, o.instance_head, o.distance_head)


def _tensor(item: dict, key: str, device) -> torch.Tensor | None:
    return torch.from_numpy(item[key])[None].to(device) if key in item else None


def _dice(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    inter = (pred & target).sum(dim=(-2, -1)).float()
    total = pred.sum(dim=(-2, -1)).float() + target.sum(dim=(-2, -1)).float()
    return torch.where(total > 0, 2 * inter / total.clamp_min(1), torch.ones_like(total))


@torch.no_grad()
def validate(model: TrainingModel, vset: ValidationSet) -> dict[str, float]:
    """Metrics of ``model`` on ``vset``.

    Returns
    -------
    dict
        ``val_dice`` (mean of ``val_dice_point`` and ``val_dice_box``), ``val_msa`` (mean over the
        trained heads of ``val_msa_instance`` / ``val_msa_distance``), ``val_loss`` (sum of the
        validation losses: soft dice of the prompts, the heads' losses). Absent parts are NaN.
    """
    from samscope.evaluation.metrics import mean_segmentation_accuracy
    from samscope.instance.targets import (
        watershed_from_distance_map,
        watershed_from_instance_distances,
    )

    was_training = model.training
    model.eval()
    sam = model.sam
    dice_pt, dice_box, prompt_loss = [], [], []
    msa_inst, msa_dist, inst_loss, dist_loss = [], [], [], []
    try:
        for item in vset.items:
            embedding = model.embed(item.image).float()
            patch = item.image.shape[-1]
            if vset.prompt and item.objects is not None:
                cache = prepare_decoder(sam, embedding)
                p = item.objects.shape[0]
                ones = torch.ones((p, 1), dtype=torch.long, device=embedding.device)
                logits, iou = decode(sam, cache, sparse_embeddings(sam, item.points, ones, None), multimask=True)
                best = logits[torch.arange(p, device=logits.device), iou.argmax(dim=1)].float()
                box_logits, _ = decode(sam, cache, sparse_embeddings(sam, None, None, item.boxes))
                box_logits = box_logits[:, 0].float()
                for lg, out in ((best, dice_pt), (box_logits, dice_box)):
                    up = resize_maps(lg[:, None], patch)[:, 0] > 0
                    out.append(_dice(up, item.objects).cpu())
                    prompt_loss.append(losses.dice_loss(torch.sigmoid(lg), item.low).mean().item())
            if vset.instance and model.instance_head is not None:
                maps = torch.sigmoid(resize_maps(model.instance_head.logits(embedding).float(), patch))
                inst_loss.append(losses.instance_distance_loss(maps, item.instance_target).item())
                pred = watershed_from_instance_distances(maps[0].cpu().numpy())
                msa_inst.append(mean_segmentation_accuracy(item.labels, pred))
            if vset.distance and model.distance_head is not None:
                dist = torch.sigmoid(resize_maps(model.distance_logits(embedding).float(), patch))
                dist_loss.append(losses.distance_map_loss(dist, item.distance_target).item())
                pred = watershed_from_distance_map(dist[0, 0].cpu().numpy())
                msa_dist.append(mean_segmentation_accuracy(item.labels, pred))
    finally:
        model.train(was_training)

    def mean(values) -> float:
        if not values:
            return math.nan
        if isinstance(values[0], torch.Tensor):
            return float(torch.cat(values).mean())
        return float(np.mean(values))

    out = {
        "val_dice_point": mean(dice_pt),
        "val_dice_box": mean(dice_box),
        "val_msa_instance": mean(msa_inst),
        "val_msa_distance": mean(msa_dist),
    }
    present = [v for v in (out["val_dice_point"], out["val_dice_box"]) if not math.isnan(v)]
    out["val_dice"] = float(np.mean(present)) if present else math.nan
    heads = [v for v in (out["val_msa_instance"], out["val_msa_distance"]) if not math.isnan(v)]
    out["val_msa"] = float(np.mean(heads)) if heads else math.nan
    parts = [mean(x) for x in (prompt_loss, inst_loss, dist_loss) if x]
    out["val_loss"] = float(np.sum(parts)) if parts else math.nan
    return out
