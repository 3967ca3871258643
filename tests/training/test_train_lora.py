"""LoRA: fewer trainable parameters, and the merged export computes what the adapted model does."""

from __future__ import annotations

import torch

from samscope.models.architectures import build_sam
from samscope.models.lora import add_lora, has_lora, merge_lora, merge_lora_state, split_lora_state
from samscope.training.setup import initialise_weights


def trainable(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def encode(sam, pixels):
    with torch.no_grad():
        return sam.vision_encoder(pixels).last_hidden_state


def test_lora_trains_few_parameters_and_merges_exactly():
    torch.manual_seed(0)
    sam = initialise_weights(build_sam("vit_test"))
    before = trainable(sam.vision_encoder)
    pixels = torch.randn(1, 3, 256, 256)
    reference = encode(sam, pixels)
    settings = add_lora(sam, rank=2, alpha=4, seed=0)
    assert has_lora(sam) and settings.scaling == 2.0
    lora = trainable(sam.vision_encoder)
    assert 0 < lora < before / 5, (lora, before)
    names = [n for n, p in sam.vision_encoder.named_parameters() if p.requires_grad]
    assert names and all(".lora_" in n for n in names)
    # B starts at zero: the adapted model computes what the original did
    assert torch.allclose(encode(sam, pixels), reference, atol=1e-6)
    # train the factors a little so the update is not zero
    with torch.no_grad():
        for n, p in sam.vision_encoder.named_parameters():
            if ".lora_B." in n:
                p.normal_(0, 0.05)
    adapted = encode(sam, pixels)
    assert not torch.allclose(adapted, reference, atol=1e-4)
    # factors folded by tensor arithmetic (what loading a checkpoint does) ...
    base, factors = split_lora_state(sam.state_dict())
    merged_state = merge_lora_state(base, factors, settings.scaling)
    plain = build_sam("vit_test")
    plain.load_state_dict(merged_state)
    assert torch.allclose(encode(plain, pixels), adapted, atol=1e-5)
    # ... and by peft's merge, in place
    merge_lora(sam)
    assert not has_lora(sam)
    assert set(sam.state_dict()) == set(plain.state_dict())
    assert torch.allclose(encode(sam, pixels), adapted, atol=1e-5)


def test_lora_checkpoint_loads_merged(tmp_path):
    from samscope.models.checkpoint import save_checkpoint
    from samscope.models.registry import load_model

    torch.manual_seed(1)
    sam = initialise_weights(build_sam("vit_test"))
    add_lora(sam, rank=4, seed=1)
    with torch.no_grad():
        for n, p in sam.named_parameters():
            if ".lora_B." in n:
                p.normal_(0, 0.05)
    pixels = torch.randn(1, 3, 256, 256)
    expected = encode(sam, pixels)
    path = save_checkpoint(tmp_path / "lora.pt", sam, format="samscope")
    model = load_model(path, device="cpu")
    assert torch.allclose(model.encode(pixels), expected, atol=1e-5)
