"""The interactive protocol on volumes: objects prompted on one plane, propagated, corrected.

The 3-D counterpart of :mod:`samscope.evaluation.interactive` (µSAM's protocol, issue 12):

* **First prompt**: on each object's *largest plane* (most pixels; ties: the lowest plane), the
  2-D protocol's first prompt there: the interior centre point (``mode="point"``) or the
  plane's bounding box (``mode="box"``). All objects are then propagated through the stack at
  once (a :class:`~samscope.multidim.propagate.Propagator`, batched per plane).
* **Corrections**, ``n_iterations`` times, for every object: on the plane where its mask is most
  wrong (most pixels of ``mask xor ground truth``; ties: the lowest plane) one positive point in
  the largest missed region and one negative point in the largest spurious region (the 2-D
  rules, :func:`~samscope.evaluation.interactive_prompts.corrective_points`). Points accumulate
  per plane; that plane becomes (or stays) an anchor of the object, so the propagator
  re-propagates the planes nearer to it. Two cases the 2-D rules do not have: on a plane
  where the object is absent from the ground truth the correction marks it absent (an empty
  mask: the annotator's "not here"); a plane that gets only a negative point and no positive
  point yet also gets a positive point at the interior centre of the part that is right (mask
  and ground truth), so the plane's prompts say where the object is. The plane's current mask
  goes with the points as the dense prompt (what the annotator shows and refines; on CHO t0
  this did better than points alone: mean object IoU after 2 rounds 0.78 vs 0.73). An object
  whose mask is exact gets no correction.
* **Scores** after each iteration: the objects' 3-D masks matched one-to-one to the 3-D ground
  truth (mSA, SA50, SA75 of :func:`~samscope.evaluation.metrics.segmentation_accuracy`; objects
  matched in 3-D, not per plane) and each object's 3-D IoU with its own ground truth.

The propagator is anything with ``add(prompts) -> index``, ``correct(index, prompt)`` and
``run() -> result`` where ``result.mask(index)`` is the object's ``(z, y, x)`` mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.evaluation.interactive_prompts import MODES, corrective_points, interior_point
from samscope.evaluation.metrics import MaskStack, SegmentationAccuracy, segmentation_accuracy

__all__ = ["VolumeFirstPrompt", "VolumeInteractiveResult", "first_prompts_3d", "run_interactive_volume"]


@dataclass(frozen=True)
class VolumeFirstPrompt:
    """One object's first prompt: its largest plane, interior centre point and box there."""

    id: int
    plane: int
    point: np.ndarray  # (y, x)
    box: np.ndarray  # (y0, x0, y1, x1), ends exclusive


@dataclass(frozen=True, eq=False)
class VolumeInteractiveResult:
    """The 3-D protocol's outcome on one volume.

    Attributes
    ----------
    name, mode : str
    ids : numpy.ndarray, (n,)
    accuracy : tuple of SegmentationAccuracy, length k + 1
        3-D matching after the first prompt (index 0) and after each correction round.
    iou : numpy.ndarray, (n, k + 1)
        Each object's 3-D IoU with its own ground truth, per iteration.
    first : tuple of VolumeFirstPrompt
    corrections : tuple of numpy.ndarray, each (m, 5)
        Per object: ``iteration, plane, y, x, label`` of every corrective point (label 1
        positive, 0 negative, -1 "absent on this plane").
    """

    name: str
    mode: str
    ids: np.ndarray
    accuracy: tuple[SegmentationAccuracy, ...]
    iou: np.ndarray
    first: tuple[VolumeFirstPrompt, ...]
    corrections: tuple[np.ndarray, ...]

    @property
    def msa(self) -> np.ndarray:
        """mSA per iteration."""
        return np.array([a.msa for a in self.accuracy])

    @property
    def sa50(self) -> np.ndarray:
        """SA at IoU 0.5 per iteration."""
        return np.array([a.sa50 for a in self.accuracy])

    @property
    def sa75(self) -> np.ndarray:
        """SA at IoU 0.75 per iteration."""
        return np.array([a.sa75 for a in self.accuracy])

    # the attributes the 2-D result has, so that summaries and run files take both
    @property
    def points(self) -> tuple[np.ndarray, ...]:
        """Per object, ``(z, y, x)`` of every point it received (the first point in point mode)."""
        out = []
        for f, c in zip(self.first, self.corrections, strict=True):
            first = [[f.plane, *f.point]] if self.mode == "point" else []
            out.append(np.array(first + [[r[1], r[2], r[3]] for r in c if r[4] >= 0], np.float64).reshape(-1, 3))
        return tuple(out)

    @property
    def point_labels(self) -> tuple[np.ndarray, ...]:
        """1 positive, 0 negative, matching :attr:`points`."""
        return tuple(
            np.array(([1] if self.mode == "point" else []) + [int(r[4]) for r in c if r[4] >= 0], np.int64)
            for c in self.corrections
        )

    @property
    def point_iteration(self) -> tuple[np.ndarray, ...]:
        """Iteration of each point in :attr:`points` (0 = first prompt)."""
        return tuple(
            np.array(([0] if self.mode == "point" else []) + [int(r[0]) for r in c if r[4] >= 0], np.int64)
            for c in self.corrections
        )

    @property
    def boxes(self) -> np.ndarray:
        """``(z, y0, x0, y1, x1)`` of each first box (box mode), else shape (0, 5)."""
        if self.mode != "box":
            return np.zeros((0, 5), np.int64)
        return np.array([[f.plane, *f.box] for f in self.first], np.int64)


def first_prompts_3d(labels: np.ndarray) -> list[VolumeFirstPrompt]:
    """Each object's largest plane with its interior centre point and box there (id order).

    Examples
    --------
    >>> lab = np.zeros((3, 8, 8), np.uint16); lab[0, 2:4, 2:4] = 1; lab[1, 1:6, 1:6] = 1
    >>> p = first_prompts_3d(lab)[0]
    >>> p.plane, p.box.tolist()
    (1, [1, 1, 6, 6])
    """
    from scipy import ndimage as ndi

    lab = _check_volume(labels)
    out = []
    for i, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        obj = lab[sl] == i
        k = int(np.argmax(obj.reshape(len(obj), -1).sum(1)))
        plane = obj[k]
        ys, xs = np.nonzero(plane)
        y0, x0 = sl[1].start, sl[2].start
        point = interior_point(plane) + np.array([y0, x0], np.float64)
        box = np.array([ys.min() + y0, xs.min() + x0, ys.max() + 1 + y0, xs.max() + 1 + x0], np.int64)
        out.append(VolumeFirstPrompt(i, sl[0].start + k, point, box))
    return out


def _check_volume(labels: np.ndarray) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 3:
        raise InputError(f"the 3-D protocol needs (z, y, x) labels, got shape {lab.shape}")
    if not np.issubdtype(lab.dtype, np.integer) or (lab.size and lab.min() < 0):
        raise InputError("ground-truth labels must be non-negative integers")
    return lab


def run_interactive_volume(
    propagator: Any,
    labels: np.ndarray,
    *,
    mode: str = "point",
    n_iterations: int = 8,
    name: str = "",
) -> VolumeInteractiveResult:
    """Run the 3-D protocol on one volume.

    Parameters
    ----------
    propagator : Propagator
        Fresh (no objects), over the volume's planes (e.g.
        ``Propagator(model, PlaneStack(volume, model, scale=…))``).
    labels : numpy.ndarray, (z, y, x)
        Ground-truth 3-D instance labels.
    mode : {"point", "box"}
    n_iterations : int
        Correction rounds after the first prompt.
    name : str

    Returns
    -------
    VolumeInteractiveResult
    """
    from samscope.multidim.objects import ObjectPrompt

    lab = _check_volume(labels)
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    if n_iterations < 0:
        raise InputError("n_iterations must be >= 0")
    first = first_prompts_3d(lab)
    if not first:
        raise InputError(f"{name or 'the volume'}: the ground truth has no objects")
    index = []
    for f in first:
        pr = ObjectPrompt(f.plane, box=f.box) if mode == "box" else ObjectPrompt(f.plane, points=[f.point])
        index.append(propagator.add(pr))
    ids = np.array([f.id for f in first], np.int64)
    points: list[dict[int, list[tuple[np.ndarray, int]]]] = [{} for _ in first]
    log: list[list[tuple]] = [[] for _ in first]
    iou = np.zeros((len(first), n_iterations + 1))
    accuracy = []
    result = propagator.run()
    for it in range(n_iterations + 1):
        masks = [np.asarray(result.mask(j), bool) for j in index]
        flat = []
        for k, (f, m) in enumerate(zip(first, masks, strict=True)):
            g = lab == f.id
            inter = np.count_nonzero(m & g)
            iou[k, it] = inter / max(1, np.count_nonzero(m | g))
            flat.append(np.flatnonzero(m))
        accuracy.append(segmentation_accuracy(lab, MaskStack.from_flat_indices(flat, lab.shape, ids=ids)))
        if it == n_iterations:
            break
        changed = False
        for k, (f, m) in enumerate(zip(first, masks, strict=True)):
            prompt = _correction(lab == f.id, m, f, mode, points[k], log[k], it + 1)
            if prompt is not None:
                propagator.correct(index[k], prompt)
                changed = True
        if changed:
            result = propagator.run()
    corrections = tuple(np.array(rows, np.float64).reshape(-1, 5) for rows in log)
    return VolumeInteractiveResult(name, mode, ids, tuple(accuracy), iou, tuple(first), corrections)


def _correction(gt, mask, first: VolumeFirstPrompt, mode: str, points: dict, log: list, it: int):
    """The next prompt for one object (on its worst plane), or None when its mask is exact."""
    from samscope.multidim.objects import ObjectPrompt

    err = (gt ^ mask).reshape(len(gt), -1).sum(1)
    if err.max() == 0:
        return None
    k = int(np.argmax(err))
    if not gt[k].any():  # the object is not on this plane: mark it absent
        points.pop(k, None)
        log.append((it, k, -1, -1, -1))
        return ObjectPrompt(k, mask=np.zeros(gt.shape[1:], bool))
    pos, neg = corrective_points(gt[k], mask[k])
    plane = points.setdefault(k, [])
    if k == first.plane and mode == "point" and not plane:
        plane.append((first.point, 1))
    if neg is not None and pos is None and not any(v == 1 for _, v in plane) and not (k == first.plane and mode == "box"):
        right = gt[k] & mask[k]
        plane.append((interior_point(right if right.any() else gt[k]), 1))
    for p, v in ((pos, 1), (neg, 0)):
        if p is not None:
            plane.append((np.asarray(p, np.float64), v))
            log.append((it, k, float(p[0]), float(p[1]), v))
    pts = np.array([p for p, _ in plane], np.float64).reshape(-1, 2)
    labels = np.array([v for _, v in plane], np.int64)
    box = first.box if (mode == "box" and k == first.plane) else None
    prior = mask[k] if mask[k].any() else None  # the plane's current mask as the dense prompt
    return ObjectPrompt(k, points=pts, labels=labels, box=box, mask=prior)
