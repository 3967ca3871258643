"""Corrective clicks in the 2-D annotator: a new point changes the live mask only near the click."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from scipy import ndimage as ndi
from tests.napari.conftest import interior_point, wait_idle, wait_ready

from samscope.napari.annotator_2d import CURRENT, POINTS, Annotator2D
from samscope.prompt_corrections import refine
from samscope.prompt_inputs import local_radius


def test_a_correction_click_changes_the_mask_only_near_the_click(make_napari_viewer, qtbot, nuclei):
    image, gt = nuclei
    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei")
    widget = Annotator2D(viewer, model="samscope-generalist")
    viewer.window.add_dock_widget(widget)
    qtbot.mouseClick(widget.embed_button, Qt.LeftButton)
    wait_ready(qtbot, widget)
    wait_idle(qtbot, widget)

    ids, areas = np.unique(gt[gt > 0], return_counts=True)
    obj = ids[np.argsort(-areas, kind="stable")[2]]
    first = interior_point(gt == obj)
    points = viewer.layers[POINTS]
    points.add([first])
    before = viewer.layers[CURRENT].data > 0
    state = widget.live
    assert before.any() and state is not None and (state.mask == before).all()

    # a negative click 2 px inside the mask, as far from the first click as possible
    depth = ndi.distance_transform_edt(before)
    ring = np.argwhere((depth >= 2) & (depth < 3))
    click = ring[np.argmax(((ring - np.array(first)) ** 2).sum(1))].astype(float)
    widget.negative_check.setChecked(True)
    points.add([click])
    after = viewer.layers[CURRENT].data > 0

    radius = local_radius(widget.model, widget.embeddings)
    yy, xx = np.mgrid[: after.shape[0], : after.shape[1]]
    near = (yy - click[0]) ** 2 + (xx - click[1]) ** 2 <= radius**2
    pts, lab = np.array([first, click]), np.array([1, 0])
    replaced = refine(widget.model, widget.embeddings, pts, lab, None, state, merge="replace").mask
    assert (replaced != before)[~near].any()  # re-decoding alone would move the far boundary too
    assert (after[~near] == before[~near]).all()  # the annotator keeps it where nobody clicked
    assert (after[near] == replaced[near]).all()  # and takes the decoder's correction at the click
    assert widget.live is not None and widget.live.points.shape == (2, 2)

    # removing the correction decodes the object afresh from the first click alone
    points.data = points.data[:1]
    again = viewer.layers[CURRENT].data > 0
    assert (again == before).all()
