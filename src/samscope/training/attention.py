"""Image-encoder attention for training: the relative-position bias added in place of a mask.

:class:`~samscope.models.attention.RelPosAttention` (inference) hands the decomposed
relative-position bias to ``scaled_dot_product_attention`` as an additive mask. Under autograd
that mask needs a gradient, so SDPA falls back to its reference path, which on a CPU also scans
the ``(heads, N, N)`` mask for fully masked rows (``isneginf``/``all``/``where``) and in bfloat16
round-trips it through float32 (measured: 2× slower than the explicit form below for a ViT-B
global block under bf16 autocast).

:class:`TrainingRelPosAttention` computes the same function explicitly, as segment-anything does:
``softmax(q·kᵀ/√d + bias_h + bias_w) v`` with the two bias terms broadcast-added to the logits
viewed as ``(…, h, w, h, w)``. Without gradients it is the inference module. It shares parameters
with the module it replaces, so state-dict keys, LoRA layers and checkpoints are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from samscope.models.attention import RelPosAttention

__all__ = ["TrainingRelPosAttention", "use_training_attention"]


class TrainingRelPosAttention(RelPosAttention):
    """:class:`RelPosAttention` with an explicit, autograd-friendly biased attention."""

    @staticmethod
    def _attend_with_bias(query, key, value, rel_h, rel_w) -> torch.Tensor:
        if not (torch.is_grad_enabled() and (query.requires_grad or rel_h.requires_grad)):
            return RelPosAttention._attend_with_bias(query, key, value, rel_h, rel_w)
        batch, heads, height, width, _ = rel_h.shape
        tokens = height * width
        scale = query.shape[-1] ** -0.5
        logits = torch.matmul(query * scale, key.transpose(-1, -2))
        logits = logits.view(batch, heads, height, width, height, width)
        logits = logits + rel_h[..., :, None] + rel_w[..., None, :]
        probs = logits.view(batch, heads, tokens, tokens).softmax(dim=-1).to(value.dtype)
        return torch.matmul(probs, value)


def use_training_attention(sam: nn.Module) -> nn.Module:
    """Swap every image-encoder attention of ``sam`` for :class:`TrainingRelPosAttention` (in place).

    Parameters (and any LoRA wrappers around ``qkv``) are shared, not copied. Returns ``sam``.
    """
    for layer in getattr(sam.vision_encoder, "layers", ()):  # SAM2's Hiera keeps its own
        if hasattr(layer, "attn") and not isinstance(layer.attn, TrainingRelPosAttention):
            layer.attn = TrainingRelPosAttention.from_transformers(layer.attn)
    return sam
