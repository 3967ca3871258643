"""AIS: instance head maps + seeded watershed (samscope.instance.ais), and supported modes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from samscope.embeddings import compute_embeddings
from samscope.errors import InputError
from samscope.evaluation.metrics import mean_segmentation_accuracy
from samscope.instance.ais import AISConfig, ais_from_maps, predict_ais_maps, segment_ais
from samscope.instance.instances import Instances
from samscope.instance.modes import MODES, require_mode, supported_modes
from samscope.instance.targets import instance_distance_targets
from samscope.models.card import AutomaticDefaults


@pytest.fixture(scope="module")
def ais_model():
    from samscope.models.registry import load_model

    return load_model("vit_test", device="cpu")


@pytest.fixture(scope="module")
def discs():
    """(image, labels): bright discs, some touching, on a noisy background, 180 x 240."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:180, :240]
    gt = np.zeros((180, 240), np.int32)
    centres = [(30, 30), (30, 62), (90, 120), (140, 200), (150, 50), (60, 190)]
    for k, (cy, cx) in enumerate(centres, start=1):
        gt[((yy - cy) ** 2 + (xx - cx) ** 2 < 17**2) & (gt == 0)] = k
    image = 1000.0 + 400.0 * (gt > 0) + rng.normal(0, 20, gt.shape)
    return image.astype(np.uint16), gt


class _NoHead:
    """Stands in for a model without heads."""

    def __init__(self, card):
        self.card = card
        self.instance_head = None


# -- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"center_distance_thresh": 1.5},
        {"boundary_distance_thresh": -0.1},
        {"foreground_thresh": "0.5"},
        {"foreground_thresh": True},
        {"foreground_smoothing": -1.0},
        {"distance_smoothing": float("nan")},
        {"min_size": 2.5},
        {"min_size": -3},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(InputError):
        AISConfig(**kwargs)


def test_config_resolves_card_defaults_and_is_frozen():
    cfg = AISConfig(foreground_thresh=0.3)
    card = AutomaticDefaults(center_distance_thresh=0.4, min_size=50)
    r = cfg.resolve(card)
    assert (r.foreground_thresh, r.center_distance_thresh, r.min_size) == (0.3, 0.4, 50)
    assert r.distance_smoothing == 1.6 and AISConfig().resolve(None).boundary_distance_thresh == 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.min_size = 3  # type: ignore[misc]
    assert {f.name for f in dataclasses.fields(AISConfig)} <= {
        f.name for f in dataclasses.fields(AutomaticDefaults)
    }


# -- modes ---------------------------------------------------------------------------------------


def test_supported_modes(ais_model):
    assert supported_modes(ais_model) == ("amg", "ais", "apg", "foreground")
    bare = _NoHead(ais_model.card)
    assert supported_modes(bare) == ("amg", "foreground")
    bare.distance_head = object()
    assert supported_modes(bare) == ("amg", "distance", "foreground")
    assert set(supported_modes(bare)) <= set(MODES)
    with pytest.raises(InputError, match="unknown mode"):
        require_mode(ais_model, "cellpose")


def test_missing_head_lists_supported_modes(ais_model, discs):
    emb = compute_embeddings(discs[0], ais_model)
    bare = _NoHead(ais_model.card)
    with pytest.raises(InputError, match=r"cannot run mode 'ais'.*supports: amg, foreground"):
        segment_ais(bare, emb)
    with pytest.raises(InputError, match="supports: amg, foreground"):
        predict_ais_maps(bare, emb)


# -- end to end on the test model -------------------------------------------------------------


def test_segment_ais_end_to_end(ais_model, discs):
    image, _ = discs
    emb = compute_embeddings(image, ais_model)
    maps = predict_ais_maps(ais_model, emb)
    assert maps.shape == (3, 180, 240) and maps.dtype == np.float32
    assert 0 <= maps.min() and maps.max() <= 1
    inst = segment_ais(ais_model, emb, config=AISConfig(foreground_thresh=0.0))
    assert isinstance(inst, Instances) and inst.mode == "ais"
    assert inst.labels.shape == (180, 240) and inst.masks is None
    assert inst.labels.max() == inst.n == len(inst.scores)
    # the same post-processing on the cached maps gives the same result
    again = ais_from_maps(maps, config=AISConfig(foreground_thresh=0.0))
    np.testing.assert_array_equal(again.labels, inst.labels)


def test_tiled_maps_have_the_outer_tile_shape(ais_model, discs):
    emb = compute_embeddings(discs[0], ais_model, tile_shape=96, halo=16)
    for tile in (0, len(emb.tiles) - 1):
        maps = predict_ais_maps(ais_model, emb, tile=tile)
        assert maps.shape == (3, *emb.tiles[tile].outer_shape)
    inst = segment_ais(ais_model, emb, tile=1)
    assert inst.labels.shape == emb.tiles[1].outer_shape
    with pytest.raises(InputError, match="tile"):
        predict_ais_maps(ais_model, emb, tile=99)


def test_gt_maps_recover_ground_truth(discs):
    _, gt = discs
    inst = ais_from_maps(instance_distance_targets(gt))
    assert inst.n == gt.max()
    assert mean_segmentation_accuracy(gt, inst.labels) > 0.95
    np.testing.assert_allclose(inst.scores, 1.0, atol=0.05)  # mean foreground of each object


def test_rethreshold_cached_maps_without_the_network(ais_model, discs, monkeypatch):
    image, gt = discs
    emb = compute_embeddings(image, ais_model)
    maps = predict_ais_maps(ais_model, emb)

    def boom(*args, **kwargs):
        raise AssertionError("the network must not run")

    monkeypatch.setattr(ais_model.instance_head, "forward", boom)
    monkeypatch.setattr(ais_model, "encode", boom)
    for thresh in (0.0, 0.3, 0.6, 1.0):
        out = ais_from_maps(maps, config=AISConfig(foreground_thresh=thresh))
        assert out.labels.shape == (180, 240)
    assert ais_from_maps(maps, config=AISConfig(foreground_thresh=1.0)).n == 0
    # thresholds matter: on ground-truth maps a higher minimum size drops the objects
    target = instance_distance_targets(gt)
    assert ais_from_maps(target, config=AISConfig(min_size=10**6)).n == 0


@pytest.mark.parametrize("value", [0, 7, 65535])
def test_constant_image_is_empty_without_the_network(ais_model, monkeypatch, value):
    emb = compute_embeddings(np.full((64, 80), value, np.uint16), ais_model)

    def boom(*args, **kwargs):
        raise AssertionError("the head must not run on a constant image")

    monkeypatch.setattr(ais_model.instance_head, "forward", boom)
    inst = segment_ais(ais_model, emb)
    assert inst.n == 0 and inst.labels.shape == (64, 80) and inst.labels.max() == 0


def test_bad_threshold_fails_before_any_work(ais_model, discs, monkeypatch):
    emb = compute_embeddings(discs[0], ais_model)

    def boom(*args, **kwargs):
        raise AssertionError("no work before validation")

    monkeypatch.setattr(ais_model.instance_head, "forward", boom)
    with pytest.raises(InputError, match="center_distance_thresh"):
        segment_ais(ais_model, emb, config=AISConfig(center_distance_thresh=2.0))


def test_coarse_head_is_upsampled(ais_model, discs, monkeypatch):
    """A head predicting at 4 g (DistanceMapHead with three outputs) gives full-size maps."""
    from samscope.models.distance_head import DistanceMapHead

    emb = compute_embeddings(discs[0], ais_model)
    light = DistanceMapHead.for_architecture(ais_model.arch, out_channels=3).eval()
    monkeypatch.setattr(ais_model, "instance_head", light)
    maps = predict_ais_maps(ais_model, emb)
    assert maps.shape == (3, 180, 240) and 0 <= maps.min() and maps.max() <= 1
    inst = segment_ais(ais_model, emb, config=AISConfig(foreground_thresh=0.0))
    assert inst.labels.shape == (180, 240)


def test_half_last_level_runs_on_the_unetr_head_only(ais_model, discs, monkeypatch):
    """last_level="half": same shapes, different (approximate) maps; clear errors elsewhere."""
    from samscope.models.distance_head import DistanceMapHead

    emb = compute_embeddings(discs[0], ais_model)
    full = predict_ais_maps(ais_model, emb)
    half = predict_ais_maps(ais_model, emb, last_level="half")
    assert half.shape == full.shape == (3, 180, 240) and half.dtype == np.float32
    assert 0 <= half.min() and half.max() <= 1 and not np.array_equal(half, full)
    inst = segment_ais(ais_model, emb, config=AISConfig(foreground_thresh=0.0), last_level="half")
    assert inst.labels.shape == (180, 240)
    with pytest.raises(InputError, match="last_level must be one of full, half"):
        segment_ais(ais_model, emb, last_level="quarter")
    light = DistanceMapHead.for_architecture(ais_model.arch, out_channels=3).eval()
    monkeypatch.setattr(ais_model, "instance_head", light)
    with pytest.raises(InputError, match="needs µSAM's UNETR instance head"):
        segment_ais(ais_model, emb, last_level="half")
