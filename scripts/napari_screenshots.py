"""Regenerate the screenshots of every napari annotator in use, into ``docs/images/napari_*.png``.

Each annotator is driven as a user drives it (clicks added to the prompt layers, the widgets'
buttons), then napari's own screenshot of the whole window (canvas and the docked widget) is
saved:

- ``napari_2d.png``: ``examples/nuclei.tif``, ten nuclei committed by one click each, an eleventh
  being prompted (live mask), the object table beside it;
- ``napari_automatic.png``: automatic segmentation (AIS) with its settings;
- ``napari_series.png``: the image-series annotator on three crops, the second one open;
- ``napari_3d.png``: a nucleus propagated through a small volume (one click on the middle plane);
- ``napari_tracking.png``: one nucleus tracked through a simulated time-lapse, with its Tracks;
- ``napari_training.png``: training in the loop after a short run (before/after numbers).

Needs the gui extra and an X display for OpenGL (a virtual one is started with
``pyvirtualdisplay`` when ``DISPLAY`` is unset; or run under ``xvfb-run``)::

    python scripts/napari_screenshots.py            # all
    python scripts/napari_screenshots.py 2d 3d      # some
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images"


def _display():
    """A virtual X display when there is none; Qt draws real windows on it (xcb), so napari's
    window screenshot holds the OpenGL canvas (on the offscreen platform it comes out black)."""
    if not os.environ.get("DISPLAY"):
        from pyvirtualdisplay import Display

        display = Display(visible=False, size=(1600, 1000))
        display.start()
    else:
        display = None
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    return display


def _wait(widget, timeout=900.0) -> None:
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    end = time.perf_counter() + timeout
    while widget.background.busy or getattr(widget, "embeddings", 1) is None:
        app.processEvents()
        time.sleep(0.02)
        if time.perf_counter() > end:
            raise TimeoutError(f"{type(widget).__name__} did not finish")
    app.processEvents()


def _interior(mask):
    from scipy import ndimage as ndi

    d = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return [float(v) for v in np.unravel_index(int(np.argmax(d)), d.shape)]


def _viewer():
    from napari.settings import get_settings

    import napari

    get_settings().application.gui_notification_level = "none"  # no toasts over the canvas
    warnings.filterwarnings("ignore", message=".*PyQt5 backend.*")
    viewer = napari.Viewer(show=True, title="samscope")
    viewer.window.resize(1500, 900)
    return viewer


def _shot(viewer, name: str) -> None:
    from qtpy.QtWidgets import QApplication

    viewer.reset_view()
    for _ in range(5):
        QApplication.instance().processEvents()
        time.sleep(0.05)
    OUT.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(OUT / name), canvas_only=False)
    print(f"wrote {OUT / name}")
    viewer.close()


def _examples():
    import tifffile

    return (tifffile.imread(ROOT / "examples" / "nuclei.tif"),
            tifffile.imread(ROOT / "examples" / "nuclei_labels.tif"))


def shot_2d() -> None:
    from samscope.napari.annotator_2d import POINTS, Annotator2D

    image, gt = _examples()
    viewer = _viewer()
    viewer.add_image(image, name="nuclei")
    widget = Annotator2D(viewer, model="samscope-generalist")
    viewer.window.add_dock_widget(widget, name="samscope 2-D", area="right")
    widget.compute_embeddings()
    _wait(widget)
    ids, areas = np.unique(gt[gt > 0], return_counts=True)
    order = ids[np.argsort(-areas)]
    for obj in order[:10]:
        viewer.layers[POINTS].add([_interior(gt == obj)])
        widget.commit()
    viewer.layers[POINTS].add([_interior(gt == order[10])])
    _shot(viewer, "napari_2d.png")


def shot_automatic() -> None:
    from samscope.napari.annotator_2d import Annotator2D

    image, _ = _examples()
    viewer = _viewer()
    viewer.add_image(image, name="nuclei")
    widget = Annotator2D(viewer, model="samscope-generalist")
    viewer.window.add_dock_widget(widget, name="samscope 2-D", area="right")
    widget.compute_embeddings()
    _wait(widget)
    widget.segment_automatically()
    _wait(widget)
    _shot(viewer, "napari_automatic.png")


def shot_series() -> None:
    import tifffile

    from samscope.napari.annotator_2d import POINTS
    from samscope.napari.series import SeriesAnnotator

    image, gt = _examples()
    folder = Path(tempfile.mkdtemp()) / "series"
    folder.mkdir()
    for i, sl in enumerate([np.s_[:128, :128], np.s_[:128, 128:], np.s_[128:, :128]]):
        tifffile.imwrite(folder / f"crop{i}.tif", image[sl])
    viewer = _viewer()
    widget = SeriesAnnotator(viewer, model="samscope-generalist", folder=folder)
    viewer.window.add_dock_widget(widget, name="samscope series", area="right")
    _wait(widget.annotator)
    crop = gt[:128, :128]
    for obj in np.unique(crop[crop > 0])[:3]:
        viewer.layers[POINTS].add([_interior(crop == obj)])
        widget.annotator.commit()
    widget.next()
    _wait(widget.annotator)
    _shot(viewer, "napari_series.png")


def _volume():
    from scipy import ndimage as ndi

    image, gt = _examples()
    background = np.median(image[gt == 0])
    planes, truth = [], []
    for z in range(9):
        k = abs(z - 4)
        shrunk = np.zeros_like(gt)
        for obj in np.unique(gt[gt > 0]):
            m = ndi.binary_erosion(gt == obj, iterations=3 * k) if k else gt == obj
            shrunk[m] = obj
        planes.append(np.where(shrunk > 0, image, background).astype(np.uint16))
        truth.append(shrunk)
    return np.stack(planes), np.stack(truth)


def shot_3d() -> None:
    from samscope.napari.annotator_2d import POINTS
    from samscope.napari.annotator_3d import Annotator3D

    volume, truth = _volume()
    viewer = _viewer()
    viewer.add_image(volume, name="volume")
    widget = Annotator3D(viewer, model="samscope-lm")
    viewer.window.add_dock_widget(widget, name="samscope 3-D", area="right")
    widget.prepare()
    _wait(widget)
    ids, areas = np.unique(truth[4][truth[4] > 0], return_counts=True)
    for obj in ids[np.argsort(-areas)][:3]:
        viewer.layers[POINTS].add([[4, *_interior(truth[4] == obj)]])
        widget.segment_object()
        _wait(widget)
        widget.commit()
    viewer.dims.set_current_step(0, 3)
    _shot(viewer, "napari_3d.png")


def shot_tracking() -> None:
    from samscope.napari.annotator_2d import POINTS
    from samscope.napari.tracking import TrackingAnnotator
    from samscope.simulate.timelapse import TimelapseConfig, nuclei_timelapse

    [s] = nuclei_timelapse(1, (128, 128), rng=1, config=TimelapseConfig(
        frames=8, cycle_frames=(8.0, 12.0), enter_rate=0.0))
    movie = np.rint(s.image).astype(np.uint16)
    viewer = _viewer()
    viewer.add_image(movie, name="movie")
    widget = TrackingAnnotator(viewer, model="samscope-lm")
    viewer.window.add_dock_widget(widget, name="samscope tracking", area="right")
    widget.prepare()
    _wait(widget)
    viewer.layers[POINTS].add([[0, *_interior(s.labels[0] == 1)]])
    widget.segment_object()
    _wait(widget)
    if len(widget.lineage_ids(widget.root)) < 3:
        viewer.dims.set_current_step(0, 3)
        for d in (10, 11):
            viewer.layers[POINTS].add([[3, *_interior(s.labels[3] == d)]])
        widget.mark_division()
        _wait(widget)
    viewer.dims.set_current_step(0, 5)
    _shot(viewer, "napari_tracking.png")


def shot_training() -> None:
    import tifffile

    from samscope.napari.session import ObjectStore
    from samscope.napari.training import TrainingWidget

    image, gt = _examples()
    folder = Path(tempfile.mkdtemp()) / "images"
    folder.mkdir(parents=True)
    for i, sl in enumerate([np.s_[:128, :128], np.s_[128:, 128:]]):
        tifffile.imwrite(folder / f"img{i}.tif", image[sl])
        store = ObjectStore.empty((128, 128))
        store.replace_labels(gt[sl])
        store.save(folder / "annotations", f"img{i}")
    viewer = _viewer()
    viewer.add_image(image, name="nuclei")
    widget = TrainingWidget(viewer, model="samscope-lm", images=folder)
    widget.steps_spin.setValue(int(os.environ.get("SAMSCOPE_SHOT_STEPS", "10")))
    widget.patch_spin.setValue(128)
    widget.lr_spin.setValue(1e-5)
    viewer.window.add_dock_widget(widget, name="samscope training", area="right")
    widget.start()
    _wait(widget)
    _shot(viewer, "napari_training.png")


SHOTS = {"2d": shot_2d, "automatic": shot_automatic, "series": shot_series, "3d": shot_3d,
         "tracking": shot_tracking, "training": shot_training}


def main(argv: list[str]) -> int:
    names = argv or list(SHOTS)
    unknown = [n for n in names if n not in SHOTS]
    if unknown:
        print(f"unknown: {', '.join(unknown)}; choose from {', '.join(SHOTS)}")
        return 2
    display = _display()
    os.environ.setdefault("SAMSCOPE_CACHE_DIR", tempfile.mkdtemp(prefix="samscope-shots-"))
    try:
        for name in names:
            SHOTS[name]()
    finally:
        if display is not None:
            display.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
