"""InstanceDistanceHead against torch_em's UNETR decoder (fixtures made by data/make_unetr_fixture.py)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from samscope.errors import CheckpointError
from samscope.models.heads import InstanceDistanceHead, to_original

DATA = Path(__file__).parent / "data"


def _fixture_module():
    spec = importlib.util.spec_from_file_location("make_unetr_fixture", DATA / "make_unetr_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def torch_em_keys() -> dict[str, dict[str, list[int]]]:
    return json.loads((DATA / "unetr_decoder_keys_vit_b.json").read_text())


@pytest.mark.parametrize("upsampling", ["bilinear", "transpose"])
def test_keys_and_shapes_match_micro_sam_decoder_state(torch_em_keys, upsampling):
    head = InstanceDistanceHead(256, upsampling=upsampling)
    ours = {k: list(v.shape) for k, v in head.state_dict().items()}
    assert ours == torch_em_keys[upsampling]


@pytest.mark.parametrize("upsampling", ["bilinear", "transpose"])
def test_output_equals_torch_em(torch_em_keys, upsampling):
    io = np.load(DATA / "unetr_decoder_io.npz")
    shapes = {k: tuple(s) for k, s in torch_em_keys[upsampling].items()}
    weights = _fixture_module().deterministic_state(shapes)
    head = InstanceDistanceHead.from_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    assert head.upsampling == upsampling
    assert not head.training
    with torch.no_grad():
        out = head(torch.from_numpy(io["embedding"])).numpy()
    expected = io[f"output_{upsampling}"]
    assert out.shape == expected.shape == (1, 3, 128, 128)
    np.testing.assert_allclose(out, expected, atol=1e-4, rtol=0)
    assert expected.std() > 0.05  # the fixture is not a constant map


def test_head_for_vit_test_is_small_and_maps_to_input_resolution():
    head = InstanceDistanceHead.for_architecture("vit_test").eval()
    assert head.embed_dim == 32 and head.initial_features == 8
    assert sum(p.numel() for p in head.parameters()) < 200_000
    with torch.no_grad():
        maps = head(torch.randn(2, 32, 16, 16))
    assert maps.shape == (2, 3, 256, 256)
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0
    vit_b = InstanceDistanceHead.for_architecture("vit_b")
    assert vit_b.embed_dim == 256 and vit_b.initial_features == 64


def test_from_state_dict_is_strict():
    state = InstanceDistanceHead.for_architecture("vit_test").state_dict()
    del state["base.block.1.bias"]
    with pytest.raises(CheckpointError, match="missing keys 1: base.block.1.bias"):
        InstanceDistanceHead.from_state_dict(state)
    with pytest.raises(CheckpointError, match="not an instance-decoder state"):
        InstanceDistanceHead.from_state_dict({"x": torch.zeros(1)})


def test_to_original_crops_padding_then_resizes():
    maps = torch.zeros(1, 3, 256, 256)
    maps[..., :128, :256] = 1.0  # the image fills the top half; the rest is padding
    out = to_original(maps, (128, 256), (64, 128))
    assert out.shape == (1, 3, 64, 128)
    assert torch.all(out == 1.0)
    assert to_original(maps, (128, 256), (128, 256)).shape == (1, 3, 128, 256)


@pytest.mark.parametrize("upsampling", ["bilinear", "transpose"])
def test_inference_rewrite_equals_the_modules(upsampling):
    """Eval-mode inference (1×1 convs before up-sampling, batch norm folded) = the module chain."""
    from samscope.models import heads

    torch.manual_seed(0)
    head = InstanceDistanceHead(32, initial_features=8, upsampling=upsampling)
    for m in head.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial running statistics and affine
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.5)
    head.eval()
    emb = torch.randn(2, 32, 8, 8)
    calls = []
    original = heads._inference_logits
    heads._inference_logits = lambda *a: calls.append(1) or original(*a)
    try:
        with torch.no_grad():
            fast = head(emb)
    finally:
        heads._inference_logits = original
    assert calls  # the rewrite ran
    with torch.enable_grad():  # autograd: the module chain
        slow = head(emb).detach()
    assert slow.shape == fast.shape == (2, 3, 128, 128)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    assert slow.std() > 0.01


@pytest.mark.parametrize("upsampling", ["bilinear", "transpose"])
def test_half_last_level_is_cheaper_and_close(upsampling):
    """last_level="half": the last level on 4× fewer pixels, same output shape, near the full maps."""
    from torch.utils.flop_counter import FlopCounterMode

    from samscope.models.heads import _same_grid

    torch.manual_seed(0)
    head = InstanceDistanceHead(32, initial_features=8, upsampling=upsampling).eval()
    emb = torch.randn(1, 32, 8, 8)
    macs = {}
    with torch.no_grad():
        for level in ("full", "half"):
            with FlopCounterMode(display=False) as counter:
                out = head.logits(emb, last_level=level)
            macs[level] = counter.get_total_flops()
            assert out.shape == (1, 3, 128, 128)
            if level == "full":
                full = out
        # the level at half resolution keeps the up-samplers' channel mixing; for a transposed
        # 2×2 stride-2 conv that is exactly its output averaged over each 2×2 block
        x = torch.randn(1, 8, 16, 16)
        if upsampling == "transpose":
            torch.testing.assert_close(
                _same_grid(head.deconv_out, x),
                torch.nn.functional.avg_pool2d(head.deconv_out(x), 2),
                atol=1e-6,
                rtol=1e-5,
            )
    assert macs["half"] < 0.8 * macs["full"]
    assert not torch.allclose(out, full)
    assert torch.corrcoef(torch.stack([out.flatten(), full.flatten()]))[0, 1] > 0.5
    with pytest.raises(ValueError, match="last_level must be one of"):
        head.logits(emb, last_level="quarter")
    with pytest.raises(ValueError, match="for inference"):
        head.train().logits(emb, last_level="half")
