"""Fixtures for the napari plugin tests: headless Qt, a private samscope cache, loaded annotators.

The tests need the ``gui`` extra (napari, a Qt binding, pytest-qt); they run without a display on
Qt's ``offscreen`` platform, set here before Qt is imported. napari's canvas still needs an OpenGL
context, which the offscreen platform gets from an X server: pytest-xvfb starts a virtual one
(``Xvfb``) for the session.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("napari")
pytest.importorskip("pytestqt")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(autouse=True)
def opengl_display(request):
    """napari's canvas needs OpenGL, which Qt's offscreen platform gets only through an X server.

    pytest-xvfb (the dev extra) starts a virtual one when ``Xvfb`` is installed; without it the
    viewer tests fail here with what to install, instead of deep inside vispy.
    """
    if "make_napari_viewer" in request.fixturenames and not os.environ.get("DISPLAY"):
        pytest.fail("the napari tests need an X display for OpenGL: install Xvfb "
                    "(apt-get install xvfb) and pytest-xvfb (pip install -e '.[dev]'), or run them "
                    "under xvfb-run", pytrace=False)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Embeddings caches (and imported models) go to a fresh folder, never the user's cache."""
    monkeypatch.setenv("SAMSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def nuclei():
    """``examples/nuclei.tif`` and its ground truth."""
    import tifffile

    return tifffile.imread(EXAMPLES / "nuclei.tif"), tifffile.imread(EXAMPLES / "nuclei_labels.tif")


def interior_point(mask: np.ndarray) -> tuple[float, float]:
    """The pixel farthest from the object's border (where a person clicks)."""
    from scipy import ndimage as ndi

    dist = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(y), float(x)


def wait_ready(qtbot, widget, timeout=300_000) -> None:
    """Wait for the widget's embeddings (computed in a worker thread; generous for busy CI)."""
    qtbot.waitUntil(lambda: widget.embeddings is not None, timeout=timeout)


def wait_idle(qtbot, widget, timeout=300_000) -> None:
    """Wait until the widget's background jobs have finished."""
    qtbot.waitUntil(lambda: not widget.background.busy, timeout=timeout)


@pytest.fixture(scope="session")
def nuclei_volume(nuclei):
    """A 5-plane volume of a 128² crop of the example: each nucleus shrinks away from plane 2.

    Returns ``(volume uint16 (5, 128, 128), ground truth labels (5, 128, 128))``.
    """
    from scipy import ndimage as ndi

    image, gt = (a[:128, :128] for a in nuclei)
    background = np.median(image[gt == 0])
    vol, truth = [], []
    for z in range(5):
        k = abs(z - 2)
        shrunk = np.zeros_like(gt)
        for obj in np.unique(gt[gt > 0]):
            m = gt == obj
            if k:
                m = ndi.binary_erosion(m, iterations=3 * k)
            shrunk[m] = obj
        vol.append(np.where(shrunk > 0, image, background).astype(np.uint16))
        truth.append(shrunk)
    return np.stack(vol), np.stack(truth)
