"""The segment() entry point: mode choice, tiling, empty images, config checks."""

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.instance.ais import AISConfig
from samscope.instance.amg import AMGConfig
from samscope.instance.instances import Instances, object_table
from samscope.instance.segment import choose_mode, segment


@pytest.fixture(scope="module")
def model():
    from samscope.models.registry import load_model

    return load_model("vit_test", device="cpu")


@pytest.fixture()
def image():
    return np.random.default_rng(0).random((150, 130)).astype(np.float32)


def test_auto_mode_prefers_the_card_default_then_ais(model, monkeypatch):
    assert choose_mode(model) == "ais"
    import dataclasses

    monkeypatch.setattr(model, "card", dataclasses.replace(model.card, default_mode="apg"))
    assert choose_mode(model) == "apg"
    monkeypatch.setattr(model, "instance_head", None)
    assert choose_mode(model) == "amg"  # apg needs the head it no longer has


@pytest.mark.parametrize("mode", ["ais", "apg"])
def test_modes_run_untiled_and_tiled(model, image, mode):
    whole = segment(image, model, mode=mode, config=None)
    tiled = segment(image, model, mode=mode, tile_shape=80, halo=16)  # 2 × 2 tiles
    for res in (whole, tiled):
        assert isinstance(res, Instances) and res.labels.shape == image.shape
        assert res.mode == mode


def test_amg_runs(model, image):
    res = segment(image, model, mode="amg", config=AMGConfig(points_per_side=4))
    assert res.labels.shape == image.shape and res.masks is not None


def test_tiled_ais_blends_maps_before_the_watershed(model, image, monkeypatch):
    """A tiled AIS run equals the watershed of blended per-tile maps, not a stitching of labels."""
    import samscope.instance.ais as ais

    seen = []
    real = ais.ais_from_maps

    def spy(maps, *, config=None):
        seen.append(maps.shape)
        return real(maps, config=config)

    monkeypatch.setattr(ais, "ais_from_maps", spy)
    segment(image, model, mode="ais", tile_shape=64, halo=16)
    assert seen == [(3, 150, 130)]  # one watershed over the whole image


def test_constant_and_empty_images_give_empty_results(model):
    for img in (np.zeros((40, 50), np.uint16), np.full((40, 50), 7.5, np.float32)):
        res = segment(img, model)
        assert res.n == 0 and res.labels.shape == (40, 50) and not res.labels.any()


def test_errors(model, image):
    with pytest.raises(InputError, match="it supports: amg, ais, apg, foreground"):
        segment(image, model, mode="distance")
    with pytest.raises(InputError, match="unknown mode"):
        segment(image, model, mode="nope")
    with pytest.raises(InputError, match="takes a AMGConfig"):
        segment(image, model, mode="amg", config=AISConfig())
    with pytest.raises(InputError, match="2-D"):
        segment(np.zeros((3, 4, 20, 20)), model)
    with pytest.raises(InputError):
        AISConfig(foreground_thresh=1.5)  # validated before any work


def test_object_table_rows(model, image):
    res = segment(image, model, mode="apg", config=None)
    rows = object_table(res)
    assert len(rows) == len([r for r in rows if r["area"] > 0])
    for row in rows:
        assert set(row) == {
            "id",
            "area",
            "centroid_y",
            "centroid_x",
            "bbox_y0",
            "bbox_x0",
            "bbox_y1",
            "bbox_x1",
            "score",
        }
