"""The 3-D annotator: one click propagated through the volume, a correction, automatic 3-D."""

from __future__ import annotations

import numpy as np
from tests.napari.conftest import interior_point, wait_idle, wait_ready

from samscope.napari.annotator_2d import AUTOMATIC, BOXES, COMMITTED, CURRENT, POINTS
from samscope.napari.annotator_3d import Annotator3D


def test_propagate_correct_commit_and_automatic(make_napari_viewer, qtbot, nuclei_volume, tmp_path):
    volume, truth = nuclei_volume
    viewer = make_napari_viewer()
    viewer.add_image(volume, name="volume")
    widget = Annotator3D(viewer, model="samscope-lm")  # one scale: no size estimate
    widget.embed_button.click()
    wait_ready(qtbot, widget)
    wait_idle(qtbot, widget)
    ids, areas = np.unique(truth[2][truth[2] > 0], return_counts=True)
    obj = ids[np.argmax(areas)]
    y, x = interior_point(truth[2] == obj)
    viewer.layers[POINTS].add([[2, y, x]])
    widget.segment_button.click()
    wait_idle(qtbot, widget)
    mask = viewer.layers[CURRENT].data > 0
    planes = np.flatnonzero(mask.any(axis=(1, 2)))
    assert 2 in planes and len(planes) >= 3  # followed through several planes
    a, b = mask[2], truth[2] == obj
    assert (a & b).sum() / (a | b).sum() > 0.8
    # a correction on another plane: a box there around another nucleus moves the object there
    top = int(planes.max())
    others = [o for o in np.unique(truth[top][truth[top] > 0]) if o != obj]
    ys, xs = np.nonzero(truth[top] == others[0])
    y0, x0, y1, x1 = ys.min(), xs.min(), ys.max(), xs.max()
    viewer.layers[BOXES].add_rectangles(
        np.array([[top, y0, x0], [top, y0, x1], [top, y1, x1], [top, y1, x0]], float))
    before = mask.copy()
    widget.segment_button.click()
    wait_idle(qtbot, widget)
    after = viewer.layers[CURRENT].data > 0
    moved = after[top] & (truth[top] == others[0])
    assert moved.sum() > 0.5 * (truth[top] == others[0]).sum() and not np.array_equal(after, before)
    assert np.array_equal(after[2], before[2])  # the anchor plane is left as it was
    assert widget.commit() == 1
    assert (viewer.layers[COMMITTED].data == 1).sum() == after.sum()
    written = widget.save(tmp_path / "out")
    import tifffile

    assert tifffile.imread(written["labels"]).shape == volume.shape
    widget.auto_button.click()
    wait_idle(qtbot, widget)
    auto = viewer.layers[AUTOMATIC].data
    assert auto.shape == volume.shape and auto.max() >= 2
