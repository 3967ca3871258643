"""Distance-map mode (SAMCell): head, sliding windows, watershed (samscope.instance.distance)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samscope.errors import CheckpointError, InputError
from samscope.evaluation.metrics import mean_segmentation_accuracy
from samscope.instance.distance import (
    DistanceConfig,
    distance_from_map,
    predict_distance_map,
    segment_distance,
    window_starts,
)
from samscope.instance.instances import Instances
from samscope.instance.targets import distance_map_target
from samscope.models.distance_head import DistanceMapHead


@pytest.fixture(scope="module")
def dist_model():
    """vit_test with a randomly initialised distance head attached."""
    from samscope.models.registry import load_model

    model = load_model("vit_test", device="cpu")
    torch.manual_seed(0)
    model.distance_head = DistanceMapHead.for_architecture("vit_test").eval()
    return model


def _cells(shape=(200, 260), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    gt = np.zeros(shape, np.int32)
    k = 1
    for cy in range(20, shape[0] - 10, 34):
        for cx in range(20, shape[1] - 10, 34):
            r = rng.integers(9, 17)  # some neighbours touch
            gt[((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) & (gt == 0)] = k
            k += 1
    return gt


class _Identity:
    """A stand-in model whose "distance map" is its own (de-standardised) encoder input.

    ``encode`` passes the first channel through and the head undoes the standardisation, so
    :func:`predict_distance_map` must return the 0–1 image it windowed: this checks padding,
    window placement, resizing and blending, independently of any network.
    """

    def __init__(self, card):
        self.card = card
        self.image_size = 128
        self.device = torch.device("cpu")
        mean, std = card.normalisation.mean[0], card.normalisation.std[0]

        class Head(torch.nn.Module):
            def forward(self, x):
                return (x * std + mean) / 255.0

        self.distance_head = Head()
        self.calls = 0

    def encode(self, pixels):
        self.calls += 1
        assert pixels.shape == (1, 3, 128, 128)
        return pixels[:, :1].clone()


# -- head --------------------------------------------------------------------------------------


def test_head_shapes_and_state_dict_round_trip():
    head = DistanceMapHead(32, hidden=16, upsample_steps=3).eval()
    emb = torch.randn(2, 32, 8, 8)
    out = head(emb)
    assert out.shape == (2, 1, 64, 64) and head.scale == 8
    assert 0 <= out.min() and out.max() <= 1
    again = DistanceMapHead.from_state_dict(head.state_dict())
    assert again.config() == head.config()
    assert head.config() == {"embed_dim": 32, "hidden": 16, "upsample_steps": 3, "out_channels": 1}
    torch.testing.assert_close(again(emb), out)
    with pytest.raises(CheckpointError):
        DistanceMapHead.from_state_dict({"out_conv.weight": torch.zeros(1)})
    three = DistanceMapHead.from_state_dict(DistanceMapHead(32, out_channels=3).state_dict())
    assert three(emb).shape == (2, 3, 32, 32)
    state = dict(head.state_dict())
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError):
        DistanceMapHead.from_state_dict(state)


# -- config ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"peak_thresh": 1.1},
        {"fill_thresh": -0.01},
        {"peak_thresh": 0.2, "fill_thresh": 0.3},
        {"window": 4},
        {"overlap": 128},
        {"overlap": -1},
        {"clahe": 1},
        {"clahe_clip_limit": 0.0},
        {"min_size": 1.5},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(InputError):
        DistanceConfig(**kwargs)


def test_config_defaults_are_samcell():
    cfg = DistanceConfig().resolve()
    assert (cfg.peak_thresh, cfg.fill_thresh, cfg.window, cfg.overlap, cfg.clahe) == (
        0.47,
        0.09,
        256,
        32,
        True,
    )
    assert cfg.min_size == 0


def test_card_calibration_fills_only_unset_thresholds():
    from samscope.models.card import AutomaticDefaults

    auto = AutomaticDefaults(
        min_size=200, mode_settings=(("distance", "peak_thresh", 0.3), ("distance", "min_size", 40))
    )
    cfg = DistanceConfig().resolve(auto)
    assert (cfg.peak_thresh, cfg.fill_thresh, cfg.min_size) == (0.3, 0.09, 40)
    assert DistanceConfig(peak_thresh=0.6).resolve(auto).peak_thresh == 0.6
    with pytest.raises(InputError):  # the card's peak is below the fill the user asked for
        DistanceConfig(fill_thresh=0.35).resolve(auto)


def test_window_starts_cover_and_end_flush():
    assert window_starts(100, 256, 192) == [0]
    assert window_starts(320, 256, 192) == [0, 64]
    starts = window_starts(1000, 256, 192)
    assert starts[-1] == 1000 - 256 and np.all(np.diff(starts) <= 192)


# -- sliding windows -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(300, 410), (40, 70), (256, 256)])
def test_windows_reassemble_the_image(dist_model, shape):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.sin(yy / 17.0) + np.cos(xx / 23.0) + 0.01 * rng.normal(size=shape)
    stub = _Identity(dist_model.card)
    cfg = DistanceConfig(window=64, overlap=8, clahe=False)
    out = predict_distance_map(stub, image, config=cfg)
    assert out.shape == shape and out.dtype == np.float32
    from samscope.image import normalize_percentile

    norm = dist_model.card.normalisation
    expected = normalize_percentile(image, low=norm.low_percentile, high=norm.high_percentile)
    # bilinear up- then down-sampling by 2 is exact up to the windows' edge pixels
    assert np.abs(out - expected).mean() < 2e-3
    ph, pw = max(shape[0] + 16, 64), max(shape[1] + 16, 64)
    assert stub.calls == len(window_starts(ph, 64, 48)) * len(window_starts(pw, 64, 48))


def test_predict_distance_map_on_test_model(dist_model):
    gt = _cells()
    rng = np.random.default_rng(0)
    image = (500 + 200 * (gt > 0) + rng.normal(0, 10, gt.shape)).astype(np.uint16)
    dist = predict_distance_map(dist_model, image, config=DistanceConfig(window=128, overlap=16))
    assert dist.shape == gt.shape and dist.dtype == np.float32
    assert 0 <= dist.min() and dist.max() <= 1
    inst = segment_distance(
        dist_model, image, config=DistanceConfig(window=128, overlap=16, peak_thresh=0.5)
    )
    assert isinstance(inst, Instances) and inst.mode == "distance"
    assert inst.labels.shape == gt.shape and inst.n == len(inst.scores) == inst.labels.max()


# -- decoding --------------------------------------------------------------------------------------


def test_gt_map_recovers_ground_truth():
    gt = _cells()
    dist = distance_map_target(gt)
    inst = distance_from_map(dist, config=DistanceConfig(fill_thresh=0.0))
    assert inst.n == gt.max()
    assert mean_segmentation_accuracy(gt, inst.labels) > 0.98
    np.testing.assert_allclose(inst.scores, 1.0)  # each cell's peak
    default = distance_from_map(dist)  # SAMCell's thresholds: every cell found, rim trimmed
    assert default.n == gt.max()


def test_rethreshold_cached_map_without_the_network(dist_model, monkeypatch):
    gt = _cells()
    image = (500 + 200 * (gt > 0)).astype(np.float32)
    cfg = DistanceConfig(window=128, overlap=16)
    dist = predict_distance_map(dist_model, image, config=cfg)

    def boom(*args, **kwargs):
        raise AssertionError("the network must not run")

    monkeypatch.setattr(dist_model, "encode", boom)
    counts = [
        distance_from_map(dist, config=DistanceConfig(peak_thresh=p, fill_thresh=0.0)).n
        for p in (0.0, 0.5, 1.0)
    ]
    assert counts[-1] == 0 and counts[0] <= 1  # nothing above 1; everything one region at 0


def test_constant_and_empty_images(dist_model, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("the network must not run")

    monkeypatch.setattr(dist_model, "encode", boom)
    for image in (np.zeros((50, 60)), np.full((50, 60), 9, np.uint16), np.zeros((0, 5))):
        inst = segment_distance(dist_model, image)
        assert inst.n == 0 and inst.labels.shape == image.shape
    assert predict_distance_map(dist_model, np.ones((8, 9))).max() == 0


def test_bad_input(dist_model):
    with pytest.raises(InputError, match="2-D grey"):
        segment_distance(dist_model, np.zeros((10, 10, 3)))
    with pytest.raises(InputError, match="NaN"):
        segment_distance(dist_model, np.full((10, 10), np.nan))


def test_missing_head_lists_supported_modes(dist_model):
    from samscope.models.registry import load_model

    plain = load_model("vit_test", device="cpu")
    plain.distance_head = None
    with pytest.raises(InputError, match=r"cannot run mode 'distance'.*supports: amg, ais, apg"):
        segment_distance(plain, np.random.default_rng(0).random((32, 32)))
    with pytest.raises(InputError, match="distance head"):
        predict_distance_map(plain, np.random.default_rng(0).random((32, 32)))
