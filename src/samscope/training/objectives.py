"""What one training step computes: iterative prompting, head losses, and validation metrics.

:class:`TrainingModel` is the ``nn.Module`` the optimiser (and ``DistributedDataParallel``) sees:
its ``forward`` takes a batch and returns the losses. Per step and image:

1. the image embedding is computed **once** (without gradients when nothing in the encoder
   trains) and shared by every objective and every sub-iteration;
2. the prompt-independent part of the mask decoder (:func:`samscope.models.decoder.prepare_decoder`)
   is computed once per image and step — it depends on trainable decoder weights, so it is
   recomputed every step, but reused by all ``k`` sub-iterations;
3. iterative prompting (µSAM: Archit et al. 2025, Methods) for ``P`` objects at once: a random positive point
   (three outputs, best-of-three loss) or the distorted bounding box, then ``k − 1`` corrections,
   each adding a positive and a negative click drawn from the error regions of the output with
   the highest predicted IoU, whose low-resolution logits are fed back as a mask prompt with
   probability ``mask_prob``; dice loss plus MSE between predicted and true IoU, averaged over
   the ``k`` passes;
4. overlap-aware loss (Jadhav et al. 2026, §3.2): when the first point lies on several overlapping
   objects, the loss is the minimum over them, and the corrections then refine the object chosen;
5. the dense heads read the same embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from samscope.models.decoder import decode, prepare_decoder
from samscope.training import losses, prompts

__all__ = [
    "ObjectTargets",
    "PromptSettings",
    "TrainingModel",
    "encoder_input",
    "iterative_prompt_loss",
    "select_objects",
]


@dataclass(frozen=True)
class PromptSettings:
    """Iterative-prompting settings (see :class:`~samscope.training.config.ObjectiveConfig`)."""

    n_objects: int = 25
    n_sub_iterations: int = 8
    mask_prob: float = 0.5
    box_prob: float = 0.5
    box_distortion: float = 0.025
    overlap_aware: bool = True
    iou_weight: float = 1.0


@dataclass
class ObjectTargets:
    """The objects of one image that a step prompts.

    Attributes
    ----------
    full : torch.Tensor
        bool ``(P, p, p)`` masks at patch resolution (where clicks and boxes are drawn).
    low : torch.Tensor
        float ``(P, L, L)`` the same masks area-averaged to the decoder's logit grid.
    all_full, all_low : torch.Tensor or None
        Every object of the image (for overlap-aware targets), or None when objects cannot
        overlap.
    """

    full: torch.Tensor
    low: torch.Tensor
    all_full: torch.Tensor | None = None
    all_low: torch.Tensor | None = None


def _low_res(masks: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(masks[:, None].float(), size=(size, size), mode="area")[:, 0]


def select_objects(
    labels: torch.Tensor,
    masks: torch.Tensor | None,
    n: int,
    low_res: int,
    *,
    overlap_aware: bool = True,
    generator: torch.Generator | None = None,
) -> ObjectTargets | None:
    """Draw up to ``n`` objects of one patch (None when it has none).

    Parameters
    ----------
    labels : torch.Tensor
        long ``(p, p)``.
    masks : torch.Tensor or None
        bool ``(M, p, p)`` overlapping masks; used instead of ``labels`` when given.
    n : int
    low_res : int
        Side ``L`` of the logit grid.
    overlap_aware : bool
        Keep all masks for overlap-aware targets (only with ``masks``).
    generator : torch.Generator, optional
    """
    if masks is not None:
        count = masks.shape[0]
        if count == 0:
            return None
        order = torch.randperm(count, generator=generator, device=generator.device if generator else "cpu")
        chosen = order[:n].to(masks.device)
        full = masks[chosen]
        keep_all = overlap_aware and count > 1
        return ObjectTargets(
            full,
            _low_res(full, low_res),
            masks if keep_all else None,
            _low_res(masks, low_res) if keep_all else None,
        )
    ids = torch.unique(labels)
    ids = ids[ids > 0]
    if ids.numel() == 0:
        return None
    order = torch.randperm(ids.numel(), generator=generator, device=generator.device if generator else "cpu")
    ids = ids[order[:n].to(ids.device)]
    full = labels[None] == ids[:, None, None]
    return ObjectTargets(full, _low_res(full, low_res))


def encoder_input(
    image: torch.Tensor, size: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """0–1 patches ``(B, C, p, p)`` → normalised encoder input ``(B, 3, S, S)``.

    As :func:`samscope.image.prepare_input` after its percentile step: grey → 3 channels, ×255,
    resize (bilinear, anti-aliased when shrinking), per-channel standardisation.
    """
    if image.shape[1] == 1:
        image = image.expand(-1, 3, -1, -1)
    if image.shape[-1] != size:
        image = F.interpolate(
            image, size=(size, size), mode="bilinear", align_corners=False,
            antialias=image.shape[-1] > size,
        )  # fmt: skip
    m = torch.tensor(mean, device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, device=image.device, dtype=image.dtype).view(1, 3, 1, 1)
    return (image * 255.0 - m) / s


def sparse_embeddings(sam: nn.Module, points, labels, boxes) -> torch.Tensor:
    """Sparse prompt embeddings ``(P, T, C)`` (points ``(P, N, 2)`` xy input pixels, boxes xyxy)."""
    sparse, _ = sam.prompt_encoder(
        input_points=points[None] if points is not None else None,
        input_labels=labels[None] if labels is not None else None,
        input_boxes=boxes[None] if boxes is not None else None,
        input_masks=None,
    )
    return sparse[0]


@dataclass
class PromptStep:
    """Losses of one image's iterative prompting (scalars, averaged over the sub-iterations)."""

    loss: torch.Tensor
    mask_loss: torch.Tensor
    iou_loss: torch.Tensor
    dice_first: float
    dice_last: float


def iterative_prompt_loss(
    sam: nn.Module,
    cache,
    objects: ObjectTargets,
    settings: PromptSettings,
    *,
    use_box: bool,
    input_size: int,
    generator: torch.Generator | None = None,
) -> PromptStep:
    """Iterative prompting of ``P`` objects on one image (see the module docstring).

    Parameters
    ----------
    sam : transformers.SamModel
    cache : DecoderCache
        From :func:`~samscope.models.decoder.prepare_decoder` of this image's embedding.
    objects : ObjectTargets
    settings : PromptSettings
    use_box : bool
        Start from the (distorted) bounding box instead of one random positive point.
    input_size : int
        Side ``S`` of the encoder input the patch was resized to.
    generator : torch.Generator, optional

    Returns
    -------
    PromptStep
    """
    full, low = objects.full, objects.low
    p, patch = full.shape[0], full.shape[-1]
    size = low.shape[-1]
    device = low.device
    scale = input_size / patch  # patch pixel -> input pixel
    low_scale = input_size / size  # logit pixel -> input pixel
    rows = torch.arange(p, device=device)

    boxes = points = labels = None
    if use_box:
        box = prompts.boxes_from_masks(full, distortion=settings.box_distortion, generator=generator)
        boxes = box[:, [1, 0, 3, 2]] * scale  # (x0, y0, x1, y1)
        candidates = low[:, None]
        valid = None
    else:
        yx, _ = prompts.random_points(full, generator=generator)
        points = (yx.flip(-1).float() * scale)[:, None]  # (P, 1, 2) xy
        labels = torch.ones((p, 1), dtype=torch.long, device=device)
        if objects.all_full is not None:
            # every object under the click is a valid answer (Jadhav et al. 2026, §3.2)
            under = objects.all_full[:, yx[:, 0], yx[:, 1]].T  # (P, M)
            count = int(under.sum(dim=1).max())
            order = torch.argsort(under.to(torch.int8), dim=1, descending=True, stable=True)[:, :count]
            valid = torch.gather(under, 1, order)
            candidates = objects.all_low[order]  # (P, C, L, L)
        else:
            candidates = low[:, None]
            valid = None

    dense = None
    total = mask_total = iou_total = torch.zeros((), device=device)
    dice_first = dice_last = 0.0
    steps = settings.n_sub_iterations
    for it in range(steps):
        multimask = points is not None and boxes is None and it == 0
        sparse = sparse_embeddings(sam, points, labels, boxes)
        logits, iou_pred = decode(sam, cache, sparse, dense=dense, multimask=multimask)
        logits = logits.float()
        prob = torch.sigmoid(logits)
        result = losses.prompt_mask_loss(prob, candidates, valid)
        if candidates.shape[1] > 1:  # commit to the object the least loss chose
            candidates = candidates[rows, result.candidate][:, None]
            valid = None
        target = candidates[:, 0]  # (P, L, L)
        mask_loss = result.loss.mean()
        with torch.no_grad():
            true_iou = losses.mask_iou(logits > 0, target > 0.5)
        iou_loss = F.mse_loss(iou_pred.float(), true_iou)
        mask_total = mask_total + mask_loss
        iou_total = iou_total + iou_loss
        dice = 1.0 - float(result.loss.detach().mean())
        if it == 0:
            dice_first = dice
        dice_last = dice
        if it == steps - 1:
            break
        with torch.no_grad():
            best = iou_pred.argmax(dim=1)
            best_logits = logits[rows, best]  # (P, L, L)
            new, new_labels = prompts.corrective_points(
                best_logits > 0, target > 0.5, generator=generator
            )
            xy = (new.flip(-1).float() + 0.5) * low_scale - 0.5  # (P, 2, 2)
            points = xy if points is None else torch.cat([points, xy], dim=1)
            labels = new_labels if labels is None else torch.cat([labels, new_labels], dim=1)
            feed = bool(torch.rand((), generator=generator, device=device) < settings.mask_prob)
        dense = sam.prompt_encoder.mask_embed(best_logits[:, None].detach()) if feed else None
    mask_total = mask_total / steps
    iou_total = iou_total / steps
    total = mask_total + settings.iou_weight * iou_total
    return PromptStep(total, mask_total, iou_total, dice_first, dice_last)


def resize_maps(logits: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, C, h, w)`` maps resized bilinearly to ``(B, C, size, size)`` (unchanged when they fit)."""
    if logits.shape[-1] == size:
        return logits
    return F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)


def _checkpointable(encoder: nn.Module) -> bool:
    """Whether ``encoder`` is SAM's ViT (patch embedding, blocks, neck) that
    :func:`_checkpointed_encoder` can run block by block."""
    return all(hasattr(encoder, name) for name in ("patch_embed", "layers", "neck"))


def _checkpointed_encoder(encoder: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """SAM's ViT forward (as ``SamVisionEncoder.forward``) with each block checkpointed."""
    from torch.utils.checkpoint import checkpoint

    hidden = encoder.patch_embed(pixels)
    if getattr(encoder, "pos_embed", None) is not None:
        hidden = hidden + encoder.pos_embed
    for layer in encoder.layers:
        hidden = checkpoint(layer, hidden, use_reentrant=False)
    return encoder.neck(hidden)


class TrainingModel(nn.Module):
    """SAM with its optional heads, as one module whose forward returns the training losses.

    Parameters
    ----------
    sam : transformers.SamModel
    instance_head, distance_head : nn.Module, optional
    prompt : PromptSettings or None
        None: no prompt training.
    weights : dict
        ``{"prompt": w, "instance": w, "distance": w}``.
    mean, std : tuple of float
        Pixel normalisation of the encoder input.
    checkpoint_encoder : bool
        Activation checkpointing of the image-encoder blocks when the encoder trains
        (``torch.utils.checkpoint``): each block keeps only its input for the backward pass and
        runs its forward again there — less memory for one more encoder forward per step. The
        losses and gradients are the same.
    """

    def __init__(
        self,
        sam: nn.Module,
        *,
        instance_head: nn.Module | None = None,
        distance_head: nn.Module | None = None,
        prompt: PromptSettings | None,
        weights: dict[str, float],
        mean: tuple[float, ...],
        std: tuple[float, ...],
        checkpoint_encoder: bool = False,
    ) -> None:
        super().__init__()
        self.sam = sam
        self.checkpoint_encoder = bool(checkpoint_encoder)
        self.instance_head = instance_head
        self.distance_head = distance_head
        self.prompt = prompt
        self.weights = dict(weights)
        self.mean, self.std = tuple(mean), tuple(std)
        from samscope.models.sam2_decoder import input_geometry
        from samscope.models.sam2_model import adapt_heads

        self.input_size, self.low_res = input_geometry(sam)  # SAM or SAM2
        adapt_heads(sam, instance_head, distance_head)  # SAM2: heads read the embedding part

    def encoder_trains(self) -> bool:
        """Whether any image-encoder parameter requires gradients."""
        return any(p.requires_grad for p in self.sam.vision_encoder.parameters())

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """Image embeddings ``(B, C, g, g)`` of 0–1 patches (gradients only if the encoder trains)."""
        from samscope.models.sam2_decoder import encoder_embedding  # SAM2: packed multi-scale

        pixels = encoder_input(image, self.input_size, self.mean, self.std)
        if not self.encoder_trains():
            with torch.no_grad():
                return encoder_embedding(self.sam, pixels)
        encoder = self.sam.vision_encoder
        if self.checkpoint_encoder and _checkpointable(encoder):
            return _checkpointed_encoder(encoder, pixels)
        return encoder_embedding(self.sam, pixels)

    def distance_logits(self, embedding: torch.Tensor) -> torch.Tensor:
        """Distance-map head output ``(B, 1, S', S')`` before the sigmoid."""
        head = self.distance_head
        if hasattr(head, "logits"):
            return head.logits(embedding)
        return head(embedding)

    def forward(
        self,
        image: torch.Tensor,
        labels: torch.Tensor,
        masks: list,
        instance_target: torch.Tensor | None = None,
        distance_target: torch.Tensor | None = None,
        *,
        seed: int = 0,
    ) -> dict[str, torch.Tensor]:
        """Losses of one micro-batch.

        Returns
        -------
        dict
            ``"loss"`` (weighted sum, to back-propagate) and its parts as available:
            ``"mask_loss"``, ``"iou_loss"``, ``"instance_loss"``, ``"distance_loss"``,
            ``"train_dice"`` (dice of the last sub-iteration).
        """
        device = image.device
        generator = torch.Generator(device=device)
        generator.manual_seed(int(seed))
        embedding = self.embed(image)
        out: dict[str, torch.Tensor] = {}
        total = embedding.new_zeros(())
        patch = image.shape[-1]
        if self.prompt is not None:
            step_losses, mask_l, iou_l, dice = [], [], [], []
            for b in range(image.shape[0]):
                objects = select_objects(
                    labels[b], masks[b] if masks[b] is not None else None,
                    self.prompt.n_objects, self.low_res,
                    overlap_aware=self.prompt.overlap_aware, generator=generator,
                )  # fmt: skip
                if objects is None:
                    continue
                cache = prepare_decoder(self.sam, embedding[b : b + 1])
                use_box = bool(torch.rand((), generator=generator, device=device) < self.prompt.box_prob)
                result = iterative_prompt_loss(
                    self.sam, cache, objects, self.prompt, use_box=use_box,
                    input_size=self.input_size, generator=generator,
                )  # fmt: skip
                step_losses.append(result.loss)
                mask_l.append(result.mask_loss.detach())
                iou_l.append(result.iou_loss.detach())
                dice.append(result.dice_last)
            if step_losses:
                prompt_loss = torch.stack(step_losses).mean()
                total = total + self.weights.get("prompt", 1.0) * prompt_loss
                out["mask_loss"] = torch.stack(mask_l).mean()
                out["iou_loss"] = torch.stack(iou_l).mean()
                out["train_dice"] = torch.tensor(float(np.mean(dice)))
        if self.instance_head is not None and instance_target is not None:
            logits = resize_maps(self.instance_head.logits(embedding).float(), patch)
            loss = losses.instance_distance_loss(torch.sigmoid(logits), instance_target)
            out["instance_loss"] = loss.detach()
            total = total + self.weights.get("instance", 1.0) * loss
        if self.distance_head is not None and distance_target is not None:
            logits = resize_maps(self.distance_logits(embedding).float(), patch)
            loss = losses.distance_map_loss(torch.sigmoid(logits), distance_target)
            out["distance_loss"] = loss.detach()
            total = total + self.weights.get("distance", 1.0) * loss
        out["loss"] = total
        return out
