"""SAM's mask decoder for many prompts on one cached image: the one decoder every caller uses.

Interactive prompting, AMG, APG, the foreground mode and training all decode through
:func:`decode` (``SamscopeModel.decode``) or, for many single-point prompts, :class:`PointDecoder`.

The decoder's cost is dominated by work on the ``g × g`` image tokens (4096 for a 64×64
embedding), repeated for every prompt. Part of it does not depend on the prompt: the image tokens
plus the "no mask" embedding, their positional encoding, and — in the first two-way block, before
the image tokens are updated — the key/value projections of the token→image attention and the
query projection of the image→token attention. :func:`prepare_decoder` computes those once per
image embedding; :func:`decode` then runs only the prompt-dependent rest, for ``P`` prompts in one
batch, without materialising ``P`` copies of the shared tensors.

Two evaluations of the same arithmetic (``transformers.SamMaskDecoder``: same weights, same
operations up to float rounding):

- *reassociated* (inference, SAM's two-block layout, ``heads × tokens`` at most the attention
  width — every point or box prompt): the products that touch the image tokens are reordered so
  no ``(P, N, I)`` projection is ever formed. With ``T`` prompt tokens and ``H`` heads, ``H·T``
  (= 56 for a point) is less than the attention width ``I`` (= 128), so the token→image scores
  ``q_h·W_k,h(x_n + p_n)`` are computed as ``(W_k,hᵀ q_h)·(x_n + p_n)``, the values as
  ``W_v,h(Σ_n a_n x_n)``, and the image→token output as ``Σ_h A_h (V_h W_o,hᵀ)`` (softmax rows sum
  to one, so biases fold into small matrices); prompts go a few at a time so the image-token
  tensors stay in cache; the up-scaling runs channels-last as two matrix products;
- *reference* (under autograd — training —, other layouts, prompts with many tokens): the
  operations in ``transformers``' order.

``tests/core/test_attention_decoder.py`` checks both against ``SamModel.forward`` to 1e-5.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from samscope.models.decoder_attention import (
    image_to_tokens,
    image_to_tokens_reassociated,
    self_attention,
    split_heads,
    tokens_to_image,
    tokens_to_image_reassociated,
)


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
    hires : (torch.Tensor, torch.Tensor), optional
        SAM2's high-resolution features in the up-scaling's layout
        (:func:`samscope.models.sam2_decoder.hires_layout`); None for SAM.
    """

    tokens: torch.Tensor
    raw: torch.Tensor
    pos: torch.Tensor
    key1: torch.Tensor
    value1: torch.Tensor
    query1: torch.Tensor
    grid: int
    hires: tuple | None = None


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
    if getattr(sam.config, "model_type", None) == "sam2":  # SAM2: samscope.models.sam2_decoder
        from samscope.models.sam2_decoder import prepare_decoder as prepare_sam2

        return prepare_sam2(sam, embedding)
    return prepare_tokens(sam, embedding)


def prepare_tokens(sam: nn.Module, embedding: torch.Tensor) -> DecoderCache:
    """:func:`prepare_decoder` for SAM's and SAM2's two-way transformer (``embedding`` is the
    ``(1, C, g, g)`` grid the transformer attends to, SAM2's without its high-resolution maps)."""
    if embedding.ndim != 4 or embedding.shape[0] != 1:
        raise ValueError(
            f"expected one image embedding of shape (1, C, g, g), got {tuple(embedding.shape)}"
        )
    grid = embedding.shape[-1]
    no_mask = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
    # channels-last copies, not transposed views: every prompt reads these (a strided 4 MB
    # residual copy cost more than the product it feeds)
    tokens = (embedding + no_mask).flatten(2).transpose(1, 2).contiguous()
    pos = image_positional_encoding(sam, grid).to(embedding.dtype).flatten(2).transpose(1, 2)
    pos = pos.contiguous()
    block = sam.mask_decoder.transformer.layers[0]
    t2i = block.cross_attn_token_to_image
    i2t = block.cross_attn_image_to_token
    keyed = tokens + pos
    return DecoderCache(
        tokens=tokens,
        raw=embedding,
        pos=pos,
        key1=split_heads(t2i.k_proj(keyed), t2i.num_attention_heads).contiguous(),
        value1=split_heads(t2i.v_proj(tokens), t2i.num_attention_heads).contiguous(),
        query1=split_heads(i2t.q_proj(keyed), i2t.num_attention_heads).contiguous(),
        grid=grid,
    )


def upscale_and_predict(
    dec: nn.Module, keys: torch.Tensor, hyper: torch.Tensor, grid: int, *, hires=None
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
    hires : (torch.Tensor, torch.Tensor), optional
        SAM2's high-resolution features in this layout, biases included:
        :func:`samscope.models.sam2_decoder.hires_layout`.

    Returns
    -------
    torch.Tensor
        ``(P, K, 4g, 4g)`` mask logits.
    """
    conv1, conv2, norm = dec.upscale_conv1, dec.upscale_conv2, dec.upscale_layer_norm
    p, n, c = keys.shape
    c4, c8 = conv1.out_channels, conv2.out_channels
    w1 = conv1.weight.permute(0, 2, 3, 1).reshape(c, 4 * c4)  # (C, [a, b, o])
    if hires is None:
        up = torch.addmm(conv1.bias.repeat(4), keys.reshape(p * n, c), w1)  # bias fused
    else:  # SAM2: + the stride-8 features (conv1's bias folded in)
        up = torch.mm(keys.reshape(p * n, c), w1).reshape(p, n, 4 * c4).add_(hires[0])
    up = F.layer_norm(up.reshape(p, n * 4, c4), (c4,), norm.weight, norm.bias, norm.eps)
    up = dec.activation(up)
    w2 = conv2.weight.permute(0, 2, 3, 1).reshape(c4, 4 * c8)  # (C/4, [a2, b2, o2])
    if hires is None:
        up = torch.addmm(conv2.bias.repeat(4), up.reshape(p * n * 4, c4), w2)
    else:  # SAM2: + the stride-4 features (conv2's bias folded in)
        up = torch.mm(up.reshape(p * n * 4, c4), w2).reshape(p, n * 4, 4 * c8).add_(hires[1])
    up = dec.activation(up.reshape(p, n * 16, c8))
    k = hyper.shape[1]
    masks = torch.bmm(up, hyper.transpose(1, 2))  # (P, g·g·16, K), rows [i, j, a, b, a2, b2]
    masks = masks.reshape(p, grid, grid, 2, 2, 2, 2, k).permute(0, 7, 1, 3, 5, 2, 4, 6)
    return masks.reshape(p, k, 4 * grid, 4 * grid)


def _decode_reference(
    dec: nn.Module,
    cache: DecoderCache,
    sparse: torch.Tensor,
    *,
    dense: torch.Tensor | None = None,
    multimask: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder in ``transformers``' order of operations (autograd, any layout)."""
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
            queries = self_attention(block.self_attn, queries, queries)
        else:
            queries = queries + self_attention(block.self_attn, queries + prompt, queries)
        queries = block.layer_norm1(queries)
        # (2) prompt tokens attend to the image
        first_shared = shared and index == 0
        keyed = None if first_shared else keys + pos  # the image keys do not change until (4)
        if first_shared:
            attn_out = tokens_to_image(
                block.cross_attn_token_to_image, queries + prompt, k=cache.key1, v=cache.value1
            )
        else:
            attn_out = tokens_to_image(
                block.cross_attn_token_to_image, queries + prompt, keyed, keys
            )
        queries = block.layer_norm2(queries + attn_out)
        # (3) MLP on the prompt tokens
        queries = block.layer_norm3(queries + block.mlp(queries))
        # (4) the image attends to the prompt tokens
        if first_shared:
            attn_out = image_to_tokens(
                block.cross_attn_image_to_token, None, queries + prompt, queries, q=cache.query1
            )
        else:
            attn_out = image_to_tokens(
                block.cross_attn_image_to_token, keyed, queries + prompt, queries
            )
        keys = block.layer_norm4(keys + attn_out)  # (P, N, C) from here on

    attn_out = tokens_to_image(
        two_way.final_attn_token_to_image, queries + prompt, keys + pos, keys
    )
    queries = two_way.layer_norm_final_attn(queries + attn_out)

    iou_out = queries[:, 0, :]
    mask_out = queries[:, 1 : 1 + dec.num_mask_tokens, :]
    selected = range(1, dec.num_mask_tokens) if multimask else range(0, 1)
    hyper = torch.stack(
        [dec.output_hypernetworks_mlps[i](mask_out[:, i, :]) for i in selected], dim=1
    )
    logits = upscale_and_predict(dec, keys, hyper, cache.grid)
    iou = dec.iou_prediction_head(iou_out)
    iou = iou[:, 1:] if multimask else iou[:, :1]
    return logits, iou


# -------------------------------------------------------------------------------------------
# the public decoder
# -------------------------------------------------------------------------------------------

#: Floats of one ``(chunk, N, C)`` image-token tensor per pass of the reassociated decoder
#: (8 prompts for ViT-B at 1024²): large enough to amortise the parallel regions under load.
CHUNK_FLOATS = 8 * 2**20


def decode(
    sam: nn.Module,
    cache: DecoderCache,
    sparse: torch.Tensor,
    *,
    dense: torch.Tensor | None = None,
    multimask: bool = False,
    method: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the mask decoder for ``P`` prompts on one cached image.

    A SAM2 cache (:class:`samscope.models.sam2_decoder.Sam2DecoderCache`) runs SAM2's decoder.

    Parameters
    ----------
    sam : transformers.SamModel or samscope.models.sam_lite.SamLite
    cache : DecoderCache
    sparse : torch.Tensor
        ``(P, T, C)`` sparse prompt embeddings (points and box corners), one row per prompt.
    dense : torch.Tensor, optional
        ``(P, C, g, g)`` dense embeddings of mask prompts; None = no mask prompt.
    multimask : bool
        Return the three ambiguity-aware masks (else the single-mask output).
    method : {"auto", "reference", "reassociated"}
        ``auto``: reassociated when it applies (no autograd, SAM's layout, few prompt tokens),
        else reference. ``reassociated`` raises ValueError where it does not apply.

    Returns
    -------
    logits : torch.Tensor
        ``(P, K, 4g, 4g)`` low-resolution mask logits, ``K`` = 3 or 1.
    iou : torch.Tensor
        ``(P, K)`` predicted IoU.
    """
    if getattr(cache, "multiscale", False):  # SAM2: samscope.models.sam2_decoder
        from samscope.models.sam2_decoder import decode as decode_sam2

        return decode_sam2(sam, cache, sparse, dense=dense, multimask=multimask)
    dec = sam.mask_decoder
    p = sparse.shape[0]
    if method not in ("auto", "reference", "reassociated"):
        raise ValueError(f"method must be auto, reference or reassociated, got {method!r}")
    usable = p > 0 and not torch.is_grad_enabled() and reassociable(dec)
    if method == "reassociated" and not usable:
        raise ValueError("the reassociated decoder needs inference mode and SAM's layout")
    usable = usable and (method == "reassociated" or reassociable(dec, sparse.shape[1]))
    if method == "reference" or not usable:
        return _decode_reference(dec, cache, sparse, dense=dense, multimask=multimask)
    step = max(1, CHUNK_FLOATS // cache.tokens[0].numel())
    parts = [
        decode_reassociated(dec, cache, sparse[s : s + step],
                     None if dense is None else dense[s : s + step], multimask)
        for s in range(0, p, step)
    ]  # fmt: skip
    return torch.cat([a for a, _ in parts]), torch.cat([b for _, b in parts])


def reassociable(dec: nn.Module, n_sparse: int | None = None) -> bool:
    """Whether the reassociated evaluation applies to ``dec``: SAM's two-block layout and, for
    ``n_sparse`` prompt tokens, ``heads × tokens`` at most the attention width (where it pays)."""
    layers = dec.transformer.layers
    if not (
        len(layers) == 2
        and layers[0].skip_first_layer_pe
        and not layers[1].skip_first_layer_pe
        and isinstance(dec.upscale_conv1, nn.ConvTranspose2d)
        and tuple(dec.upscale_conv1.kernel_size) == (2, 2)
        and tuple(dec.upscale_conv2.kernel_size) == (2, 2)
    ):
        return False
    if n_sparse is None:
        return True
    attn = layers[0].cross_attn_image_to_token
    tokens = 1 + _first_output_token(dec) + dec.num_mask_tokens + n_sparse
    return attn.num_attention_heads * tokens <= attn.q_proj.out_features


def decode_reassociated(dec, cache: DecoderCache, sparse, dense, multimask: bool, *, upscale=True):
    """The reassociated decoder for ``P`` prompts (inference; see the module docstring).

    ``upscale=False`` stops before the up-scaling and returns ``(keys, hyper, iou)`` (the caller
    up-scales the prompts it keeps: :mod:`samscope.models.decoder_batch`)."""
    tw = dec.transformer
    b0, b1 = tw.layers
    p = sparse.shape[0]
    pos = cache.pos[0]  # (N, C)
    first = _first_output_token(dec)  # SAM2: an object-score token comes before the IoU token
    out_tokens = torch.cat([_output_tokens(dec), dec.iou_token.weight, dec.mask_tokens.weight])
    prompt = torch.cat([out_tokens.expand(p, -1, -1), sparse.to(out_tokens.dtype)], dim=1)
    # block 0 (without a mask prompt, the image keys/values/queries are cached per image)
    q = b0.layer_norm1(self_attention(b0.self_attn, prompt, prompt))
    if dense is None:
        attn = tokens_to_image(b0.cross_attn_token_to_image, q + prompt, k=cache.key1,
                                v=cache.value1)  # fmt: skip
    else:
        image = (cache.raw + dense).flatten(2).transpose(1, 2).contiguous()  # (P, N, C)
        keyed = image + pos
        attn = tokens_to_image_reassociated(b0.cross_attn_token_to_image, q + prompt, image, keyed)
    q = b0.layer_norm2(q + attn)
    q = b0.layer_norm3(q + b0.mlp(q))
    if dense is None:
        keys = image_to_tokens_reassociated(b0.cross_attn_image_to_token, None, q + prompt, q,
                                     cache.tokens.expand(p, -1, -1), shared_q=cache.query1[0])
    else:
        keys = image_to_tokens_reassociated(b0.cross_attn_image_to_token, keyed, q + prompt, q,
                                     image)  # fmt: skip
    keys = b0.layer_norm4(keys)
    # block 1: the image rows keyed by position serve both cross-attentions
    keyed = keys + pos
    q = b1.layer_norm1(q + self_attention(b1.self_attn, q + prompt, q))
    q = b1.layer_norm2(q + tokens_to_image_reassociated(b1.cross_attn_token_to_image, q + prompt, keys,
                                                 keyed))  # fmt: skip
    q = b1.layer_norm3(q + b1.mlp(q))
    keys = image_to_tokens_reassociated(b1.cross_attn_image_to_token, keyed, q + prompt, q, keys,
                                 inplace=True)  # fmt: skip
    keys = b1.layer_norm4(keys)
    # final attention, heads, up-scaling: only the IoU token and the mask tokens that are read
    # out go on (each token attends to the image on its own, so the others can be left out)
    stable_pick = not multimask and _dynamic_multimask(dec)  # SAM2: all four, chosen below
    selected = range(1, dec.num_mask_tokens) if multimask else range(0, 1)
    selected = range(0, dec.num_mask_tokens) if stable_pick else selected
    keep = [first, *(first + 1 + i for i in selected)]
    q, prompt = q[:, keep], prompt[:, keep]
    attn = tokens_to_image_reassociated(tw.final_attn_token_to_image, q + prompt, keys, keys + pos)
    q = tw.layer_norm_final_attn(q + attn)
    iou = dec.iou_prediction_head(q[:, 0, :])
    hyper = torch.stack(
        [dec.output_hypernetworks_mlps[i](q[:, 1 + j, :]) for j, i in enumerate(selected)], 1
    )
    hires = getattr(cache, "hires", None)
    if stable_pick:
        if not upscale:
            raise ValueError("upscale=False needs multimask=True on SAM2 (the single mask is chosen from all four)")
        logits = upscale_and_predict(dec, keys, hyper, cache.grid, hires=hires)
        return _most_stable(dec, logits, iou)
    iou = iou[:, 1:] if multimask else iou[:, :1]
    if not upscale:
        return keys, hyper, iou
    return upscale_and_predict(dec, keys, hyper, cache.grid, hires=hires), iou


def _first_output_token(dec: nn.Module) -> int:
    """Index of the IoU token among the output tokens (1 in SAM2, after the object score)."""
    return 1 if hasattr(dec, "obj_score_token") else 0


def _output_tokens(dec: nn.Module) -> torch.Tensor:
    """Output tokens before the IoU token: SAM2's object-score token, else none."""
    if hasattr(dec, "obj_score_token"):
        return dec.obj_score_token.weight
    return dec.iou_token.weight[:0]


def _dynamic_multimask(dec: nn.Module) -> bool:
    """SAM2 at inference: a single mask falls back to the best multimask one when unstable."""
    return bool(getattr(dec, "dynamic_multimask_via_stability", False)) and not dec.training


def _most_stable(dec, logits: torch.Tensor, iou: torch.Tensor):
    """SAM2's single-mask output from all four masks ``(P, 4, L, L)`` (``transformers``' rule:
    token 0's mask when its stability score reaches the threshold, else the multimask output of
    the highest predicted IoU)."""
    delta = dec.dynamic_multimask_stability_delta
    single = logits[:, :1].flatten(-2)
    area_i = (single > delta).sum(-1).float()
    area_u = (single > -delta).sum(-1).float()
    stability = torch.where(area_u > 0, area_i / area_u, 1.0)
    stable = stability >= dec.dynamic_multimask_stability_thresh  # (P, 1)
    best = iou[:, 1:].argmax(dim=-1)  # (P,)
    rows = torch.arange(logits.shape[0], device=logits.device)
    best_logits = logits[rows, 1 + best][:, None]
    best_iou = iou[rows, 1 + best][:, None]
    out = torch.where(stable[..., None, None], logits[:, :1], best_logits)
    return out, torch.where(stable, iou[:, :1], best_iou)


class PointDecoder:
    """Decode single-point prompts on one image embedding (AMG, the foreground mode).

    The reassociated :func:`decode` with the number of prompts per pass tuned while decoding:
    two candidates (8 MB and 32 MB of image tokens per pass: 2 and 8 prompts for ViT-B at 1024²)
    are timed and the faster is used, tried again every few passes. On a quiet 2-core CPU the
    small passes are fastest (cache); when other processes compete for the cores, the many short
    parallel regions of small passes stall on their barriers and larger passes win by 2–3×.

    Parameters
    ----------
    model : SamscopeModel
    embedding : torch.Tensor
        ``(1, C, g, g)``.
    transform : samscope.image.Transform
        Where the embedding lies (crop geometry), kept for callers.
    origin : (int, int)
        Offset of the embedded region in the image, kept for callers.
    """

    #: floats of one ``(chunk, N, C)`` image-token tensor per pass, the candidates tuned between
    chunk_floats = (2 * 2**20, CHUNK_FLOATS)
    #: passes between re-trying the slower candidate
    retry = 16

    def __init__(self, model, embedding: torch.Tensor, transform, origin=(0, 0)) -> None:
        self.model = model
        self.transform = transform
        self.origin = origin
        self.cache = model.prepare_decoder(embedding)
        per = self.cache.tokens[0].numel()
        self.chunks = sorted({max(1, f // per) for f in self.chunk_floats})
        self._cost = dict.fromkeys(self.chunks, 0.0)  # seconds per prompt, smoothed; 0 = untried
        self._passes = 0
        self.fast = reassociable(model.sam.mask_decoder)  # as fast as it gets for points
        self.fast = self.fast and not getattr(self.cache, "multiscale", False)  # SAM2: its own

    def __call__(self, points_xy: np.ndarray, multimask: bool):
        """Logits ``(P, K, 4g, 4g)`` and IoU ``(P, K)`` of ``(P, 2)`` points ``(x, y)`` (input px)."""
        pts = torch.as_tensor(np.asarray(points_xy, np.float32)).reshape(-1, 1, 2)
        labels = torch.ones(pts.shape[0], 1, dtype=torch.long)
        sparse, _ = self.model.embed_prompts(points=pts, labels=labels)
        if not self.fast:
            return self.model.decode(self.cache, sparse, None, multimask=multimask)
        dec = self.model.sam.mask_decoder
        outs, start = [], 0
        with torch.inference_mode(), self.model.autocast():  # bf16 when the model runs in bf16
            while start < sparse.shape[0]:
                chunk = self._next_chunk()
                part = sparse[start : start + chunk]
                t0 = time.perf_counter()
                outs.append(decode_reassociated(dec, self.cache, part, None, multimask))
                if len(part) == chunk:  # only full passes are comparable
                    cost = (time.perf_counter() - t0) / chunk
                    old = self._cost[chunk]
                    self._cost[chunk] = cost if old == 0 else 0.5 * old + 0.5 * cost
                start += len(part)
        return torch.cat([o[0] for o in outs]).float(), torch.cat([o[1] for o in outs]).float()

    def _next_chunk(self) -> int:
        self._passes += 1
        untried = [c for c in self.chunks if self._cost[c] == 0]
        if untried:
            return untried[0]
        ranked = sorted(self.chunks, key=self._cost.__getitem__)
        return ranked[-1] if self._passes % self.retry == 0 else ranked[0]


def valid_nodes(transform, low_res: int) -> tuple[int, int]:
    """Low-resolution rows and columns whose values reach the region (the rest is padding)."""
    fy, fx = transform.factors
    h, w = transform.original_shape
    sy, sx = fy * low_res / transform.target_size, fx * low_res / transform.target_size
    return min(low_res, math.ceil(h * sy) + 1), min(low_res, math.ceil(w * sx) + 1)


def decode_uncached(
    dec: nn.Module,
    embedding: torch.Tensor,
    image_pe: torch.Tensor,
    sparse: torch.Tensor,
    dense: torch.Tensor,
    *,
    multimask: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder on one image without a cache (the ``MaskDecoder.forward`` of compact models).

    Parameters
    ----------
    dec : mask decoder module
    embedding, image_pe : torch.Tensor
        ``(1, C, g, g)`` image embedding and positional encoding.
    sparse : torch.Tensor
        ``(P, T, C)``.
    dense : torch.Tensor
        ``(P or 1, C, g, g)`` dense prompt embeddings (the "no mask" embedding without one).
    multimask : bool

    Returns
    -------
    logits ``(P, K, 4g, 4g)`` and IoU ``(P, K)``, in the reference order of operations.
    """
    grid = embedding.shape[-1]
    p = sparse.shape[0]
    cache = DecoderCache(
        tokens=embedding.flatten(2).transpose(1, 2), raw=embedding,
        pos=image_pe.flatten(2).transpose(1, 2), key1=None, value1=None, query1=None, grid=grid,
    )  # fmt: skip
    return _decode_reference(dec, cache, sparse, dense=dense.expand(p, -1, -1, -1),
                             multimask=multimask)  # fmt: skip
