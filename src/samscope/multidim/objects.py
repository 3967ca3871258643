"""The objects of a propagation: the user's prompts per plane and the masks found per plane.

:class:`ObjectPrompt` (what the user gives on a plane), :class:`PlaneMask` (one object's mask on
one plane, stored inside its box), :class:`PropagatedObject` (one object through the stack) and
:class:`Propagation` (all of them, with ``labels()`` and ``mask(i)`` at the native resolution).
Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from samscope.errors import InputError

__all__ = ["ObjectPrompt", "PlaneMask", "PropagatedObject", "Propagation", "check_prompt"]


@dataclass(frozen=True)
class ObjectPrompt:
    """The user's prompts for one object on one plane (native pixels of the plane).

    Attributes
    ----------
    plane : int
    points : ndarray, (N, 2), optional
        ``(y, x)``.
    labels : ndarray, (N,), optional
        1 positive (default), 0 negative.
    box : ndarray, (4,), optional
        ``(y0, x0, y1, x1)``, ends exclusive.
    mask : ndarray of bool, (H, W), optional
        A mask of the object (used as given, not decoded, unless points or a box come with it);
        an all-False mask says the object is absent from this plane.
    """

    plane: int
    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None
    mask: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.points is None and self.box is None and self.mask is None:
            raise InputError(f"plane {self.plane}: give points, a box or a mask for the object")


@dataclass(frozen=True)
class PlaneMask:
    """An object's mask on one plane, stored inside its box (working resolution).

    Attributes
    ----------
    plane : int
    box : ndarray of int64, (4,)
        ``(y0, x0, y1, x1)`` of ``crop`` in the working plane.
    crop : ndarray of bool
    predicted_iou : float
        The decoder's estimate (1 for a mask given by the user).
    overlap : float
        IoU with the mask on the neighbouring plane it was propagated from (1 for an anchor).
    anchor : bool
        Decoded from the user's prompts (True) or propagated (False).
    """

    plane: int
    box: np.ndarray
    crop: np.ndarray
    predicted_iou: float
    overlap: float
    anchor: bool

    @property
    def area(self) -> int:
        """Pixels in the mask."""
        return int(self.crop.sum())

    def dense(self, shape: tuple[int, int]) -> np.ndarray:
        """The mask in a plane of ``shape``."""
        out = np.zeros(shape, bool)
        y0, x0, y1, x1 = (int(v) for v in self.box)
        out[y0:y1, x0:x1] = self.crop
        return out

    @classmethod
    def from_dense(cls, plane: int, mask: np.ndarray, **kw: Any) -> PlaneMask:
        ys = np.flatnonzero(mask.any(axis=1))
        if ys.size == 0:
            return cls(plane, np.zeros(4, np.int64), np.zeros((0, 0), bool), **kw)
        xs = np.flatnonzero(mask.any(axis=0))
        box = np.array([ys[0], xs[0], ys[-1] + 1, xs[-1] + 1], np.int64)
        return cls(plane, box, mask[box[0] : box[2], box[1] : box[3]].copy(), **kw)


@dataclass(frozen=True)
class PropagatedObject:
    """One object through the stack.

    Attributes
    ----------
    anchors : tuple of int
        Planes with user prompts.
    masks : dict of int to PlaneMask
        The planes where the object is present.
    stopped : dict of int to str
        Planes where propagation stopped (the object was judged absent there) and why.
    """

    anchors: tuple[int, ...]
    masks: dict[int, PlaneMask] = field(default_factory=dict)
    stopped: dict[int, str] = field(default_factory=dict)

    @property
    def planes(self) -> tuple[int, ...]:
        """Planes where the object is present, in order."""
        return tuple(sorted(p for p, m in self.masks.items() if m.area))

    @property
    def extent(self) -> tuple[int, int] | None:
        """First and last plane of the object (None when it is nowhere)."""
        p = self.planes
        return (p[0], p[-1]) if p else None


@dataclass(frozen=True)
class Propagation:
    """Objects propagated through a stack.

    Attributes
    ----------
    objects : tuple of PropagatedObject
        In the order they were given; object ``i`` is label ``i + 1``.
    shape : (int, int, int)
        ``(P, H, W)`` of the stack (native resolution).
    work_shape : (int, int)
        Plane shape the masks are stored at.
    """

    objects: tuple[PropagatedObject, ...]
    shape: tuple[int, int, int]
    work_shape: tuple[int, int]

    def mask(self, index: int) -> np.ndarray:
        """Object ``index`` as a ``(P, H, W)`` bool array at the native resolution."""
        obj = self.objects[index]
        out = np.zeros(self.shape, bool)
        for p, m in obj.masks.items():
            if m.area:
                out[p] = self._native(m)
        return out

    def labels(self) -> np.ndarray:
        """All objects as a ``(P, H, W)`` label array (object ``i`` is ``i + 1``).

        Where objects overlap, the pixel goes to the object with the higher predicted IoU there.
        """
        from samscope.labels import label_dtype

        out = np.zeros(self.shape, label_dtype(len(self.objects)))
        best = np.zeros(self.shape, np.float32)
        for i, obj in enumerate(self.objects):
            for p, m in obj.masks.items():
                if not m.area:
                    continue
                native = self._native(m)
                score = m.predicted_iou + (1.0 if m.anchor else 0.0)
                take = native & (score > best[p])
                out[p][take] = i + 1
                best[p][take] = score
        return out

    def _native(self, m: PlaneMask) -> np.ndarray:
        dense = m.dense(self.work_shape)
        if self.work_shape == self.shape[1:]:
            return dense
        return _resize_crop(m, self.work_shape, self.shape[1:])


def _resize_crop(m: PlaneMask, work: tuple[int, int], native: tuple[int, int]) -> np.ndarray:
    """A working-resolution :class:`PlaneMask` at native resolution, resizing only around it."""
    from skimage.transform import resize

    sy, sx = native[0] / work[0], native[1] / work[1]
    y0, x0, y1, x1 = (int(v) for v in m.box)
    py0, px0 = max(0, y0 - 1), max(0, x0 - 1)
    py1, px1 = min(work[0], y1 + 1), min(work[1], x1 + 1)
    crop = np.zeros((py1 - py0, px1 - px0), np.float32)
    crop[y0 - py0 : y1 - py0, x0 - px0 : x1 - px0] = m.crop
    ny0, nx0 = int(round(py0 * sy)), int(round(px0 * sx))
    ny1, nx1 = min(native[0], int(round(py1 * sy))), min(native[1], int(round(px1 * sx)))
    out = np.zeros(native, bool)
    if ny1 > ny0 and nx1 > nx0:
        out[ny0:ny1, nx0:nx1] = resize(crop, (ny1 - ny0, nx1 - nx0), order=1, anti_aliasing=False) > 0.5
    return out


def check_prompt(pr: ObjectPrompt, st: Any) -> ObjectPrompt:
    """``pr`` checked against the stack ``st`` (a PlaneStack): arrays, points and box inside the plane."""
    plane = st.check_plane(pr.plane)
    h, w = st.plane_shape
    pts = lab = box = mask = None
    if pr.points is not None:
        pts = np.asarray(pr.points, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0 or not np.isfinite(pts).all():
            raise InputError(f"plane {plane}: points must be finite (y, x) pairs")
        out = (pts[:, 0] < 0) | (pts[:, 0] >= h) | (pts[:, 1] < 0) | (pts[:, 1] >= w)
        if out.any():
            y, x = pts[out][0]
            raise InputError(f"plane {plane}: point (y={y:g}, x={x:g}) lies outside the plane (y={h}, x={w})")
        lab = (
            np.ones(len(pts), np.int64)
            if pr.labels is None
            else np.asarray(pr.labels).astype(np.int64).ravel()
        )
        if lab.shape != (len(pts),) or not np.isin(lab, (0, 1)).all():
            raise InputError(f"plane {plane}: one label (1 or 0) per point is needed")
        if not (lab == 1).any() and pr.box is None:
            raise InputError(f"plane {plane}: negative points alone do not say where the object is")
    elif pr.labels is not None:
        raise InputError(f"plane {plane}: labels given without points")
    if pr.box is not None:
        box = np.asarray(pr.box, dtype=np.float64).ravel()
        if box.shape != (4,) or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
            raise InputError(f"plane {plane}: a box is (y0, x0, y1, x1) with y1 > y0, x1 > x0; got {pr.box!r}")
        if box[2] <= 0 or box[3] <= 0 or box[0] >= h or box[1] >= w:
            raise InputError(f"plane {plane}: box {box.tolist()} lies outside the plane (y={h}, x={w})")
        box = np.array([max(box[0], 0), max(box[1], 0), min(box[2], h), min(box[3], w)])
    if pr.mask is not None:
        mask = np.asarray(pr.mask)
        if mask.shape != (h, w):
            raise InputError(f"plane {plane}: mask has shape {mask.shape}, the plane is {(h, w)}")
        mask = mask.astype(bool)
    return ObjectPrompt(plane, pts, lab, box, mask)
