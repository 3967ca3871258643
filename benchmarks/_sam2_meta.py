"""Meta's SAM2 built with random weights, and its image-mode outputs, for the conversion checks.

Needs Meta's ``sam2`` package (``pip install sam2==1.1.0 torch==2.13.0``; torchvision is not
needed: only ``sam2.build_sam`` and the model's own modules are used, never
``SAM2ImagePredictor``). Used by ``benchmarks/verify_sam2.py`` and
``tests/models/data/make_sam2_fixture.py``.

The image path is the one of Meta's ``SAM2ImagePredictor``, module by module:
``forward_image`` → ``_prepare_backbone_features`` → ``no_mem_embed`` added to the lowest-resolution
map → ``sam_prompt_encoder(points=(coords, labels), boxes=None, masks=…)`` with a box given as two
corner points (labels 2, 3) before the clicks → ``sam_mask_decoder(…, high_res_features=…)``.
"""

from __future__ import annotations

import torch

#: Meta's config files of the presets in :data:`samscope.models.sam2_specs.SAM2_SPECS`.
CONFIGS = {
    ("hiera_t", "2.1"): "configs/sam2.1/sam2.1_hiera_t.yaml",
    ("hiera_s", "2.1"): "configs/sam2.1/sam2.1_hiera_s.yaml",
    ("hiera_b+", "2.1"): "configs/sam2.1/sam2.1_hiera_b+.yaml",
    ("hiera_l", "2.1"): "configs/sam2.1/sam2.1_hiera_l.yaml",
    ("hiera_t", "2.0"): "configs/sam2/sam2_hiera_t.yaml",
    ("hiera_s", "2.0"): "configs/sam2/sam2_hiera_s.yaml",
    ("hiera_b+", "2.0"): "configs/sam2/sam2_hiera_b+.yaml",
    ("hiera_l", "2.0"): "configs/sam2/sam2_hiera_l.yaml",
}

#: Hydra overrides that shrink SAM2.1 hiera-t to samscope's ``hiera_test`` preset.
TEST_OVERRIDES = [
    "++model.image_size=256",
    "++model.num_maskmem=3",
    "++model.image_encoder.trunk.embed_dim=16",
    "++model.image_encoder.trunk.num_heads=1",
    "++model.image_encoder.trunk.stages=[1,1,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[3]",
    "++model.image_encoder.trunk.window_spec=[8,4,4,2]",
    "++model.image_encoder.trunk.window_pos_embed_bkg_spatial_size=[4,4]",
    "++model.image_encoder.neck.d_model=96",
    "++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
    "++model.image_encoder.neck.position_encoding.num_pos_feats=96",
    "++model.memory_attention.d_model=96",
    "++model.memory_attention.num_layers=1",
    "++model.memory_attention.layer.d_model=96",
    "++model.memory_attention.layer.dim_feedforward=128",
    "++model.memory_attention.layer.self_attention.embedding_dim=96",
    "++model.memory_attention.layer.self_attention.feat_sizes=[16,16]",
    "++model.memory_attention.layer.cross_attention.embedding_dim=96",
    "++model.memory_attention.layer.cross_attention.kv_in_dim=64",
    "++model.memory_attention.layer.cross_attention.feat_sizes=[16,16]",
    "++model.memory_encoder.out_dim=64",
    "++model.memory_encoder.in_dim=96",
    "++model.memory_encoder.position_encoding.num_pos_feats=64",
    "++model.memory_encoder.mask_downsampler.embed_dim=96",
    "++model.memory_encoder.fuser.layer.dim=96",
    "++model.memory_encoder.fuser.num_layers=1",
]


def build_meta(name: str, version: str = "2.1", *, seed: int = 0, scale: float = 0.05):
    """Meta's SAM2 (eval, CPU) for a preset, every tensor perturbed by seeded noise.

    Meta's own initialisation leaves many tensors at 0 or 1 (biases, norms, positional
    embeddings, ``no_mem_embed``); adding ``scale · N(0, 1)`` to every parameter and buffer makes
    each of them matter in the comparison.
    """
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from sam2.build_sam import build_sam2

    if not GlobalHydra.instance().is_initialized():
        initialize_config_module("sam2", version_base="1.2")
    if name == "hiera_test":
        model = build_sam2(CONFIGS[("hiera_t", version)], None, device="cpu", mode="eval",
                           hydra_overrides_extra=TEST_OVERRIDES)  # fmt: skip
    else:
        model = build_sam2(CONFIGS[(name, version)], None, device="cpu", mode="eval")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(scale * torch.randn(tensor.shape, generator=gen))
    return model


@torch.no_grad()
def meta_image_features(model, pixels: torch.Tensor):
    """``(image_embed (B, C, g, g), [s0 (B, C/8, 4g, 4g), s1 (B, C/4, 2g, 2g)])`` as Meta's
    image predictor computes them."""
    backbone_out = model.forward_image(pixels)
    _, feats, _, sizes = model._prepare_backbone_features(backbone_out)
    if model.directly_add_no_mem_embed:
        feats[-1] = feats[-1] + model.no_mem_embed
    batch = pixels.shape[0]
    maps = [f.permute(1, 2, 0).reshape(batch, -1, *s) for f, s in zip(feats, sizes, strict=True)]
    return maps[-1], maps[:-1]


@torch.no_grad()
def meta_decode(model, embed, high_res, *, points=None, labels=None, box=None, mask=None,
                multimask=True):  # fmt: skip
    """Low-resolution logits ``(1, K, 4g, 4g)`` and IoU ``(1, K)`` of one prompt on image 0.

    ``points`` ``(N, 2)`` (x, y) and ``box`` ``(4,)`` in encoder-input pixels; ``mask``
    ``(1, 1, 4g, 4g)`` logits.
    """
    coords, labs = [], []
    if box is not None:
        coords.append(torch.as_tensor(box, dtype=torch.float32).reshape(2, 2))
        labs.append(torch.tensor([2, 3]))
    if points is not None:
        coords.append(torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2))
        labs.append(torch.as_tensor(labels).reshape(-1).long())
    pts = (torch.cat(coords)[None], torch.cat(labs)[None].int()) if coords else None
    sparse, dense = model.sam_prompt_encoder(points=pts, boxes=None, masks=mask)
    logits, iou, _, _ = model.sam_mask_decoder(
        image_embeddings=embed[:1],
        image_pe=model.sam_prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=multimask,
        repeat_image=False,
        high_res_features=[h[:1] for h in high_res],
    )
    return logits, iou


def standard_prompts(image_size: int, seed: int = 1) -> list[dict]:
    """The prompts every check runs: one point, points with a negative, a box, a box with a
    point, a point with a mask; each with multimask on and off."""
    gen = torch.Generator().manual_seed(seed)
    s = float(image_size)
    g4 = image_size // 4
    mask = 4.0 * torch.randn(1, 1, g4, g4, generator=gen)
    base = [
        {"kind": "point", "points": [[0.31 * s, 0.42 * s]], "labels": [1]},
        {"kind": "points", "points": [[0.5 * s, 0.5 * s], [0.7 * s, 0.2 * s], [0.12 * s, 0.8 * s]],
         "labels": [1, 0, 1]},
        {"kind": "box", "box": [0.2 * s, 0.25 * s, 0.6 * s, 0.7 * s]},
        {"kind": "box+point", "box": [0.1 * s, 0.1 * s, 0.5 * s, 0.45 * s],
         "points": [[0.3 * s, 0.3 * s]], "labels": [1]},
        {"kind": "mask+point", "points": [[0.55 * s, 0.61 * s]], "labels": [1], "mask": mask},
    ]  # fmt: skip
    return [{**p, "multimask": mm} for p in base for mm in (True, False)]
