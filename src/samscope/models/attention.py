"""A faster drop-in for the ViT attention of SAM's image encoder.

``transformers``' SAM attention adds a decomposed relative-position bias to the attention logits.
It builds that bias as a ``(batch·heads, H, W, H, W)`` tensor in a permuted memory layout, so the
following ``reshape`` copies it once more before SDPA reads it: for a global-attention block of
ViT-B at 1024² that is 12 × 4096² floats (805 MB) written twice, ≈0.9 s of each global block's
≈1.2 s on a 2-core CPU (measured with ``torch.profiler``; see ``benchmarks/bench_core.py``).

:class:`RelPosAttention` computes the same function with the bias built head by head into one
reused contiguous buffer and handed to ``scaled_dot_product_attention`` (which runs its fused CPU
kernel with an additive mask). Parameters and state-dict keys are those of
``SamVisionAttention``, so checkpoints load unchanged. Under autograd it falls back to an
allocation per head (``out=`` buffers cannot carry gradients).

Why not fold the bias into augmented query/key vectors (``q' = [q·s, q·Rh, q·Rw]``,
``k' = [k, onehot(h), onehot(w)]``)? Measured: SDPA then leaves its fused kernel
(query and value widths differ) and the global block gets slower (1.3 s vs 0.4 s).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def relative_positions(size: int, rel_pos: torch.Tensor) -> torch.Tensor:
    """Relative-position embeddings for every (query, key) pair along one axis.

    Parameters
    ----------
    size : int
        Number of tokens along the axis (queries and keys alike).
    rel_pos : torch.Tensor
        ``(L, C)`` learned table; resized linearly to ``2·size − 1`` entries when ``L`` differs.

    Returns
    -------
    torch.Tensor
        ``(size, size, C)``: entry ``[i, j]`` is the embedding of offset ``i − j``.
    """
    length = 2 * size - 1
    if rel_pos.shape[0] != length:
        rel_pos = F.interpolate(rel_pos.T[None], size=length, mode="linear")[0].T
    coords = torch.arange(size, device=rel_pos.device)
    index = coords[:, None] - coords[None, :] + (size - 1)
    return rel_pos[index]


class RelPosAttention(nn.Module):
    """Multi-head self-attention with SAM's decomposed relative-position bias.

    Same parameters (``qkv``, ``proj``, ``rel_pos_h``, ``rel_pos_w``) and outputs as
    ``transformers``' ``SamVisionAttention``; faster on CPU (see module docstring).
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        input_size: tuple[int, int],
        *,
        qkv_bias: bool = True,
        use_rel_pos: bool = True,
    ) -> None:
        super().__init__()
        self.num_attention_heads = num_heads
        head_dim = hidden_size // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(hidden_size, hidden_size * 3, bias=qkv_bias)
        self.proj = nn.Linear(hidden_size, hidden_size)
        self.use_rel_pos = use_rel_pos
        if use_rel_pos:
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    @classmethod
    def from_transformers(cls, attn: nn.Module) -> RelPosAttention:
        """Make a :class:`RelPosAttention` that shares ``attn``'s parameters (no copy)."""
        hidden = attn.qkv.in_features
        new = cls.__new__(cls)
        nn.Module.__init__(new)
        new.num_attention_heads = attn.num_attention_heads
        new.scale = attn.scale
        new.qkv = attn.qkv
        new.proj = attn.proj
        new.use_rel_pos = attn.use_rel_pos
        if attn.use_rel_pos:
            new.rel_pos_h = attn.rel_pos_h
            new.rel_pos_w = attn.rel_pos_w
        assert new.qkv.out_features == 3 * hidden
        return new

    def forward(self, hidden_states: torch.Tensor, output_attentions: bool | None = None):
        """Attend over a ``(B, H, W, C)`` token grid; returns ``(output, None)`` like transformers."""
        return self.proj(self.attend(self.qkv(hidden_states))), None

    def attend(self, qkv: torch.Tensor) -> torch.Tensor:
        """The attention of ``(B, H, W, 3C)`` query/key/value tokens, before ``proj``: ``(B, H, W, C)``."""
        batch, height, width, _ = qkv.shape
        heads = self.num_attention_heads
        tokens = height * width
        qkv = qkv.reshape(batch, tokens, 3, heads, -1).permute(2, 0, 3, 1, 4)
        query, key, value = qkv.unbind(0)  # (B, heads, tokens, head_dim), strided views
        head_dim = query.shape[-1]
        if not self.use_rel_pos:
            out = F.scaled_dot_product_attention(query, key, value)
        else:
            rh = relative_positions(height, self.rel_pos_h.to(query.dtype))  # (H, H, c)
            rw = relative_positions(width, self.rel_pos_w.to(query.dtype))  # (W, W, c)
            grid_q = query.reshape(batch, heads, height, width, head_dim)
            # rel_h[b, n, h, w, k] = q[b, n, h, w] · rh[h, k]  (contiguous results)
            rel_h = torch.einsum("bnhwc,hkc->bnhwk", grid_q, rh).contiguous()
            rel_w = torch.einsum("bnhwc,wkc->bnhwk", grid_q, rw).contiguous()
            out = self._attend_with_bias(query, key, value, rel_h, rel_w)
        out = out.reshape(batch, heads, height, width, head_dim).permute(0, 2, 3, 1, 4)
        return out.reshape(batch, height, width, heads * head_dim)

    @staticmethod
    def _attend_with_bias(query, key, value, rel_h, rel_w) -> torch.Tensor:
        batch, heads, height, width, _ = rel_h.shape
        tokens = height * width
        if torch.is_grad_enabled() and (query.requires_grad or rel_h.requires_grad):
            bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(batch, heads, tokens, tokens)
            return F.scaled_dot_product_attention(query, key, value, attn_mask=bias)
        # Inference: one head (or group of window-heads) at a time into a reused buffer, so the
        # bias never exists whole and its memory stays hot in cache.
        per_call = max(1, (1 << 22) // (tokens * tokens))  # ~16 MB of bias per call
        rows = batch * heads
        # 4-D (1, rows, tokens, c) views: SDPA's fused CPU kernel takes only 4-D inputs.
        q = query.reshape(1, rows, tokens, -1)
        k = key.reshape(1, rows, tokens, -1)
        v = value.reshape(1, rows, tokens, -1)
        rh = rel_h.reshape(rows, height, width, height)
        rw = rel_w.reshape(rows, height, width, width)
        out = torch.empty(1, rows, tokens, v.shape[-1], dtype=query.dtype, device=query.device)
        buffer = torch.empty(
            min(per_call, rows),
            height,
            width,
            height,
            width,
            dtype=query.dtype,
            device=query.device,
        )
        for start in range(0, rows, per_call):
            stop = min(start + per_call, rows)
            bias = buffer[: stop - start]
            torch.add(rh[start:stop, :, :, :, None], rw[start:stop, :, :, None, :], out=bias)
            out[:, start:stop] = F.scaled_dot_product_attention(
                q[:, start:stop],
                k[:, start:stop],
                v[:, start:stop],
                attn_mask=bias.view(1, -1, tokens, tokens),
            )
        return out.reshape(batch, heads, tokens, -1)


def windowed_layer_forward(layer: nn.Module, hidden_states: torch.Tensor) -> torch.Tensor:
    """``SamVisionLayer.forward`` of a windowed block, with ``qkv`` and ``proj`` on the image's tokens only.

    SAM pads the token grid to a multiple of the window (64² → 70² for ViT-B at 1024²) *after*
    ``layer_norm1`` and runs ``qkv`` and ``proj`` on the padded windows: 20 % more rows than
    there are tokens. A padding token is zero there, so its ``qkv`` is the bias; and ``proj`` acts
    token by token, so cropping before it changes nothing. Here ``qkv`` runs on the 64² tokens,
    the padding is filled with the bias, and ``proj`` runs after the crop: the same function with
    ≈16 % fewer rows through the two Linear layers of each windowed block (they are int8 under
    ``precision="int8"``, which this keeps). Other attention modules run the stock forward.
    """
    attn = layer.attn
    size = int(getattr(layer, "window_size", 0) or 0)
    if type(attn) is not RelPosAttention or size <= 0:
        return type(layer).forward(layer, hidden_states)
    residual = hidden_states
    qkv = attn.qkv(layer.layer_norm1(hidden_states))  # (B, H, W, 3C)
    batch, height, width, channels = qkv.shape
    pad_h, pad_w = (-height) % size, (-width) % size
    if pad_h or pad_w:
        bias = attn.qkv.bias
        bias = bias() if callable(bias) else bias  # a dynamically quantised Linear's is a method
        fill = qkv.new_zeros(channels) if bias is None else bias.to(qkv.dtype)
        padded = fill.expand(batch, height + pad_h, width + pad_w, channels).clone()
        padded[:, :height, :width] = qkv
        qkv = padded
    ph, pw = (height + pad_h) // size, (width + pad_w) // size
    windows = qkv.reshape(batch, ph, size, pw, size, channels).permute(0, 1, 3, 2, 4, 5)
    out = attn.attend(windows.reshape(-1, size, size, channels))  # (B·nw, s, s, C)
    out = out.reshape(batch, ph, pw, size, size, -1).permute(0, 1, 3, 2, 4, 5)
    out = out.reshape(batch, ph * size, pw * size, -1)[:, :height, :width]
    hidden_states = residual + attn.proj(out)
    return hidden_states + layer.mlp(layer.layer_norm2(hidden_states))


def accelerate_encoder(sam: nn.Module) -> nn.Module:
    """Swap every attention module of a ``transformers.SamModel`` image encoder for :class:`RelPosAttention`.

    Windowed blocks also get :func:`windowed_layer_forward` (an instance attribute, so copies
    such as the int8 encoder keep it). Parameters are shared, not copied; the state dict keeps
    its keys. Returns ``sam``.
    """
    import types

    for layer in sam.vision_encoder.layers:
        if hasattr(layer, "attn") and not isinstance(layer.attn, RelPosAttention):
            layer.attn = RelPosAttention.from_transformers(layer.attn)
        if int(getattr(layer, "window_size", 0) or 0) > 0 and "forward" not in vars(layer):
            layer.forward = types.MethodType(windowed_layer_forward, layer)
    return sam
