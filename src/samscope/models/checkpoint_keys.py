"""Key names of SAM state dicts: segment-anything (Meta, µSAM) ↔ ``transformers.SamModel``.

Split from :mod:`samscope.models.checkpoint` (reading, formats, strict loading, writing there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

__all__ = [
    "SHARED_KEY",
    "TIED_KEY",
    "segment_anything_to_transformers",
    "tie_shared_embedding",
    "strip_prefix",
    "transformers_to_segment_anything",
]

StateDict = dict[str, torch.Tensor]


#: (segment-anything template, transformers template); ``{i}`` is a layer number. MLP layer
#: numbering of the mask decoder's heads is handled separately (see ``_MLP_HEADS``).
_KEY_RULES: tuple[tuple[str, str], ...] = (
    ("image_encoder.pos_embed", "vision_encoder.pos_embed"),
    ("image_encoder.patch_embed.proj.", "vision_encoder.patch_embed.projection."),
    ("image_encoder.blocks.{i}.norm1.", "vision_encoder.layers.{i}.layer_norm1."),
    ("image_encoder.blocks.{i}.norm2.", "vision_encoder.layers.{i}.layer_norm2."),
    ("image_encoder.blocks.{i}.attn.", "vision_encoder.layers.{i}.attn."),
    ("image_encoder.blocks.{i}.mlp.", "vision_encoder.layers.{i}.mlp."),
    ("image_encoder.neck.0.", "vision_encoder.neck.conv1."),
    ("image_encoder.neck.1.", "vision_encoder.neck.layer_norm1."),
    ("image_encoder.neck.2.", "vision_encoder.neck.conv2."),
    ("image_encoder.neck.3.", "vision_encoder.neck.layer_norm2."),
    (
        "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix",
        "shared_image_embedding.positional_embedding",
    ),
    ("prompt_encoder.point_embeddings.{i}.", "prompt_encoder.point_embed.{i}."),
    ("prompt_encoder.not_a_point_embed.", "prompt_encoder.not_a_point_embed."),
    ("prompt_encoder.no_mask_embed.", "prompt_encoder.no_mask_embed."),
    ("prompt_encoder.mask_downscaling.0.", "prompt_encoder.mask_embed.conv1."),
    ("prompt_encoder.mask_downscaling.1.", "prompt_encoder.mask_embed.layer_norm1."),
    ("prompt_encoder.mask_downscaling.3.", "prompt_encoder.mask_embed.conv2."),
    ("prompt_encoder.mask_downscaling.4.", "prompt_encoder.mask_embed.layer_norm2."),
    ("prompt_encoder.mask_downscaling.6.", "prompt_encoder.mask_embed.conv3."),
    ("mask_decoder.transformer.layers.{i}.norm1.", "mask_decoder.transformer.layers.{i}.layer_norm1."),
    ("mask_decoder.transformer.layers.{i}.norm2.", "mask_decoder.transformer.layers.{i}.layer_norm2."),
    ("mask_decoder.transformer.layers.{i}.norm3.", "mask_decoder.transformer.layers.{i}.layer_norm3."),
    ("mask_decoder.transformer.layers.{i}.norm4.", "mask_decoder.transformer.layers.{i}.layer_norm4."),
    ("mask_decoder.transformer.layers.{i}.", "mask_decoder.transformer.layers.{i}."),
    ("mask_decoder.transformer.final_attn_token_to_image.", "mask_decoder.transformer.final_attn_token_to_image."),
    ("mask_decoder.transformer.norm_final_attn.", "mask_decoder.transformer.layer_norm_final_attn."),
    ("mask_decoder.iou_token.", "mask_decoder.iou_token."),
    ("mask_decoder.mask_tokens.", "mask_decoder.mask_tokens."),
    ("mask_decoder.output_upscaling.0.", "mask_decoder.upscale_conv1."),
    ("mask_decoder.output_upscaling.1.", "mask_decoder.upscale_layer_norm."),
    ("mask_decoder.output_upscaling.3.", "mask_decoder.upscale_conv2."),
)

#: The tied copy of the positional embedding that ``SamModel`` also lists in its state dict.
TIED_KEY = "prompt_encoder.shared_embedding.positional_embedding"
SHARED_KEY = "shared_image_embedding.positional_embedding"


def tie_shared_embedding(state: dict) -> dict:
    """Add the tied copy :data:`TIED_KEY` of :data:`SHARED_KEY` when it is missing (in place)."""
    if SHARED_KEY in state and TIED_KEY not in state:
        state[TIED_KEY] = state[SHARED_KEY]
    return state

#: Mask-decoder MLPs: segment-anything numbers their linear layers ``layers.0 … layers.{n-1}``;
#: transformers calls them ``proj_in``, ``layers.0 … layers.{n-3}``, ``proj_out``.
_MLP_HEADS = (
    re.compile(r"^(mask_decoder\.output_hypernetworks_mlps\.\d+\.)"),
    re.compile(r"^(mask_decoder\.iou_prediction_head\.)"),
)


def _template_regex(template: str) -> re.Pattern:
    return re.compile("^" + re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)"))


_SA_TO_HF = tuple((_template_regex(sa), hf) for sa, hf in _KEY_RULES)
_HF_TO_SA = tuple((_template_regex(hf), sa) for sa, hf in _KEY_RULES)


def _rename(key: str, rules) -> str | None:
    for pattern, template in rules:
        m = pattern.match(key)
        if m:
            new = template.replace("{i}", m.group("i")) if "i" in m.groupdict() else template
            return new + key[m.end():]
    return None


def _mlp_depths(keys, prefix_regex: re.Pattern, layer_regex: str) -> dict[str, int]:
    depths: dict[str, int] = {}
    for key in keys:
        m = prefix_regex.match(key)
        if m:
            n = re.match(layer_regex, key[m.end():])
            if n:
                depths[m.group(1)] = max(depths.get(m.group(1), 0), int(n.group(1)) + 1)
    return depths


def segment_anything_to_transformers(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a segment-anything state dict to ``transformers.SamModel``'s keys.

    A ``sam.`` prefix is removed first. The prompt encoder's Gaussian positional matrix becomes
    both ``shared_image_embedding.positional_embedding`` and its tied copy. Keys that match no
    rule are kept unchanged, so strict loading reports them as unexpected.
    """
    state = strip_prefix(state, "sam.")
    depths: dict[str, int] = {}
    for regex in _MLP_HEADS:
        depths.update(_mlp_depths(state, regex, r"layers\.(\d+)\."))
    out: StateDict = {}
    for key, value in state.items():
        new = None
        for regex in _MLP_HEADS:
            m = regex.match(key)
            if m:
                rest = key[m.end():]
                n = re.match(r"layers\.(\d+)\.", rest)
                if n:
                    i, depth = int(n.group(1)), depths[m.group(1)]
                    name = "proj_in" if i == 0 else "proj_out" if i == depth - 1 else f"layers.{i - 1}"
                    new = f"{m.group(1)}{name}.{rest[n.end():]}"
                break
        if new is None:
            new = _rename(key, _SA_TO_HF) or key
        out[new] = value
    return tie_shared_embedding(out)


def transformers_to_segment_anything(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename a ``transformers.SamModel`` state dict to segment-anything's keys (the inverse).

    The result loads strictly into segment-anything's ``Sam`` and µSAM; the tied copy
    ``prompt_encoder.shared_embedding.positional_embedding`` is dropped.
    """
    depths: dict[str, int] = {}
    for regex in _MLP_HEADS:
        for key in state:
            m = regex.match(key)
            if m:
                n = re.match(r"layers\.(\d+)\.", key[m.end():])
                hidden = int(n.group(1)) + 1 if n else 0
                depths[m.group(1)] = max(depths.get(m.group(1), 0), hidden)
    out: StateDict = {}
    for key, value in state.items():
        if key == TIED_KEY:
            continue
        new = None
        for regex in _MLP_HEADS:
            m = regex.match(key)
            if m:
                rest = key[m.end():]
                last = depths[m.group(1)] + 1
                if rest.startswith("proj_in."):
                    new = f"{m.group(1)}layers.0.{rest[len('proj_in.'):]}"
                elif rest.startswith("proj_out."):
                    new = f"{m.group(1)}layers.{last}.{rest[len('proj_out.'):]}"
                else:
                    n = re.match(r"layers\.(\d+)\.", rest)
                    if n:
                        new = f"{m.group(1)}layers.{int(n.group(1)) + 1}.{rest[n.end():]}"
                break
        if new is None:
            new = _rename(key, _HF_TO_SA) or key
        out[new] = value
    return out


def strip_prefix(state: Mapping[str, torch.Tensor], prefix: str) -> StateDict:
    """Remove ``prefix`` from the keys that start with it."""
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
