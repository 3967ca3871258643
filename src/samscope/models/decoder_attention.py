"""The two-way transformer's attention layers for :mod:`samscope.models.decoder` (SAM and SAM2).

Two evaluations of each attention: in ``transformers``' order (:func:`self_attention`,
:func:`tokens_to_image`, :func:`image_to_tokens`: training, any layout), and reassociated for
inference (:func:`image_to_tokens_reassociated`, :func:`tokens_to_image_reassociated`: the
products with the image tokens reordered so no ``(P, N, I)`` projection is formed; see the
decoder module's docstring).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``(B, N, H·d)`` → ``(B, H, N, d)`` (a view)."""
    b, n, c = x.shape
    return x.reshape(b, n, heads, c // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``(B, H, N, d)`` → ``(B, N, H·d)``."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def out_projection(attn: nn.Module) -> nn.Module:
    """The attention's output projection (``out_proj`` in SAM, ``o_proj`` in SAM2)."""
    return attn.out_proj if hasattr(attn, "out_proj") else attn.o_proj


def self_attention(attn: nn.Module, query: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Self-attention of the prompt tokens (keys = queries), ``transformers``' order."""
    h = attn.num_attention_heads
    q = split_heads(attn.q_proj(query), h)
    k = split_heads(attn.k_proj(query), h)
    v = split_heads(attn.v_proj(value), h)
    out = F.scaled_dot_product_attention(q, k, v, scale=attn.scaling)
    return out_projection(attn)(merge_heads(out))


def tokens_to_image(attn, query, key=None, value=None, *, k=None, v=None) -> torch.Tensor:
    """Prompt tokens ``(P, T, C)`` attend to image tokens (shared projections when given)."""
    h = attn.num_attention_heads
    q = split_heads(attn.q_proj(query), h)  # (P, h, T, d)
    if k is None:
        k = split_heads(attn.k_proj(key), h)
        v = split_heads(attn.v_proj(value), h)
        out = F.scaled_dot_product_attention(q, k, v, scale=attn.scaling)
    else:  # shared keys/values: stack every prompt's queries into one batch of rows
        p, _, t, d = q.shape
        rows = q.transpose(0, 1).reshape(1, h, p * t, d)
        out = F.scaled_dot_product_attention(rows, k, v, scale=attn.scaling)
        out = out.reshape(h, p, t, d).transpose(0, 1)
    return out_projection(attn)(merge_heads(out))


def image_to_tokens(attn, image_query, tokens_key, tokens_value, *, q=None) -> torch.Tensor:
    """Image tokens attend to prompt tokens; ``q`` = shared projected queries ``(1, h, N, d)``."""
    h = attn.num_attention_heads
    k = split_heads(attn.k_proj(tokens_key), h)  # (P, h, T, d)
    v = split_heads(attn.v_proj(tokens_value), h)
    if q is None:
        q = split_heads(attn.q_proj(image_query), h)  # (P, h, N, d)
    elif k.shape[0] != 1:
        q = q.expand(k.shape[0], -1, -1, -1)
    # SDPA, not matmul + softmax: a softmax over only T ≈ 7 keys per row is slow as a separate op.
    out = F.scaled_dot_product_attention(q, k, v, scale=attn.scaling)
    return out_projection(attn)(merge_heads(out))


def heads_of(x: torch.Tensor, h: int) -> torch.Tensor:  # (P, T, I) -> (P, H, T, d)
    p, t, i = x.shape
    return x.reshape(p, t, h, i // h).transpose(1, 2)


def image_to_tokens_reassociated(attn, keyed, tok_key, tok_value, residual, shared_q=None, *,
                          inplace=False):
    """``residual + out_proj(attention of image rows over prompt tokens)``, (P, N, C).

    ``keyed`` are the image queries ``x_n + p_n`` (P or 1, N, C) (unused with ``shared_q``);
    ``inplace`` adds into ``residual`` (a fresh tensor the caller no longer needs).
    """
    h, c = attn.num_attention_heads, residual.shape[-1]
    k = heads_of(attn.k_proj(tok_key), h)  # (P, H, T, d)
    v = heads_of(attn.v_proj(tok_value), h)
    p, _, t, d = k.shape
    # U[p, (h, t)] = v[p, h, t] W_o,hᵀ + b_o / H  (each head's softmax row sums to one)
    out_proj = out_projection(attn)
    u = torch.einsum("phtd,chd->phtc", v, out_proj.weight.reshape(c, h, d))
    u = (u + out_proj.bias / h).reshape(p, h * t, c)
    if shared_q is not None:  # first block: image queries cached, (H, N, d)
        kk = (k * attn.scaling).transpose(0, 1).reshape(h, p * t, d)
        s = torch.bmm(kk, shared_q.transpose(1, 2)).reshape(h, p, t, -1)
        s = s.transpose(0, 1).contiguous()  # (P, H, T, N)
    else:  # scores = (x_n + p_n)·(W_q,hᵀ k) + b_q,h·k: one product with the summed rows
        wq = attn.q_proj.weight.reshape(h, d, c)
        kq = torch.einsum("phtd,hdc->phtc", k, wq).reshape(p, h * t, c) * attn.scaling
        const = torch.einsum("phtd,hd->pht", k, attn.q_proj.bias.reshape(h, d)) * attn.scaling
        if keyed.shape[0] == 1 and p > 1:
            keyed = keyed.expand(p, -1, -1)
        s = torch.baddbmm(const.reshape(p, h * t, 1), kq, keyed.transpose(1, 2))
        s = s.reshape(p, h, t, -1)
    s -= s.amax(dim=2, keepdim=True)  # softmax over the T tokens of each head
    s.exp_()
    s /= s.sum(dim=2, keepdim=True)
    a = s.reshape(p, h * t, -1).transpose(1, 2)
    if inplace and residual.dtype == a.dtype == u.dtype:  # (not under bf16 autocast)
        return residual.baddbmm_(a, u)
    return torch.baddbmm(residual, a, u)


def tokens_to_image_reassociated(attn, query, image, keyed):
    """out_proj(attention of prompt tokens over image rows: keys ``keyed`` = ``image + pos``,
    values ``image``), (P, T, C). ``image`` and ``keyed`` are (P or 1, N, C)."""
    h, c = attn.num_attention_heads, image.shape[-1]
    q = heads_of(attn.q_proj(query), h)  # (P, H, T, d)
    p, _, t, d = q.shape
    qk = torch.einsum("phtd,hdc->phtc", q, attn.k_proj.weight.reshape(h, d, c))
    qk = qk.reshape(p, h * t, c) * attn.scaling  # b_k·q is constant per row: drops out
    if image.shape[0] == 1 and p > 1:
        image, keyed = image.expand(p, -1, -1), keyed.expand(p, -1, -1)
    a = torch.bmm(qk, keyed.transpose(1, 2)).softmax(dim=-1)  # (P, HT, N)
    z = torch.bmm(a, image).reshape(p, h, t, c)  # Σ_n a_n x_n
    out = torch.einsum("phtc,hdc->phtd", z, attn.v_proj.weight.reshape(h, d, c))
    out = out + attn.v_proj.bias.reshape(h, 1, d)
    return out_projection(attn)(out.transpose(1, 2).reshape(p, t, h * d))
