"""The training step itself: iterative prompting with overlapping objects, heads, frozen parts."""

from __future__ import annotations

import torch

from samscope.models.architectures import build_sam
from samscope.models.decoder import prepare_decoder
from samscope.training.objectives import (
    ObjectTargets,
    PromptSettings,
    TrainingModel,
    iterative_prompt_loss,
    select_objects,
)
from samscope.training.setup import apply_freeze, initialise_weights

MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def sam_for_test(seed=0):
    torch.manual_seed(seed)
    sam = initialise_weights(build_sam("vit_test"))
    sam.train()
    return sam


def crossing_rods(size=128):
    """Two overlapping bars (a cross) and a separate square: overlapping instance masks."""
    masks = torch.zeros(3, size, size, dtype=torch.bool)
    masks[0, 60:68, 20:110] = True
    masks[1, 20:110, 60:68] = True
    masks[2, 10:30, 10:30] = True
    return masks


def test_overlap_aware_iterative_prompting_runs_and_backpropagates():
    sam = sam_for_test()
    masks = crossing_rods()
    labels = torch.zeros(128, 128, dtype=torch.long)
    for i, m in enumerate(masks):
        labels[m] = i + 1
    g = torch.Generator().manual_seed(0)
    objects = select_objects(labels, masks, 3, 64, overlap_aware=True, generator=g)
    assert objects.all_full is not None and objects.full.shape == (3, 128, 128)
    # force the first click of object 0 onto the crossing, where both bars lie
    full = objects.full.clone()
    cross = masks[0] & masks[1]
    order = [i for i in range(3) if torch.equal(objects.full[i], masks[0])]
    full[order[0]] = cross
    objects = ObjectTargets(full, objects.low, objects.all_full, objects.all_low)
    pixels = torch.randn(1, 3, 256, 256)
    embedding = sam.vision_encoder(pixels).last_hidden_state
    cache = prepare_decoder(sam, embedding)
    settings = PromptSettings(n_objects=3, n_sub_iterations=3, mask_prob=1.0)
    result = iterative_prompt_loss(sam, cache, objects, settings, use_box=False, input_size=256,
                                   generator=g)
    assert torch.isfinite(result.loss)
    result.loss.backward()
    grads = [p.grad for p in sam.mask_decoder.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert sam.prompt_encoder.mask_embed.conv1.weight.grad is not None  # mask fed back


def test_training_model_with_heads_and_frozen_encoder():
    from samscope.instance.targets import distance_map_target, instance_distance_targets
    from samscope.models.distance_head import DistanceMapHead
    from samscope.models.heads import InstanceDistanceHead

    sam = sam_for_test(1)
    apply_freeze(sam, ("image_encoder",))
    model = TrainingModel(
        sam, instance_head=InstanceDistanceHead.for_architecture("vit_test"),
        distance_head=DistanceMapHead.for_architecture("vit_test"),
        prompt=PromptSettings(n_objects=2, n_sub_iterations=2), weights={}, mean=MEAN, std=STD,
    )  # fmt: skip
    labels = torch.zeros(2, 128, 128, dtype=torch.long)
    labels[:, 10:40, 10:40] = 1
    labels[:, 60:100, 50:90] = 2
    inst = torch.stack([torch.from_numpy(instance_distance_targets(lab.numpy())) for lab in labels])
    dist = torch.stack([torch.from_numpy(distance_map_target(lab.numpy()))[None] for lab in labels])
    image = (labels > 0).float()[:, None] * 0.8 + 0.1
    out = model(image, labels, [None, None], inst, dist, seed=3)
    for key in ("loss", "mask_loss", "iou_loss", "instance_loss", "distance_loss"):
        assert torch.isfinite(out[key]), key
    out["loss"].backward()
    assert all(p.grad is None for p in sam.vision_encoder.parameters())  # frozen: no graph at all
    assert any(p.grad is not None for p in model.instance_head.parameters())
    assert any(p.grad is not None for p in model.distance_head.parameters())
    assert sam.shared_image_embedding.positional_embedding.grad is None  # a buffer in SA


def test_same_seed_same_loss():
    sam = sam_for_test(2)
    model = TrainingModel(sam, prompt=PromptSettings(n_objects=2, n_sub_iterations=3),
                          weights={}, mean=MEAN, std=STD)
    labels = torch.zeros(1, 128, 128, dtype=torch.long)
    labels[0, 10:50, 10:50] = 1
    labels[0, 70:110, 60:120] = 2
    image = (labels > 0).float()[:, None]
    a = model(image, labels, [None], seed=5)["loss"]
    b = model(image, labels, [None], seed=5)["loss"]
    assert torch.equal(a, b)


def test_training_attention_matches_the_inference_attention():
    from samscope.models.attention import RelPosAttention
    from samscope.training.attention import TrainingRelPosAttention

    torch.manual_seed(0)
    ref = RelPosAttention(32, 4, (6, 6))
    with torch.no_grad():
        ref.rel_pos_h.normal_()
        ref.rel_pos_w.normal_()
    fast = TrainingRelPosAttention.from_transformers(ref)
    assert fast.qkv is ref.qkv and fast.rel_pos_h is ref.rel_pos_h  # shared, not copied
    x = torch.randn(2, 6, 6, 32, requires_grad=True)
    out_ref, _ = ref(x)
    grads_ref = torch.autograd.grad(out_ref.square().sum(), [x, ref.rel_pos_h, ref.qkv.weight])
    out_fast, _ = fast(x)
    grads_fast = torch.autograd.grad(out_fast.square().sum(), [x, fast.rel_pos_h, fast.qkv.weight])
    assert torch.allclose(out_fast, out_ref, atol=1e-5)
    for a, b in zip(grads_fast, grads_ref, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
