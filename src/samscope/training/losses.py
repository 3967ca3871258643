"""Training losses: dice with best-of-multimask and overlap-aware minima, IoU regression, heads.

Mask losses are computed on the decoder's low-resolution grid (``4g × 4g``, 256² for ViT
models) against ground truth downsampled to it by area averaging, so a target pixel holds the
fraction of it covered by the object. µSAM upsamples the logits to the input size instead; the
low-resolution comparison costs 16× less and gives the decoder the same signal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "PromptLoss",
    "dice_loss",
    "distance_map_loss",
    "instance_distance_loss",
    "mask_iou",
    "prompt_mask_loss",
]


def dice_loss(prob: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """``1 − 2 Σ p t / (Σ p² + Σ t²)`` over the last two axes (torch_em's dice, as µSAM uses).

    Parameters
    ----------
    prob, target : torch.Tensor
        ``(..., H, W)``, broadcastable; values in 0–1.

    Returns
    -------
    torch.Tensor
        ``(...)``: one loss per leading index.
    """
    inter = (prob * target).sum(dim=(-2, -1))
    denom = (prob * prob).sum(dim=(-2, -1)) + (target * target).sum(dim=(-2, -1))
    return 1.0 - 2.0 * inter / denom.clamp_min(eps)


class PromptLoss:
    """Result of :func:`prompt_mask_loss`.

    Attributes
    ----------
    loss : torch.Tensor
        ``(P,)`` the chosen (minimal) dice loss per object.
    output : torch.Tensor
        long ``(P,)`` which of the ``K`` mask outputs it came from.
    candidate : torch.Tensor
        long ``(P,)`` which candidate target it was compared with.
    """

    __slots__ = ("candidate", "loss", "output")

    def __init__(self, loss: torch.Tensor, output: torch.Tensor, candidate: torch.Tensor) -> None:
        self.loss, self.output, self.candidate = loss, output, candidate


def prompt_mask_loss(
    prob: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor | None = None
) -> PromptLoss:
    """Dice loss of each object's best output against its best candidate target.

    The minimum over the ``K`` outputs is SAM's ambiguity-aware loss for a single point (µSAM's
    best-of-three); the minimum over the ``C`` candidate targets is the overlap-aware loss of seed
    000 (§3.2): a point lying on several overlapping objects may mean any of them, and the one
    with the least loss is used.

    Parameters
    ----------
    prob : torch.Tensor
        ``(P, K, H, W)`` predicted probabilities.
    targets : torch.Tensor
        ``(P, C, H, W)`` candidate target masks (0–1).
    valid : torch.Tensor, optional
        bool ``(P, C)``; invalid candidates (padding) are ignored. Each row needs one valid entry.

    Returns
    -------
    PromptLoss

    Examples
    --------
    >>> pred = torch.zeros(1, 1, 4, 4); pred[0, 0, :2] = 1
    >>> a = torch.zeros(4, 4); a[:2] = 1            # what the prediction shows
    >>> b = torch.zeros(4, 4); b[:, :2] = 1         # another object under the same point
    >>> r = prompt_mask_loss(pred, torch.stack([b, a])[None])
    >>> float(r.loss), int(r.candidate)
    (0.0, 1)
    """
    p, k = prob.shape[:2]
    c = targets.shape[1]
    losses = dice_loss(prob[:, :, None], targets[:, None])  # (P, K, C)
    if valid is not None:
        losses = torch.where(valid[:, None, :], losses, torch.full_like(losses, float("inf")))
    flat = losses.reshape(p, k * c)
    best, index = flat.min(dim=1)
    return PromptLoss(best, index // c, index % c)


def mask_iou(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of binary predictions ``(P, K, H, W)`` with targets ``(P, H, W)`` → ``(P, K)``.

    An empty prediction of an empty target has IoU 1.
    """
    pred = prediction.bool()
    tgt = target.bool()[:, None]
    inter = (pred & tgt).sum(dim=(-2, -1)).float()
    union = (pred | tgt).sum(dim=(-2, -1)).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def instance_distance_loss(
    prob: torch.Tensor, target: torch.Tensor, *, mask_background: bool = True
) -> torch.Tensor:
    """µSAM's loss of the instance-distance head: dice on each of the three maps.

    ``torch_em``'s ``DiceBasedDistanceLoss(mask_distances_in_bg=True)``: dice of the foreground
    map, plus dice of the centre- and boundary-distance maps with both prediction and target
    multiplied by the foreground target (the distances are undefined in the background).

    Parameters
    ----------
    prob : torch.Tensor
        ``(B, 3, H, W)`` predicted maps (after the sigmoid).
    target : torch.Tensor
        ``(B, 3, H, W)`` from :func:`samscope.instance.targets.instance_distance_targets`.

    Returns
    -------
    torch.Tensor
        Scalar.
    """
    if prob.shape != target.shape or prob.shape[1] != 3:
        raise ValueError(f"expected two (B, 3, H, W) tensors, got {prob.shape} and {target.shape}")
    fg_t = target[:, 0]
    loss = _batch_dice(prob[:, 0], fg_t)
    for channel in (1, 2):
        p, t = prob[:, channel], target[:, channel]
        if mask_background:
            p, t = p * fg_t, t * fg_t
        loss = loss + _batch_dice(p, t)
    return loss


def _batch_dice(prob: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Dice loss summed over the whole batch (torch_em: one channel, all samples together)."""
    inter = (prob * target).sum()
    denom = (prob * prob).sum() + (target * target).sum()
    return 1.0 - 2.0 * inter / denom.clamp_min(eps)


def distance_map_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SAMCell's L2 loss: mean squared error to the normalised distance-to-border map."""
    return F.mse_loss(prediction, target)
