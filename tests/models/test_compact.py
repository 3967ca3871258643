"""The compact encoder: shapes, checkpoints, light instance head, tiling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samscope.errors import CheckpointError
from samscope.models.architectures import (
    SamArchitecture,
    architecture_from_dict,
    architecture_to_dict,
    build_sam,
    get_architecture,
    register_architecture,
)
from samscope.models.card import ModelCard
from samscope.models.compact import CompactEncoder, stem_channels
from samscope.models.distance_head import DistanceMapHead
from samscope.models.heads import InstanceDistanceHead, instance_head_from_state

TINY = get_architecture("compact_test")


@pytest.fixture(scope="module")
def tiny():
    register_architecture(TINY)
    torch.manual_seed(0)
    return build_sam(TINY)


def test_stem_channels_and_bad_patch():
    assert stem_channels(8, 128) == [16, 32, 64]
    assert stem_channels(4, 128) == [32, 64]
    with pytest.raises(ValueError, match="power-of-two"):
        stem_channels(6, 128)


def test_shipped_architecture_is_compact():
    arch = get_architecture("samscope_compact")
    assert arch.encoder == "compact" and arch.grid_size == 32 and arch.low_res_size == 128
    assert architecture_from_dict(architecture_to_dict(arch)) == arch


def test_unknown_encoder_is_refused():
    with pytest.raises(ValueError, match="encoder must be"):
        register_architecture(SamArchitecture("bad_enc", encoder="resnet"))


def test_encoder_output_shape_and_sam_parts(tiny):
    assert isinstance(tiny.vision_encoder, CompactEncoder)
    out = tiny.vision_encoder(torch.randn(2, 3, 64, 64)).last_hidden_state
    assert out.shape == (2, 32, 8, 8)
    # SAM's positional grid for the decoder matches the encoder's grid
    assert tiny.config.vision_config.image_size // tiny.config.vision_config.patch_size == 8


def test_checkpoint_round_trip_half(tmp_path, tiny):
    from samscope.models.checkpoint import save_checkpoint
    from samscope.models.registry import load_model

    head = DistanceMapHead.for_architecture(TINY, upsample_steps=3, out_channels=3)
    card = ModelCard(name="tiny-compact", architecture=TINY.name, has_instance_head=True)
    path = save_checkpoint(
        tmp_path / "m.pt", tiny, instance_head=head, format="samscope", architecture=TINY, card=card
    )
    model = load_model(path, device="cpu")
    assert isinstance(model.instance_head, DistanceMapHead) and model.instance_head.out_channels == 3
    x = torch.randn(1, 3, 64, 64)
    ref = tiny.vision_encoder(x).last_hidden_state
    assert torch.allclose(model.encode(x), ref, atol=1e-5)
    # float16 export: half the bytes, same function to fp16 precision
    from samscope.training.export import export_model

    small = export_model(path, tmp_path / "h.pt", half=True)
    assert small.stat().st_size < 0.6 * path.stat().st_size
    half = load_model(small, device="cpu")
    assert half.sam.vision_encoder.proj.weight.dtype == torch.float32
    assert torch.allclose(half.encode(x), ref, atol=5e-2)


def test_instance_head_from_state_dispatch():
    light = DistanceMapHead(32, hidden=16, upsample_steps=2, out_channels=3)
    assert isinstance(instance_head_from_state(light.state_dict()), DistanceMapHead)
    unetr = InstanceDistanceHead.for_architecture("vit_test")
    assert isinstance(instance_head_from_state(unetr.state_dict()), InstanceDistanceHead)
    one = DistanceMapHead(32, hidden=16, upsample_steps=2, out_channels=1)
    with pytest.raises(CheckpointError, match="three outputs"):
        instance_head_from_state(one.state_dict())


def test_card_default_tiling():
    card = ModelCard(name="x", architecture="vit_test", tile_shape=224, halo=16)
    assert card.default_tiling((256, 256)) == (None, None)
    assert card.default_tiling((257, 100)) == (224, 16)
    assert ModelCard(name="y", architecture="vit_b").default_tiling((5000, 5000)) == (None, None)


def test_compute_embeddings_uses_card_tiling(tiny):
    from samscope.embeddings import compute_embeddings
    from samscope.models.sam import SamscopeModel

    card = ModelCard(name="tiny-compact", architecture=TINY.name, tile_shape=48, halo=8)
    model = SamscopeModel(tiny, card)
    image = np.random.default_rng(0).random((100, 60)).astype(np.float32)
    emb = compute_embeddings(image, model)
    assert len(emb.tiles) == 6  # 3 × 2 tiles of 48 px, each 64 px with its halo: no resizing
    small = compute_embeddings(image[:60, :60], model)
    assert len(small.tiles) == 1
