"""The image-series annotator: next/previous, labels saved as you go, resume."""

from __future__ import annotations

import numpy as np
import tifffile
from tests.napari.conftest import interior_point, wait_idle, wait_ready

from samscope.napari.annotator_2d import COMMITTED, POINTS
from samscope.napari.series import SeriesAnnotator


def _folder(tmp_path, nuclei):
    image, gt = nuclei
    folder = tmp_path / "series"
    folder.mkdir()
    crops = [(slice(0, 128), slice(0, 128)), (slice(0, 128), slice(128, 256)),
             (slice(128, 256), slice(0, 128))]
    for i, sl in enumerate(crops):
        tifffile.imwrite(folder / f"img{i}.tif", image[sl])
    return folder, [gt[sl] for sl in crops]


def _biggest(gt):
    ids, areas = np.unique(gt[gt > 0], return_counts=True)
    return gt == ids[np.argmax(areas)]


def test_series_saves_as_you_go_and_resumes(make_napari_viewer, qtbot, tmp_path, nuclei):
    folder, gts = _folder(tmp_path, nuclei)
    viewer = make_napari_viewer()
    series = SeriesAnnotator(viewer, model="samscope-generalist", folder=folder)
    wait_ready(qtbot, series.annotator)
    wait_idle(qtbot, series.annotator)
    assert series.index == 0 and "1 / 3" in series.position.text()
    viewer.layers[POINTS].add([interior_point(_biggest(gts[0]))])
    assert series.annotator.commit() == [1]
    series.next_button.click()  # saves img0, opens img1
    out = folder / "annotations"
    saved = tifffile.imread(out / "img0_labels.tif")
    assert saved.max() == 1 and (out / "img0_objects.csv").exists()
    wait_ready(qtbot, series.annotator)
    wait_idle(qtbot, series.annotator)
    assert series.index == 1 and not viewer.layers[COMMITTED].data.any()
    series.prev_button.click()  # img1 saved (empty), img0 shown with its labels
    wait_ready(qtbot, series.annotator)
    wait_idle(qtbot, series.annotator)
    np.testing.assert_array_equal(viewer.layers[COMMITTED].data, saved)
    assert series.done() == [True, True, False]

    # a new session on the same folder resumes at the first image not yet annotated
    again = SeriesAnnotator(make_napari_viewer(), model="samscope-generalist", folder=folder)
    wait_ready(qtbot, again.annotator)
    wait_idle(qtbot, again.annotator)
    assert again.index == 2 and "img2.tif" in again.position.text()
