"""A tiny random ``transformers.Sam2VideoModel`` (hiera-like, 128² input) for CPU tests."""

from __future__ import annotations


def tiny_video_model(seed: int = 0, *, size: int = 128, object_bias: float | None = 5.0):
    """A seeded random Sam2VideoModel; ``object_bias`` shifts its object-score logit (None: as is)."""
    import torch
    from transformers import Sam2VideoConfig, Sam2VideoModel
    from transformers.models.sam2.configuration_sam2 import Sam2HieraDetConfig, Sam2VisionConfig

    s = size
    backbone = Sam2HieraDetConfig(
        hidden_size=16, num_attention_heads=1, image_size=[s, s], blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[16, 32, 64, 128], num_attention_heads_per_stage=[1, 1, 1, 1],
        window_size_per_stage=[4, 4, 4, 4], global_attention_blocks=[3],
        window_positional_embedding_background_size=[4, 4],
    )  # fmt: skip
    vision = Sam2VisionConfig(
        backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16], fpn_hidden_size=128,
        backbone_feature_sizes=[[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
    )  # fmt: skip
    config = Sam2VideoConfig(
        vision_config=vision,
        prompt_encoder_config=dict(hidden_size=128, image_size=s, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2,
                                 iou_head_hidden_dim=32),
        image_size=s, memory_attention_hidden_size=128, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64, memory_attention_rope_feat_sizes=[s // 16, s // 16],
        memory_encoder_hidden_size=128, memory_encoder_output_channels=64, mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=64, num_maskmem=3,
        max_object_pointers_in_encoder=4,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Sam2VideoModel(config).eval()
    if object_bias is not None:
        with torch.no_grad():
            model.mask_decoder.pred_obj_score_head.proj_out.bias.add_(object_bias)
    return model


def two_nuclei(shape=(5, 32, 32)):
    """A small volume of two bright ellipsoids (uint8), centred on plane ``shape[0] // 2``."""
    import numpy as np

    z, y, x = np.indices(shape)
    image = np.full(shape, 10.0)
    cz = shape[0] // 2
    for cy, cx, rz in ((10, 10, 1.6), (22, 22, 1.2)):
        image[((z - cz) / rz) ** 2 + ((y - cy) / 6.0) ** 2 + ((x - cx) / 6.0) ** 2 <= 1] = 200.0
    return image.astype(np.uint8)
