"""SAM2's mask decoder for many prompts on one cached image (what SAM1's :mod:`.decoder` is for SAM).

SAM2's decoder differs from SAM's in three ways that matter here: it reads two high-resolution
feature maps of the encoder (``s0`` at stride 4, ``s1`` at stride 8, already projected by the
decoder's ``conv_s0`` / ``conv_s1``) while up-scaling, it has an object-score token before the
IoU and mask tokens, and with ``multimask=False`` it falls back to the most stable of the three
multimask outputs when the single mask is unstable (``dynamic_multimask_via_stability``, as
Meta's ``SAM2ImagePredictor``). This module keeps the prompt-independent state of one image
(:class:`Sam2DecoderCache`: the embedding, both maps, the positional encoding) and runs
``transformers.Sam2MaskDecoder`` for ``P`` prompts in one batch (:func:`decode`), so every
samscope mode (interactive prompts, AMG, APG, the foreground mode, training) decodes SAM2 the
same way. ``benchmarks/verify_sam2.py`` checks it against Meta's ``sam2`` to 1e-5.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from samscope.models.decoder import DecoderCache, prepare_tokens, reassociable
from samscope.models.decoder import decode as decode_tokens
from samscope.models.decoder import (
    image_positional_encoding as positional_encoding,  # the same grid rule as SAM1's
)


@dataclass
class Sam2DecoderCache:
    """Prompt-independent SAM2 decoder state of one image.

    Attributes
    ----------
    embedding : torch.Tensor
        ``(1, C, g, g)`` image embedding (``no_memory_embedding`` added).
    s0, s1 : torch.Tensor
        ``(1, C/8, 4g, 4g)`` and ``(1, C/4, 2g, 2g)`` projected high-resolution features.
    pos : torch.Tensor
        ``(1, C, g, g)`` positional encoding of the embedding grid.
    grid : int
        ``g``.
    """

    embedding: torch.Tensor
    s0: torch.Tensor
    s1: torch.Tensor
    pos: torch.Tensor
    grid: int
    #: marks a multi-scale (SAM2) cache: SAM1's reassociated point decoder does not apply
    multiscale: bool = True
    #: the reassociated decoder's state (:func:`fast_state`), built on first use
    fast: DecoderCache | None = None

    @property
    def tokens(self) -> torch.Tensor:
        """``(1, N, C)`` image tokens (their size sets how many prompts a pass takes)."""
        return self.embedding.flatten(2).transpose(1, 2)


def pack_features(embedding: torch.Tensor, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
    """The three SAM2 feature maps as one ``(B, 4C, g, g)`` tensor (lossless).

    ``s1`` ``(B, C/4, 2g, 2g)`` and ``s0`` ``(B, C/8, 4g, 4g)`` are folded into the embedding grid
    by pixel-unshuffle (``C`` and ``2C`` channels) and concatenated after the embedding, so
    embeddings, tiles and caches keep their ``(…, channels, g, g)`` layout.
    """
    return torch.cat([embedding, F.pixel_unshuffle(s1, 2), F.pixel_unshuffle(s0, 4)], dim=1)


def unpack_features(packed: torch.Tensor, hidden: int):
    """Inverse of :func:`pack_features`: ``(embedding, s0, s1)``.

    Raises
    ------
    ValueError
        If ``packed`` does not have ``4 · hidden`` channels.
    """
    if packed.ndim != 4 or packed.shape[1] != 4 * hidden:
        raise ValueError(
            f"expected packed SAM2 features (B, {4 * hidden}, g, g), got {tuple(packed.shape)}"
        )
    emb, s1, s0 = torch.split(packed, [hidden, hidden, 2 * hidden], dim=1)
    return emb, F.pixel_shuffle(s0, 4), F.pixel_shuffle(s1, 2)


def image_features(sam: nn.Module, pixels: torch.Tensor, vision_encoder: nn.Module | None = None):
    """``(embedding, s0, s1)`` of encoder input, as Meta's image predictor computes them.

    The vision encoder's three FPN levels; the two finest projected by the decoder's
    ``conv_s0`` / ``conv_s1``; ``no_memory_embedding`` added to the coarsest (SAM2's
    ``directly_add_no_mem_embed``). Differentiable (training runs it under autograd).
    """
    encoder = sam.vision_encoder if vision_encoder is None else vision_encoder
    fpn = encoder(pixels).fpn_hidden_states
    dec = sam.mask_decoder
    s0 = dec.conv_s0(fpn[0])
    s1 = dec.conv_s1(fpn[1])
    emb = fpn[-1] + sam.no_memory_embedding.reshape(1, -1, 1, 1)
    return emb, s0, s1


def prepare_decoder(sam: nn.Module, packed: torch.Tensor) -> Sam2DecoderCache:
    """The cache of one image from its packed features ``(1, 4C, g, g)`` (see :func:`pack_features`)."""
    if packed.ndim != 4 or packed.shape[0] != 1:
        raise ValueError(f"expected one image's features (1, 4C, g, g), got {tuple(packed.shape)}")
    hidden = sam.mask_decoder.hidden_size
    emb, s0, s1 = unpack_features(packed, hidden)
    grid = emb.shape[-1]
    return Sam2DecoderCache(emb, s0, s1, positional_encoding(sam, grid).to(emb.dtype), grid)


def decode(
    sam: nn.Module,
    cache: Sam2DecoderCache,
    sparse: torch.Tensor,
    dense: torch.Tensor | None = None,
    *,
    multimask: bool = False,
    method: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-resolution logits ``(P, K, 4g, 4g)`` and IoU ``(P, K)`` of ``P`` prompts on one image.

    Without autograd, SAM's reassociated decoder (:mod:`samscope.models.decoder`: image-side
    terms cached per image in :func:`fast_state`, the high-resolution maps added in the
    up-scaling's channels-last layout) computes what ``transformers.Sam2MaskDecoder`` computes;
    under autograd (training) or with ``method="reference"``, ``transformers``' decoder runs.

    Parameters
    ----------
    sam : transformers.Sam2Model
    cache : Sam2DecoderCache
    sparse : torch.Tensor
        ``(P, T, C)`` sparse prompt embeddings.
    dense : torch.Tensor, optional
        ``(P, C, g, g)`` mask-prompt embeddings (the "no mask" embedding without).
    multimask : bool
        Three masks (K = 3), or one (K = 1; the most stable multimask output when the single one
        is unstable, outside training).
    method : {"auto", "reference", "reassociated"}
        ``auto``: reassociated where it pays (no autograd, ``heads × tokens`` at most the
        attention width); ``reassociated`` forces it (not under autograd).
    """
    dec = sam.mask_decoder
    p = sparse.shape[0]
    if method not in ("auto", "reference", "reassociated"):
        raise ValueError(f"method must be auto, reference or reassociated, got {method!r}")
    fast = p > 0 and not torch.is_grad_enabled() and reassociable(dec)
    if method == "reassociated" and not fast:
        raise ValueError("the reassociated decoder needs inference mode and SAM's layout")
    if fast and (method == "reassociated" or (method == "auto" and reassociable(dec, sparse.shape[1]))):
        return decode_tokens(sam, fast_state(sam, cache), sparse, dense=dense,
                             multimask=multimask, method="reassociated")  # fmt: skip
    hr = [cache.s0, cache.s1]
    if dense is None:  # one image, P prompts: the decoder repeats the image per prompt itself
        no_mask = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        masks, iou, _, _ = dec(
            image_embeddings=cache.embedding,
            image_positional_embeddings=cache.pos,
            sparse_prompt_embeddings=sparse[None],
            dense_prompt_embeddings=no_mask.to(cache.embedding.dtype),
            multimask_output=multimask,
            high_resolution_features=hr,
        )
        return masks[0], iou[0]
    if dense.shape[0] != p:
        dense = dense.expand(p, -1, -1, -1)
    masks, iou, _, _ = dec(  # one mask per prompt: P images of one prompt each
        image_embeddings=cache.embedding.expand(p, -1, -1, -1),
        image_positional_embeddings=cache.pos.expand(p, -1, -1, -1),
        sparse_prompt_embeddings=sparse[:, None],
        dense_prompt_embeddings=dense,
        multimask_output=multimask,
        high_resolution_features=[h.expand(p, -1, -1, -1) for h in hr],
    )
    return masks[:, 0], iou[:, 0]


def hires_layout(dec: nn.Module, s0: torch.Tensor, s1: torch.Tensor):
    """SAM2's high-resolution maps in the layout of the reassociated up-scaling
    (:func:`samscope.models.decoder.upscale_and_predict`), each with its convolution's bias.

    ``s1`` ``(1, C/4, 2g, 2g)`` becomes ``(1, g·g, [a, b, o])`` (pixel ``(2i + a, 2j + b)`` of
    grid row ``(i, j)``) plus ``upscale_conv1``'s bias; ``s0`` ``(1, C/8, 4g, 4g)`` becomes
    ``(1, g·g·4, [a2, b2, o2])`` (pixel ``(4i + 2a + a2, 4j + 2b + b2)``) plus ``upscale_conv2``'s.
    """
    c4, c8 = s1.shape[1], s0.shape[1]
    g = s1.shape[-1] // 2
    one = s1[0].reshape(c4, g, 2, g, 2).permute(1, 3, 2, 4, 0).reshape(1, g * g, 4 * c4)
    zero = s0[0].reshape(c8, g, 2, 2, g, 2, 2).permute(1, 4, 2, 5, 3, 6, 0)
    zero = zero.reshape(1, g * g * 4, 4 * c8)
    return (
        (one + dec.upscale_conv1.bias.repeat(4)).contiguous(),
        (zero + dec.upscale_conv2.bias.repeat(4)).contiguous(),
    )


def fast_state(sam: nn.Module, cache: Sam2DecoderCache) -> DecoderCache:
    """The reassociated decoder's state of a SAM2 image (built once, kept on ``cache``): the
    two-way transformer's prompt-independent terms, as for SAM, and :func:`hires_layout`."""
    if cache.fast is None:
        state = prepare_tokens(sam, cache.embedding)
        state.hires = hires_layout(sam.mask_decoder, cache.s0, cache.s1)
        cache.fast = state
    return cache.fast


# --------------------------------------------------------------------------------------------
# for code written against SAM1's modules (training, validation)
# --------------------------------------------------------------------------------------------


def is_sam2(sam: nn.Module) -> bool:
    """Whether ``sam`` is a ``transformers`` SAM2 model (``Sam2Model`` / ``Sam2VideoModel``)."""
    return getattr(getattr(sam, "config", None), "model_type", None) in ("sam2", "sam2_video")


def input_geometry(sam: nn.Module) -> tuple[int, int]:
    """``(input side, low-resolution mask side)`` of a SAM or SAM2 (read from its prompt encoder)."""
    cfg = sam.config.prompt_encoder_config
    size = int(cfg.image_size)
    return size, 4 * (size // int(cfg.patch_size))


def encoder_embedding(sam: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """The image encoder's output as samscope stores it: SAM1's embedding ``(B, C, g, g)``, or
    SAM2's packed multi-scale features ``(B, 4C, g, g)`` (differentiable)."""
    if is_sam2(sam):
        return pack_features(*image_features(sam, pixels))
    return sam.vision_encoder(pixels).last_hidden_state
