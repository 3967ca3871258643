"""Per-model default precision (ModelCard.default_precision) and the int8 encoder's make-up."""

import dataclasses

import numpy as np
import pytest
import torch

from samscope.embeddings import compute_embeddings
from samscope.errors import InputError
from samscope.models.builtin_cards import builtin_cards
from samscope.models.card import ModelCard, card_from_dict, card_to_dict
from samscope.models.registry import load_model
from samscope.models.sam import SamscopeModel, default_precision


def _int8_card_model() -> SamscopeModel:
    """vit_test whose card asks for int8 by default."""
    base = load_model("vit_test", device="cpu", precision="fp32")
    card = dataclasses.replace(base.card, default_precision="int8")
    return SamscopeModel(base.sam, card, device="cpu")


def test_default_precision_follows_card_on_cpu_only():
    card = ModelCard("m", "vit_test", default_precision="int8")
    assert default_precision(card, "cpu") == "int8"
    assert default_precision(card, "cuda") == "bf16"  # int8 is CPU only: the device's default
    assert default_precision(ModelCard("m", "vit_test"), "cpu") == "fp32"
    assert default_precision(None, "cpu") == "fp32"
    with pytest.raises(InputError, match="precision must be one of"):
        default_precision(ModelCard("m", "vit_test", default_precision="fp16"), "cpu")


def test_card_field_round_trips():
    card = ModelCard("m", "vit_test", default_precision="int8")
    assert card_from_dict(card_to_dict(card)).default_precision == "int8"
    assert card_from_dict(card_to_dict(ModelCard("m", "vit_test"))).default_precision is None


def test_builtin_defaults_are_valid_precisions():
    cards, _ = builtin_cards()
    for card in cards.values():
        assert default_precision(card, "cpu") in ("fp32", "int8"), card.name
    # measured (bench_encoder.py): the compact encoder is no faster at int8, so it stays fp32
    assert cards["samscope-generalist"].default_precision in (None, "fp32")


def test_model_uses_card_default_and_explicit_wins():
    model = _int8_card_model()
    assert model.precision == "int8"
    assert model.with_precision("fp32").precision == "fp32"
    assert model.with_precision("fp32").with_precision(None).precision == "int8"
    assert SamscopeModel(model.sam, model.card, device="cpu", precision="fp32").precision == "fp32"
    assert load_model("vit_test", device="cpu").precision == "fp32"  # vit_test's card: None


def test_embeddings_record_the_card_default(tmp_path):
    model = _int8_card_model()
    img = np.random.default_rng(0).integers(0, 4000, (64, 80)).astype(np.uint16)
    emb = compute_embeddings(img, model)
    assert emb.precision == "int8" and emb.signature["precision"] == "int8"
    assert compute_embeddings(img, model, precision="fp32").precision == "fp32"


def test_int8_encoder_is_per_channel_and_leaves_attention_products_fp32():
    model = load_model("vit_test", device="cpu", precision="int8")
    encoder = model._vision_encoder("int8")
    quantised = [m for m in encoder.modules() if type(m).__name__ == "Linear" and "quantized" in type(m).__module__]
    assert quantised, "no quantised Linear in the int8 encoder"
    for lin in quantised:  # one scale per output channel
        assert lin.weight().qscheme() == torch.per_channel_affine
    assert torch.backends.quantized.engine in ("x86", "fbgemm", "onednn")
    # the relative-position tables (the bias added to q·k) stay float parameters
    rel = [p for n, p in encoder.named_parameters() if "rel_pos" in n]
    assert rel and all(p.dtype == torch.float32 for p in rel)
