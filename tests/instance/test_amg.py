"""AMG on the tiny random test model: end to end, re-thresholding, schedules, decoder, geometry."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from samscope.embeddings import ImageEmbeddings, compute_embeddings
from samscope.errors import InputError
from samscope.image import Transform
from samscope.instance import amg
from samscope.instance.amg import AMGConfig, amg_postprocess, amg_predict, segment_amg
from samscope.instance.amg_candidates import Candidates, evaluate_candidate
from samscope.models.card import AutomaticDefaults
from samscope.models.registry import load_model

LOOSE = dict(pred_iou_thresh=0.0, stability_score_thresh=0.0)


@pytest.fixture(scope="module")
def model():
    return load_model("vit_test", device="cpu")


@pytest.fixture(scope="module")
def image():
    img = np.zeros((90, 120), np.float32)
    img[10:40, 15:50] = 1.0
    img[55:80, 70:110] = 0.6
    return img + np.random.default_rng(0).normal(0, 0.02, img.shape).astype(np.float32)


def _check_instances(res, shape):
    assert res.labels.shape == shape and res.labels.dtype.kind == "u"
    assert res.masks is not None and len(res.masks) == res.n == len(res.scores)
    assert res.masks.shape == shape
    assert set(np.unique(res.labels)) <= set(range(res.n + 1))
    for i in range(res.n):  # every label pixel belongs to its mask
        assert res.masks.mask(i)[res.labels == i + 1].all()


@pytest.mark.parametrize(
    "bad",
    [
        dict(pred_iou_thresh=1.5),
        dict(stability_score_thresh=-0.1),
        dict(box_nms_thresh=2.0),
        dict(crop_nms_thresh=float("nan")),
        dict(points_per_side=0),
        dict(points_per_batch=0),
        dict(stability_score_offset=-1.0),
        dict(min_mask_area=-1),
        dict(crop_n_layers=-1),
        dict(crop_overlap_ratio=1.0),
        dict(schedule="random"),
        dict(foreground="magic"),
        dict(foreground_thresh=3.0),
    ],
)
def test_config_validation(bad):
    with pytest.raises(InputError):
        AMGConfig(**bad)


def test_thresholds_default_to_the_card():
    card = AutomaticDefaults(pred_iou_thresh=0.65, stability_score_thresh=0.7, box_nms_thresh=0.6)
    assert AMGConfig().thresholds(card) == (0.65, 0.7, 0.6)
    assert AMGConfig(pred_iou_thresh=0.5).thresholds(card) == (0.5, 0.7, 0.6)


def test_end_to_end_vit_test(model, image):
    emb = compute_embeddings(image, model)
    config = AMGConfig(points_per_side=8, **LOOSE)
    res = segment_amg(model, emb, config=config)
    assert res.mode == "amg" and res.n > 0
    _check_instances(res, image.shape)
    strict = segment_amg(model, emb, config=AMGConfig(points_per_side=8))
    _check_instances(strict, image.shape)


def test_rethreshold_without_the_network(model, image, monkeypatch):
    emb = compute_embeddings(image, model)
    pred = amg_predict(model, emb, config=AMGConfig(points_per_side=8, iou_gate=False))
    assert pred.n_prompts == 64 and len(pred) > 0 and pred.nbytes > 0

    def forbidden(*args, **kwargs):
        raise AssertionError("the network was called")

    for name in ("decode", "encode", "prepare_decoder", "embed_prompts"):
        monkeypatch.setattr(model, name, forbidden)
    monkeypatch.setattr(amg, "_decode_batch", forbidden)
    counts = []
    for iou_t in (0.0, 0.3, 0.6, 1.0):
        res = amg_postprocess(pred, config=AMGConfig(pred_iou_thresh=iou_t, stability_score_thresh=0.0))
        _check_instances(res, image.shape)
        counts.append(res.n)
    assert counts[-1] == 0
    loose = amg_postprocess(pred, config=AMGConfig(box_nms_thresh=1.0, **LOOSE))
    tight = amg_postprocess(pred, config=AMGConfig(box_nms_thresh=0.1, **LOOSE))
    assert loose.n >= tight.n
    small = amg_postprocess(pred, config=AMGConfig(min_size=10**9, **LOOSE))
    assert small.n == 0
    cleaned = amg_postprocess(pred, config=AMGConfig(min_mask_area=30, **LOOSE))
    _check_instances(cleaned, image.shape)


@pytest.mark.parametrize("value", [0.0, 7.0])
def test_constant_image_is_empty(model, value):
    img = np.full((40, 50), value, np.float32)
    emb = compute_embeddings(img, model)
    calls = []
    res = segment_amg(model, emb, config=AMGConfig(points_per_side=4, **LOOSE))
    assert res.n == 0 and res.labels.shape == (40, 50) and not res.labels.any() and not calls
    res = segment_amg(model, emb, config=AMGConfig(points_per_side=4, schedule="foreground", **LOOSE))
    assert res.n == 0


def test_crop_layers_and_tiles(model, image):
    emb = compute_embeddings(image, model)
    res = segment_amg(model, emb, config=AMGConfig(points_per_side=4, crop_n_layers=1, **LOOSE))
    _check_instances(res, image.shape)
    no_source = ImageEmbeddings(emb.features, emb.image_shape, emb.axes, emb.input_size, None, emb.model_name)
    with pytest.raises(InputError, match="image"):
        amg_predict(model, no_source, config=AMGConfig(crop_n_layers=1))
    tiled = compute_embeddings(image, model, tile_shape=64, halo=8)
    res = segment_amg(model, tiled, tile=1, config=AMGConfig(points_per_side=4, **LOOSE))
    _check_instances(res, tiled.tiles[1].outer_shape)
    with pytest.raises(InputError):
        amg_predict(model, tiled, tile=99)


@pytest.mark.parametrize("multimask", [True, False])
def test_point_decoder_matches_model_decode(model, multimask):
    torch.manual_seed(0)
    emb = torch.randn(1, model.arch.embed_dim, model.arch.grid_size, model.arch.grid_size)
    dec = amg.GatedPointDecoder(model, emb, Transform((256, 256), 256))
    assert dec.fast
    pts = np.random.default_rng(1).uniform(0, 256, (5, 2))
    logits, iou = dec(pts, multimask)
    sparse, _ = model.embed_prompts(
        points=torch.as_tensor(pts, dtype=torch.float32)[:, None], labels=torch.ones(5, 1)
    )
    from samscope.models.decoder import decode

    with torch.inference_mode():  # the transformers-order evaluation
        ref_logits, ref_iou = decode(model.sam, dec.cache, sparse, multimask=multimask,
                                     method="reference")  # fmt: skip
    assert logits.shape == ref_logits.shape == (5, 3 if multimask else 1, 64, 64)
    scale = float(ref_logits.abs().max())
    assert float((logits - ref_logits).abs().max()) <= 1e-5 * scale
    assert torch.allclose(iou, ref_iou, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("shape", [(200, 280), (37, 300), (256, 256), (90, 120)])
@pytest.mark.parametrize("offset", [1.0, 0.0])
def test_compact_candidates_keep_masks_and_stability_exact(shape, offset):
    """Stored candidates rebuild the decoder's upsampled mask and SAM's stability exactly."""
    t = Transform(shape, 256)
    rng = np.random.default_rng(0)
    smooth = rng.normal(size=(6, 64, 64)).astype(np.float32).cumsum(1).cumsum(2) / 8
    bumps = 3 - np.hypot(*np.mgrid[:64, :64] - np.array([5.0, 9.0])[:, None, None]) / 2
    logits = torch.from_numpy(np.concatenate([smooth, bumps[None].astype(np.float32)]))[:, None]
    iou = torch.full((7, 1), 0.9)
    valid = amg.valid_nodes(t, 64)
    cands = Candidates(offset)
    cands.add(logits, iou, np.zeros((7, 2)), 0, valid)
    pred = cands.finish(image_shape=shape, crop_boxes=np.array([[0, 0, *shape]]), input_size=256, low_res=64)
    ay, ax = t.interpolation_matrices(64)
    full = ay @ logits[:, 0].numpy() @ ax.T
    kept = [i for i in range(7) if (full[i] > 0).any()]
    assert len(pred) == len(kept) >= 4 and pred.nbytes < logits.numel() * 4
    for n, i in enumerate(kept):
        box, m, stab = evaluate_candidate(pred.crop_logits(n), tuple(pred.low_boxes[n, :2]), ay, ax, offset)
        dense = np.zeros(shape, bool)
        dense[box[0] : box[2], box[1] : box[3]] = m
        assert np.array_equal(dense, full[i] > 0)
        union = (full[i] > -offset).sum()
        assert stab == pytest.approx((full[i] > offset).sum() / union, abs=1e-12)


# -- foreground-aware schedule with an oracle decoder -----------------------------------------


def _sparse_scene():
    rng = np.random.default_rng(4)
    gt = np.zeros((512, 512), np.int32)
    yy, xx = np.mgrid[:512, :512]
    for lab in range(1, 9):
        cy, cx = rng.uniform(40, 472, 2)
        gt[((yy - cy) ** 2 + (xx - cx) ** 2 <= 18**2) & (gt == 0)] = lab
    image = np.where(gt > 0, 1.0, 0.1).astype(np.float32)
    return image, gt


def _oracle_setup(monkeypatch, gt, input_size=256, low_res=64):
    """A model-free AMG: the decoder answers a point with its ground-truth object (or background)."""
    model = SimpleNamespace(
        name="oracle", image_size=input_size, instance_head=None,
        arch=SimpleNamespace(low_res_size=low_res), card=SimpleNamespace(automatic=AutomaticDefaults()),
    )  # fmt: skip
    emb = ImageEmbeddings(np.zeros((1, 1, 1, 1, 1), np.float32), gt.shape, "YX", input_size, None, "oracle")
    t = Transform(gt.shape, input_size)
    fy, fx = t.factors
    step = input_size / low_res
    ny = step * (np.arange(low_res) + 0.5) / fy - 0.5
    nx = step * (np.arange(low_res) + 0.5) / fx - 0.5
    grid = np.stack(np.meshgrid(ny, nx, indexing="ij"))
    fields = {}
    for lab in range(int(gt.max()) + 1):
        m = gt == lab
        sd = ndi.distance_transform_edt(m) - ndi.distance_transform_edt(~m)
        fields[lab] = 20 * ndi.map_coordinates(ndi.gaussian_filter(sd, 1.0), grid, order=1, mode="nearest")
    calls = {"prompts": 0, "batches": 0}

    class Decoder:
        def __init__(self, model, embedding, transform, origin=(0, 0)):
            self.transform = transform

    def decode(decoder, points_xy, multimask, gate=None):
        calls["prompts"] += len(points_xy)
        calls["batches"] += 1
        pts = decoder.transform.points_from_input(points_xy).astype(int)
        labs = gt[pts[:, 0], pts[:, 1]]
        iou = np.array([[0.95 if lab else 0.3] * 3 for lab in labs], np.float32)
        rows = np.arange(len(labs)) if gate is None else np.flatnonzero(gate(iou, np.arange(len(labs))))
        logits = np.zeros((len(rows), 3, *fields[0].shape), np.float32)
        for j, lab in enumerate(labs[rows]):
            logits[j] = fields[lab]
        return torch.from_numpy(logits), torch.from_numpy(iou), rows

    monkeypatch.setattr(amg, "GatedPointDecoder", Decoder)
    monkeypatch.setattr(amg, "_decode_batch", decode)
    return model, emb, calls


def test_foreground_schedule_decodes_far_fewer_prompts(monkeypatch):
    image, gt = _sparse_scene()
    model, emb, calls = _oracle_setup(monkeypatch, gt)
    grid = segment_amg(model, emb, config=AMGConfig(), image=image)
    grid_prompts = calls["prompts"]
    calls["prompts"] = 0
    fg_pred = amg_predict(model, emb, config=AMGConfig(schedule="foreground"), image=image)
    fg = amg_postprocess(fg_pred)
    assert grid_prompts == 1024 and fg_pred.n_points == 4096  # a denser grid, on objects only
    assert calls["prompts"] == fg_pred.n_prompts <= 0.1 * grid_prompts
    # the same objects: every ground-truth object found by the grid is found by the schedule
    assert grid.n == fg.n == int(gt.max())
    for i in range(fg.n):
        m = fg.masks.mask(i)
        lab = np.bincount(gt[m]).argmax()
        assert lab > 0 and (m == (gt == lab)).mean() > 0.999


def test_foreground_schedule_with_real_decoder(model, monkeypatch):
    image, _ = _sparse_scene()
    emb = compute_embeddings(image, model)
    counted = {"prompts": 0}
    real = amg._decode_batch

    def counting(decoder, points_xy, multimask, gate=None):
        counted["prompts"] += len(points_xy)
        return real(decoder, points_xy, multimask, gate)

    monkeypatch.setattr(amg, "_decode_batch", counting)
    pred = amg_predict(model, emb, config=AMGConfig(points_per_side=16, schedule="foreground", **LOOSE))
    assert 0 < counted["prompts"] == pred.n_prompts < 0.3 * 256 < pred.n_points
    _check_instances(amg_postprocess(pred, config=AMGConfig(**LOOSE)), image.shape)
    config = AMGConfig(schedule="foreground", foreground="head", foreground_points_per_side=8)
    assert amg_predict(model, emb, config=config).n_points == 64  # vit_test has a (random) head
    monkeypatch.setattr(model, "instance_head", None)
    with pytest.raises(InputError, match="instance head"):
        amg_predict(model, emb, config=AMGConfig(schedule="foreground", foreground="head"))


def _trained_looking(model):
    """vit_test's decoder with normal(0, 0.02) weights (SAM-like scales), on a copy."""
    import copy

    m = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for param in m.sam.mask_decoder.parameters():
            if param.ndim > 1:
                param.copy_(torch.randn(param.shape, generator=gen) * 0.02)
    return m


@pytest.mark.parametrize("tiled", [True, False])
@pytest.mark.parametrize("multimask", [True, False])
def test_gated_decoder_keeps_rows_exactly(model, multimask, tiled, monkeypatch):
    """Kept rows are PointDecoder's: identical un-tiled, to float rounding tiled."""
    m = _trained_looking(model)
    torch.manual_seed(0)
    emb = torch.randn(1, m.arch.embed_dim, m.arch.grid_size, m.arch.grid_size)
    monkeypatch.setattr(amg.GatedPointDecoder, "tiled", tiled)
    dec = amg.GatedPointDecoder(m, emb, Transform((256, 256), 256))
    pts = np.random.default_rng(1).uniform(0, 256, (11, 2))
    full, iou = dec(pts, multimask)
    seen = []

    def gate(ious, index):
        seen.append(index)
        return index % 3 != 1

    logits, iou_g, rows = dec.decode(pts, multimask, gate)
    assert np.concatenate(seen).tolist() == list(range(11))  # every prompt passes the gate once
    assert rows.tolist() == [i for i in range(11) if i % 3 != 1]
    assert logits.shape == (len(rows), *full.shape[1:])
    if tiled:
        assert float((iou_g - iou).abs().max()) <= 1e-5 * float(iou.abs().max())
    else:
        assert torch.equal(iou_g, iou)
    assert float((logits - full[torch.from_numpy(rows)]).abs().max()) <= 1e-5 * float(full.abs().max())
    none, _, empty = dec.decode(pts, multimask, lambda i, x: np.zeros(len(x), bool))
    assert none.shape[0] == 0 and empty.size == 0


@pytest.mark.parametrize("multimask", [True, False])
def test_tiled_decoder_matches_the_reassociated_one(model, multimask):
    """decode_tiled = decode_reassociated(upscale=False) and upscale_tiled = upscale_and_predict
    to float rounding, on uneven tiles."""
    from samscope.models.decoder import decode_reassociated, upscale_and_predict
    from samscope.models.decoder_batch import decode_tiled, upscale_tiled

    m = _trained_looking(model)
    torch.manual_seed(1)
    emb = torch.randn(1, m.arch.embed_dim, m.arch.grid_size, m.arch.grid_size)
    cache = m.prepare_decoder(emb)
    pts = torch.as_tensor(np.random.default_rng(2).uniform(0, 256, (5, 1, 2)), dtype=torch.float32)
    sparse, _ = m.embed_prompts(points=pts, labels=torch.ones(5, 1, dtype=torch.long))
    dec = m.sam.mask_decoder
    with torch.inference_mode():
        keys, hyper, iou = decode_reassociated(dec, cache, sparse, None, multimask, upscale=False)
        for rows in (37, 256):  # 7 tiles, the last one short; one tile
            tiles, hyper_t, iou_t = decode_tiled(dec, cache, sparse, multimask, rows=rows)
            assert len(tiles) == -(-256 // rows) and tiles[-1].shape[1] == 256 - rows * (len(tiles) - 1)
            logits = upscale_and_predict(dec, keys, hyper, cache.grid)
            logits_t = upscale_tiled(dec, tiles, hyper_t, cache.grid)
            pairs = ((keys, torch.cat(tiles, 1)), (hyper, hyper_t), (iou, iou_t), (logits, logits_t))
            for a, b in pairs:
                assert a.shape == b.shape
                assert float((a - b).abs().max()) <= 1e-5 * float(a.abs().max())


def test_tiled_amg_gives_the_same_masks(model, image, monkeypatch):
    """AMG with the tiled decoder (several uneven tiles) = AMG with the un-tiled one."""
    from samscope.models import decoder_batch

    m = _trained_looking(model)
    emb = compute_embeddings(image, m)
    loose = amg_predict(m, emb, config=AMGConfig(points_per_side=12, iou_gate=False))
    v = np.sort(loose.iou)
    mid = slice(len(v) // 4, 3 * len(v) // 4)  # the gate must act: a threshold far from any IoU
    i = len(v) // 4 + int(np.argmax(np.diff(v[mid])))
    config = AMGConfig(points_per_side=12, pred_iou_thresh=float(v[i] + v[i + 1]) / 2,
                       stability_score_thresh=0.0)  # fmt: skip
    monkeypatch.setattr(decoder_batch, "TILE_FLOATS", 1)
    monkeypatch.setattr(decoder_batch, "MIN_ROWS", 40)  # 7 tiles of the 256 image rows
    monkeypatch.setattr(amg.GatedPointDecoder, "tiled", True)
    calls = []
    real = decoder_batch.decode_tiled
    monkeypatch.setattr(decoder_batch, "decode_tiled", lambda *a, **k: calls.append(1) or real(*a, **k))
    a = amg_postprocess(amg_predict(m, emb, config=config), config=config)
    assert calls  # the tiled decoder ran
    monkeypatch.setattr(amg.GatedPointDecoder, "tiled", False)
    b = amg_postprocess(amg_predict(m, emb, config=config), config=config)
    assert a.n == b.n > 0 and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.masks.boxes, b.masks.boxes)
    assert np.allclose(a.scores, b.scores, rtol=0, atol=1e-6)


def test_iou_gate_gives_the_same_masks(model, image, monkeypatch):
    """The gated prediction post-processes to the ungated one's masks at its threshold."""
    m = _trained_looking(model)
    emb = compute_embeddings(image, m)
    monkeypatch.setattr(amg.GatedPointDecoder, "tiled", False)  # the same arithmetic on both sides
    ungated = amg_predict(m, emb, config=AMGConfig(points_per_side=12, iou_gate=False))
    iou_t = float(np.quantile(ungated.iou, 0.6))  # a threshold that drops prompts of both kinds
    kw = dict(points_per_side=12, pred_iou_thresh=iou_t, stability_score_thresh=0.0)
    gated = amg_predict(m, emb, config=AMGConfig(**kw))
    assert gated.n_prompts == ungated.n_prompts == 144
    assert len(gated) == int((ungated.iou > iou_t).sum()) < len(ungated)
    a = amg_postprocess(gated, config=AMGConfig(**kw))
    b = amg_postprocess(ungated, config=AMGConfig(**kw))
    assert a.n == b.n > 0 and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.scores, b.scores)
    assert np.array_equal(a.masks.boxes, b.masks.boxes)


def test_grid_skip_covered_decodes_fewer_prompts_same_objects(monkeypatch):
    image, gt = _sparse_scene()
    model, emb, calls = _oracle_setup(monkeypatch, gt)
    config = AMGConfig(points_per_batch=16)
    full = segment_amg(model, emb, config=config, image=image)
    n_full, calls["prompts"] = calls["prompts"], 0
    pred = amg_predict(model, emb, config=AMGConfig(points_per_batch=16, skip_covered=True), image=image)
    skip = amg_postprocess(pred, config=config)
    assert n_full == pred.n_points == 1024 and calls["prompts"] == pred.n_prompts < n_full
    # with an oracle, a covered point would only have repeated the accepted mask
    assert skip.n == full.n == int(gt.max())
    assert np.array_equal(skip.labels > 0, full.labels > 0)
