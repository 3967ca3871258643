"""The foreground-prompted, overlap-aware mode (seed 000 §3.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from samscope.errors import InputError
from samscope.instance.foreground import (
    ForegroundConfig,
    foreground_postprocess,
    foreground_predict,
    sample_points,
    segment_foreground,
)
from samscope.models.registry import load_model


@pytest.fixture(scope="module")
def model():
    return load_model("vit_test", device="cpu")


def _rods(shape=(200, 240)):
    """Two crossing rods (overlapping objects) and a short one; and a 3-px speck."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    a = (np.abs(yy - 60) <= 4) & (xx >= 30) & (xx < 200)  # horizontal
    b = (np.abs(xx - 110) <= 4) & (yy >= 20) & (yy < 150)  # vertical, crosses a
    c = (np.abs(yy - 170) <= 3) & (xx >= 150) & (xx < 200)
    objects = np.stack([a, b, c])
    image = 0.1 + objects.any(axis=0).astype(np.float32)
    image[190:192, 20:22] = 1.0  # a speck, under min_size after rescaling
    return image.astype(np.float32), objects


def _oracle(monkeypatch, objects, *, pixel_size_nm, target=80.0):
    """Replace the decoder: a point gets the first object it lies on (20 × smooth signed distance)."""
    calls = {"prompts": 0}
    factor = pixel_size_nm / target
    scaled = np.stack(
        [ndi.zoom(o.astype(np.float32), factor, order=1) > 0.5 for o in objects]
    ) if factor != 1 else objects  # fmt: skip

    def decode(decoder, points_xy, multimask):
        t = decoder.transform
        oy, ox = decoder.origin
        h, w = t.original_shape
        fy, fx = t.factors
        low = 64
        step = t.target_size / low
        grid = np.stack(np.meshgrid(
            step * (np.arange(low) + 0.5) / fy - 0.5, step * (np.arange(low) + 0.5) / fx - 0.5,
            indexing="ij",
        ))  # fmt: skip
        pts = t.points_from_input(points_xy)
        out = []
        for y, x in pts:
            region = scaled[:, oy : oy + h, ox : ox + w]
            yi, xi = min(int(round(y)), h - 1), min(int(round(x)), w - 1)
            hits = np.flatnonzero(region[:, yi, xi])
            m = region[hits[0]] if hits.size else ~region.any(axis=0)
            sd = ndi.distance_transform_edt(m) - ndi.distance_transform_edt(~m)
            out.append(20 * ndi.map_coordinates(ndi.gaussian_filter(sd, 1.0), grid, order=1))
        calls["prompts"] += len(out)
        k = 3 if multimask else 1
        logits = np.repeat(np.stack(out)[:, None], k, axis=1).astype(np.float32)
        return torch.from_numpy(logits), torch.full((len(out), k), 0.9)

    from samscope.models.decoder import PointDecoder

    monkeypatch.setattr(PointDecoder, "__call__", decode)
    return calls


@pytest.mark.parametrize(
    "bad",
    [
        dict(target_pixel_size_nm=0),
        dict(patch_size=0),
        dict(halo=-1),
        dict(foreground_thresh=1.5),
        dict(overlap_thresh=-0.1),
        dict(pred_iou_thresh=2),
        dict(n_points=0),
        dict(min_spacing=0),
        dict(min_size=-1),
        dict(smoothing=-1),
    ],
)
def test_config_validation(bad):
    with pytest.raises(InputError):
        ForegroundConfig(**bad)


def test_sample_points_on_foreground_with_spacing():
    fg = np.zeros((100, 100), bool)
    fg[10:30, 10:90] = True
    pts = sample_points(fg, n_points=1000, min_spacing=5, rng=1)
    assert len(pts) == 4 * 16  # one per 5×5 cell of the 20×80 foreground
    assert fg[pts[:, 0].astype(int), pts[:, 1].astype(int)].all()
    cells = {(int(y) // 5, int(x) // 5) for y, x in pts}
    assert len(cells) == len(pts)
    few = sample_points(fg, n_points=7, min_spacing=5, rng=1)
    assert len(few) == 7
    assert np.array_equal(few, sample_points(fg, n_points=7, min_spacing=5, rng=1))  # seeded
    inside = sample_points(fg, n_points=100, min_spacing=5, rng=0, region=(0, 0, 50, 50))
    assert len(inside) and (inside < 50).all()
    assert sample_points(np.zeros((5, 5), bool), n_points=3, min_spacing=1).shape == (0, 2)


@pytest.mark.parametrize("image", [np.zeros((0, 0)), np.full((40, 60), 3.0)])
def test_empty_and_constant_images(model, image):
    res = segment_foreground(model, image)
    assert res.n == 0 and res.labels.shape == image.shape and res.masks is not None


def test_rejects_stacks_and_bad_pixel_size(model):
    with pytest.raises(InputError):
        segment_foreground(model, np.zeros((3, 20, 20, 2)))
    with pytest.raises(InputError):
        segment_foreground(model, np.ones((20, 20)) + np.eye(20), pixel_size_nm=-5)


def test_end_to_end_vit_test(model):
    image, _ = _rods()
    res = segment_foreground(
        model, image, pixel_size_nm=40, config=ForegroundConfig(patch_size=96, n_points=32)
    )
    assert res.mode == "foreground" and res.labels.shape == image.shape
    assert res.masks.shape == image.shape and len(res.masks) == res.n == len(res.scores)


def test_overlapping_objects_with_an_oracle(model, monkeypatch):
    """Rescaled ×0.5, tiled, decoded by an oracle: two crossing rods share pixels, the short rod
    is found, duplicates and the speck are gone, masks come back at the original resolution."""
    image, objects = _rods()
    calls = _oracle(monkeypatch, objects, pixel_size_nm=40)
    config = ForegroundConfig(patch_size=96, halo=24, n_points=64, min_spacing=4)
    pred = foreground_predict(model, image, pixel_size_nm=40, config=config, rng=0)
    assert pred.scaled_shape == (100, 120) and calls["prompts"] == len(pred.scores) > 20
    res = foreground_postprocess(pred, config=config)
    assert res.n == 3
    for obj in objects:
        ious = [(res.masks.mask(i) & obj).sum() / (res.masks.mask(i) | obj).sum() for i in range(3)]
        assert max(ious) > 0.75
    shared = res.masks.dense().sum(axis=0) > 1
    assert shared[objects[0] & objects[1]].mean() > 0.5  # the crossing belongs to both rods
    # re-thresholding the same prediction needs no network: a huge min_size drops everything
    assert foreground_postprocess(pred, config=ForegroundConfig(min_size=10**6)).n == 0
