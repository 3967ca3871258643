"""SAM architectures samscope can build, as frozen dataclasses.

Numbers for ``vit_b``/``vit_l``/``vit_h`` are those of Kirillov et al. (2023): ViT width, depth,
heads, the indices of the blocks with global attention, 14×14 windows elsewhere, 1024² input,
16-px patches and a 256-channel neck. ``vit_test`` is a tiny architecture (≈0.3 M parameters) for
fast CPU tests; it keeps every structural feature (windowed and global attention, relative
positions, the two-way transformer, three multimask outputs).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SamArchitecture:
    """Hyper-parameters of one SAM (image encoder, prompt encoder, mask decoder).

    Attributes
    ----------
    name : str
        Architecture name (``vit_b``, ``vit_l``, ``vit_h``, ``vit_test``, …).
    image_size : int
        Side of the square encoder input in pixels (longest image side is resized to it).
    patch_size : int
        Patch size of the ViT; the embedding grid is ``image_size // patch_size`` square.
    hidden_size, num_layers, num_heads : int
        Width, depth and attention heads of the ViT.
    global_attn_indexes : tuple of int
        Blocks with global attention; the others use windowed attention.
    window_size : int
        Side of the attention windows in tokens.
    embed_dim : int
        Channels of the image embedding (neck output) = width of prompt encoder and mask decoder.
    decoder_mlp_dim, decoder_heads : int
        MLP width and heads of the mask decoder's two-way transformer.
    encoder : str
        ``"vit"`` (SAM's windowed ViT with relative positions) or ``"compact"``
        (:class:`samscope.models.compact.CompactEncoder`: convolutional stem and global attention;
        ``patch_size`` is then the stem's stride, ``window_size``/``global_attn_indexes`` unused).
    """

    name: str
    image_size: int = 1024
    patch_size: int = 16
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    window_size: int = 14
    embed_dim: int = 256
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8
    mlp_ratio: float = 4.0
    encoder: str = "vit"
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def grid_size(self) -> int:
        """Side of the image-embedding grid (tokens)."""
        return self.image_size // self.patch_size

    @property
    def low_res_size(self) -> int:
        """Side of the decoder's low-resolution mask logits (4× the embedding grid)."""
        return 4 * self.grid_size


ARCHITECTURES: dict[str, SamArchitecture] = {
    "vit_b": SamArchitecture("vit_b"),
    "vit_l": SamArchitecture(
        "vit_l", hidden_size=1024, num_layers=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)
    ),
    "vit_h": SamArchitecture(
        "vit_h", hidden_size=1280, num_layers=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)
    ),
    "vit_test": SamArchitecture(
        "vit_test",
        image_size=256,
        patch_size=16,
        hidden_size=64,
        num_layers=2,
        num_heads=2,
        global_attn_indexes=(1,),
        window_size=6,
        embed_dim=32,
        decoder_mlp_dim=64,
        decoder_heads=2,
    ),
    # a tiny compact SAM (64² input) for fast tests of the compact path, as vit_test is for the ViT
    "compact_test": SamArchitecture(
        "compact_test",
        image_size=64,
        patch_size=8,
        hidden_size=32,
        num_layers=2,
        num_heads=2,
        global_attn_indexes=(),
        window_size=0,
        embed_dim=32,
        decoder_mlp_dim=64,
        decoder_heads=2,
        encoder="compact",
    ),
    # samscope's own shipped models (samscope-lm, samscope-mito): a convolutional stem to stride 8
    # and four global-attention blocks of width 128 on 32² tokens (samscope.models.compact);
    # 2.0 M parameters with the light instance head, 45 ms per 256² tile on 2 CPU cores.
    "samscope_compact": SamArchitecture(
        "samscope_compact",
        image_size=256,
        patch_size=8,
        hidden_size=128,
        num_layers=4,
        num_heads=4,
        global_attn_indexes=(),
        window_size=0,
        embed_dim=128,
        decoder_mlp_dim=512,
        decoder_heads=4,
        encoder="compact",
    ),
}
# Meta's SAM2 image models (Hiera encoders, transformers.Sam2Model): samscope.models.sam2_specs
from samscope.models.sam2_specs import sam2_architectures  # noqa: E402 - needs SamArchitecture

ARCHITECTURES.update(sam2_architectures())


def get_architecture(name: str) -> SamArchitecture:
    """Return the architecture called ``name``.

    Raises
    ------
    KeyError
        With the list of known names.
    """
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise KeyError(f"unknown SAM architecture {name!r}; known: {sorted(ARCHITECTURES)}") from None


def register_architecture(arch: SamArchitecture, *, replace: bool = False) -> SamArchitecture:
    """Make an architecture known by name (so checkpoints and cards can refer to it).

    Registering an architecture equal to the one already known under its name is a no-op, so
    loading several checkpoints of one custom architecture is safe.

    Parameters
    ----------
    arch : SamArchitecture
        The architecture; ``arch.name`` is its key.
    replace : bool
        Allow replacing a *different* architecture of the same name.

    Returns
    -------
    SamArchitecture
        The registered architecture (the existing one when equal).

    Raises
    ------
    ValueError
        If another architecture has that name and ``replace`` is False, or the shape is invalid.
    """
    if not isinstance(arch, SamArchitecture):
        raise TypeError(f"expected a SamArchitecture, got {type(arch).__name__}")
    if arch.image_size % arch.patch_size or arch.hidden_size % arch.num_heads:
        raise ValueError(
            f"architecture {arch.name!r}: image_size must be a multiple of patch_size and "
            "hidden_size a multiple of num_heads"
        )
    if arch.encoder not in ("vit", "compact", "hiera"):
        raise ValueError(f"architecture {arch.name!r}: encoder must be 'vit', 'compact' or 'hiera', got {arch.encoder!r}")
    if any(not 0 <= i < arch.num_layers for i in arch.global_attn_indexes):
        raise ValueError(
            f"architecture {arch.name!r}: global_attn_indexes {arch.global_attn_indexes} must "
            f"lie in 0..{arch.num_layers - 1}"
        )
    known = ARCHITECTURES.get(arch.name)
    if known is not None and not replace:
        if known == arch:
            return known
        raise ValueError(
            f"an architecture called {arch.name!r} is already registered with other "
            "hyper-parameters (pass replace=True, or choose another name)"
        )
    ARCHITECTURES[arch.name] = arch
    return arch


def architecture_to_dict(arch: SamArchitecture) -> dict:
    """The fields of ``arch`` as plain values (tuples as lists), without ``extra``."""
    from dataclasses import fields

    return {
        f.name: list(v) if isinstance(v := getattr(arch, f.name), tuple) else v
        for f in fields(arch)
        if f.name != "extra"
    }


def architecture_from_dict(values: dict) -> SamArchitecture:
    """Inverse of :func:`architecture_to_dict` (unknown keys are a ``ValueError``)."""
    from dataclasses import fields

    names = {f.name for f in fields(SamArchitecture)} - {"extra"}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown architecture field(s) {unknown}; valid: {sorted(names)}")
    kwargs = dict(values)
    if "global_attn_indexes" in kwargs:
        kwargs["global_attn_indexes"] = tuple(int(i) for i in kwargs["global_attn_indexes"])
    return SamArchitecture(**kwargs)


def build_sam(arch: SamArchitecture | str, *, fast_attention: bool = True):
    """Build a randomly initialised SAM of the given architecture.

    ViT architectures are a ``transformers.SamModel``. Compact architectures
    (``arch.encoder == "compact"``) are a :class:`samscope.models.sam_lite.SamLite` around a
    :class:`~samscope.models.compact.CompactEncoder`: same attributes, state-dict keys and
    results as a ``SamModel`` with that encoder, without importing ``transformers`` (seconds).

    Parameters
    ----------
    arch : SamArchitecture or str
        The architecture or its name.
    fast_attention : bool
        Swap the image encoder's attention for :class:`samscope.models.attention.RelPosAttention`
        (same parameters and results, ≈30 % faster ViT-B on CPU). Off only to compare.

    Returns
    -------
    transformers.SamModel or SamLite
        In eval mode, float32, on the CPU, with SDPA attention.
    """
    if isinstance(arch, str):
        arch = get_architecture(arch)
    if arch.encoder == "compact":
        return _build_compact(arch)
    if arch.encoder == "hiera":  # SAM2: transformers.Sam2Model (samscope.models.sam2_model)
        from samscope.models.sam2_model import build_random_sam2

        return build_random_sam2(arch)
    from transformers import (
        SamConfig,
        SamMaskDecoderConfig,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    vision = SamVisionConfig(
        hidden_size=arch.hidden_size,
        output_channels=arch.embed_dim,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=arch.num_heads,
        image_size=arch.image_size,
        patch_size=arch.patch_size,
        window_size=arch.window_size,
        global_attn_indexes=list(arch.global_attn_indexes),
        mlp_ratio=arch.mlp_ratio,
        num_pos_feats=arch.embed_dim // 2,
    )
    prompt = SamPromptEncoderConfig(
        hidden_size=arch.embed_dim, image_size=arch.image_size, patch_size=arch.patch_size
    )
    decoder = SamMaskDecoderConfig(
        hidden_size=arch.embed_dim,
        mlp_dim=arch.decoder_mlp_dim,
        num_attention_heads=arch.decoder_heads,
        iou_head_hidden_dim=arch.embed_dim,
        # segment-anything's two-way transformer uses nn.LayerNorm's default eps (1e-5);
        # transformers defaults to 1e-6. Match the original so converted weights agree.
        layer_norm_eps=1e-5,
    )
    config = SamConfig(
        vision_config=vision.to_dict(),
        prompt_encoder_config=prompt.to_dict(),
        mask_decoder_config=decoder.to_dict(),
    )
    config._attn_implementation = "sdpa"
    from transformers import SamModel

    model = SamModel(config)
    model.eval()
    if fast_attention:
        from samscope.models.attention import accelerate_encoder

        accelerate_encoder(model)
    return model


def _build_compact(arch: SamArchitecture):
    """A :class:`~samscope.models.sam_lite.SamLite` with a compact encoder (no ``transformers``)."""
    from samscope.models.compact import CompactEncoder
    from samscope.models.sam_lite import (
        MaskDecoderConfig,
        PromptEncoderConfig,
        SamLite,
        SamLiteConfig,
        VisionConfig,
    )

    config = SamLiteConfig(
        vision_config=VisionConfig(
            image_size=arch.image_size,
            patch_size=arch.patch_size,
            output_channels=arch.embed_dim,
            num_pos_feats=arch.embed_dim // 2,
            # the default init's Fourier scale of the 16-wide placeholder ViT compact models were
            # built with under transformers (hidden_size // 2); training re-draws it from N(0, 1)
            scale=8.0,
        ),
        prompt_encoder_config=PromptEncoderConfig(
            hidden_size=arch.embed_dim, image_size=arch.image_size, patch_size=arch.patch_size
        ),
        mask_decoder_config=MaskDecoderConfig(
            hidden_size=arch.embed_dim,
            mlp_dim=arch.decoder_mlp_dim,
            num_attention_heads=arch.decoder_heads,
            iou_head_hidden_dim=arch.embed_dim,
            layer_norm_eps=1e-5,  # segment-anything's (see build_sam)
        ),
    )
    encoder = CompactEncoder(
        image_size=arch.image_size,
        patch_size=arch.patch_size,
        hidden_size=arch.hidden_size,
        num_layers=arch.num_layers,
        num_heads=arch.num_heads,
        embed_dim=arch.embed_dim,
        mlp_ratio=arch.mlp_ratio,
    )
    return SamLite(config, encoder).eval()
