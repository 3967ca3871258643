"""npe2 reader, writer and sample data of the plugin.

- Reader: samscope's label outputs (``*_labels.tif``, ``*_labels.tiff``, ``*_labels.zarr``, as
  ``samscope segment`` and the annotators write them) open as Labels layers with their pixel
  size as the layer scale (µm); any other image samscope reads opens as an Image layer.
- Writer: a Labels layer to ``.tif`` through :func:`samscope.io.write_labels` (smallest dtype,
  atomic).
- Sample data: the ``examples/`` images (nuclei, mitochondria) with their ground truth, made by
  the same simulator calls as ``examples/make_examples.py`` (so an installed package needs no
  data files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

LABEL_SUFFIXES = ("_labels.tif", "_labels.tiff", "_labels.zarr")
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".npy", ".zarr")


def _scale(pixel_size, ndim: int) -> list[float] | None:
    if not pixel_size:
        return None
    values = [float(p) / 1000.0 if p else 1.0 for p in pixel_size][-ndim:]
    if len(values) != ndim or not all(np.isfinite(values)):
        return None
    return values


def get_reader(path: str | list[str]):
    """The reader for ``path`` (a file samscope can read), else None (napari tries others)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    name = str(path).lower().rstrip("/")
    if not name.endswith(IMAGE_SUFFIXES):
        return None
    return read_layers


def read_layers(path: str | list[str]) -> list[tuple[Any, dict, str]]:
    """Layer data tuples for one file: Labels for samscope label outputs, else Image."""
    from samscope.io import has_colour_axis, read_image, read_labels

    path = path[0] if isinstance(path, list) else path
    name = Path(path).name
    if name.lower().endswith(LABEL_SUFFIXES):
        data = np.asarray(read_labels(path))
        meta = {"name": name.rsplit(".", 1)[0]}
        scale = _scale(getattr(read_image(path, lazy=True), "pixel_size", None), data.ndim)
        if scale:
            meta["scale"] = scale
        return [(data, meta, "labels")]
    image = read_image(path)
    data = np.asarray(image.data)
    meta = {"name": name.rsplit(".", 1)[0], "rgb": image.axes.endswith("C") and has_colour_axis(data.shape)}
    return [(data, meta, "image")]


def write_labels(path: str, data: Any, meta: dict) -> list[str]:
    """Write one Labels layer as a label image (``.tif``)."""
    from samscope.io import write_labels as write

    written = write(path, np.asarray(data), overwrite=True)
    return [str(written)]


def sample_nuclei() -> list[tuple[Any, dict, str]]:
    """``examples/nuclei.tif`` and its ground truth (simulated HeLa-like nuclei, 256²)."""
    from samscope.simulate import nuclei

    [sample] = nuclei(1, (256, 256), rng=1)
    image = np.rint(sample.image).astype(np.uint16)
    return [(image, {"name": "nuclei"}, "image"),
            (sample.labels, {"name": "nuclei ground truth", "visible": False}, "labels")]


def sample_mitochondria() -> list[tuple[Any, dict, str]]:
    """``examples/mitochondria.tif`` and its ground truth (mitochondria simulator of Jadhav et al. 2026, 512²)."""
    from samscope.simulate import mitochondria

    [sample] = mitochondria(1, (512, 512), rng=0)
    image = np.rint(sample.image).astype(np.uint16)
    return [(image, {"name": "mitochondria"}, "image"),
            (sample.labels, {"name": "mitochondria ground truth", "visible": False}, "labels")]
