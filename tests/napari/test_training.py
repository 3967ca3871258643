"""Training in the loop: a tiny run on saved annotations, progress, before/after, cancel."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from tests.napari.conftest import wait_idle

from samscope.napari.session import ObjectStore
from samscope.napari.training import TrainingWidget


@pytest.fixture()
def annotated(tmp_path, nuclei):
    """Two 128² images with their labels saved as the annotators save them."""
    image, gt = nuclei
    folder = tmp_path / "images"
    folder.mkdir()
    for i, sl in enumerate([np.s_[:128, :128], np.s_[128:, 128:]]):
        tifffile.imwrite(folder / f"img{i}.tif", image[sl])
        store = ObjectStore.empty((128, 128))
        store.replace_labels(gt[sl])
        store.save(folder / "annotations", f"img{i}")
    return folder


def _widget(make_napari_viewer, folder, steps):
    viewer = make_napari_viewer()
    widget = TrainingWidget(viewer, model="vit_test", images=folder)
    widget.steps_spin.setValue(steps)
    widget.patch_spin.setValue(128)
    return widget


def test_training_in_the_loop(make_napari_viewer, qtbot, annotated):
    from samscope.models.registry import load_model

    widget = _widget(make_napari_viewer, annotated, steps=2)

    class Annotator:  # what the widget switches: any annotator with a model row
        from samscope.napari._qt import ModelRow

        model_row = ModelRow("vit_test")

    other = Annotator()
    widget.annotators.append(other)
    widget.train_button.click()
    wait_idle(qtbot, widget, timeout=300_000)
    r = widget.result
    assert r is not None and not r.cancelled and r.steps == 2
    assert [s for s, _ in widget.losses] == [1, 2] and widget.progress.value() == 2
    assert np.isfinite(r.before) and np.isfinite(r.after)
    assert "before" in widget.status.text() and "after" in widget.status.text()
    assert load_model(r.model_path, device="cpu").instance_head is not None  # a loadable checkpoint
    assert other.model_row.name() == str(r.model_path)


def test_training_can_be_cancelled(make_napari_viewer, qtbot, annotated):
    widget = _widget(make_napari_viewer, annotated, steps=10_000)
    widget.train_button.click()
    qtbot.waitUntil(lambda: len(widget.losses) >= 1, timeout=300_000)
    widget.cancel_button.click()
    wait_idle(qtbot, widget, timeout=120_000)
    r = widget.result
    assert r.cancelled and r.steps < 10_000 and r.checkpoint is not None and r.checkpoint.exists()
    assert "cancelled" in widget.status.text()
