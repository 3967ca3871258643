"""The 2-D annotator prompts large objects at the model's working size, as ``samscope prompt`` does."""

from __future__ import annotations

import numpy as np
import pytest
from qtpy.QtCore import Qt
from scipy import ndimage as ndi
from tests.napari.conftest import interior_point, wait_idle, wait_ready

from samscope.napari.annotator_2d import COMMITTED, CURRENT, POINTS, Annotator2D

ZOOM = 2.5  # the example's ≈ 31-px nuclei become ≈ 77 px: far above the 28-px working size


@pytest.fixture(scope="module")
def big_nuclei(nuclei):
    image, gt = (a[:160, :160] for a in nuclei)
    return (ndi.zoom(image.astype(np.float32), ZOOM, order=1).astype(image.dtype),
            ndi.zoom(gt, ZOOM, order=0))


def test_large_nuclei_are_prompted_at_the_working_scale(make_napari_viewer, qtbot, big_nuclei):
    image, gt = big_nuclei
    viewer = make_napari_viewer()
    viewer.add_image(image, name="big")
    widget = Annotator2D(viewer, model="samscope-generalist")
    viewer.window.add_dock_widget(widget)
    widget.diameter_spin.setValue(31.0 * ZOOM)
    qtbot.mouseClick(widget.embed_button, Qt.LeftButton)
    wait_ready(qtbot, widget)
    wait_idle(qtbot, widget)
    emb = widget.embeddings
    assert emb.scale == pytest.approx(28.0 / (31.0 * ZOOM), rel=0.02)  # embedded shrunk ×≈0.36
    assert emb.plane_shape == image.shape and "×0.36" in widget.status.text()
    assert "-x0.36" in widget.cache_path.name  # never mixed up with a native-scale cache
    ids, areas = np.unique(gt[gt > 0], return_counts=True)
    chosen = ids[np.argsort(-areas, kind="stable")[:5]]
    for obj in chosen:
        viewer.layers[POINTS].add([interior_point(gt == obj)])
        assert viewer.layers[CURRENT].data.shape == image.shape
        qtbot.mouseClick(widget.commit_button, Qt.LeftButton)
    committed = viewer.layers[COMMITTED].data
    ious = [((committed == k) & (gt == obj)).sum() / ((committed == k) | (gt == obj)).sum()
            for k, obj in enumerate(chosen, 1)]
    assert np.mean(ious) >= 0.8, ious
