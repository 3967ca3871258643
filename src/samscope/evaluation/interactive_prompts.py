"""Prompts of the interactive-segmentation protocol: the first prompt of each object from the
ground truth, the corrective points, and the prompts file every model is evaluated on.

Split from :mod:`samscope.evaluation.interactive` (the protocol runner); the rules are described
there.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from samscope.errors import InputError
from samscope.evaluation.report import write_json

__all__ = [
    "MODES",
    "PROMPTS_FORMAT",
    "CORRECTIONS",
    "RULES",
    "ImagePrompts",
    "PromptSpec",
    "Segmenter",
    "SegmenterOutput",
    "check_ground_truth",
    "check_prompts",
    "corrective_points",
    "derive_prompts",
    "interior_point",
    "load_prompts",
    "prompts_digest",
    "save_prompts",
]

PROMPTS_FORMAT = "samscope-interactive-prompts"
RULES = {
    "first_point": "interior centre: argmax of the Euclidean distance transform of the object "
    "(image border = boundary), ties to the lowest flat index",
    "box": "bounding box (y0, x0, y1, x1), y1/x1 exclusive",
    "correction": "per iteration one positive point at the interior centre of the largest "
    "4-connected false-negative component and one negative point likewise in the false-positive "
    "region; empty regions give no point; points accumulate",
    "correction_largest": "(correction='largest') per iteration one point only, in the larger of "
    "those two components (positive on ties)",
    "coordinates": "(y, x) pixel indices of the image",
}
MODES = ("point", "box")


# --------------------------------------------------------------------------------------------
# prompts and the segmenter interface
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PromptSpec:
    """Prompts for one object.

    Attributes
    ----------
    points : numpy.ndarray, shape (n, 2), float64
        ``(y, x)`` pixel coordinates in the image (may be empty in box mode).
    labels : numpy.ndarray, shape (n,), int64
        1 positive, 0 negative.
    box : numpy.ndarray, shape (4,), or None
        ``(y0, x0, y1, x1)``, ``y1``/``x1`` exclusive (slice bounds).
    mask_logits : numpy.ndarray or None
        The model's previous low-resolution logits, to feed back.
    """

    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None = None
    mask_logits: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class SegmenterOutput:
    """What a segmenter returns: the mask (bool, image shape) and optionally its logits."""

    mask: np.ndarray
    logits: np.ndarray | None = None


#: A model for the protocol: prompts in, a mask (or :class:`SegmenterOutput`) out.
Segmenter = Callable[[PromptSpec], "SegmenterOutput | np.ndarray"]


@dataclass(frozen=True, eq=False)
class ImagePrompts:
    """The first prompts of every object of one image.

    Attributes
    ----------
    name : str
        Image name (file stem) the prompts belong to.
    shape : tuple of int
        ``(y, x)`` shape of the image.
    ids : numpy.ndarray, shape (n,), int64
        Ground-truth object ids.
    points : numpy.ndarray, shape (n, 2), float64
        Interior centre of each object, ``(y, x)``.
    boxes : numpy.ndarray, shape (n, 4), int64
        Bounding box of each object, ``(y0, x0, y1, x1)`` with exclusive ends.
    """

    name: str
    shape: tuple[int, int]
    ids: np.ndarray
    points: np.ndarray
    boxes: np.ndarray


def interior_point(mask: np.ndarray) -> np.ndarray:
    """The pixel of ``mask`` farthest from its boundary.

    Parameters
    ----------
    mask : numpy.ndarray, shape (y, x), bool
        Non-empty.

    Returns
    -------
    numpy.ndarray, shape (2,), float64
        ``(y, x)``; the image border counts as boundary; ties go to the first pixel in raster
        order.

    Examples
    --------
    >>> m = np.zeros((5, 7), bool); m[1:4, 1:6] = True
    >>> interior_point(m).tolist()
    [2.0, 2.0]
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise InputError("interior_point of an empty mask")
    (sl,) = ndi.find_objects(mask.astype(np.uint8))
    return _interior(mask[sl], (sl[0].start, sl[1].start))


def _interior(crop: np.ndarray, origin: tuple[int, int]) -> np.ndarray:
    dist = ndi.distance_transform_edt(np.pad(crop, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), crop.shape)
    return np.array([origin[0] + y, origin[1] + x], dtype=np.float64)


def check_ground_truth(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(
            f"the interactive protocol needs 2-D label images, got shape {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool:
        raise InputError(f"ground truth has dtype {labels.dtype}; instance labels must be integers")
    if labels.size and labels.min() < 0:
        raise InputError("ground truth has negative labels")
    return labels


def derive_prompts(labels: np.ndarray, *, name: str = "") -> ImagePrompts:
    """First prompts (interior point and box) of every object in a label image.

    Parameters
    ----------
    labels : numpy.ndarray, shape (y, x), integer
        Ground-truth instance labels.
    name : str
        Image name stored with the prompts.

    Returns
    -------
    ImagePrompts
    """
    labels = check_ground_truth(labels)
    ids = np.unique(labels)
    ids = ids[ids > 0].astype(np.int64)
    points = np.zeros((ids.size, 2))
    boxes = np.zeros((ids.size, 4), np.int64)
    for k, (i, sl) in enumerate(_objects(labels, ids)):
        points[k] = _interior(labels[sl] == i, (sl[0].start, sl[1].start))
        boxes[k] = (sl[0].start, sl[1].start, sl[0].stop, sl[1].stop)
    return ImagePrompts(name, (int(labels.shape[0]), int(labels.shape[1])), ids, points, boxes)


def _objects(labels: np.ndarray, ids: np.ndarray):
    """(id, bounding-box slices) of each id (ascending), without a dense mask per object."""
    # relabel to 1..n so that find_objects stays small for large or sparse ids
    compact = np.zeros(labels.shape, np.int32)
    fg = labels > 0
    compact[fg] = np.searchsorted(ids, labels[fg]) + 1
    for i, sl in zip(ids, ndi.find_objects(compact, max_label=ids.size), strict=True):
        yield int(i), sl


#: How many corrective points an iteration adds: ``both`` (one in the false-negative and one in
#: the false-positive region, µSAM's protocol) or ``largest`` (one, in the larger error region).
CORRECTIONS = ("both", "largest")


def corrective_points(
    gt_mask: np.ndarray, pred_mask: np.ndarray, *, rule: str = "both"
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The positive and negative correction for one object.

    Parameters
    ----------
    gt_mask, pred_mask : numpy.ndarray, shape (y, x), bool
        The object and the model's current mask for it.
    rule : {"both", "largest"}
        ``both``: a point in each error region; ``largest``: only the point in whichever region's
        largest component is larger (the positive one on ties), the other None.

    Returns
    -------
    positive, negative : numpy.ndarray of shape (2,) or None
        Interior centre ``(y, x)`` of the largest 4-connected component of ``gt & ~pred`` and of
        ``pred & ~gt`` (ties: first component in raster order); None where that region is empty.
    """
    if rule not in CORRECTIONS:
        raise InputError(f"rule must be one of {CORRECTIONS}, got {rule!r}")
    gt_mask, pred_mask = np.asarray(gt_mask, bool), np.asarray(pred_mask, bool)
    if gt_mask.shape != pred_mask.shape:
        raise InputError(f"mask shapes differ: {gt_mask.shape} vs {pred_mask.shape}")
    pos, pos_size = _largest_component_centre(gt_mask & ~pred_mask)
    neg, neg_size = _largest_component_centre(pred_mask & ~gt_mask)
    if rule == "largest" and pos is not None and neg is not None:
        return (pos, None) if pos_size >= neg_size else (None, neg)
    return pos, neg


def _largest_component_centre(region: np.ndarray) -> tuple[np.ndarray | None, int]:
    """Interior centre of the largest 4-connected component of ``region``, and its size."""
    if not region.any():
        return None, 0
    (box,) = ndi.find_objects(region.astype(np.uint8))
    crop = region[box]
    comp, n = ndi.label(crop)
    if n > 1:
        sizes = np.bincount(comp.ravel(), minlength=n + 1)[1:]
        crop = comp == int(np.argmax(sizes)) + 1  # argmax: first (lowest label) among ties
    return _interior(crop, (box[0].start, box[1].start)), int(np.count_nonzero(crop))


# --------------------------------------------------------------------------------------------
# prompts files
# --------------------------------------------------------------------------------------------


def save_prompts(path: str | os.PathLike, prompts: Sequence[ImagePrompts]) -> Path:
    """Save first prompts and the derivation rules as JSON (atomically)."""
    doc = {
        "format": PROMPTS_FORMAT,
        "version": 1,
        "rules": RULES,
        "images": [
            {
                "name": p.name,
                "shape": list(p.shape),
                "objects": [
                    {"id": int(i), "point": pt.tolist(), "box": b.tolist()}
                    for i, pt, b in zip(p.ids, p.points, p.boxes, strict=True)
                ],
            }
            for p in prompts
        ],
    }
    return write_json(path, doc)


def load_prompts(path: str | os.PathLike) -> list[ImagePrompts]:
    """Read a file written by :func:`save_prompts`."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read prompts file {path}: {err}") from err
    if not isinstance(doc, dict) or doc.get("format") != PROMPTS_FORMAT:
        raise InputError(f"{path} is not a samscope prompts file")
    out = []
    for img in doc["images"]:
        objs = img["objects"]
        out.append(
            ImagePrompts(
                str(img["name"]),
                (int(img["shape"][0]), int(img["shape"][1])),
                np.array([o["id"] for o in objs], dtype=np.int64),
                np.array([o["point"] for o in objs], dtype=np.float64).reshape(-1, 2),
                np.array([o["box"] for o in objs], dtype=np.int64).reshape(-1, 4),
            )
        )
    return out


def prompts_digest(prompts: Sequence[ImagePrompts]) -> str:
    """SHA-256 of the prompts' content, to tie a run to the prompts it used."""
    h = hashlib.sha256()
    for p in prompts:
        h.update(p.name.encode())
        for a in (np.asarray(p.shape), p.ids, p.points, p.boxes):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()


def check_prompts(labels: np.ndarray, prompts: ImagePrompts) -> None:
    if tuple(labels.shape) != tuple(prompts.shape):
        raise InputError(
            f"prompts for {prompts.name!r} were made for shape {prompts.shape}, "
            f"the ground truth has {labels.shape}"
        )
    ids = np.unique(labels)
    ids = ids[ids > 0]
    if not np.array_equal(np.sort(prompts.ids), ids):
        raise InputError(
            f"prompts for {prompts.name!r} list {prompts.ids.size} objects, the ground truth has "
            f"{ids.size} (different ids): the prompts file belongs to other annotations"
        )
    y, x = prompts.points.T.astype(np.int64) if prompts.ids.size else (np.zeros(0, int),) * 2
    if prompts.ids.size and not np.array_equal(labels[y, x], prompts.ids):
        raise InputError(f"prompt points for {prompts.name!r} do not lie on their objects")


# --------------------------------------------------------------------------------------------
# the protocol
# --------------------------------------------------------------------------------------------
