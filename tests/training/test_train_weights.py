"""Weighted training data: each train_images entry gets its share of the patches."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from samscope.errors import InputError
from samscope.training.config import TrainConfig
from samscope.training.data import LabelledImage, PatchDataset, WeightedSamples
from samscope.training.setup import build_sources


def _sample(value: float, name: str) -> LabelledImage:
    img = np.full((1, 64, 64), value, np.float32)
    lab = np.zeros((64, 64), np.int32)
    lab[20:40, 20:40] = 1
    return LabelledImage(img, lab, None, name)


def test_weighted_samples_probabilities():
    ws = WeightedSamples([[_sample(0.1, "a")] * 9, [_sample(0.9, "b")]], [0.5, 0.5])
    assert len(ws) == 10
    assert ws.probabilities[:9].sum() == pytest.approx(0.5) and ws.probabilities[9] == pytest.approx(0.5)
    ds = PatchDataset(ws, patch_size=64, augment=None, seed=0)
    from_b = np.mean([float(ds[i]["image"].mean()) > 0.5 for i in range(200)])
    assert 0.4 < from_b < 0.6  # unweighted it would be 0.1


def test_weights_from_the_config(tmp_path):
    for name, n in (("big", 8), ("small", 1)):
        img = np.random.default_rng(0).integers(0, 255, (n, 64, 64)).astype(np.uint8)
        lab = np.zeros((n, 64, 64), np.uint16)
        lab[:, 10:30, 10:30] = 1
        tifffile.imwrite(tmp_path / f"{name}.tif", img)
        tifffile.imwrite(tmp_path / f"{name}_labels.tif", lab)
    data = {
        "train_images": [str(tmp_path / "big.tif"), str(tmp_path / "small.tif")],
        "train_labels": [str(tmp_path / "big_labels.tif"), str(tmp_path / "small_labels.tif")],
        "train_weights": [0.25, 0.75],
        "val_fraction": 0.0,
        "val_images": [str(tmp_path / "small.tif")],
        "val_labels": [str(tmp_path / "small_labels.tif")],
    }
    cfg = TrainConfig.from_dict({"data": data})
    assert cfg.data.train_weights == (0.25, 0.75)
    src = build_sources(cfg)
    assert isinstance(src.train, WeightedSamples) and len(src.train) == 9
    assert src.train.probabilities[-1] == pytest.approx(0.75)
    bad = TrainConfig.from_dict({"data": {**data, "train_weights": [1.0]}})
    with pytest.raises(InputError, match="one weight per entry"):
        build_sources(bad)
    with pytest.raises(InputError, match="list of numbers"):
        TrainConfig.from_dict({"data": {**data, "train_weights": 3}})
