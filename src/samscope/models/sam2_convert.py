"""Strict conversion of Meta's SAM2 / SAM2.1 checkpoints into ``transformers``' SAM2 classes.

Meta publishes SAM2 weights as ``torch.save({"model": state_dict}, "sam2.1_hiera_tiny.pt")``
with the module names of the ``sam2`` package (``image_encoder.trunk.*``,
``sam_prompt_encoder.*``, ``sam_mask_decoder.*``, ``memory_attention.*``, ``memory_encoder.*``,
``obj_ptr_proj.*``, …). :func:`meta_to_transformers` renames **every** key to the layout of
``transformers.Sam2VideoModel`` (the image model's keys are a subset) and fails loudly — listing
the keys — if a key has no rule, or if the result misses or adds keys against the model built
from the inferred configuration.

How to get a converted state dict
---------------------------------
For the image model (``transformers.Sam2Model``: encoder, prompt encoder, mask decoder)::

    from samscope.models.sam2_convert import read_meta_checkpoint, build_sam2_model
    meta_state = read_meta_checkpoint("sam2.1_hiera_tiny.pt")     # the dict under "model"
    model, spec = build_sam2_model(meta_state)                     # strict, eval mode

or, step by step::

    from samscope.models.sam2_convert import (
        meta_to_transformers, infer_spec, sam2_config, image_state)
    spec = infer_spec(meta_state)                  # Sam2Spec: hiera size, image size, version
    full = meta_to_transformers(meta_state)        # every key, Sam2VideoModel names
    state = image_state(full)                      # the Sam2Model subset
    model = transformers.Sam2Model(sam2_config(spec)); model.load_state_dict(state, strict=True)

For the video model (``transformers.Sam2VideoModel``: the above plus memory attention, memory
encoder, object pointers, temporal encodings)::

    from samscope.models.sam2_convert import build_sam2_video_model
    video, spec = build_sam2_video_model(meta_state)
    # or: transformers.Sam2VideoModel(sam2_video_config(spec)).load_state_dict(
    #         meta_to_transformers(meta_state), strict=True)

SAM2.0 checkpoints lack two SAM2.1 parameters (``no_obj_embed_spatial``, ``obj_ptr_tpos_proj``);
:func:`infer_spec` records the version and :func:`sam2_video_config` switches the matching
``transformers`` options off, so the conversion stays exact for both.

The architecture cannot be read entirely from tensor shapes (heads, global-attention blocks and
window sizes leave no trace), so :func:`infer_spec` matches what the shapes do show (width, blocks
per stage, positional-embedding sizes, decoder width) against the known presets
(:data:`SAM2_SPECS`: hiera t / s / b+ / l as in Meta's configs, and ``hiera_test``, a tiny random
model for fast tests).

Nothing here imports ``transformers`` until a config or model is built; Meta's ``sam2`` package is
never needed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import torch

from samscope.errors import CheckpointError
from samscope.models.sam2_specs import (  # noqa: F401 - re-exported
    SAM2_SPECS,
    Sam2Spec,
    sam2_config,
    sam2_video_config,
)

StateDict = dict[str, torch.Tensor]

#: How many keys an error lists.
MAX_LISTED = 20

#: Prefix of the image-model keys (``transformers.Sam2Model``) in a converted state dict.
IMAGE_PREFIXES = ("vision_encoder.", "prompt_encoder.", "mask_decoder.", "shared_image_embedding.")
IMAGE_KEYS = ("no_memory_embedding",)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def is_meta_sam2(obj) -> bool:
    """Whether a loaded checkpoint object is Meta's SAM2 layout (``{"model": state}`` or the
    state itself, with ``image_encoder.trunk.*`` keys)."""
    if isinstance(obj, Mapping) and set(obj) == {"model"} and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    return isinstance(obj, Mapping) and any(
        isinstance(k, str) and k.startswith("image_encoder.trunk.") for k in obj
    )


def meta_state_of(obj) -> StateDict:
    """The state dict of a loaded Meta SAM2 checkpoint (``obj["model"]`` or ``obj``).

    Raises
    ------
    CheckpointError
        If it is not one, or holds something other than tensors.
    """
    state = obj["model"] if isinstance(obj, Mapping) and "model" in obj else obj
    if not is_meta_sam2(state):
        raise CheckpointError("not a SAM2 checkpoint: expected image_encoder.trunk.* keys")
    bad = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    if bad:
        raise CheckpointError(f"SAM2 checkpoint: entries that are not tensors: {_listed(bad)}")
    return dict(state)


def read_meta_checkpoint(path: str | Path) -> StateDict:
    """Read Meta's SAM2 ``.pt`` file safely (``weights_only``) and return its state dict."""
    from samscope.models.checkpoint import read_checkpoint

    return meta_state_of(read_checkpoint(path))


# --------------------------------------------------------------------------------------------
# key mapping
# --------------------------------------------------------------------------------------------

#: Plain renames, applied in order to every key (regex → replacement).
_RULES: tuple[tuple[str, str], ...] = (
    # image encoder
    (r"^image_encoder\.trunk\.", "vision_encoder.backbone."),
    (r"^image_encoder\.neck\.convs\.(\d+)\.conv\.", r"vision_encoder.neck.convs.\1."),
    (r"^(vision_encoder\.backbone\.patch_embed)\.proj\.", r"\1.projection."),
    (r"^(vision_encoder\.backbone\.blocks\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    # prompt encoder
    (r"^sam_prompt_encoder\.", "prompt_encoder."),
    (r"^prompt_encoder\.pe_layer\.positional_encoding_gaussian_matrix$",
     "prompt_encoder.shared_embedding.positional_embedding"),
    (r"^prompt_encoder\.mask_downscaling\.0\.", "prompt_encoder.mask_embed.conv1."),
    (r"^prompt_encoder\.mask_downscaling\.1\.", "prompt_encoder.mask_embed.layer_norm1."),
    (r"^prompt_encoder\.mask_downscaling\.3\.", "prompt_encoder.mask_embed.conv2."),
    (r"^prompt_encoder\.mask_downscaling\.4\.", "prompt_encoder.mask_embed.layer_norm2."),
    (r"^prompt_encoder\.mask_downscaling\.6\.", "prompt_encoder.mask_embed.conv3."),
    # mask decoder
    (r"^sam_mask_decoder\.", "mask_decoder."),
    (r"^mask_decoder\.output_upscaling\.0\.", "mask_decoder.upscale_conv1."),
    (r"^mask_decoder\.output_upscaling\.1\.", "mask_decoder.upscale_layer_norm."),
    (r"^mask_decoder\.output_upscaling\.3\.", "mask_decoder.upscale_conv2."),
    (r"^(mask_decoder\.transformer\.layers\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    (r"^mask_decoder\.transformer\.norm_final_attn\.", "mask_decoder.transformer.layer_norm_final_attn."),
    # memory attention
    (r"^(memory_attention\.layers\.\d+)\.norm(\d)\.", r"\1.layer_norm\2."),
    (r"^memory_attention\.norm\.", "memory_attention.layer_norm."),
    # memory encoder
    (r"^memory_encoder\.pix_feat_proj\.", "memory_encoder.feature_projection."),
    (r"^memory_encoder\.out_proj\.", "memory_encoder.projection."),
    (r"^memory_encoder\.fuser\.layers\.(\d+)\.gamma$", r"memory_encoder.memory_fuser.layers.\1.scale"),
    (r"^memory_encoder\.fuser\.layers\.(\d+)\.dwconv\.", r"memory_encoder.memory_fuser.layers.\1.depthwise_conv."),
    (r"^memory_encoder\.fuser\.layers\.(\d+)\.norm\.", r"memory_encoder.memory_fuser.layers.\1.layer_norm."),
    (r"^memory_encoder\.fuser\.layers\.(\d+)\.pwconv(\d)\.", r"memory_encoder.memory_fuser.layers.\1.pointwise_conv\2."),
    # top-level video parameters
    (r"^maskmem_tpos_enc$", "memory_temporal_positional_encoding"),
    (r"^no_mem_embed$", "no_memory_embedding"),
    (r"^no_mem_pos_enc$", "no_memory_positional_encoding"),
    (r"^no_obj_ptr$", "no_object_pointer"),
    (r"^no_obj_embed_spatial$", "occlusion_spatial_embedding_parameter"),
    (r"^obj_ptr_proj\.", "object_pointer_proj."),
    (r"^obj_ptr_tpos_proj\.", "temporal_positional_encoding_projection_layer."),
    # attention output projections everywhere (memory attention, two-way transformer)
    (r"\.out_proj\.(weight|bias)$", r".o_proj.\1"),
)  # fmt: skip

#: Keys kept as they are (after the renames above).
_KEPT = re.compile(
    r"^(vision_encoder\.backbone\.(pos_embed|pos_embed_window|patch_embed\.projection\.\w+"
    r"|blocks\.\d+\.(layer_norm\d\.\w+|attn\.(qkv|proj)\.\w+|proj\.\w+|mlp\.(proj_in|proj_out|layers\.\d+)\.\w+))"
    r"|vision_encoder\.neck\.convs\.\d+\.\w+"
    r"|prompt_encoder\.(shared_embedding\.positional_embedding|not_a_point_embed\.weight|no_mask_embed\.weight"
    r"|point_embed\.weight|mask_embed\.(conv\d|layer_norm\d)\.\w+)"
    r"|mask_decoder\.(iou_token|mask_tokens|obj_score_token)\.weight"
    r"|mask_decoder\.(upscale_conv\d|upscale_layer_norm|conv_s\d)\.\w+"
    r"|mask_decoder\.(output_hypernetworks_mlps\.\d+|iou_prediction_head|pred_obj_score_head)"
    r"\.(proj_in|proj_out|layers\.\d+)\.\w+"
    r"|mask_decoder\.transformer\.(layers\.\d+\.)?"
    r"(\w+_attn\w*\.(q|k|v|o)_proj\.\w+|layer_norm\w*\.\w+|mlp\.(proj_in|proj_out|layers\.\d+)\.\w+)"
    r"|memory_attention\.(layers\.\d+\.(self_attn|cross_attn_image)\.(q|k|v|o)_proj\.\w+"
    r"|layers\.\d+\.(linear\d|layer_norm\d)\.\w+|layer_norm\.\w+)"
    r"|memory_encoder\.(mask_downsampler\.(layers\.\d+\.(conv|layer_norm)|final_conv)\.\w+"
    r"|feature_projection\.\w+|projection\.\w+"
    r"|memory_fuser\.layers\.\d+\.(scale|(depthwise_conv|layer_norm|pointwise_conv\d)\.\w+))"
    r"|object_pointer_proj\.(proj_in|proj_out|layers\.\d+)\.\w+"
    r"|temporal_positional_encoding_projection_layer\.\w+|mask_downsample\.\w+"
    r"|memory_temporal_positional_encoding|no_memory_embedding|no_memory_positional_encoding"
    r"|no_object_pointer|occlusion_spatial_embedding_parameter)$"
)

#: Meta's ``MLP`` modules (``layers.0 … layers.n-1``); transformers names the first ``proj_in``,
#: the last ``proj_out`` and the middle ones ``layers.0 … layers.n-3``.
_MLP = re.compile(
    r"^(?P<mod>vision_encoder\.backbone\.blocks\.\d+\.mlp"
    r"|mask_decoder\.transformer\.layers\.\d+\.mlp"
    r"|mask_decoder\.(output_hypernetworks_mlps\.\d+|iou_prediction_head|pred_obj_score_head)"
    r"|object_pointer_proj)\.layers\.(?P<i>\d+)\.(?P<p>\w+)$"
)
_MASK_DOWN = re.compile(r"^memory_encoder\.mask_downsampler\.encoder\.(?P<i>\d+)\.(?P<p>\w+)$")
_POINT = re.compile(r"^sam_prompt_encoder\.point_embeddings\.(?P<i>\d+)\.weight$")


def _listed(keys) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:MAX_LISTED])
    more = f", … ({len(keys) - MAX_LISTED} more)" if len(keys) > MAX_LISTED else ""
    return f"{len(keys)}: {shown}{more}"


def _renamed(key: str) -> str:
    for pattern, repl in _RULES:
        key = re.sub(pattern, repl, key)
    return key


def meta_to_transformers(meta_state: Mapping[str, torch.Tensor]) -> StateDict:
    """Rename every key of Meta's SAM2 state dict to ``transformers.Sam2VideoModel``'s names.

    Parameters
    ----------
    meta_state : mapping
        The dict under ``"model"`` in Meta's ``.pt`` file.

    Returns
    -------
    dict
        ``transformers`` keys → the same tensors (the four point embeddings stacked into
        ``prompt_encoder.point_embed.weight``; the random-Fourier matrix given to both the prompt
        encoder and ``shared_image_embedding``).

    Raises
    ------
    CheckpointError
        Listing every key no rule maps (nothing is silently dropped), and any clash.
    """
    out: StateDict = {}
    unmapped: list[str] = []
    mlp_depth: dict[str, int] = {}
    mlp_items: list[tuple[str, int, str, torch.Tensor]] = []
    mask_down: dict[int, dict[str, torch.Tensor]] = {}
    points: dict[int, torch.Tensor] = {}

    def put(key: str, value: torch.Tensor, source: str) -> None:
        if key in out:
            raise CheckpointError(f"SAM2 conversion: two keys map to {key} (one is {source})")
        out[key] = value

    for key, value in meta_state.items():
        if (m := _POINT.match(key)) is not None:
            points[int(m["i"])] = value
            continue
        if (m := _MASK_DOWN.match(key)) is not None:
            mask_down.setdefault(int(m["i"]), {})[m["p"]] = value
            continue
        new = _renamed(key)
        if (m := _MLP.match(new)) is not None:
            i = int(m["i"])
            mlp_depth[m["mod"]] = max(mlp_depth.get(m["mod"], 0), i + 1)
            mlp_items.append((m["mod"], i, m["p"], value))
            continue
        if not _KEPT.match(new):
            unmapped.append(key)
            continue
        put(new, value, key)
    if unmapped:
        raise CheckpointError(f"SAM2 conversion: no rule for keys {_listed(unmapped)}")

    for mod, i, param, value in mlp_items:
        depth = mlp_depth[mod]
        name = "proj_in" if i == 0 else "proj_out" if i == depth - 1 else f"layers.{i - 1}"
        put(f"{mod}.{name}.{param}", value, f"{mod}.layers.{i}.{param}")

    if mask_down:  # Sequential(conv, norm, act) × n, then a 1×1 conv
        convs = sorted(i for i, p in mask_down.items() if mask_down[i]["weight"].ndim == 4)
        *stages, last = convs
        for n, i in enumerate(stages):
            for p, v in mask_down.pop(i).items():
                put(f"memory_encoder.mask_downsampler.layers.{n}.conv.{p}", v, f"encoder.{i}")
            norm = mask_down.pop(i + 1, None)
            if norm is None:
                raise CheckpointError(f"SAM2 conversion: mask down-sampler conv {i} has no norm")
            for p, v in norm.items():
                put(f"memory_encoder.mask_downsampler.layers.{n}.layer_norm.{p}", v, f"encoder.{i + 1}")
        for p, v in mask_down.pop(last).items():
            put(f"memory_encoder.mask_downsampler.final_conv.{p}", v, f"encoder.{last}")
        if mask_down:
            left = [f"memory_encoder.mask_downsampler.encoder.{i}" for i in mask_down]
            raise CheckpointError(f"SAM2 conversion: no rule for keys {_listed(left)}")

    if points:
        if sorted(points) != list(range(len(points))):
            raise CheckpointError(f"SAM2 conversion: point embeddings {sorted(points)} are not 0…n-1")
        put("prompt_encoder.point_embed.weight", torch.cat([points[i] for i in sorted(points)]), "points")
    pe = out.get("prompt_encoder.shared_embedding.positional_embedding")
    if pe is not None:
        put("shared_image_embedding.positional_embedding", pe, "pe_layer")
    return out


def image_state(state: Mapping[str, torch.Tensor]) -> StateDict:
    """The ``transformers.Sam2Model`` part of a converted (video-model) state dict."""
    return {k: v for k, v in state.items() if k.startswith(IMAGE_PREFIXES) or k in IMAGE_KEYS}


# --------------------------------------------------------------------------------------------
# architecture
# --------------------------------------------------------------------------------------------


def _shape(state: Mapping[str, torch.Tensor], key: str) -> tuple[int, ...]:
    try:
        return tuple(state[key].shape)
    except KeyError:
        raise CheckpointError(f"not a SAM2 state dict: missing {key!r}") from None


def infer_spec(meta_state: Mapping[str, torch.Tensor]) -> Sam2Spec:
    """The :class:`Sam2Spec` of a Meta SAM2 state dict (matched against :data:`SAM2_SPECS`).

    Read from the shapes: Hiera's width, blocks per stage (the stage-changing blocks carry a
    ``proj``), the positional-embedding sizes, the decoder width, the memory width and number of
    memories, and the version (2.1 has ``no_obj_embed_spatial``).

    Raises
    ------
    CheckpointError
        If no preset has those shapes.
    """
    embed_dim = _shape(meta_state, "image_encoder.trunk.patch_embed.proj.weight")[0]
    bkg = _shape(meta_state, "image_encoder.trunk.pos_embed")[-2:]
    window0 = _shape(meta_state, "image_encoder.trunk.pos_embed_window")[-1]
    blocks = sorted(
        {int(m.group(1)) for k in meta_state if (m := re.match(r"image_encoder\.trunk\.blocks\.(\d+)\.", k))}
    )
    starts = [i for i in blocks if f"image_encoder.trunk.blocks.{i}.proj.weight" in meta_state]
    bounds = [0, *starts, len(blocks)]
    stages = tuple(b - a for a, b in zip(bounds, bounds[1:], strict=False))
    hidden = _shape(meta_state, "sam_mask_decoder.iou_token.weight")[1]
    found = {
        "embed_dim": embed_dim,
        "stages": stages,
        "window_pos_embed_bkg": tuple(bkg),
        "hidden": hidden,
    }
    if "maskmem_tpos_enc" in meta_state:
        found["num_maskmem"] = _shape(meta_state, "maskmem_tpos_enc")[0]
    if "memory_encoder.out_proj.weight" in meta_state:
        found["mem_dim"] = _shape(meta_state, "memory_encoder.out_proj.weight")[0]
    version = "2.1" if "no_obj_embed_spatial" in meta_state else "2.0"
    for spec in SAM2_SPECS.values():
        if all(getattr(spec, k) == v for k, v in found.items()) and spec.window_spec[0] == window0:
            return replace(spec, version=version)
    desc = ", ".join(f"{k}={v}" for k, v in found.items())
    raise CheckpointError(f"no known SAM2 architecture has {desc}; known: {sorted(SAM2_SPECS)}")


# --------------------------------------------------------------------------------------------
# strict building
# --------------------------------------------------------------------------------------------


def check_keys(model: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Missing, unexpected or mis-shaped keys of ``state`` against ``model``: a CheckpointError."""
    from samscope.models.checkpoint import key_problems

    problems = key_problems(model, state, what=what)
    if problems:
        raise CheckpointError(f"SAM2 checkpoint does not fit the {what}: " + "; ".join(problems))


def _no_init():
    """A context skipping ``transformers``' random initialisation (the weights are replaced)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # pragma: no cover - older transformers
        import contextlib

        return contextlib.nullcontext()
    return no_init_weights()


def build_checked(cls, config, state: Mapping[str, torch.Tensor], what: str):
    """``cls(config)`` with ``state`` loaded strictly, after a key check that lists every difference."""
    with torch.device("meta"):  # cheap: the key check needs names and shapes only
        skeleton = cls(config)
    check_keys(skeleton, state, what)
    del skeleton
    with _no_init():  # on the CPU, so that non-persistent buffers (RoPE tables) are computed
        model = cls(config)
    model.load_state_dict(dict(state), strict=True, assign=True)
    return model.eval()


def build_sam2_model(meta_state: Mapping[str, torch.Tensor], spec: Sam2Spec | None = None):
    """``transformers.Sam2Model`` with Meta's weights, every key checked.

    Every key of ``meta_state`` must map (also the memory modules the image model does not use:
    they are converted and checked against ``Sam2VideoModel``'s names, then left out).

    Returns
    -------
    model : transformers.Sam2Model
        In eval mode, on the CPU.
    spec : Sam2Spec
    """
    spec = spec or infer_spec(meta_state)
    full = meta_to_transformers(meta_state)
    _check_video_keys(full, spec)
    from transformers import Sam2Model

    return build_checked(Sam2Model, sam2_config(spec), image_state(full), "SAM2 image model"), spec


def _check_video_keys(full: Mapping[str, torch.Tensor], spec: Sam2Spec) -> None:
    """The non-image keys against ``Sam2VideoModel`` (built on ``meta``: no memory, no time)."""
    from transformers import Sam2VideoModel

    with torch.device("meta"):
        video = Sam2VideoModel(sam2_video_config(spec))
    check_keys(video, full, "SAM2 video model")


def build_sam2_video_model(meta_state: Mapping[str, torch.Tensor], spec: Sam2Spec | None = None):
    """``transformers.Sam2VideoModel`` with Meta's weights, every key checked.

    Returns
    -------
    model : transformers.Sam2VideoModel
    spec : Sam2Spec
    """
    from transformers import Sam2VideoModel

    spec = spec or infer_spec(meta_state)
    full = meta_to_transformers(meta_state)
    return build_checked(Sam2VideoModel, sam2_video_config(spec), full, "SAM2 video model"), spec


def convert_meta_checkpoint(obj):
    """A loaded Meta SAM2 checkpoint as a :class:`~samscope.models.checkpoint.ConvertedCheckpoint`.

    Every key is converted and checked against ``Sam2VideoModel`` (built on the ``meta`` device:
    names and shapes only); the image-model part becomes ``sam_state`` and the architecture
    the matching ``sam2_*`` preset.
    """
    from samscope.models.architectures import get_architecture
    from samscope.models.checkpoint import ConvertedCheckpoint
    from samscope.models.sam2_specs import ARCH_PREFIX

    state = meta_state_of(obj)
    spec = infer_spec(state)
    full = meta_to_transformers(state)
    _check_video_keys(full, spec)
    arch = get_architecture(ARCH_PREFIX + spec.name)
    image = image_state(full)
    memory = {k: v for k, v in full.items() if k not in image}
    return ConvertedCheckpoint("sam2", image, architecture=arch, memory_state=memory)
