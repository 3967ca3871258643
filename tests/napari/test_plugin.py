"""The plugin's face to napari and the shell: manifest, reader/writer, sample data, annotate."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import numpy as np
import pytest
from tests.napari.conftest import EXAMPLES

from samscope.errors import InputError
from samscope.napari import _io

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "src" / "samscope" / "napari" / "napari.yaml"


def test_manifest_is_valid_and_every_command_imports():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_file(MANIFEST)
    assert manifest.name == "samscope"
    for command in manifest.contributions.commands:
        module, _, name = command.python_name.partition(":")
        assert callable(getattr(importlib.import_module(module), name)), command.id
    keys = {s.key for s in manifest.contributions.sample_data}
    assert keys == {"nuclei", "mitochondria"}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["napari.manifest"]["samscope"] == "samscope.napari:napari.yaml"
    assert {"napari>=0.5", "PyQt5>=5.15", "magicgui>=0.8"} <= set(project["optional-dependencies"]["gui"])


def test_reader_and_writer_round_trip(tmp_path, nuclei):
    _, gt = nuclei
    path = tmp_path / "img_labels.tif"
    assert _io.write_labels(str(path), gt, {}) == [str(path)]
    reader = _io.get_reader(str(path))
    [(data, meta, kind)] = reader(str(path))
    assert kind == "labels" and meta["name"] == "img_labels"
    np.testing.assert_array_equal(data, gt)
    [(image, _, kind)] = _io.get_reader(str(EXAMPLES / "nuclei.tif"))(str(EXAMPLES / "nuclei.tif"))
    assert kind == "image" and image.shape == (256, 256)
    assert _io.get_reader(str(tmp_path / "notes.txt")) is None


def test_sample_data_is_the_examples(nuclei):
    image, gt = nuclei
    (img, _, k1), (lab, _, k2) = _io.sample_nuclei()
    assert (k1, k2) == ("image", "labels")
    np.testing.assert_array_equal(img, image)
    np.testing.assert_array_equal(lab, gt)


def test_open_annotator_picks_the_annotator_from_the_axes(make_napari_viewer, tmp_path):
    from samscope.napari.annotator_2d import Annotator2D
    from samscope.napari.launch import annotator_for, open_annotator
    from samscope.napari.series import SeriesAnnotator

    viewer, widget = open_annotator(EXAMPLES / "nuclei.tif", viewer=make_napari_viewer(),
                                    model="vit_test")
    assert isinstance(widget, Annotator2D) and widget.image_combo.currentText() == "nuclei"
    assert widget.model_row.name() == "vit_test" and "nuclei" in viewer.layers
    folder = tmp_path / "empty"
    folder.mkdir()
    _, series = open_annotator(folder, viewer=make_napari_viewer())
    assert isinstance(series, SeriesAnnotator) and "no images" in series.annotator.status.text()
    assert series.trainer.annotators == [series.annotator]
    assert series.trainer.annotations_edit.text() == str(folder / "annotations")
    assert (annotator_for("ZYX"), annotator_for("TYX"), annotator_for("YXC")) == ("3d", "track", "2d")
    with pytest.raises(InputError):
        annotator_for("CYX")
    with pytest.raises(InputError, match="--mode"):
        open_annotator(EXAMPLES / "nuclei.tif", mode="4d")
    with pytest.raises(InputError, match="folder"):
        open_annotator(EXAMPLES / "nuclei.tif", mode="series", viewer=make_napari_viewer())


def test_cli_annotate_opens_the_viewer(monkeypatch):
    import napari
    import samscope.napari.launch as launch
    from samscope.cli.main import main

    calls = []
    monkeypatch.setattr(launch, "open_annotator", lambda path, **kw: calls.append((path, kw)))
    monkeypatch.setattr(napari, "run", lambda: calls.append("run"))
    main(["annotate", str(EXAMPLES / "nuclei.tif"), "--model", "samscope-lm", "--mode", "2d"])
    assert calls == [(EXAMPLES / "nuclei.tif", {"model": "samscope-lm", "mode": "2d"}), "run"]
