"""SAM2 architectures: :class:`Sam2Spec` presets and their ``transformers`` configurations.

The presets are Meta's (``sam2/configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml``; b+ takes Hiera's
defaults for its stages, global blocks and 14×14 background positional embedding), plus
``hiera_test``, a tiny random model for fast CPU tests. :func:`sam2_config` and
:func:`sam2_video_config` turn a spec into ``transformers.Sam2Config`` /
``transformers.Sam2VideoConfig`` (``transformers`` is imported only then).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sam2Spec:
    """Hyper-parameters of one SAM2 model (Meta's hydra config, reduced to what differs).

    Attributes
    ----------
    name : str
        ``hiera_t``, ``hiera_s``, ``hiera_b+``, ``hiera_l`` or ``hiera_test``.
    embed_dim, num_heads : int
        Width and heads of Hiera's first stage (both double at every stage).
    stages : tuple of int
        Blocks per stage.
    global_att_blocks : tuple of int
        Blocks with global attention (the others attend within windows).
    window_spec : tuple of int
        Window side per stage.
    window_pos_embed_bkg : tuple of int
        Size of Hiera's background positional embedding (interpolated to the token grid).
    image_size : int
        Side of the square encoder input.
    hidden : int
        Width of the neck, prompt encoder, mask decoder and memory attention (``d_model``).
    decoder_mlp_dim, iou_head_hidden : int
        MLP width of the mask decoder's two-way transformer and of its IoU head.
    mem_dim : int
        Channels of the memory features (the memory encoder's output).
    memory_layers, memory_ff : int
        Memory-attention layers and their MLP width.
    mask_downsampler_dim, fuser_dim, fuser_layers : int
        Memory encoder: mask down-sampler width, fuser width (CXBlock) and depth.
    num_maskmem : int
        Memories kept (temporal positional encodings).
    version : str
        ``"2.1"`` or ``"2.0"`` (2.0 lacks the occlusion embedding and the object-pointer
        temporal projection).
    """

    name: str
    embed_dim: int
    num_heads: int
    stages: tuple[int, ...]
    global_att_blocks: tuple[int, ...]
    window_spec: tuple[int, ...] = (8, 4, 14, 7)
    window_pos_embed_bkg: tuple[int, int] = (7, 7)
    image_size: int = 1024
    hidden: int = 256
    decoder_mlp_dim: int = 2048
    iou_head_hidden: int = 256
    mem_dim: int = 64
    memory_layers: int = 4
    memory_ff: int = 2048
    mask_downsampler_dim: int = 256
    fuser_dim: int = 256
    fuser_layers: int = 2
    num_maskmem: int = 7
    version: str = "2.1"
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def channels(self) -> tuple[int, ...]:
        """Width of each Hiera stage (first to last)."""
        return tuple(self.embed_dim * 2**i for i in range(len(self.stages)))

    @property
    def feature_sizes(self) -> tuple[int, int, int]:
        """Sides of the three feature maps the decoder uses (strides 4, 8, 16)."""
        s = self.image_size
        return (s // 4, s // 8, s // 16)

    @property
    def grid_size(self) -> int:
        """Side of the image-embedding grid (stride 16)."""
        return self.image_size // 16


#: Meta's presets (``sam2/configs/sam2.1/*.yaml`` and Hiera's defaults for b+), plus a tiny one.
SAM2_SPECS: dict[str, Sam2Spec] = {
    "hiera_t": Sam2Spec("hiera_t", 96, 1, (1, 2, 7, 2), (5, 7, 9)),
    "hiera_s": Sam2Spec("hiera_s", 96, 1, (1, 2, 11, 2), (7, 10, 13)),
    "hiera_b+": Sam2Spec(
        "hiera_b+", 112, 2, (2, 3, 16, 3), (12, 16, 20), window_pos_embed_bkg=(14, 14)
    ),
    "hiera_l": Sam2Spec(
        "hiera_l", 144, 2, (2, 6, 36, 4), (23, 33, 43), window_spec=(8, 4, 16, 8)
    ),
    # a tiny random model for CPU tests: every structural feature (four stages, query pooling,
    # windowed and global attention, high-resolution features, memory modules); the mask
    # decoder's MLP (2048) and IoU head (256) are as wide as in every SAM2 (Meta fixes them)
    "hiera_test": Sam2Spec(
        "hiera_test", 16, 1, (1, 1, 2, 1), (3,), window_spec=(8, 4, 4, 2),
        window_pos_embed_bkg=(4, 4), image_size=256, hidden=96, mem_dim=64, memory_layers=1,
        memory_ff=128, mask_downsampler_dim=96, fuser_dim=96, fuser_layers=1, num_maskmem=3,
    ),  # fmt: skip
}


def _vision_config(spec: Sam2Spec):
    from transformers import Sam2HieraDetConfig, Sam2VisionConfig

    n = len(spec.stages)
    backbone = Sam2HieraDetConfig(
        hidden_size=spec.embed_dim,
        num_attention_heads=spec.num_heads,
        image_size=[spec.image_size, spec.image_size],
        window_positional_embedding_background_size=list(spec.window_pos_embed_bkg),
        blocks_per_stage=list(spec.stages),
        embed_dim_per_stage=list(spec.channels),
        num_attention_heads_per_stage=[spec.num_heads * 2**i for i in range(n)],
        window_size_per_stage=list(spec.window_spec),
        global_attention_blocks=list(spec.global_att_blocks),
    )
    return Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=list(reversed(spec.channels)),
        backbone_feature_sizes=[[s, s] for s in spec.feature_sizes],
        fpn_hidden_size=spec.hidden,
    )


def _heads_configs(spec: Sam2Spec, video: bool) -> tuple[dict, dict]:
    prompt = {"hidden_size": spec.hidden, "image_size": spec.image_size, "patch_size": 16}
    decoder = {
        "hidden_size": spec.hidden,
        "mlp_dim": spec.decoder_mlp_dim,
        "iou_head_hidden_dim": spec.iou_head_hidden,
    }
    return prompt, decoder


def sam2_config(spec: Sam2Spec):
    """``transformers.Sam2Config`` of ``spec`` (the image model)."""
    from transformers import Sam2Config

    prompt, decoder = _heads_configs(spec, video=False)
    return Sam2Config(
        vision_config=_vision_config(spec), prompt_encoder_config=prompt, mask_decoder_config=decoder
    )


def sam2_video_config(spec: Sam2Spec):
    """``transformers.Sam2VideoConfig`` of ``spec`` (image model + memory; SAM2.0 switches off
    the occlusion embedding and the object-pointer temporal projection)."""
    from transformers import Sam2VideoConfig

    prompt, decoder = _heads_configs(spec, video=True)
    grid = spec.grid_size
    return Sam2VideoConfig(
        vision_config=_vision_config(spec),
        prompt_encoder_config=prompt,
        mask_decoder_config=decoder,
        image_size=spec.image_size,
        num_maskmem=spec.num_maskmem,
        enable_occlusion_spatial_embedding=spec.version != "2.0",
        enable_temporal_pos_encoding_for_object_pointers=spec.version != "2.0",
        memory_attention_hidden_size=spec.hidden,
        memory_attention_num_layers=spec.memory_layers,
        memory_attention_feed_forward_hidden_size=spec.memory_ff,
        memory_attention_rope_feat_sizes=[grid, grid],
        memory_encoder_hidden_size=spec.hidden,
        memory_encoder_output_channels=spec.mem_dim,
        mask_downsampler_embed_dim=spec.mask_downsampler_dim,
        memory_fuser_num_layers=spec.fuser_layers,
        memory_fuser_embed_dim=spec.fuser_dim,
        memory_fuser_intermediate_dim=4 * spec.fuser_dim,
    )


#: samscope's architecture name of each preset (``sam2_hiera_t`` … ``sam2_hiera_test``).
ARCH_PREFIX = "sam2_"


def spec_of_architecture(name: str) -> Sam2Spec:
    """The preset behind a SAM2 architecture name (``sam2_hiera_t`` → ``hiera_t``).

    Raises
    ------
    KeyError
        For a name that is not a SAM2 architecture.
    """
    key = name[len(ARCH_PREFIX) :] if name.startswith(ARCH_PREFIX) else name
    try:
        return SAM2_SPECS[key]
    except KeyError:
        raise KeyError(f"{name!r} is not a SAM2 architecture; known: {sorted(SAM2_SPECS)}") from None


def sam2_architectures() -> dict:
    """The presets as :class:`~samscope.models.architectures.SamArchitecture` (``encoder="hiera"``).

    ``embed_dim`` is the decoder width (what the instance heads read), ``patch_size`` the
    embedding stride (16), ``hidden_size`` / ``num_layers`` / ``global_attn_indexes`` Hiera's first
    width, depth and global blocks, ``window_size`` its first-stage window; the rest lives in the
    :class:`Sam2Spec` named by the architecture (:func:`spec_of_architecture`).
    """
    from samscope.models.architectures import SamArchitecture

    out = {}
    for key, spec in SAM2_SPECS.items():
        name = ARCH_PREFIX + key
        out[name] = SamArchitecture(
            name,
            image_size=spec.image_size,
            patch_size=16,
            hidden_size=spec.embed_dim,
            num_layers=sum(spec.stages),
            num_heads=spec.num_heads,
            global_attn_indexes=tuple(spec.global_att_blocks),
            window_size=spec.window_spec[0],
            embed_dim=spec.hidden,
            decoder_mlp_dim=spec.decoder_mlp_dim,
            decoder_heads=8,
            encoder="hiera",
        )
    return out
