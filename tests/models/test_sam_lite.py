"""The transformers-free SAM of compact models computes what ``transformers.SamModel`` computes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from samscope.models.architectures import (
    SamArchitecture,
    build_sam,
    get_architecture,
    register_architecture,
)
from samscope.models.compact import CompactEncoder
from samscope.models.decoder import decode, prepare_decoder
from samscope.models.sam_lite import SamLite

TINY = get_architecture("compact_test")
MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def transformers_sam(arch: SamArchitecture):
    """A compact SAM as ``build_sam`` built it before ``SamLite``: a ``transformers.SamModel``
    with a 16-wide placeholder ViT, then the compact encoder swapped in."""
    from transformers import (
        SamConfig,
        SamMaskDecoderConfig,
        SamModel,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    vision = SamVisionConfig(
        hidden_size=16, output_channels=arch.embed_dim, num_hidden_layers=1,
        num_attention_heads=1, image_size=arch.image_size, patch_size=arch.patch_size,
        window_size=0, global_attn_indexes=[], mlp_ratio=arch.mlp_ratio,
        num_pos_feats=arch.embed_dim // 2,
    )  # fmt: skip
    prompt = SamPromptEncoderConfig(
        hidden_size=arch.embed_dim, image_size=arch.image_size, patch_size=arch.patch_size
    )
    decoder = SamMaskDecoderConfig(
        hidden_size=arch.embed_dim, mlp_dim=arch.decoder_mlp_dim,
        num_attention_heads=arch.decoder_heads, iou_head_hidden_dim=arch.embed_dim,
        layer_norm_eps=1e-5,
    )  # fmt: skip
    config = SamConfig(
        vision_config=vision.to_dict(),
        prompt_encoder_config=prompt.to_dict(),
        mask_decoder_config=decoder.to_dict(),
    )
    config._attn_implementation = "sdpa"
    model = SamModel(config)
    model.vision_encoder = CompactEncoder(
        image_size=arch.image_size, patch_size=arch.patch_size, hidden_size=arch.hidden_size,
        num_layers=arch.num_layers, num_heads=arch.num_heads, embed_dim=arch.embed_dim,
        mlp_ratio=arch.mlp_ratio,
    )  # fmt: skip
    return model.eval()


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial weights everywhere (norms and biases included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2 + (1.0 if p.ndim == 1 else 0.0) * 0.5)


@pytest.fixture(scope="module")
def pair():
    register_architecture(TINY)
    ref = transformers_sam(TINY)
    _randomise(ref, 0)
    lite = build_sam(TINY)
    lite.load_state_dict(ref.state_dict(), strict=True)
    return ref, lite


def test_build_sam_gives_the_lite_model_with_the_same_state_dict(pair):
    ref, lite = pair
    assert isinstance(lite, SamLite) and isinstance(lite.vision_encoder, CompactEncoder)
    assert not lite.training
    a, b = ref.state_dict(), lite.state_dict()
    assert list(a) == list(b)  # same keys, same order
    assert all(a[k].shape == b[k].shape and torch.equal(a[k], b[k]) for k in a)
    # and back, strictly
    other = transformers_sam(TINY)
    other.load_state_dict(lite.state_dict(), strict=True)
    assert all(torch.equal(v, lite.state_dict()[k]) for k, v in other.state_dict().items())
    # the Fourier matrix is one parameter, listed twice in the state dict (as transformers)
    pe = lite.shared_image_embedding.positional_embedding
    assert lite.prompt_encoder.shared_embedding.positional_embedding is pe
    assert [n for n, _ in lite.named_parameters()] == [n for n, _ in ref.named_parameters()]
    cfg = lite.config.vision_config
    assert (cfg.image_size, cfg.patch_size) == (64, 8)
    assert lite.config.prompt_encoder_config.image_embedding_size == 8


def test_meta_build_assign_and_tie():
    register_architecture(TINY)
    src = build_sam(TINY)
    _randomise(src, 1)
    with torch.device("meta"):
        lite = build_sam(TINY)
    lite.load_state_dict(src.state_dict(), strict=True, assign=True)
    lite.tie_weights()
    assert not any(t.is_meta for t in [*lite.parameters(), *lite.buffers()])
    assert lite.prompt_encoder.shared_embedding.positional_embedding is (
        lite.shared_image_embedding.positional_embedding
    )


def test_initialise_weights_draws_the_same_numbers(pair):
    from samscope.training.setup import initialise_weights

    ref, lite = transformers_sam(TINY), build_sam(TINY)
    torch.manual_seed(4)
    initialise_weights(ref)
    torch.manual_seed(4)
    initialise_weights(lite)
    a, b = ref.state_dict(), lite.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _close(a, b, atol=1e-5):
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), atol=atol, rtol=0)


PROMPTS = {
    "points": dict(
        input_points=torch.tensor([[[[5.0, 7.0], [40.0, 50.5]], [[60.0, 1.0], [0.0, 0.0]]]]),
        input_labels=torch.tensor([[[1, 0], [1, -10]]]),
        input_boxes=None, input_masks=None,
    ),
    "boxes": dict(
        input_points=None, input_labels=None,
        input_boxes=torch.tensor([[[3.0, 4.0, 30.0, 41.0], [10.0, 0.0, 63.0, 20.0]]]),
        input_masks=None,
    ),
    "points_and_box": dict(
        input_points=torch.tensor([[[[12.0, 13.0]]]]), input_labels=torch.tensor([[[1]]]),
        input_boxes=torch.tensor([[[3.0, 4.0, 30.0, 41.0]]]), input_masks=None,
    ),
    "mask": dict(
        input_points=torch.tensor([[[[12.0, 13.0], [2.0, 3.0]]]]),
        input_labels=torch.tensor([[[1, -1]]]), input_boxes=None,
        input_masks=torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(2)),
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(PROMPTS))
def test_prompt_encoder_matches(pair, kind):
    ref, lite = pair
    with torch.no_grad():
        sa, da = ref.prompt_encoder(**PROMPTS[kind])
        sb, db = lite.prompt_encoder(**PROMPTS[kind])
    _close(sa, sb)
    _close(da, db)
    masks = PROMPTS["mask"]["input_masks"]
    with torch.no_grad():
        _close(ref.prompt_encoder.mask_embed(masks), lite.prompt_encoder.mask_embed(masks))


@pytest.mark.parametrize("multimask", [False, True])
def test_cached_decoder_matches(pair, multimask):
    ref, lite = pair
    emb = torch.randn(1, 32, 8, 8, generator=torch.Generator().manual_seed(3))
    pts = torch.rand(3, 2, 2, generator=torch.Generator().manual_seed(4)) * 64
    lab = torch.tensor([[1, 0], [1, -10], [0, 1]])
    dense_in = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        for model_a, model_b in [(ref, lite)]:
            outs = []
            for model in (model_a, model_b):
                sparse, _ = model.prompt_encoder(pts[None], lab[None], None, None)
                dense = model.prompt_encoder.mask_embed(dense_in)
                cache = prepare_decoder(model, emb)
                outs.append(decode(model, cache, sparse[0], multimask=multimask))
                outs.append(decode(model, cache, sparse[0], dense=dense, multimask=multimask))
            for x, y in zip(outs[:2], outs[2:], strict=True):
                _close(x[0], y[0])
                _close(x[1], y[1])
        # the whole forward, as SamModel's
        want = ref(image_embeddings=emb, input_points=pts[None], input_labels=lab[None],
                   multimask_output=multimask)  # fmt: skip
        got = lite(image_embeddings=emb, input_points=pts[None], input_labels=lab[None],
                   multimask_output=multimask)  # fmt: skip
        _close(want.pred_masks, got.pred_masks)
        _close(want.iou_scores, got.iou_scores)
        pixels = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(6))
        boxes = torch.tensor([[[3.0, 4.0, 30.0, 41.0]], [[10.0, 0.0, 63.0, 20.0]]])
        masks = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(7))
        kw = dict(input_boxes=boxes, input_masks=masks, multimask_output=multimask)
        # a SamModel cannot run a compact encoder itself (it reads transformers' output fields)
        emb2 = ref.vision_encoder(pixels).last_hidden_state
        want, got = ref(image_embeddings=emb2, **kw), lite(pixel_values=pixels, **kw)
        _close(want.pred_masks, got.pred_masks)
        _close(want.iou_scores, got.iou_scores)
        _close(
            ref.get_image_wide_positional_embeddings(), lite.get_image_wide_positional_embeddings()
        )


def test_training_step_matches(pair):
    from samscope.training.objectives import PromptSettings, TrainingModel
    from samscope.training.setup import apply_freeze, initialise_weights

    ref, lite = transformers_sam(TINY), build_sam(TINY)
    torch.manual_seed(8)
    initialise_weights(ref)
    lite.load_state_dict(ref.state_dict(), strict=True)
    labels = torch.zeros(2, 64, 64, dtype=torch.long)
    labels[:, 5:25, 5:25] = 1
    labels[0, 30:60, 20:50] = 2
    labels[1, 35:55, 40:62] = 3
    image = (labels > 0).float()[:, None] * 0.7 + 0.1
    image = image + 0.05 * torch.randn(image.shape, generator=torch.Generator().manual_seed(9))
    settings = PromptSettings(n_objects=2, n_sub_iterations=3, mask_prob=0.5, box_prob=0.5)
    losses, grads = [], []
    for sam in (ref, lite):
        sam.train()
        apply_freeze(sam, ())
        model = TrainingModel(sam, prompt=settings, weights={}, mean=MEAN, std=STD)
        opt = torch.optim.SGD(sam.parameters(), lr=0.05)
        first = model(image, labels, [None, None], seed=11)["loss"]
        first.backward()
        grads.append({n: p.grad.clone() for n, p in sam.named_parameters() if p.grad is not None})
        opt.step()
        opt.zero_grad()
        second = model(image, labels, [None, None], seed=12)["loss"]
        losses.append((first.item(), second.item()))
    (a1, a2), (b1, b2) = losses
    assert abs(a1 - b1) < 1e-4 and abs(a2 - b2) < 1e-4, losses
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], atol=1e-4, rtol=1e-3), name


_NO_TRANSFORMERS = """
import sys
import numpy as np, torch
from samscope.models.architectures import build_sam
from samscope.models.registry import load_model
model = load_model(sys.argv[1], device="cpu")
assert type(model.sam).__name__ == "SamLite"
emb = model.encode(torch.zeros(1, 3, model.image_size, model.image_size))
cache = model.prepare_decoder(emb)
sparse, _ = model.embed_prompts(points=torch.tensor([[[10.0, 20.0]]]), labels=torch.tensor([[1]]))
logits, iou = model.decode(cache, sparse, multimask=True)
assert logits.shape[:2] == (1, 3) and np.isfinite(iou.numpy()).all()
build_sam("samscope_compact")(image_embeddings=emb.new_zeros(1, 128, 32, 32),
                              input_points=torch.zeros(1, 1, 1, 2))
print(sorted(m for m in sys.modules if m.split(".")[0] == "transformers"))
"""


def test_compact_models_never_import_transformers(tmp_path, pair):
    from samscope.models.card import ModelCard
    from samscope.models.checkpoint import save_checkpoint
    from samscope.models.distance_head import DistanceMapHead

    _, lite = pair
    card = ModelCard(name="tiny-compact", architecture=TINY.name, has_instance_head=True)
    head = DistanceMapHead.for_architecture(TINY, upsample_steps=3, out_channels=3)
    path = save_checkpoint(
        tmp_path / "tiny.pt", lite, instance_head=head, format="samscope", architecture=TINY,
        card=card,
    )  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", _NO_TRANSFORMERS, str(path)], capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
