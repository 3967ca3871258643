"""What the page shows of a result, read from the files the pipeline wrote.

- :func:`display_png`: the image plane as the overlay shows it (percentile-normalised grey,
  :func:`samscope.analysis.overlay_rgb` without objects);
- :func:`labels_png`: the label plane with each id packed into RGB (``r + 256 g + 65536 b``),
  so the page draws outlines or filled objects in the overlay's colours and finds the object
  under a click without another request;
- :func:`metrics`: :func:`samscope.analysis.analyze_image` on the image's outputs, the same
  measurements as ``samscope analyze`` (count, mean area, confluency, neighbours; dot/rod for
  mitochondria models), per image and per object, as JSON-ready values.
"""

from __future__ import annotations

import io
import math
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError

__all__ = ["PngCache", "display_png", "labels_png", "metrics"]


class PngCache:
    """A small thread-safe LRU of rendered PNGs, keyed by file, modification time and plane."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple, make) -> bytes:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def image_planes(path: Path) -> list[np.ndarray]:
    """The 2-D planes of an image as the pipeline segments them (:func:`samscope.pipeline.planes_of`)."""
    from samscope.io import read_image
    from samscope.pipeline import planes_of

    planes, _ = planes_of(read_image(path))
    return planes


def _plane(planes: list[np.ndarray], plane: int) -> np.ndarray:
    if not 0 <= plane < len(planes):
        raise InputError(f"plane {plane} out of range: the image has {len(planes)} plane(s)")
    return planes[plane]


def display_png(path: Path, plane: int = 0) -> bytes:
    """PNG of one plane of the image, normalised as the overlay is."""
    from samscope.analysis import overlay_rgb

    return _png(overlay_rgb(np.asarray(_plane(image_planes(path), plane))))


def read_label_planes(path: Path) -> list[np.ndarray]:
    """The label planes of a labels file (one for 2-D images)."""
    from samscope.io import read_labels

    lab = np.asarray(read_labels(path))
    return [lab] if lab.ndim == 2 else list(lab)


def labels_png(path: Path, plane: int = 0) -> bytes:
    """PNG of one label plane, ids packed into the RGB channels."""
    lab = np.asarray(_plane(read_label_planes(path), plane)).astype(np.uint32)
    if lab.size and int(lab.max()) >= 1 << 24:
        raise InputError("more than 16.7 million objects cannot be shown")
    rgb = np.stack([lab & 255, (lab >> 8) & 255, (lab >> 16) & 255], axis=-1).astype(np.uint8)
    return _png(rgb)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def metrics(results_folder: Path, *, model: str = "") -> dict[str, Any]:
    """Per-image and per-object measurements of one image's results (``samscope analyze``'s).

    Returns
    -------
    dict
        ``images``: one row per plane; ``objects``: ``columns`` and ``rows``; ``notes``.
    """
    from samscope.analysis import AnalysisConfig, analyze_image, find_results

    found = find_results(results_folder)
    if not found.items:
        raise InputError("no results for this image yet")
    # as samscope analyze decides without --mito: dot/rod for a mitochondria model
    analysis = analyze_image(found.items[0], AnalysisConfig(), mito="mito" in model.lower(),
                             thumbnail=False)
    columns = analysis.objects.names
    rows = [[_jsonable(v) for v in row.values()] for row in analysis.objects.rows()]
    images = [{k: _jsonable(v) for k, v in row.items()} for row in analysis.rows]
    return {"images": images, "objects": {"columns": columns, "rows": rows},
            "notes": list(analysis.notes), "pixel_size_nm": analysis.pixel_size_nm}
