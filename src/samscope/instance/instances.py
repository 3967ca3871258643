"""The result type of every automatic mode: a label image, scores, and optional overlapping masks.

Pure numpy. Overlapping masks are stored cropped to their bounding boxes
(:class:`CroppedMasks`), so thousands of objects on a large image stay small in memory; ``dense()``
gives the ``(n, H, W)`` stack that metrics for overlapping instances take.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samscope.errors import InputError
from samscope.labels import label_dtype

__all__ = ["CroppedMasks", "Instances", "label_dtype_for", "object_table"]


def label_dtype_for(n: int) -> np.dtype:
    """Smallest unsigned dtype (uint16 or uint32, uint64 beyond) that holds labels ``0..n``
    (:func:`samscope.labels.label_dtype`, the one rule)."""
    return label_dtype(n)


@dataclass(frozen=True)
class CroppedMasks:
    """``n`` boolean masks of an ``(H, W)`` image, each stored inside its bounding box.

    Attributes
    ----------
    shape : (int, int)
        Image shape.
    boxes : ndarray of int64, (n, 4)
        ``(y0, x0, y1, x1)``, ends exclusive.
    crops : tuple of ndarray of bool
        ``crops[i].shape == (y1 - y0, x1 - x0)`` of ``boxes[i]``.
    """

    shape: tuple[int, int]
    boxes: np.ndarray
    crops: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if len(self.boxes) != len(self.crops):
            raise InputError(f"{len(self.boxes)} boxes but {len(self.crops)} crops")
        for b, c in zip(self.boxes, self.crops, strict=True):
            if c.shape != (b[2] - b[0], b[3] - b[1]):
                raise InputError(f"crop of shape {c.shape} does not fit box {b.tolist()}")

    def __len__(self) -> int:
        return len(self.crops)

    @classmethod
    def from_dense(cls, masks: np.ndarray) -> CroppedMasks:
        """Crop an ``(n, H, W)`` bool stack (empty masks get an empty box at the origin)."""
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 3:
            raise InputError(f"expected masks of shape (n, H, W), got {masks.shape}")
        boxes, crops = [], []
        for m in masks:
            ys = np.flatnonzero(m.any(axis=1))
            if ys.size == 0:
                boxes.append((0, 0, 0, 0))
                crops.append(np.zeros((0, 0), bool))
                continue
            xs = np.flatnonzero(m.any(axis=0))
            y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
            boxes.append((y0, x0, y1, x1))
            crops.append(m[y0:y1, x0:x1].copy())
        return cls(tuple(masks.shape[1:]), np.array(boxes, np.int64).reshape(-1, 4), tuple(crops))

    def mask(self, i: int) -> np.ndarray:
        """The ``i``-th mask at full size, ``(H, W)`` bool."""
        out = np.zeros(self.shape, bool)
        y0, x0, y1, x1 = self.boxes[i]
        out[y0:y1, x0:x1] = self.crops[i]
        return out

    def dense(self) -> np.ndarray:
        """All masks as an ``(n, H, W)`` bool stack."""
        out = np.zeros((len(self),) + tuple(self.shape), bool)
        for i, (b, c) in enumerate(zip(self.boxes, self.crops, strict=True)):
            out[i, b[0] : b[2], b[1] : b[3]] = c
        return out

    def areas(self) -> np.ndarray:
        """Pixel count of each mask, ``(n,)`` int64."""
        return np.array([int(c.sum()) for c in self.crops], np.int64)


@dataclass(frozen=True)
class Instances:
    """Instance segmentation of one 2-D image.

    Attributes
    ----------
    labels : ndarray, (H, W)
        0 background, ``1..n`` objects (uint16, or uint32 past 65,535 objects).
    scores : ndarray of float32, (n,)
        Score of object ``i + 1`` (predicted IoU, stability or mean foreground, by mode).
    masks : CroppedMasks or None
        Per-object masks that may overlap (``masks.mask(i)`` is object ``i + 1``), for modes that
        let pixels belong to several objects; None otherwise. Where masks overlap, ``labels``
        shows the object with the higher score.
    mode : str
        The mode that produced it.
    diameter : float or None
        Typical object diameter (px of this image) the segmentation worked with: estimated or
        given (see :mod:`samscope.instance.scale`); None when the model works at one scale.
    scale : float
        Factor the image was resized by before segmenting (1.0: not resized).
    """

    labels: np.ndarray
    scores: np.ndarray
    masks: CroppedMasks | None = None
    mode: str = ""
    diameter: float | None = None
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.labels.ndim != 2:
            raise InputError(f"labels must be 2-D, got shape {self.labels.shape}")
        if self.masks is not None and len(self.masks) != len(self.scores):
            raise InputError(f"{len(self.masks)} masks but {len(self.scores)} scores")

    @property
    def n(self) -> int:
        """Number of objects."""
        return int(len(self.scores))

    @classmethod
    def empty(
        cls, shape: tuple[int, int], *, mode: str = "", overlapping: bool = False
    ) -> Instances:
        """No objects (e.g. for an empty or constant image)."""
        masks = CroppedMasks(tuple(shape), np.zeros((0, 4), np.int64), ()) if overlapping else None
        return cls(np.zeros(shape, np.uint16), np.zeros(0, np.float32), masks, mode)

    @classmethod
    def from_masks(cls, masks: CroppedMasks, scores: np.ndarray, *, mode: str = "") -> Instances:
        """Build from overlapping masks; the label image paints low scores first, so the
        higher-scoring object wins where masks overlap."""
        scores = np.asarray(scores, np.float32)
        labels = np.zeros(masks.shape, label_dtype_for(len(masks)))
        for i in np.argsort(scores, kind="stable"):
            y0, x0, y1, x1 = masks.boxes[i]
            region = labels[y0:y1, x0:x1]
            region[masks.crops[i]] = i + 1
        return cls(labels, scores, masks, mode)

    @classmethod
    def from_labels(
        cls, labels: np.ndarray, scores: np.ndarray | None = None, *, mode: str = ""
    ) -> Instances:
        """Build from a label image, relabelled to consecutive ids ``1..n`` (order kept)."""
        from skimage.segmentation import relabel_sequential

        lab = np.asarray(labels)
        if lab.dtype.kind not in "iu":
            raise InputError(f"labels must be integers, got {lab.dtype}")
        relabelled, fw, _ = relabel_sequential(lab)
        n = int(relabelled.max())
        if scores is None:
            scores = np.ones(n, np.float32)
        else:
            scores = np.asarray(scores, np.float32)
            old_ids = np.unique(lab[lab > 0])
            if len(scores) == int(lab.max()):  # scores indexed by old id - 1
                scores = scores[old_ids - 1]
            elif len(scores) != n:
                raise InputError(f"{len(scores)} scores for {n} objects")
        return cls(relabelled.astype(label_dtype_for(n)), scores, None, mode)


def object_table(instances: Instances) -> list[dict]:
    """One row per object: id, area, centroid, bounding box and score.

    Measured on each object's own mask when the result has overlapping masks (so shared pixels
    count for every object that has them), else on the label image. Coordinates are pixels
    ``(y, x)``; boxes have exclusive ends. Rows load into pandas with ``pandas.DataFrame(rows)``.

    Returns
    -------
    list of dict
        Keys ``id, area, centroid_y, centroid_x, bbox_y0, bbox_x0, bbox_y1, bbox_x1, score``.
    """
    rows = []
    if instances.masks is not None:
        for i, (box, crop) in enumerate(
            zip(instances.masks.boxes, instances.masks.crops, strict=True)
        ):
            area = int(crop.sum())
            if area == 0:
                continue
            ys, xs = np.nonzero(crop)
            rows.append(
                _row(i + 1, area, box[0] + ys.mean(), box[1] + xs.mean(), box, instances.scores[i])
            )
        return rows
    from scipy import ndimage as ndi

    lab = instances.labels
    n = instances.n
    if n == 0:
        return rows
    index = np.arange(1, n + 1)
    areas = ndi.sum_labels(np.ones(lab.shape, np.int64), lab, index)
    centroids = ndi.center_of_mass(np.ones(lab.shape, np.float32), lab, index)
    for i, sl in enumerate(ndi.find_objects(lab, max_label=n)):
        if sl is None:
            continue
        box = (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
        rows.append(
            _row(i + 1, int(areas[i]), centroids[i][0], centroids[i][1], box, instances.scores[i])
        )
    return rows


def _row(obj_id: int, area: int, cy: float, cx: float, box, score: float) -> dict:
    return {
        "id": obj_id,
        "area": area,
        "centroid_y": round(float(cy), 3),
        "centroid_x": round(float(cx), 3),
        "bbox_y0": int(box[0]),
        "bbox_x0": int(box[1]),
        "bbox_y1": int(box[2]),
        "bbox_x1": int(box[3]),
        "score": round(float(score), 5),
    }
