"""Image-encoder attention for training: SAM's relative-position-biased attention, chunked.

:class:`~samscope.models.attention.RelPosAttention` (inference) hands the decomposed
relative-position bias to ``scaled_dot_product_attention`` as an additive mask. Under autograd
that mask needs a gradient, so SDPA falls back to its reference path, which materialises the
``(heads, N, N)`` logits and probabilities (for a ViT-B global block at 1024²: 12 × 4096² floats,
0.8 GB per tensor, kept for the backward pass) and scans the mask for fully masked rows.

:class:`TrainingRelPosAttention` computes the same function,
``softmax(q·kᵀ/√d + bias_h + bias_w) v`` with the two bias terms broadcast over the logits viewed
as ``(…, h, w, h, w)`` (as segment-anything), with :class:`BiasedAttention`, an autograd function
that works on blocks of query rows (about 16 MB of logits at a time, so they stay in cache) and
keeps for the backward pass only ``q``, ``k``, ``v``, the two bias terms and the output — the
probabilities are recomputed block by block in the backward pass (one extra ``q·kᵀ`` product, as
flash attention does), and the bias gradients are the row/column sums of each block's logit
gradient. Without gradients it is the inference module. It shares parameters with the module it
replaces, so state-dict keys, LoRA layers and checkpoints are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from samscope.models.attention import RelPosAttention

__all__ = ["BiasedAttention", "TrainingRelPosAttention", "biased_attention", "use_training_attention"]

#: Floats of logits per block of :class:`BiasedAttention` (16 MB in float32).
BLOCK_FLOATS = 1 << 22


def _blocks(rows: int, tokens: int):
    """``(row slice, query slice)`` blocks of about :data:`BLOCK_FLOATS` logits each."""
    per_row = tokens * tokens
    if per_row <= BLOCK_FLOATS:
        step = max(1, BLOCK_FLOATS // per_row)
        for r in range(0, rows, step):
            yield slice(r, min(r + step, rows)), slice(0, tokens)
        return
    queries = max(1, BLOCK_FLOATS // tokens)
    for r in range(rows):
        for t in range(0, tokens, queries):
            yield slice(r, r + 1), slice(t, min(t + queries, tokens))


def _logits(q, k, bh, bw, scale, height, width):
    """Biased logits ``(r, t, N)`` of one block (``bh`` ``(r, t, h)``, ``bw`` ``(r, t, w)``)."""
    s = torch.matmul(q, k.transpose(-1, -2)).mul_(scale)
    grid = s.view(s.shape[0], s.shape[1], height, width)
    grid.add_(bh[..., :, None]).add_(bw[..., None, :])
    return s


class BiasedAttention(torch.autograd.Function):
    """``softmax(q·kᵀ·scale + bias_h + bias_w) v`` by blocks, probabilities recomputed backward.

    Inputs: ``q, k, v`` ``(R, N, d)``; ``rel_h`` ``(R, N, h)``, ``rel_w`` ``(R, N, w)`` with
    ``N = h·w`` (the decomposed bias of query ``n`` for key row ``i`` / key column ``j``).
    """

    @staticmethod
    def forward(ctx, q, k, v, rel_h, rel_w, scale: float):
        rows, tokens, _ = q.shape
        height, width = rel_h.shape[-1], rel_w.shape[-1]
        out = q.new_empty(rows, tokens, v.shape[-1])
        for r, t in _blocks(rows, tokens):
            s = _logits(q[r, t], k[r], rel_h[r, t], rel_w[r, t], scale, height, width)
            out[r, t] = torch.matmul(torch.softmax(s, dim=-1), v[r])
        ctx.save_for_backward(q, k, v, rel_h, rel_w, out)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, rel_h, rel_w, out = ctx.saved_tensors
        scale = ctx.scale
        rows, tokens, _ = q.shape
        height, width = rel_h.shape[-1], rel_w.shape[-1]
        grad_out = grad_out.contiguous()
        delta = (grad_out * out).sum(dim=-1)  # (R, N): rowsum(dP ∘ P)
        dq, dk, dv = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        dh, dw = torch.empty_like(rel_h), torch.empty_like(rel_w)
        for r, t in _blocks(rows, tokens):
            p = torch.softmax(_logits(q[r, t], k[r], rel_h[r, t], rel_w[r, t], scale, height, width), dim=-1)
            go = grad_out[r, t]
            dv[r] += torch.matmul(p.transpose(-1, -2), go)
            ds = torch.matmul(go, v[r].transpose(-1, -2))  # dP
            ds.sub_(delta[r, t, None]).mul_(p)  # dS = P ∘ (dP − rowsum(dP ∘ P))
            grid = ds.view(ds.shape[0], ds.shape[1], height, width)
            dh[r, t] = grid.sum(dim=-1)
            dw[r, t] = grid.sum(dim=-2)
            dq[r, t] = torch.matmul(ds, k[r]).mul_(scale)
            dk[r] += torch.matmul(ds.transpose(-1, -2), q[r, t]).mul_(scale)
        return dq, dk, dv, dh, dw, None


def biased_attention(query, key, value, rel_h, rel_w) -> torch.Tensor:
    """SAM's biased attention (``(B, heads, N, d)`` inputs, ``rel_h`` ``(B, heads, h, w, h)``,
    ``rel_w`` ``(B, heads, h, w, w)``) through :class:`BiasedAttention`; ``(B, heads, N, d)``."""
    batch, heads, height, width, _ = rel_h.shape
    rows, tokens = batch * heads, height * width
    out = BiasedAttention.apply(
        query.reshape(rows, tokens, -1), key.reshape(rows, tokens, -1),
        value.reshape(rows, tokens, -1), rel_h.reshape(rows, tokens, height),
        rel_w.reshape(rows, tokens, width), query.shape[-1] ** -0.5,
    )  # fmt: skip
    return out.view(batch, heads, tokens, -1)


class TrainingRelPosAttention(RelPosAttention):
    """:class:`RelPosAttention` with a memory-lean, autograd-friendly biased attention."""

    @staticmethod
    def _attend_with_bias(query, key, value, rel_h, rel_w) -> torch.Tensor:
        if not (torch.is_grad_enabled() and (query.requires_grad or rel_h.requires_grad)):
            return RelPosAttention._attend_with_bias(query, key, value, rel_h, rel_w)
        return biased_attention(query, key, value, rel_h, rel_w)


def use_training_attention(sam: nn.Module) -> nn.Module:
    """Swap every image-encoder attention of ``sam`` for :class:`TrainingRelPosAttention` (in place).

    Parameters (and any LoRA wrappers around ``qkv``) are shared, not copied. Returns ``sam``.
    """
    for layer in getattr(sam.vision_encoder, "layers", ()):  # SAM2's Hiera keeps its own
        if hasattr(layer, "attn") and not isinstance(layer.attn, TrainingRelPosAttention):
            layer.attn = TrainingRelPosAttention.from_transformers(layer.attn)
    return sam
