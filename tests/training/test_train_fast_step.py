"""The fast training step computes the same objective: decoder reuse, chunked attention, checkpointing.

Each test runs the same ``TrainingModel`` step twice — once as shipped, once with the piece under
test replaced by a plain reference — and compares the loss and every parameter gradient.
"""

from __future__ import annotations

import pytest
import torch

from samscope.models.architectures import build_sam
from samscope.models.decoder import image_positional_encoding
from samscope.training import attention as training_attention
from samscope.training import objectives
from samscope.training.attention import BiasedAttention, use_training_attention
from samscope.training.objectives import PromptSettings, TrainingModel
from samscope.training.setup import initialise_weights

MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def _sam(seed=0):
    torch.manual_seed(seed)
    sam = initialise_weights(build_sam("vit_test"))
    with torch.no_grad():  # non-zero relative positions, so the bias path matters
        for layer in sam.vision_encoder.layers:
            layer.attn.rel_pos_h.normal_(0, 0.5)
            layer.attn.rel_pos_w.normal_(0, 0.5)
    sam.train()
    return use_training_attention(sam)


def _batch():
    labels = torch.zeros(1, 128, 128, dtype=torch.long)
    labels[0, 10:50, 10:50] = 1
    labels[0, 70:110, 60:120] = 2
    labels[0, 60:100, 5:40] = 3
    image = (labels > 0).float()[:, None] * 0.7 + 0.1
    return image, labels


def _loss_and_grads(sam, *, box: bool, seed=3, **kwargs):
    settings = PromptSettings(n_objects=3, n_sub_iterations=4, mask_prob=0.5,
                              box_prob=float(box), overlap_aware=False)
    model = TrainingModel(sam, prompt=settings, weights={}, mean=MEAN, std=STD, **kwargs)
    image, labels = _batch()
    sam.zero_grad(set_to_none=True)
    loss = model(image, labels, [None], seed=seed)["loss"]
    loss.backward()
    grads = {n: p.grad.clone() for n, p in sam.named_parameters() if p.grad is not None}
    return float(loss), grads


def _assert_same(a, b, rtol=1e-4, atol=1e-6):
    loss_a, grads_a = a
    loss_b, grads_b = b
    assert loss_a == pytest.approx(loss_b, rel=1e-5, abs=1e-7)
    assert any(k.startswith("vision_encoder.") for k in grads_a)  # the encoder trains
    assert any(k.startswith("mask_decoder.") for k in grads_a)
    # a part one side never ran (transformers runs all four hypernetworks) has a zero gradient
    for name in grads_a.keys() | grads_b.keys():
        a_, b_ = grads_a.get(name), grads_b.get(name)
        a_ = torch.zeros_like(b_) if a_ is None else a_
        b_ = torch.zeros_like(a_) if b_ is None else b_
        torch.testing.assert_close(a_, b_, rtol=rtol, atol=atol, msg=name)


class _Uncached:
    """A "cache" holding only the embedding: every sub-iteration reruns the whole decoder."""

    multiscale = False

    def __init__(self, embedding):
        self.raw = embedding


def _prepare_nothing(sam, embedding):
    return _Uncached(embedding)


def _decode_with_transformers(sam, cache, sparse, *, dense=None, multimask=False):
    """``transformers.SamMaskDecoder.forward`` from scratch for each prompt (no shared work)."""
    emb = cache.raw
    p, grid = sparse.shape[0], emb.shape[-1]
    if dense is None:
        dense = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(p, -1, grid, grid)
    pe = image_positional_encoding(sam, grid).to(emb.dtype)
    out = sam.mask_decoder(
        image_embeddings=emb.expand(p, -1, -1, -1), image_positional_embeddings=pe.expand(p, -1, -1, -1),
        sparse_prompt_embeddings=sparse[:, None], dense_prompt_embeddings=dense,
        multimask_output=multimask,
    )  # fmt: skip
    return out[0][:, 0], out[1][:, 0]


@pytest.mark.parametrize("box", [False, True])
def test_decoder_reuse_across_sub_iterations_keeps_the_objective(monkeypatch, box):
    sam = _sam()
    fast = _loss_and_grads(sam, box=box)
    monkeypatch.setattr(objectives, "prepare_decoder", _prepare_nothing)
    monkeypatch.setattr(objectives, "decode", _decode_with_transformers)
    reference = _loss_and_grads(sam, box=box)
    _assert_same(fast, reference)


def test_the_reference_decoder_would_notice_a_changed_objective(monkeypatch):
    """Guard for the test above: detaching the shared decoder state changes the gradients."""
    sam = _sam()
    reference = _loss_and_grads(sam, box=False)
    real = objectives.prepare_decoder

    def detached(sam_, embedding):
        return real(sam_, embedding.detach())

    monkeypatch.setattr(objectives, "prepare_decoder", detached)
    changed = _loss_and_grads(sam, box=False)
    assert changed[0] == pytest.approx(reference[0], rel=1e-6)  # same forward …
    assert "vision_encoder.neck.conv1.weight" not in changed[1]  # … but the encoder gets nothing


def test_checkpointed_encoder_gives_the_same_loss_and_gradients():
    sam = _sam(1)
    plain = _loss_and_grads(sam, box=False)
    checkpointed = _loss_and_grads(sam, box=False, checkpoint_encoder=True)
    _assert_same(plain, checkpointed)


def test_chunked_training_attention_matches_the_explicit_one(monkeypatch):
    """The whole step with :class:`BiasedAttention` (tiny blocks: query chunks) vs SDPA + mask."""
    from samscope.models.attention import RelPosAttention

    sam = _sam(2)
    monkeypatch.setattr(training_attention, "BLOCK_FLOATS", 100)  # many blocks per head
    chunked = _loss_and_grads(sam, box=True)
    monkeypatch.setattr(
        training_attention.TrainingRelPosAttention, "_attend_with_bias",
        staticmethod(RelPosAttention._attend_with_bias),
    )  # fmt: skip
    explicit = _loss_and_grads(sam, box=True)
    _assert_same(chunked, explicit)


@pytest.mark.parametrize("block_floats", [1 << 22, 30])
def test_biased_attention_gradcheck(monkeypatch, block_floats):
    monkeypatch.setattr(training_attention, "BLOCK_FLOATS", block_floats)
    torch.manual_seed(0)
    rows, h, w, d = 2, 2, 3, 3
    n = h * w
    args = [torch.randn(rows, n, d, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    args += [torch.randn(rows, n, h, dtype=torch.float64, requires_grad=True),
             torch.randn(rows, n, w, dtype=torch.float64, requires_grad=True)]
    assert torch.autograd.gradcheck(lambda *a: BiasedAttention.apply(*a, 0.4), args)


def test_checkpoint_encoder_is_a_config_option_and_adamw_is_fused():
    from samscope.training.config import TrainConfig
    from samscope.training.trainer import adamw

    config = TrainConfig.from_dict({"model": {"model": "vit_test", "init": "random",
                                              "checkpoint_encoder": True}})
    assert config.model.checkpoint_encoder is True
    assert TrainConfig.from_dict({}).model.checkpoint_encoder is False
    optimizer = adamw([torch.nn.Parameter(torch.zeros(3))], lr=1e-3)
    assert optimizer.defaults["fused"] is True
