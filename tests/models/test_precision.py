"""Reduced-precision inference (fp32 | bf16 | int8) on the tiny vit_test model."""

import numpy as np
import pytest
import torch

from samscope.embeddings import compute_embeddings
from samscope.errors import CacheMismatchError, InputError
from samscope.models.registry import load_model
from samscope.models.sam import PRECISIONS, check_precision
from samscope.prompting import segment_from_boxes, segment_from_prompts


@pytest.fixture(scope="module")
def model():
    """vit_test with small normal weights (its stock init gives near-constant embeddings, on
    which every precision agrees trivially)."""
    net = load_model("vit_test", device="cpu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        for p in net.sam.parameters():
            torch.nn.init.normal_(p, std=0.02)
    return net


@pytest.fixture(scope="module")
def image():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:180, :240]
    img = np.full((180, 240), 1000.0)
    for cy, cx in [(40, 50), (100, 160), (140, 60), (60, 190)]:
        img += 3000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 14.0**2))
    return (img + rng.normal(0, 50, img.shape)).astype(np.uint16)


@pytest.fixture(scope="module")
def ref(model, image):
    return compute_embeddings(image, model)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def test_check_precision_names_and_defaults():
    assert PRECISIONS == ("fp32", "bf16", "int8")
    assert check_precision(None, "cpu") == "fp32"
    assert check_precision(None, "cuda") == "bf16"
    assert check_precision(" Int8 ") == "int8"
    with pytest.raises(InputError, match=r"precision must be one of fp32, bf16, int8, got 'fp16'"):
        check_precision("fp16")
    with pytest.raises(InputError, match="int8 runs on the CPU only"):
        check_precision("int8", "cuda")


def test_load_model_and_views(model):
    bf = load_model("vit_test", device="cpu", precision="bf16")
    assert bf.precision == "bf16" and "precision=bf16" in repr(bf)
    assert load_model("vit_test", device="cpu").precision == "fp32"
    with pytest.raises(InputError, match="precision must be one of"):
        load_model("vit_test", device="cpu", precision="half")
    view = model.with_precision("int8")
    assert view is not model and view.sam is model.sam and model.precision == "fp32"
    assert model.with_precision("fp32") is model
    assert view.weights_hash == model.weights_hash  # same weights; the cache key adds precision


def test_int8_quantises_a_copy_of_the_encoder_linears(model, image):
    q8 = model.with_precision("int8")
    compute_embeddings(image, q8)
    encoder = q8._vision_encoder("int8")
    kinds = {type(m).__module__ for m in encoder.modules() if "Linear" in type(m).__name__}
    assert any("quantized" in k for k in kinds)
    assert all(type(m) is torch.nn.Linear for m in model.sam.vision_encoder.modules()
               if "Linear" in type(m).__name__)  # fmt: skip - the fp32 model is untouched
    assert model.with_precision("int8")._vision_encoder("int8") is encoder  # built once


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_embeddings_and_masks_close_to_fp32(model, image, ref, precision):
    low = compute_embeddings(image, model, precision=precision)
    assert low.precision == precision and ref.precision == "fp32"
    a, b = np.asarray(ref.features), np.asarray(low.features)
    assert low.features.dtype == np.float32
    rel = np.abs(a - b).max() / np.abs(a).max()
    assert 0 < rel < 0.05  # different arithmetic, close result
    net = model.with_precision(precision)
    ious = []
    for y, x in [(40, 50), (100, 160), (20, 220)]:
        m32 = segment_from_prompts(model, ref, points=[[y, x]]).masks[0]
        mlo = segment_from_prompts(net, low, points=[[y, x]]).masks[0]
        ious.append(_iou(m32, mlo))
    boxes = np.array([[20, 30, 60, 70], [80, 140, 120, 180], [120, 40, 160, 80]])
    r32 = segment_from_boxes(model, ref, boxes)
    rlo = segment_from_boxes(net, low, boxes)
    ious += [_iou(p, q) for p, q in zip(r32.masks, rlo.masks, strict=True)]
    assert np.mean(ious) > 0.95 and min(ious) > 0.8, ious
    assert np.abs(r32.iou - rlo.iou).max() < 0.05


def test_bf16_decoder_runs_in_bf16_and_returns_float32(model, ref):
    emb = ref
    net = model.with_precision("bf16")
    cache = net.prepare_decoder(emb.get())
    assert cache.key1.dtype == torch.bfloat16  # the projections ran under autocast
    pts = torch.tensor([[[50.0, 40.0]]])
    sparse, _ = net.embed_prompts(points=pts, labels=torch.ones(1, 1, dtype=torch.long))
    logits, iou = net.decode(cache, sparse)
    assert logits.dtype == torch.float32 and iou.dtype == torch.float32
    ref_logits, _ = model.decode(model.prepare_decoder(emb.get()), sparse)
    assert not torch.equal(logits, ref_logits)
    torch.testing.assert_close(logits, ref_logits, atol=0.1, rtol=0.05)


def test_point_decoder_follows_the_model_precision(model, ref):
    from samscope.models.decoder import PointDecoder

    emb = ref
    pts = np.array([[50.0, 40.0], [160.0, 100.0]])
    ref, _ = PointDecoder(model, emb.get(), emb.transform())(pts, multimask=True)
    low, _ = PointDecoder(model.with_precision("bf16"), emb.get(), emb.transform())(pts, True)
    assert low.dtype == torch.float32 and not torch.equal(ref, low)
    torch.testing.assert_close(low, ref, atol=0.1, rtol=0.05)


def test_cache_signature_records_precision(model, image, ref, tmp_path):
    fp32 = ref
    assert "precision" not in fp32.signature  # fp32 caches keep their old signature
    bf16 = compute_embeddings(image, model, precision="bf16")
    assert bf16.signature["precision"] == "bf16"
    assert {k: v for k, v in bf16.signature.items() if k != "precision"} == fp32.signature
    cache = tmp_path / "emb.zarr"
    compute_embeddings(image, model, cache=cache, precision="bf16")
    again = compute_embeddings(image, model.with_precision("bf16"), cache=cache)
    assert again.precision == "bf16"
    with pytest.raises(CacheMismatchError, match="precision"):
        compute_embeddings(image, model, cache=cache)  # a bf16 cache is never reused as fp32
    with pytest.raises(CacheMismatchError, match="precision"):
        compute_embeddings(image, model, cache=cache, precision="int8")


def test_bad_precision_in_compute_embeddings(model, image):
    with pytest.raises(InputError, match="precision must be one of"):
        compute_embeddings(image, model, precision="float16")


def test_bf16_on_a_cpu_without_native_bf16_warns_once(model, monkeypatch, caplog):
    import samscope.models.sam as sam_module

    monkeypatch.setattr(sam_module, "native_bf16_cpu", lambda: False)
    monkeypatch.setattr(sam_module, "_warned_slow_bf16", False)
    with caplog.at_level("WARNING", logger="samscope.models.sam"):
        model.with_precision("bf16")
        model.with_precision("bf16")
        model.with_precision("int8")
    slow = [r for r in caplog.records if "without native bf16" in r.getMessage()]
    assert len(slow) == 1 and "use fp32 or int8" in slow[0].getMessage()
