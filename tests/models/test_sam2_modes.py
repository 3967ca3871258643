"""SAM2 in every image mode, end to end on the tiny random ``sam2_hiera_test`` (CPU, fast).

CLI ``embed`` / ``prompt`` with a cache, the cache signature (multi-scale features, reuse and
invalidation), tiled embeddings, AMG, ``segment --mode apg``, and ``train`` (LoRA, instance head)
with the trained file loading back as a SAM2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from samscope.cli.main import main
from samscope.errors import CacheMismatchError, CheckpointError

MODEL = "sam2_hiera_test"


def ok(args, capsys):
    try:
        main(args)
    except SystemExit as exc:  # pragma: no cover - shown on failure
        out = capsys.readouterr()
        raise AssertionError(f"exit {exc.code}: {out.err}") from None
    return capsys.readouterr().out


def blobs(shape=(120, 160), seed=1):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = 1000 + rng.normal(0, 20, shape)
    for cy, cx in ((40, 50), (80, 110), (30, 120)):
        img += 3000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 150.0)
    return img.astype(np.uint16)


@pytest.fixture(scope="module")
def model():
    from samscope.models import load_model

    return load_model(MODEL, device="cpu")


@pytest.fixture()
def image_file(tmp_path):
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, blobs())
    return path


def test_test_model_is_a_sam2(model):
    from samscope.models.sam2_model import Sam2ScopeModel

    assert isinstance(model, Sam2ScopeModel) and model.image_size == 256
    assert model.feature_channels == 4 * 96 and "sam2-multiscale" in model.feature_layout
    view = model.with_precision("int8")  # a view: same class, quantised encoder
    assert isinstance(view, Sam2ScopeModel)
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    assert view.encode(x).shape == model.encode(x).shape == (1, 384, 16, 16)


def test_cli_embed_then_prompt_reuses_the_cache(tmp_path, image_file, capsys):
    cache = tmp_path / "cells.zarr"
    ok(["embed", str(image_file), "-o", str(cache), "--model", MODEL], capsys)
    from samscope.embeddings import load_embeddings

    emb = load_embeddings(cache)
    assert emb.features.shape == (1, 1, 384, 16, 16)
    assert emb.signature["feature_layout"].startswith("sam2-multiscale-v1")
    for args, name in ((["-p", "40,50"], "p.tif"), (["-b", "10,10,60,70;70,80,110,150"], "b.tif")):
        out = tmp_path / name
        ok(["prompt", str(image_file), *args, "-o", str(out), "--model", MODEL, "-e", str(cache)], capsys)
        labels = tifffile.imread(out)
        assert labels.shape == (120, 160)
    assert tifffile.imread(tmp_path / "b.tif").max() <= 2


def test_cache_signature_reuse_and_invalidation(tmp_path, model, monkeypatch):
    from samscope.embeddings import compute_embeddings
    from samscope.models import load_model

    image = blobs()
    cache = tmp_path / "c.zarr"
    first = compute_embeddings(image, model, cache=cache)
    calls = []
    original = type(model).encode
    monkeypatch.setattr(type(model), "encode", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    again = compute_embeddings(image, model, cache=cache)  # reused: nothing encoded
    assert calls == [] and np.array_equal(np.asarray(again.features), np.asarray(first.features))
    with pytest.raises(CacheMismatchError):  # another image
        compute_embeddings(image[::-1].copy(), model, cache=cache)
    with pytest.raises(CacheMismatchError):  # a SAM1 model on SAM2 features
        compute_embeddings(image, load_model("vit_test", device="cpu"), cache=cache)


def test_tiled_embeddings_and_prompts(model):
    from samscope.embeddings import compute_embeddings
    from samscope.prompting import segment_from_prompts

    image = blobs((300, 420))
    emb = compute_embeddings(image, model, tile_shape=192, halo=32)
    assert emb.features.shape[1] > 1 and emb.features.shape[2] == 384
    result = segment_from_prompts(model, emb, points=np.array([[250, 380]]), multimask=True)
    assert result.masks.shape == (3, 300, 420) and result.iou.shape == (3,)
    refined = segment_from_prompts(model, emb, points=np.array([[250, 380]]),
                                   mask_logits=result.logits[result.best], previous=result)  # fmt: skip
    assert refined.masks.shape == (1, 300, 420)
    boxed = segment_from_prompts(model, emb, box=np.array([200, 300, 290, 410]))
    assert boxed.masks.shape == (1, 300, 420)


def test_point_box_mask_prompts_through_the_model(model):
    from samscope.embeddings import compute_embeddings

    emb = compute_embeddings(blobs(), model)
    cache = model.prepare_decoder(emb.get(0, 0))
    sparse, _ = model.embed_prompts(points=torch.tensor([[[60.0, 80.0]]]), labels=torch.tensor([[1]]))
    multi, iou3 = model.decode(cache, sparse, multimask=True)
    assert multi.shape == (1, 3, 64, 64) and iou3.shape == (1, 3)
    box, _ = model.embed_prompts(boxes=torch.tensor([[20.0, 20.0, 120.0, 100.0], [5.0, 5.0, 50.0, 60.0]]))
    one, iou1 = model.decode(cache, box, multimask=False)
    assert one.shape == (2, 1, 64, 64)
    sparse, dense = model.embed_prompts(
        points=torch.tensor([[[60.0, 80.0]]]), labels=torch.tensor([[1]]), masks=multi[:, :1]
    )
    fed, _ = model.decode(cache, sparse, dense, multimask=False)
    assert not torch.allclose(fed, multi[:, :1])  # the mask prompt changes the answer


def test_cli_segment_apg(tmp_path, image_file, capsys):
    out_dir = tmp_path / "apg"
    ok(["segment", str(image_file), "-o", str(out_dir), "--model", MODEL, "--mode", "apg"], capsys)
    labels = tifffile.imread(out_dir / "cells_labels.tif")
    assert labels.shape == (120, 160)


def test_amg_on_sam2(model):
    from samscope.embeddings import compute_embeddings
    from samscope.instance.amg import AMGConfig, amg_predict, segment_amg

    image = blobs()
    emb = compute_embeddings(image, model)
    config = AMGConfig(points_per_side=8, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    pred = amg_predict(model, emb, config=config, image=image)
    assert len(pred.iou) > 0  # random weights: candidates, whatever they look like
    labels = segment_amg(model, emb, config=config, image=image).labels
    assert labels.shape == (120, 160)


def test_train_lora_and_instance_head_then_load(tmp_path, capsys):
    from samscope.models import load_model
    from samscope.models.sam2_model import Sam2ScopeModel

    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    for i in range(3):
        lab = np.zeros((128, 128), np.uint16)
        for k in range(4):
            cy, cx = rng.integers(20, 108, 2)
            lab[(yy - cy) ** 2 + (xx - cx) ** 2 < 120] = k + 1
        tifffile.imwrite(images / f"{i}.tif", (lab > 0) * 2000 + rng.normal(500, 30, lab.shape).astype(np.uint16))
        tifffile.imwrite(labels / f"{i}.tif", lab)
    cfg = tmp_path / "train.toml"
    cfg.write_text(
        f'[data]\ntrain_images = ["{images}"]\ntrain_labels = ["{labels}"]\npatch_size = 128\n'
        'n_val = 1\nmin_objects = 1\n'
        f'[model]\nmodel = "{MODEL}"\ninit = "pretrained"\nlora_rank = 2\n'
        "[objectives]\nn_objects = 2\nn_sub_iterations = 2\ninstance_head = true\n"
        '[optim]\nmax_steps = 2\nbatch_size = 1\nval_every = 1000\nscheduler = "constant"\n'
        f'[run]\nout_dir = "{tmp_path / "run"}"\nprogress = false\nthreads = 1\n'
    )
    ok(["train", str(cfg)], capsys)
    trained = load_model(tmp_path / "run" / "model.pt", device="cpu")
    assert isinstance(trained, Sam2ScopeModel) and trained.instance_head is not None
    base = load_model(MODEL, device="cpu")
    assert trained.weights_hash != base.weights_hash  # LoRA folded into the encoder weights
    maps = trained.instance_head(trained.encode(torch.zeros(1, 3, 256, 256)))
    assert maps.shape[1] == 3


def test_meta_file_through_load_model_refuses_a_vit_card(tmp_path):
    from samscope.models import load_model

    fixture = np.load(Path(__file__).parent / "data" / "sam2_hiera_test_meta.npz")
    path = tmp_path / "tiny.pt"
    path.write_bytes(fixture["checkpoint"].tobytes())
    with pytest.raises(CheckpointError, match="sam2_hiera_test"):
        load_model("vit_test", checkpoint=path, device="cpu")
