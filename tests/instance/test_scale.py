"""Object-size estimation and segmentation at the model's working scale."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.instance.instances import CroppedMasks, Instances
from samscope.instance.scale import (
    SizeEstimate,
    estimate_diameter,
    median_diameter,
    rescale_instances,
    resize_plane,
    scale_for,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _disc_labels(shape, centres, radius):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    lab = np.zeros(shape, np.int32)
    for i, (cy, cx) in enumerate(centres, start=1):
        lab[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = i
    return lab


def test_median_diameter_of_discs_and_border_rule():
    lab = _disc_labels((100, 100), [(30, 30), (30, 70), (70, 30), (70, 70)], 10)
    d, n = median_diameter(lab)
    assert n == 4 and abs(d - 20) < 1.0
    lab[0:3, 0:3] = 9  # a tiny piece at the border is ignored while three others remain
    assert median_diameter(lab)[1] == 4
    assert median_diameter(np.zeros((5, 5), int)) == (pytest.approx(float("nan"), nan_ok=True), 0)


def test_scale_for():
    assert scale_for(56.0, 28.0) == 0.5
    assert scale_for(7.0, 28.0) == 4.0
    assert scale_for(30.0, 28.0) == 1.0  # within tolerance: no resize
    assert scale_for(None, 28.0) == 1.0 and scale_for(20.0, None) == 1.0


def test_resize_plane_shapes_and_rgb():
    assert resize_plane(np.ones((100, 60), np.uint16), 0.5).shape == (50, 30)
    assert resize_plane(np.ones((10, 20, 3), np.uint8), 2.0).shape == (20, 40, 3)


def test_rescale_instances_labels_and_masks_round_trip():
    lab = _disc_labels((64, 64), [(20, 20), (44, 40)], 8)
    inst = Instances.from_labels(lab, np.array([0.9, 0.8], np.float32), mode="ais")
    big = rescale_instances(inst, (128, 128))
    assert big.labels.shape == (128, 128) and big.n == 2
    assert abs(np.count_nonzero(big.labels == 1) - 4 * np.count_nonzero(lab == 1)) < 40
    # overlapping masks keep their overlap
    m = np.zeros((2, 64, 64), bool)
    m[0, 10:30, 10:30] = True
    m[1, 20:40, 20:40] = True
    inst2 = Instances.from_masks(CroppedMasks.from_dense(m), np.array([0.5, 0.6], np.float32), mode="amg")
    small = rescale_instances(inst2, (32, 32))
    dense = small.masks.dense()
    assert dense.shape == (2, 32, 32) and np.any(dense[0] & dense[1])
    assert np.count_nonzero(dense[0]) == pytest.approx(100, abs=25)


@pytest.fixture(scope="module")
def scale_aware_model():
    from samscope.models.registry import load_model

    model = load_model("samscope-lm")
    model.card = replace(model.card, working_diameter=28.0)
    return model


def _example():
    import tifffile

    return tifffile.imread(EXAMPLES / "nuclei.tif"), tifffile.imread(EXAMPLES / "nuclei_labels.tif")


def test_estimate_follows_the_zoom(scale_aware_model):
    image, labels = _example()
    true_d, _ = median_diameter(labels)
    native = estimate_diameter(image, scale_aware_model)
    assert isinstance(native, SizeEstimate) and native.source == "estimated"
    assert native.diameter == pytest.approx(true_d, rel=0.3)
    zoomed = resize_plane(image, 2.5)
    est = estimate_diameter(zoomed, scale_aware_model)
    assert est.diameter == pytest.approx(2.5 * true_d, rel=0.3)
    assert len(est.candidates) >= 5


def test_segment_rescales_and_maps_back(scale_aware_model):
    from samscope.instance.segment import segment

    image, labels = _example()
    zoomed = resize_plane(image, 2.5)
    out = segment(zoomed, scale_aware_model, mode="ais")
    assert out.labels.shape == zoomed.shape
    assert out.scale == pytest.approx(28.0 / out.diameter)
    assert out.scale < 0.7
    from samscope.evaluation.metrics import segmentation_accuracy
    from samscope.instance.scale import _resize_labels

    gt = _resize_labels(labels, zoomed.shape)
    fixed = segment(zoomed, scale_aware_model, mode="ais", diameter=1.0 * median_diameter(gt)[0])
    acc_auto = segmentation_accuracy(gt, out.labels)
    acc_unscaled = segmentation_accuracy(
        gt, segment(zoomed, replace_card(scale_aware_model, None), mode="ais").labels
    )
    assert fixed.diameter == pytest.approx(median_diameter(gt)[0])
    assert acc_auto.sa50 > acc_unscaled.sa50  # rescaling is what makes large objects work


def replace_card(model, working):
    import copy

    other = copy.copy(model)
    other.card = replace(model.card, working_diameter=working)
    return other


def test_diameter_errors(scale_aware_model):
    from samscope.instance.segment import segment

    image, _ = _example()
    with pytest.raises(InputError, match="positive"):
        segment(image, scale_aware_model, diameter=-3)
    with pytest.raises(InputError, match="working diameter"):
        segment(image, replace_card(scale_aware_model, None), diameter=20)
    with pytest.raises(InputError, match="working diameter"):
        estimate_diameter(image, replace_card(scale_aware_model, None))


def test_constant_image_needs_no_estimate(scale_aware_model):
    from samscope.instance.segment import segment

    out = segment(np.full((64, 64), 7, np.uint16), scale_aware_model, mode="ais")
    assert out.n == 0 and out.scale == 1.0


def test_large_box_prompts_are_decoded_zoomed_out(scale_aware_model):
    """A box far larger than the working size is decoded in a shrunk window around it."""
    from samscope.embeddings import compute_embeddings
    from samscope.instance.scale import _resize_labels
    from samscope.prompting import segment_from_boxes

    image, labels = _example()
    zoom = 3.2
    big = resize_plane(image, zoom)  # nuclei of ≈97 px in an 819² image (tiled)
    gt = _resize_labels(labels, big.shape)
    emb = compute_embeddings(big, scale_aware_model)
    assert emb.tiling is not None
    ids = [i for i in np.unique(gt)[1:] if not np.any(np.isin(i, np.r_[gt[0], gt[-1], gt[:, 0], gt[:, -1]]))]
    boxes = []
    for i in ids[:3]:
        ys, xs = np.nonzero(gt == i)
        boxes.append((ys.min(), xs.min(), ys.max() + 1, xs.max() + 1))
    res = segment_from_boxes(scale_aware_model, emb, np.array(boxes))
    windows = res.windows
    assert np.all(windows[:, 2] - windows[:, 0] > 300)  # zoomed out, not a 256-px tile
    for k, i in enumerate(ids[:3]):
        inter = np.count_nonzero(res.masks[k] & (gt == i))
        union = np.count_nonzero(res.masks[k] | (gt == i))
        assert inter / union > 0.75
