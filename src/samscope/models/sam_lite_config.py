"""Configurations of :class:`samscope.models.sam_lite.SamLite` (``transformers``' ``SamConfig``
field names, so the same values build either), split from :mod:`samscope.models.sam_lite`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MaskDecoderConfig", "PromptEncoderConfig", "SamLiteConfig", "VisionConfig"]


@dataclass(frozen=True)
class VisionConfig:
    """What the decoder side needs to know of the image encoder.

    Attributes
    ----------
    image_size, patch_size : int
        Encoder input side and its stride; the embedding grid is their ratio.
    output_channels : int
        Channels of the image embedding.
    num_pos_feats : int
        Random Fourier features per coordinate (half the embedding width).
    scale : float
        Standard deviation of the Fourier matrix at the default initialisation.
    """

    image_size: int
    patch_size: int
    output_channels: int
    num_pos_feats: int
    scale: float = 1.0


@dataclass(frozen=True)
class PromptEncoderConfig:
    """Prompt-encoder hyper-parameters (field names as ``transformers.SamPromptEncoderConfig``)."""

    hidden_size: int
    image_size: int
    patch_size: int
    mask_input_channels: int = 16
    num_point_embeddings: int = 4
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6

    @property
    def image_embedding_size(self) -> int:
        """Side of the embedding grid."""
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class MaskDecoderConfig:
    """Mask-decoder hyper-parameters (field names as ``transformers.SamMaskDecoderConfig``)."""

    hidden_size: int
    mlp_dim: int = 2048
    num_hidden_layers: int = 2
    num_attention_heads: int = 8
    attention_downsample_rate: int = 2
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    layer_norm_eps: float = 1e-5
    hidden_act: str = "relu"


@dataclass(frozen=True)
class SamLiteConfig:
    """The three parts' configurations (read as ``sam.config.vision_config.image_size`` etc.).

    Attributes
    ----------
    vision_config : VisionConfig
    prompt_encoder_config : PromptEncoderConfig
    mask_decoder_config : MaskDecoderConfig
    initializer_range : float
        Standard deviation of the default initialisation of linear, convolution and embedding
        weights (as ``transformers``).
    """

    vision_config: VisionConfig
    prompt_encoder_config: PromptEncoderConfig
    mask_decoder_config: MaskDecoderConfig
    initializer_range: float = 0.02
