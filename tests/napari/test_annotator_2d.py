"""The 2-D annotator driven as a user does: clicks, boxes, buttons, thresholds, saving."""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import Qt
from tests.napari.conftest import interior_point, wait_idle, wait_ready

from samscope.napari.annotator_2d import AUTOMATIC, BOXES, COMMITTED, CURRENT, POINTS, Annotator2D


def _open(make_napari_viewer, qtbot, image, model="samscope-generalist"):
    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei")
    widget = Annotator2D(viewer, model=model)
    viewer.window.add_dock_widget(widget)
    qtbot.mouseClick(widget.embed_button, Qt.LeftButton)
    wait_ready(qtbot, widget)
    wait_idle(qtbot, widget)
    return viewer, widget


def test_ten_objects_by_one_click_each(make_napari_viewer, qtbot, nuclei):
    image, gt = nuclei
    viewer, widget = _open(make_napari_viewer, qtbot, image)
    assert widget.cache_path is not None and widget.cache_path.exists()  # through the zarr cache
    ids, areas = np.unique(gt[gt > 0], return_counts=True)
    chosen = ids[np.argsort(-areas, kind="stable")[:10]]  # the ten largest nuclei
    points = viewer.layers[POINTS]
    for obj in chosen:
        points.add([interior_point(gt == obj)])  # one click: the live mask follows
        assert viewer.layers[CURRENT].data.any()
        qtbot.mouseClick(widget.commit_button, Qt.LeftButton)
        assert len(points.data) == 0 and not viewer.layers[CURRENT].data.any()
    committed = viewer.layers[COMMITTED].data
    assert sorted(np.unique(committed[committed > 0])) == list(range(1, 11))
    ious = []
    for k, obj in enumerate(chosen, 1):
        a, b = committed == k, gt == obj
        ious.append((a & b).sum() / (a | b).sum())
    assert np.mean(ious) >= 0.85, ious
    assert widget.table.rowCount() == 10


def test_negative_points_boxes_undo_and_save(make_napari_viewer, qtbot, nuclei, tmp_path):
    image, gt = nuclei
    viewer, widget = _open(make_napari_viewer, qtbot, image)
    ids, areas = np.unique(gt[gt > 0], return_counts=True)
    big = ids[np.argsort(-areas)[:2]]
    boxes = viewer.layers[BOXES]
    for obj in big:  # two boxes: two objects at once
        ys, xs = np.nonzero(gt == obj)
        boxes.add_rectangles(np.array([[ys.min() - 2, xs.min() - 2], [ys.max() + 2, xs.max() + 2]]))
    assert len(np.unique(viewer.layers[CURRENT].data)) == 3
    assert widget.commit() == [1, 2]
    # a positive and a negative point
    third = ids[np.argsort(-areas)[2]]
    viewer.layers[POINTS].add([interior_point(gt == third)])
    widget.negative_check.click()
    assert widget.negative_check.isChecked()
    viewer.layers[POINTS].add([interior_point(gt == big[0])])
    assert list(viewer.layers[POINTS].features["positive"]) == [True, False]
    assert widget.commit() == [3]
    assert widget.undo() == 3 and widget.store.n_objects == 2
    assert not (viewer.layers[COMMITTED].data == 3).any()
    widget.save_edit.setText(str(tmp_path / "out"))
    qtbot.mouseClick(widget.save_button, Qt.LeftButton)
    import json

    from samscope.io import read_labels

    saved = read_labels(tmp_path / "out" / "nuclei_labels.tif").data
    np.testing.assert_array_equal(saved, viewer.layers[COMMITTED].data)
    table = (tmp_path / "out" / "nuclei_objects.csv").read_text().splitlines()
    assert table[0].startswith("id,") and "score" in table[0] and len(table) == 3
    prompts = json.loads((tmp_path / "out" / "nuclei_prompts.json").read_text())
    assert set(prompts["objects"]) == {"1", "2"} and len(prompts["objects"]["1"]["boxes"]) == 2


def test_automatic_then_cheap_threshold_change(make_napari_viewer, qtbot, nuclei, monkeypatch):
    image, gt = nuclei
    viewer, widget = _open(make_napari_viewer, qtbot, image)
    qtbot.mouseClick(widget.auto_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    assert widget.prediction.mode == "ais" and widget.prediction.cheap
    first = viewer.layers[AUTOMATIC].data.copy()
    assert 8 <= len(np.unique(first)) - 1 <= 20
    # raising the foreground threshold must not run the network again
    import samscope.instance.segment as seg

    def forbidden(*a, **k):
        raise AssertionError("the network ran again")

    monkeypatch.setattr(seg, "scaled_ais_maps", forbidden)
    monkeypatch.setattr(seg, "segment", forbidden)
    widget.settings.widget("foreground_thresh").setValue(0.95)
    qtbot.waitUntil(lambda: not np.array_equal(viewer.layers[AUTOMATIC].data, first), timeout=10_000)
    wait_idle(qtbot, widget)
    assert (viewer.layers[AUTOMATIC].data > 0).sum() < (first > 0).sum()
    qtbot.mouseClick(widget.accept_button, Qt.LeftButton)
    assert widget.store.n_objects == len(np.unique(viewer.layers[AUTOMATIC].data)) - 1


def test_missing_model_shows_the_import_command(make_napari_viewer, qtbot, nuclei):
    image, _ = nuclei
    viewer = make_napari_viewer()
    viewer.add_image(image, name="nuclei")
    widget = Annotator2D(viewer, model="vit_b_lm")  # a published model, not downloaded here
    qtbot.mouseClick(widget.embed_button, Qt.LeftButton)
    wait_idle(qtbot, widget)
    text = widget.status.text()
    assert "samscope models import" in text and "Traceback" not in text
    assert widget.embeddings is None
