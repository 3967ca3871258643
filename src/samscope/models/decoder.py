"""Prompt decoding with per-image caching: SAM's mask decoder, evaluated for many prompts at once.

The mask decoder's cost is dominated by work on the ``g × g`` image tokens (4096 for a 64×64
embedding), repeated for every prompt. Part of it does not depend on the prompt: the image tokens
plus the "no mask" embedding, their positional encoding, and — in the first two-way block, before
the image tokens are updated — the key/value projections of the token→image attention and the
query projection of the image→token attention. :func:`prepare_decoder` computes those once per
image embedding; :func:`decode` then runs only the prompt-dependent rest, for ``P`` prompts in one
batch, without materialising ``P`` copies of the shared tensors.

The arithmetic is that of ``transformers.SamMaskDecoder`` (same weights, same operations in the
same order up to float rounding); ``tests/core/test_decoder.py`` checks it against
``SamModel.forward`` to 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DecoderCache:
    """Prompt-independent decoder state for one image embedding.

    Attributes
    ----------
    tokens : torch.Tensor
        ``(1, N, C)`` image tokens plus the "no mask" dense embedding.
    raw : torch.Tensor
        ``(1, C, g, g)`` the image embedding itself (for mask prompts).
    pos : torch.Tensor
        ``(1, N, C)`` positional encoding of the image tokens.
    key1, value1 : torch.Tensor
        ``(1, heads, N, d)`` first block's token→image keys and values.
    query1 : torch.Tensor
        ``(1, heads, N, d)`` first block's image→token queries.
    grid : int
        ``g``.
    """

    tokens: torch.Tensor
    raw: torch.Tensor
    pos: torch.Tensor
    key1: torch.Tensor
    value1: torch.Tensor
    query1: torch.Tensor
    grid: int


def _split(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, c = x.shape
    return x.reshape(b, n, heads, c // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def image_positional_encoding(sam: nn.Module, grid: int) -> torch.Tensor:
    """``(1, C, g, g)`` positional encoding of the embedding grid (as ``SamModel`` computes it)."""
    pe = sam.shared_image_embedding.positional_embedding
    ones = torch.ones((grid, grid), device=pe.device, dtype=pe.dtype)
    y = (ones.cumsum(dim=0) - 0.5) / grid
    x = (ones.cumsum(dim=1) - 0.5) / grid
    enc = sam.shared_image_embedding(torch.stack([x, y], dim=-1))
    return enc.permute(2, 0, 1).unsqueeze(0)


def prepare_decoder(sam: nn.Module, embedding: torch.Tensor) -> DecoderCache:
    """Compute the prompt-independent part of the mask decoder for one image embedding.

    Parameters
    ----------
    sam : transformers.SamModel
    embedding : torch.Tensor
        ``(1, C, g, g)`` image embedding (on the model's device).
    """
    if embedding.ndim != 4 or embedding.shape[0] != 1:
        raise ValueError(
            f"expected one image embedding of shape (1, C, g, g), got {tuple(embedding.shape)}"
        )
    grid = embedding.shape[-1]
    no_mask = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
    tokens = (embedding + no_mask).flatten(2).transpose(1, 2)
    pos = image_positional_encoding(sam, grid).to(embedding.dtype).flatten(2).transpose(1, 2)
    block = sam.mask_decoder.transformer.layers[0]
    t2i = block.cross_attn_token_to_image
    i2t = block.cross_attn_image_to_token
    keyed = tokens + pos
    return DecoderCache(
        tokens=tokens,
        raw=embedding,
        pos=pos,
        key1=_split(t2i.k_proj(keyed), t2i.num_attention_heads),
        value1=_split(t2i.v_proj(tokens), t2i.num_attention_heads),
        query1=_split(i2t.q_proj(keyed), i2t.num_attention_heads),
        grid=grid,
    )


def _self_attention(attn: nn.Module, query: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    h = attn.num_attention_heads
    q = _split(attn.q_proj(query), h)
    k = _split(attn.k_proj(query), h)
    v = _split(attn.v_proj(value), h)
    out = F.scaled_dot_product_attention(q, k, v, scale=attn.scaling)
    return attn.out_proj(_merge(out))


def _tokens_to_image(attn, query, key=None, value=None, *, k=None, v=None) -> torch.Tensor:
    """Prompt tokens ``(P, T, C)`` attend to image tokens (shared projections when given)."""
    h = attn.num_attention_heads
    q = _split(attn.q_proj(query), h)  # (P, h, T, d)
    if k is None:
        k = _split(attn.k_proj(key), h)
        v = _split(attn.v_proj(value), h)
        out = F.scaled_dot_product_attention(q, k, v, scale=attn.scaling)
    else:  # shared keys/values: stack every prompt's queries into one batch of rows
        p, _, t, d = q.shape
        rows = q.transpose(0, 1).reshape(1, h, p * t, d)
        out = F.scaled_dot_product_attention(rows, k, v, scale=attn.scaling)
        out = out.reshape(h, p, t, d).transpose(0, 1)
    return attn.out_proj(_merge(out))


def _image_to_tokens(attn, image_query, tokens_key, tokens_value, *, q=None) -> torch.Tensor:
    """Image tokens attend to prompt tokens; ``q`` = shared projected queries ``(1, h, N, d)``."""
    h = attn.num_attention_heads
    k = _split(attn.k_proj(tokens_key), h)  # (P, h, T, d)
    v = _split(attn.v_proj(tokens_value), h)
    if q is None:
        q = _split(attn.q_proj(image_query), h)  # (P, h, N, d)
    elif k.shape[0] != 1:
        q = q.expand(k.shape[0], -1, -1, -1)
    # SDPA, not matmul + softmax: a softmax over only T ≈ 7 keys per row is slow as a separate op.
    out = F.scaled_dot_product_attention(q, k, v, scale=attn.scaling)
    return attn.out_proj(_merge(out))


def _upscale_and_predict(
    dec: nn.Module, keys: torch.Tensor, hyper: torch.Tensor, grid: int
) -> torch.Tensor:
    """The decoder's two transposed convolutions and the hypernetwork product, as matrix products.

    A stride-2, 2×2 transposed convolution maps each input pixel to a 2×2 block of outputs,
    so it is a matrix product per pixel followed by a pixel shuffle. Keeping the sub-pixel
    positions as extra axes (channels last) until the very end, and shuffling only the ``K``
    final masks instead of 64- and 32-channel feature maps, avoids the layout copies and the slow
    small-channel convolutions (measured ≈3× faster than ``ConvTranspose2d`` on CPU).

    Parameters
    ----------
    keys : torch.Tensor
        ``(P, g·g, C)`` updated image tokens (channels last).
    hyper : torch.Tensor
        ``(P, K, C/8)`` hypernetwork outputs.

    Returns
    -------
    torch.Tensor
        ``(P, K, 4g, 4g)`` mask logits.
    """
    conv1, conv2, norm = dec.upscale_conv1, dec.upscale_conv2, dec.upscale_layer_norm
    p, n, c = keys.shape
    c4, c8 = conv1.out_channels, conv2.out_channels
    w1 = conv1.weight.permute(0, 2, 3, 1).reshape(c, 4 * c4)  # (C, [a, b, o])
    up = torch.addmm(conv1.bias.repeat(4), keys.reshape(p * n, c), w1)  # bias fused
    up = F.layer_norm(up.reshape(p, n * 4, c4), (c4,), norm.weight, norm.bias, norm.eps)
    up = dec.activation(up)
    w2 = conv2.weight.permute(0, 2, 3, 1).reshape(c4, 4 * c8)  # (C/4, [a2, b2, o2])
    up = torch.addmm(conv2.bias.repeat(4), up.reshape(p * n * 4, c4), w2)
    up = dec.activation(up.reshape(p, n * 16, c8))
    k = hyper.shape[1]
    masks = torch.bmm(up, hyper.transpose(1, 2))  # (P, g·g·16, K), rows [i, j, a, b, a2, b2]
    masks = masks.reshape(p, grid, grid, 2, 2, 2, 2, k).permute(0, 7, 1, 3, 5, 2, 4, 6)
    return masks.reshape(p, k, 4 * grid, 4 * grid)


def decode(
    sam: nn.Module,
    cache: DecoderCache,
    sparse: torch.Tensor,
    *,
    dense: torch.Tensor | None = None,
    multimask: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the mask decoder for ``P`` prompts on one cached image.

    Parameters
    ----------
    sam : transformers.SamModel
    cache : DecoderCache
    sparse : torch.Tensor
        ``(P, T, C)`` sparse prompt embeddings (points and box corners), one row per prompt.
    dense : torch.Tensor, optional
        ``(P, C, g, g)`` dense embeddings of mask prompts; None = no mask prompt.
    multimask : bool
        Return the three ambiguity-aware masks (else the single-mask output).

    Returns
    -------
    logits : torch.Tensor
        ``(P, K, 4g, 4g)`` low-resolution mask logits, ``K`` = 3 or 1.
    iou : torch.Tensor
        ``(P, K)`` predicted IoU.
    """
    dec = sam.mask_decoder
    two_way = dec.transformer
    p = sparse.shape[0]
    out_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
    prompt = torch.cat(
        [out_tokens.unsqueeze(0).expand(p, -1, -1), sparse.to(out_tokens.dtype)], dim=1
    )
    queries = prompt
    pos = cache.pos

    shared = dense is None
    if shared:
        keys = cache.tokens  # (1, N, C), shared until the first image update
    else:
        keys = (cache.raw + dense).flatten(2).transpose(1, 2)  # (P, N, C)

    for index, block in enumerate(two_way.layers):
        # (1) self-attention of the prompt tokens
        if block.skip_first_layer_pe:
            queries = _self_attention(block.self_attn, queries, queries)
        else:
            queries = queries + _self_attention(block.self_attn, queries + prompt, queries)
        queries = block.layer_norm1(queries)
        # (2) prompt tokens attend to the image
        first_shared = shared and index == 0
        keyed = None if first_shared else keys + pos  # the image keys do not change until (4)
        if first_shared:
            attn_out = _tokens_to_image(
                block.cross_attn_token_to_image, queries + prompt, k=cache.key1, v=cache.value1
            )
        else:
            attn_out = _tokens_to_image(
                block.cross_attn_token_to_image, queries + prompt, keyed, keys
            )
        queries = block.layer_norm2(queries + attn_out)
        # (3) MLP on the prompt tokens
        queries = block.layer_norm3(queries + block.mlp(queries))
        # (4) the image attends to the prompt tokens
        if first_shared:
            attn_out = _image_to_tokens(
                block.cross_attn_image_to_token, None, queries + prompt, queries, q=cache.query1
            )
        else:
            attn_out = _image_to_tokens(
                block.cross_attn_image_to_token, keyed, queries + prompt, queries
            )
        keys = block.layer_norm4(keys + attn_out)  # (P, N, C) from here on

    attn_out = _tokens_to_image(
        two_way.final_attn_token_to_image, queries + prompt, keys + pos, keys
    )
    queries = two_way.layer_norm_final_attn(queries + attn_out)

    iou_out = queries[:, 0, :]
    mask_out = queries[:, 1 : 1 + dec.num_mask_tokens, :]
    selected = range(1, dec.num_mask_tokens) if multimask else range(0, 1)
    hyper = torch.stack(
        [dec.output_hypernetworks_mlps[i](mask_out[:, i, :]) for i in selected], dim=1
    )
    logits = _upscale_and_predict(dec, keys, hyper, cache.grid)
    iou = dec.iou_prediction_head(iou_out)
    iou = iou[:, 1:] if multimask else iou[:, :1]
    return logits, iou
