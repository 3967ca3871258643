"""The tracking annotator: one click followed through time, a division, CTC export."""

from __future__ import annotations

import numpy as np
import pytest
from tests.napari.conftest import interior_point, wait_idle, wait_ready

from samscope.napari.annotator_2d import CURRENT, POINTS
from samscope.napari.tracking import TRACKS, TrackingAnnotator


@pytest.fixture(scope="module")
def movie():
    """8 frames of simulated nuclei (128²); track 1 divides into 10 and 11 on frame 3."""
    from samscope.simulate.timelapse import TimelapseConfig, nuclei_timelapse

    [s] = nuclei_timelapse(1, (128, 128), rng=1, config=TimelapseConfig(
        frames=8, cycle_frames=(8.0, 12.0), enter_rate=0.0))
    table = {int(r[0]): r for r in s.lineage.table().tolist()}
    assert table[10][3] == table[11][3] == 1 and table[10][1] == 3
    return np.rint(s.image).astype(np.uint16), s.labels


def test_track_divide_and_export(make_napari_viewer, qtbot, movie, tmp_path):
    image, truth = movie
    viewer = make_napari_viewer()
    viewer.add_image(image, name="movie")
    widget = TrackingAnnotator(viewer, model="samscope-lm")  # one scale: no size estimate
    widget.embed_button.click()
    wait_ready(qtbot, widget)
    wait_idle(qtbot, widget)
    y, x = interior_point(truth[0] == 1)
    viewer.layers[POINTS].add([[0, y, x]])
    widget.segment_button.click()
    wait_idle(qtbot, widget)
    current = viewer.layers[CURRENT].data
    assert current[0].any() and current[1].any()  # followed forward
    a, b = current[0] > 0, truth[0] == 1
    assert (a & b).sum() / (a | b).sum() > 0.7
    if len(widget.lineage_ids(widget.root)) < 3:  # division not found: the user marks it
        viewer.dims.set_current_step(0, 3)
        for d in (10, 11):
            viewer.layers[POINTS].add([[3, *interior_point(truth[3] == d)]])
        widget.divide_button.click()
        wait_idle(qtbot, widget)
    ids = widget.lineage_ids(widget.root)
    assert len(ids) >= 3
    children = widget.tracker.info(widget.root).children
    assert len(children) == 2
    tracks = viewer.layers[TRACKS]
    assert set(tracks.graph) >= set(children)
    root = widget.root
    assert widget.commit() == root and widget.root is None
    out = widget.save(tmp_path / "out")
    res = (out["ctc"] / "res_track.txt").read_text().split()
    rows = np.array(res, int).reshape(-1, 4)
    assert {int(c) for c in children} <= set(rows[rows[:, 3] > 0, 0].tolist())
    assert len(list(out["ctc"].glob("mask*.tif"))) == 8
