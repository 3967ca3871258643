"""Bad input fails with a clear error before any training step."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from samscope.errors import InputError
from samscope.training.trainer import Trainer


def pairs(tmp_path, images, labels):
    (tmp_path / "images").mkdir(parents=True)
    (tmp_path / "labels").mkdir()
    for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        tifffile.imwrite(tmp_path / "images" / f"{i}.tif", img)
        tifffile.imwrite(tmp_path / "labels" / f"{i}.tif", lab)
    return tmp_path


def config_on(data, out, **sections):
    from train_helpers import tiny_config

    return tiny_config(data, out, **sections)


def expect_error(config, match):
    with pytest.raises(InputError, match=match):
        Trainer(config, log=lambda *_: None)
    assert not (config.run.out_dir and __import__("pathlib").Path(config.run.out_dir).exists())


def test_image_and_label_shapes_differ(tmp_path):
    img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    lab = np.zeros((64, 60), np.uint16)
    lab[10:20, 10:20] = 1
    data = pairs(tmp_path / "d", [img], [lab])
    expect_error(config_on(data, tmp_path / "run"), r"shape \(64, 64\) but labels .* have \(64, 60\); image and label shapes must agree")


def test_no_objects_anywhere(tmp_path):
    img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    data = pairs(tmp_path / "d", [img, img], [np.zeros((64, 64), np.uint16)] * 2)
    expect_error(config_on(data, tmp_path / "run"), "none of the 2 sample")


def test_non_integer_labels(tmp_path):
    img = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    lab = np.zeros((64, 64), np.float32)
    lab[10:20, 10:20] = 1.5
    data = pairs(tmp_path / "d", [img], [lab])
    expect_error(config_on(data, tmp_path / "run"), "whole numbers")


def test_unequal_numbers_of_images_and_labels(tmp_path, blob_dir):
    import shutil

    shutil.copytree(blob_dir, tmp_path / "d")
    (tmp_path / "d" / "labels" / "img00.tif").unlink()
    expect_error(config_on(tmp_path / "d", tmp_path / "run"), "8 image file.*7 label file")


def test_missing_data_and_unknown_model(tmp_path, blob_dir):
    expect_error(config_on(tmp_path / "nothing", tmp_path / "run"), "does not exist|not found|no such")
    expect_error(config_on(blob_dir, tmp_path / "run", model={"model": "vit_zz"}), "vit_zz")


def test_unknown_field_before_training(tmp_path):
    from samscope.training.config import load_config

    path = tmp_path / "c.toml"
    path.write_text("[data]\npatch_sise = 256\n")
    with pytest.raises(InputError, match="'patch_sise'.*valid fields: .*patch_size"):
        load_config(path)


def test_masks_must_match_the_image(tmp_path):
    from samscope.training.data import from_arrays

    with pytest.raises(InputError, match="masks must be"):
        from_arrays(np.zeros((32, 32)), masks=np.zeros((2, 30, 32), bool))
    with pytest.raises(InputError, match="binary"):
        from_arrays(np.zeros((32, 32)), masks=np.full((1, 32, 32), 7, np.uint8))
