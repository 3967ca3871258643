"""Point prompts decoded in batches with an IoU gate before the up-scaling (AMG's grid).

For a point prompt, SAM's decoder spends more than half of its multiply–accumulates and most
of its memory traffic in the up-scaling: two transposed convolutions from the ``g × g`` image
tokens to ``4g × 4g × C/8`` features (with a layer norm and GELUs on them) and the hypernetwork
product. The predicted IoU is read from the IoU token *before* that, so a caller that drops every
candidate at or below an IoU threshold (AMG) need not up-scale prompts none of whose ``K``
candidates passes it. :class:`GatedPointDecoder` runs the reassociated decoder
(:func:`samscope.models.decoder.decode_reassociated`) to the IoU, asks a gate which prompts to keep and
up-scales only those, pass by pass. The kept prompts' logits are those of
:class:`~samscope.models.decoder.PointDecoder` to float rounding.

To the IoU it runs :func:`decode_tiled`: the reassociated decoder with the image-token work of
both blocks done row tile by row tile (≈ 1 MB per tile tensor, so it stays in cache between
operations) instead of one pass over all ``N`` rows per operation. Every image-side operation of
the decoder is either row-local (the image→token updates, their layer norms, adding the
positional encoding, the token→image scores) or a sum over rows (the token→image values), so
each block's image side becomes one loop over tiles: block 0's update, layer norm and block 1's
token→image scores in one; block 1's scores, update, layer norm and the final attention's scores
in the next. Image tokens are written twice per prompt instead of being streamed through memory
about twenty times (un-tiled: ``(P, N, C)`` tensors of 4 MB per prompt for every residual,
layer norm and positional sum, several of them freshly allocated per pass), and softmax over the
``N`` rows is normalised after the value product (``(Σ eₙxₙ)/Σ eₙ``: the same up to rounding).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from samscope.models.decoder import PointDecoder, decode_reassociated, upscale_and_predict
from samscope.models.decoder_attention import (
    heads_of,
    out_projection,
    self_attention,
    tokens_to_image,
)

__all__ = ["Gate", "GatedPointDecoder", "decode_tiled", "iou_gate", "tiled_applies", "upscale_tiled"]

#: Floats of one ``(P, rows, C)`` tile tensor of :func:`decode_tiled` (2 MB: 1 MB per core).
TILE_FLOATS = 2**19
#: Fewest image rows per tile (smaller matrix products lose more than the cache gains).
MIN_ROWS = 128

#: ``gate(iou, index) -> keep``: predicted IoU ``(p, K)`` of a pass's prompts and their indices
#: ``(p,)`` into the call's points; returns a bool array ``(p,)`` of the prompts to up-scale.
Gate = Callable[[np.ndarray, np.ndarray], np.ndarray]


def iou_gate(thresh: float) -> Gate:
    """Keep the prompts with a candidate of predicted IoU ``> thresh`` (AMG's filter).

    >>> iou_gate(0.8)(np.array([[0.9, 0.1], [0.5, 0.8]]), np.arange(2)).tolist()
    [True, False]
    """

    def gate(iou: np.ndarray, index: np.ndarray) -> np.ndarray:
        return (np.asarray(iou) > thresh).any(axis=1)

    return gate


class GatedPointDecoder(PointDecoder):
    """:class:`~samscope.models.decoder.PointDecoder` that up-scales only the prompts a gate keeps.

    Same parameters as ``PointDecoder``; called with a gate it returns the kept rows only.
    ``tiled`` (class attribute, default False): run :func:`decode_tiled` to the IoU where it
    applies, else ``decode_reassociated``. Off by measurement: on the quiet 2-core AVX2 host
    (2026-12-01, ``benchmarks/bench_amg.py``) the tiled decoder to the IoU ran 26.4 vs 26.5
    ms/prompt interleaved, and the whole AMG grid 42.6 s tiled vs 35.7 s un-tiled; its gain
    depends on the tiles staying in a cache other processes do not share.
    """

    tiled = False

    def decode(self, points_xy: np.ndarray, multimask: bool, gate: Gate | None = None):
        """Decode ``(P, 2)`` points ``(x, y)`` (input pixels).

        Parameters
        ----------
        points_xy : ndarray, (P, 2)
        multimask : bool
        gate : Gate, optional
            Which prompts to up-scale; None = all.

        Returns
        -------
        logits : torch.Tensor
            ``(R, K, 4g, 4g)`` float32 logits of the kept prompts.
        iou : torch.Tensor
            ``(P, K)`` float32 predicted IoU of every prompt.
        rows : ndarray of int64, (R,)
            The kept prompts, increasing.
        """
        n = len(points_xy)
        # without the reassociated path (or a gate) decode everything, then select the rows
        if gate is None or not self.fast:
            logits, iou = self(points_xy, multimask)
            if gate is None:
                return logits, iou, np.arange(n)
            rows = np.flatnonzero(gate(iou.numpy(), np.arange(n)))
            return logits[torch.from_numpy(rows)], iou, rows
        pts = torch.as_tensor(np.asarray(points_xy, np.float32)).reshape(-1, 1, 2)
        labels = torch.ones(pts.shape[0], 1, dtype=torch.long)
        sparse, _ = self.model.embed_prompts(points=pts, labels=labels)
        dec = self.model.sam.mask_decoder
        # the tiled decoder runs fp32 (bf16 autocast: the un-tiled one, whose products it casts)
        tiled = self.tiled and tiled_applies(dec) and getattr(self.model, "precision", "") != "bf16"
        logits, ious, rows, start = [], [], [], 0
        with torch.inference_mode(), self.model.autocast():
            while start < n:
                chunk = self._next_chunk()
                part = sparse[start : start + chunk]
                t0 = time.perf_counter()
                if tiled:
                    keys, hyper, iou = decode_tiled(dec, self.cache, part, multimask)
                else:
                    keys, hyper, iou = decode_reassociated(dec, self.cache, part, None, multimask,
                                                           upscale=False)  # fmt: skip
                if len(part) == chunk:  # the transformer's cost per prompt decides the pass size
                    cost = (time.perf_counter() - t0) / chunk
                    old = self._cost[chunk]
                    self._cost[chunk] = cost if old == 0 else 0.5 * old + 0.5 * cost
                iou = iou.float()
                index = np.arange(start, start + len(part))
                keep = np.flatnonzero(gate(iou.numpy(), index))
                if len(keep):
                    sel = torch.from_numpy(keep)
                    hires = getattr(self.cache, "hires", None)  # SAM2's image-side maps, shared
                    if tiled and hires is None:
                        kept = [x[sel] for x in keys] if len(keep) < len(part) else keys
                        logits.append(upscale_tiled(dec, kept, hyper[sel], self.cache.grid))
                    else:
                        kept = torch.cat([x[sel] for x in keys], 1) if tiled else keys[sel]
                        logits.append(upscale_and_predict(dec, kept, hyper[sel], self.cache.grid,
                                                           hires=hires))  # fmt: skip
                    rows.append(index[keep])
                ious.append(iou)
                start += len(part)
        k = ious[0].shape[1] if ious else (3 if multimask else 1)
        side = 4 * self.cache.grid
        out = torch.cat(logits).float() if logits else torch.zeros((0, k, side, side))
        iou_all = torch.cat(ious) if ious else torch.zeros((0, k))
        return out, iou_all, np.concatenate(rows) if rows else np.zeros(0, np.int64)


# -------------------------------------------------------------------------------------------
# the reassociated decoder to the IoU, image side in row tiles
# -------------------------------------------------------------------------------------------


def tiled_applies(dec) -> bool:
    """Whether :func:`decode_tiled` evaluates ``dec`` (SAM's decoder: no object-score token)."""
    return not hasattr(dec, "obj_score_token")


def _query_keys(attn, query: torch.Tensor) -> torch.Tensor:
    """``(P, H·T, C)`` token→image queries folded into the key projection, scaled (the key bias
    adds a constant per row: it drops out of the softmax)."""
    h = attn.num_attention_heads
    q = heads_of(attn.q_proj(query), h)  # (P, H, T, d)
    p, _, t, d = q.shape
    c = attn.k_proj.in_features
    qk = torch.einsum("phtd,hdc->phtc", q, attn.k_proj.weight.reshape(h, d, c))
    return qk.reshape(p, h * t, c) * attn.scaling


def _values_out(attn, z: torch.Tensor, t: int) -> torch.Tensor:
    """``out_proj(W_v z + b_v)`` of the attended image rows ``z = Σₙ aₙ xₙ`` ``(P, H·T, C)``."""
    h = attn.num_attention_heads
    p, _, c = z.shape
    d = attn.v_proj.out_features // h
    out = torch.einsum("phtc,hdc->phtd", z.reshape(p, h, t, c), attn.v_proj.weight.reshape(h, d, c))
    out = out + attn.v_proj.bias.reshape(h, 1, d)
    return out_projection(attn)(out.transpose(1, 2).reshape(p, t, h * d))


def _token_side(attn, tok_key, tok_value, c: int):
    """Image→token attention's prompt side: keys ``(P, H, T, d)`` and the per-token output rows
    ``U = v W_oᵀ + b_o/H`` ``(P, H·T, C)`` (each head's softmax row sums to one)."""
    h = attn.num_attention_heads
    k = heads_of(attn.k_proj(tok_key), h)
    v = heads_of(attn.v_proj(tok_value), h)
    p, _, t, d = k.shape
    out_proj = out_projection(attn)
    u = torch.einsum("phtd,chd->phtc", v, out_proj.weight.reshape(c, h, d))
    return k, (u + out_proj.bias / h).reshape(p, h * t, c)


def _attend_rows(scores: torch.Tensor, tiles: list, bounds: list) -> torch.Tensor:
    """``softmax(scores over all rows) @ image`` with the scores in tile-major layout
    ``(tiles, P, R, rows)`` (exponentiated in place) and the image rows as ``tiles``."""
    scores -= scores.amax(dim=(0, 3), keepdim=True)
    scores.exp_()
    norm = scores.sum(dim=(0, 3))  # (P, R)
    z = None
    for i, (r0, r1) in enumerate(bounds):
        e = scores[i, :, :, : r1 - r0]
        z = torch.bmm(e, tiles[i]) if z is None else z.baddbmm_(e, tiles[i])
    return z / norm[..., None]


def decode_tiled(dec, cache, sparse: torch.Tensor, multimask: bool, *, rows: int | None = None):
    """The reassociated decoder to the IoU for ``P`` point/box prompts, image side in row tiles.

    Same function as :func:`samscope.models.decoder.decode_reassociated` with ``upscale=False``
    and no mask prompt (same operations, sums over rows reordered: equal to float rounding; see
    the module docstring), for SAM's decoder (:func:`tiled_applies`), in inference mode.

    Parameters
    ----------
    dec : mask decoder module
    cache : samscope.models.decoder.DecoderCache
    sparse : torch.Tensor
        ``(P, T, C)`` sparse prompt embeddings.
    multimask : bool
    rows : int, optional
        Image rows per tile (default: :data:`TILE_FLOATS` floats per ``(P, rows, C)`` tile,
        at least :data:`MIN_ROWS`).

    Returns
    -------
    tiles : list of torch.Tensor
        The updated image tokens, ``(P, rows_i, C)`` per tile in row order
        (``torch.cat(tiles, 1)`` is ``decode_reassociated``'s ``keys``).
    hyper : torch.Tensor
        ``(P, K, C/8)`` hypernetwork outputs.
    iou : torch.Tensor
        ``(P, K)`` predicted IoU.
    """
    tw = dec.transformer
    b0, b1 = tw.layers
    p = sparse.shape[0]
    image, pos = cache.tokens[0], cache.pos[0]  # (N, C), shared by every prompt
    n, c = image.shape
    out_tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight])
    prompt = torch.cat([out_tokens.expand(p, -1, -1), sparse.to(out_tokens.dtype)], dim=1)
    t = prompt.shape[1]
    step = max(1, min(n, rows or max(MIN_ROWS, TILE_FLOATS // (p * c))))
    bounds = [(r, min(r + step, n)) for r in range(0, n, step)]
    # block 0, prompt side: the image keys, values and queries are the cache's
    q = b0.layer_norm1(self_attention(b0.self_attn, prompt, prompt))
    attn = tokens_to_image(b0.cross_attn_token_to_image, q + prompt, k=cache.key1, v=cache.value1)
    q = b0.layer_norm2(q + attn)
    q = b0.layer_norm3(q + b0.mlp(q))
    i2t = b0.cross_attn_image_to_token
    h = i2t.num_attention_heads
    k, u = _token_side(i2t, q + prompt, q, c)
    d = k.shape[-1]
    kk = (k * i2t.scaling).permute(1, 3, 0, 2).reshape(h, d, p * t)
    a0 = torch.bmm(cache.query1[0], kk).view(h, n, p, t).softmax(dim=-1)  # over the T tokens
    a0 = a0.permute(2, 1, 0, 3).reshape(p, n, h * t)  # (P, N, H·T): tiles are contiguous rows
    # block 1's self-attention and token→image queries need only the prompt tokens
    q = b1.layer_norm1(q + self_attention(b1.self_attn, q + prompt, q))
    qk = _query_keys(b1.cross_attn_token_to_image, q + prompt)
    # image side of block 0 (update, layer norm) and block 1's token→image scores, tile by tile
    ln = b0.layer_norm4
    scores = torch.empty(len(bounds), p, h * t, step, dtype=image.dtype)
    keyed = torch.empty(p, step, c, dtype=image.dtype)
    tiles = []
    for i, (r0, r1) in enumerate(bounds):
        y = torch.baddbmm(image[r0:r1], a0[:, r0:r1], u)
        y = F.layer_norm(y, ln.normalized_shape, ln.weight, ln.bias, ln.eps)
        tiles.append(y)
        kd = torch.add(y, pos[r0:r1], out=keyed[:, : r1 - r0])
        torch.bmm(qk, kd.transpose(1, 2), out=scores[i, :, :, : r1 - r0])
    if n % step:
        scores[-1, :, :, n % step :] = float("-inf")
    t2i = b1.cross_attn_token_to_image
    q = b1.layer_norm2(q + _values_out(t2i, _attend_rows(scores, tiles, bounds), t))
    q = b1.layer_norm3(q + b1.mlp(q))
    # block 1's image→token attention: scores (x + pos)·(W_qᵀ k) + b_q·k per head
    i2t = b1.cross_attn_image_to_token
    k, u = _token_side(i2t, q + prompt, q, c)
    kq = torch.einsum("phtd,hdc->phtc", k, i2t.q_proj.weight.reshape(h, d, c))
    kq = kq.reshape(p, h * t, c) * i2t.scaling
    const = torch.einsum("phtd,hd->pht", k, i2t.q_proj.bias.reshape(h, d)) * i2t.scaling
    const = const.reshape(p, h * t, 1)
    # the final attention: only the IoU token and the mask tokens read out
    selected = range(1, dec.num_mask_tokens) if multimask else range(0, 1)
    keep = [0, *(1 + i for i in selected)]
    qf, pf = q[:, keep], prompt[:, keep]
    final = tw.final_attn_token_to_image
    qkf = _query_keys(final, qf + pf)
    ln = b1.layer_norm4
    scores = torch.empty(len(bounds), p, h * len(keep), step, dtype=image.dtype)
    for i, (r0, r1) in enumerate(bounds):
        x, m = tiles[i], r1 - r0
        kd = torch.add(x, pos[r0:r1], out=keyed[:, :m])
        s = torch.baddbmm(const, kq, kd.transpose(1, 2)).view(p, h, t, m).softmax(dim=2)
        x.baddbmm_(s.view(p, h * t, m).transpose(1, 2), u)
        y = F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)
        tiles[i] = y
        kd = torch.add(y, pos[r0:r1], out=keyed[:, :m])
        torch.bmm(qkf, kd.transpose(1, 2), out=scores[i, :, :, :m])
    if n % step:
        scores[-1, :, :, n % step :] = float("-inf")
    qf = tw.layer_norm_final_attn(qf + _values_out(final, _attend_rows(scores, tiles, bounds), len(keep)))
    iou = dec.iou_prediction_head(qf[:, 0, :])
    hyper = torch.stack(
        [dec.output_hypernetworks_mlps[i](qf[:, 1 + j, :]) for j, i in enumerate(selected)], 1
    )
    return tiles, hyper, iou[:, 1:] if multimask else iou[:, :1]


def upscale_tiled(dec, tiles: list, hyper: torch.Tensor, grid: int) -> torch.Tensor:
    """:func:`samscope.models.decoder.upscale_and_predict` (SAM, no high-resolution maps) on the
    image tokens in row tiles (:func:`decode_tiled`'s ``tiles``, rows ``i·g + j``).

    Everything before the final pixel shuffle is row-local (two transposed convolutions as
    products per image token, a layer norm per sub-pixel, GELUs, the hypernetwork product), so
    each tile's ``(P, rows·4, C/4)`` and ``(P, rows·16, C/8)`` features stay in cache instead of
    being streamed through memory as 4 and 8 MB tensors per prompt.

    Returns
    -------
    torch.Tensor
        ``(P, K, 4g, 4g)`` mask logits.
    """
    conv1, conv2, norm = dec.upscale_conv1, dec.upscale_conv2, dec.upscale_layer_norm
    c = conv1.in_channels
    c4, c8 = conv1.out_channels, conv2.out_channels
    w1 = conv1.weight.permute(0, 2, 3, 1).reshape(c, 4 * c4)  # (C, [a, b, o])
    w2 = conv2.weight.permute(0, 2, 3, 1).reshape(c4, 4 * c8)  # (C/4, [a2, b2, o2])
    b1, b2 = conv1.bias.repeat(4), conv2.bias.repeat(4)
    hyper_t = hyper.transpose(1, 2)
    p, k = hyper.shape[:2]
    masks = torch.empty(p, grid * grid * 16, k, dtype=hyper.dtype)
    start = 0
    for x in tiles:
        m = x.shape[1]
        up = torch.addmm(b1, x.reshape(p * m, c), w1)
        up = F.layer_norm(up.reshape(p, m * 4, c4), (c4,), norm.weight, norm.bias, norm.eps)
        up = dec.activation(up)
        up = torch.addmm(b2, up.reshape(p * m * 4, c4), w2)
        up = dec.activation(up.reshape(p, m * 16, c8))
        torch.bmm(up, hyper_t, out=masks[:, start * 16 : (start + m) * 16])
        start += m
    masks = masks.reshape(p, grid, grid, 2, 2, 2, 2, k).permute(0, 7, 1, 3, 5, 2, 4, 6)
    return masks.reshape(p, k, 4 * grid, 4 * grid)
