"""Propagation of prompted objects along an axis of a stack: z for volumes, t for time series.

An object is given by prompts on one or more planes (its *anchors*). Each anchor is decoded from
its prompts; every other plane is decoded from the mask of its neighbour nearer the anchor, as
µSAM's volumetric annotator does (seed 002): the neighbour's mask gives the next plane's prompts
(its box, extended by ``box_extension``; its mask as a dense prompt; its most interior point),
plane by plane away from the anchor, until the object ends. It ends where

- the new mask's overlap with the previous plane's mask falls below ``iou_threshold`` (IoU, or
  with ``overlap="smaller"`` the intersection over the smaller mask, the default: the small cap
  of a nucleus in a strongly anisotropic volume lies inside the previous plane's mask),
- the decoder's predicted IoU falls below ``min_predicted_iou``,
- the mask is smaller than ``min_area`` pixels, or grows by more than ``max_growth`` (a leak);
- the object has faded: its contrast against a ring around it
  (:func:`~samscope.multidim.link.object_contrast`) is below ``min_contrast`` of its contrast on
  the anchor plane. Out-of-focus planes of a volume show a blurred ghost of the nucleus beyond its
  end, which SAM segments with a confident IoU; on CHO (time points 0–13) the contrast falls to
  4–13 % of the anchor's on the planes past a nucleus's end and stays above 25 % inside it.

The ghost is also wider than the object: on a nucleus's last planes SAM draws the blurred area,
about twice the nucleus. With ``min_intensity`` each propagated mask keeps only its pixels
brighter than the anchor's ring level plus that fraction of the anchor's contrast
(:func:`~samscope.multidim.link.trim_dim`, on the plane smoothed by 3 % of the object's size).

A plane between two anchors belongs to the nearer one, so a correction on plane ``k`` (a new
anchor) re-propagates exactly the planes that are now nearer to ``k`` and leaves the rest. An
anchor with an empty mask marks a plane where the object is absent: propagation stops there.

Many objects are propagated at once: planes are swept in order (up, then down) and every object
that needs a plane is decoded there in one batched call
(:func:`samscope.prompting.segment_objects`), so each plane's embedding is read once per sweep
and, computed lazily (:class:`~samscope.multidim.stack.PlaneStack`), only a few planes are in
memory at a time.

For time series (tracking) set ``directions="forward"`` and ``motion_smoothing`` to shift each
prompt by the object's smoothed centroid motion.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.multidim.link import object_levels, trim_dim
from samscope.multidim.objects import (
    ObjectPrompt,
    PlaneMask,
    PropagatedObject,
    Propagation,
    check_prompt,
)
from samscope.multidim.stack import PlaneStack

__all__ = [
    "ObjectPrompt",
    "PlaneMask",
    "Propagation",
    "PropagationConfig",
    "PropagatedObject",
    "Propagator",
    "propagate",
]

log = logging.getLogger(__name__)

PROMPT_KINDS = ("box", "mask", "points", "box+mask", "box+points", "points+mask", "box+points+mask")
DIRECTIONS = ("both", "forward", "backward")


@dataclass(frozen=True)
class PropagationConfig:
    """How the previous plane's mask prompts the next and when an object ends.

    Attributes
    ----------
    prompt : str
        Prompts made from the previous plane's mask: any ``+``-joined combination of ``box``,
        ``mask`` and ``points`` (the mask's most interior point), e.g. ``"box+mask"``. Default
        ``box`` (µSAM's light-microscopy preset): on CHO 0 and 6 the four prompts tried (box,
        box+mask, points+mask, box+points) were within 0.01 mean 3-D IoU, box the best.
    box_extension : float
        Fraction of the box's side added on each side of the previous mask's box.
    iou_threshold : float
        Stop when the new mask's overlap with the previous plane's mask is below this.
    overlap : {"smaller", "iou"}
        That overlap: intersection over the smaller mask, or over the union.
    min_predicted_iou : float
        Stop when the decoder's predicted IoU is below this.
    min_area : int
        Stop when the mask has fewer pixels (at the working resolution).
    max_growth : float
        Stop when the area grows by more than this factor from the previous plane.
    min_contrast : float
        Stop when the object's contrast falls below this fraction of its contrast on the anchor
        plane (0: never). With several anchors (corrections) the reference for this and for
        ``min_intensity`` is the anchor of highest contrast, so a correction on a dim plane does
        not let the blurred ghost back in.
    min_intensity : float
        Trim each propagated mask to its pixels brighter than the anchor's ring level plus this
        fraction of the anchor's contrast (0: no trimming; objects darker than their
        surroundings are never trimmed). Default 0.15, chosen on CHO dev time points 0–4 and 6
        (54 nuclei, one point / one box on the largest plane: mean 3-D IoU 0.71 / 0.79 without,
        0.76 / 0.85 at 0.1, 0.77 / 0.85 at 0.15, 0.75 / 0.83 at 0.2, 0.72 / 0.79 at 0.25).
    directions : str
        ``both`` (volumes), ``forward`` (tracking: increasing plane index) or ``backward``.
    motion_smoothing : float or None
        None: no motion model (volumes). A number in [0, 1): shift each prompt by the exponentially
        smoothed centroid displacement (weight of the previous estimate), for moving objects.
    max_planes : int or None
        Propagate at most this many planes from an anchor in each direction.
    """

    prompt: str = "box"
    box_extension: float = 0.05
    iou_threshold: float = 0.5
    overlap: str = "smaller"
    min_predicted_iou: float = 0.0
    min_area: int = 10
    max_growth: float = 4.0
    min_contrast: float = 0.15
    min_intensity: float = 0.15
    directions: str = "both"
    motion_smoothing: float | None = None
    max_planes: int | None = None

    def __post_init__(self) -> None:
        parts = set(self.prompt.split("+"))
        if not parts or not parts <= {"box", "mask", "points"} or "" in parts:
            raise InputError(f"prompt must combine box, mask and points with '+', got {self.prompt!r}")
        if parts == {"mask"}:
            object.__setattr__(self, "prompt", "box+mask")  # a mask prompt needs a box or a point
        if not 0 <= self.box_extension <= 1:
            raise InputError(f"box_extension must be in [0, 1], got {self.box_extension}")
        for name in ("iou_threshold", "min_predicted_iou"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise InputError(f"{name} must be in [0, 1], got {v}")
        if self.min_area < 0:
            raise InputError(f"min_area must be >= 0, got {self.min_area}")
        if not 0 <= self.min_intensity < 1:
            raise InputError(f"min_intensity must be in [0, 1), got {self.min_intensity}")
        if not 0 <= self.min_contrast < 1:
            raise InputError(f"min_contrast must be in [0, 1), got {self.min_contrast}")
        if not self.max_growth > 1:
            raise InputError(f"max_growth must be > 1, got {self.max_growth}")
        if self.overlap not in ("smaller", "iou"):
            raise InputError(f"overlap must be 'smaller' or 'iou', got {self.overlap!r}")
        if self.directions not in DIRECTIONS:
            raise InputError(f"directions must be one of {DIRECTIONS}, got {self.directions!r}")
        if self.motion_smoothing is not None and not 0 <= self.motion_smoothing < 1:
            raise InputError(f"motion_smoothing must be in [0, 1) or None, got {self.motion_smoothing}")
        if self.max_planes is not None and self.max_planes < 0:
            raise InputError(f"max_planes must be >= 0 or None, got {self.max_planes}")

    @property
    def kinds(self) -> frozenset[str]:
        """The prompt kinds as a set."""
        return frozenset(self.prompt.split("+"))


# -- the propagation engine ---------------------------------------------------------------------


@dataclass
class _Object:
    anchors: dict[int, ObjectPrompt]
    masks: dict[int, PlaneMask] = field(default_factory=dict)
    stopped: dict[int, str] = field(default_factory=dict)


class Propagator:
    """Interactive propagation: add objects, correct them on any plane, propagate in batches.

    Parameters
    ----------
    model : SamscopeModel
    stack : PlaneStack or array-like
        The stack (a :class:`PlaneStack`, or an array that becomes one with ``axes``).
    config : PropagationConfig, optional
    axes : str, optional
        Axes of ``stack`` when it is an array.
    batch_size : int
        Objects per decoder call.

    Examples
    --------
    >>> prop = Propagator(model, volume)                       # doctest: +SKIP
    >>> a = prop.add([ObjectPrompt(12, points=[[40, 50]])])      # doctest: +SKIP
    >>> result = prop.run()                                      # doctest: +SKIP
    >>> prop.correct(a, ObjectPrompt(17, box=[30, 40, 70, 80]))  # doctest: +SKIP
    >>> result = prop.run()  # only the planes nearer to plane 17   # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any,
        stack: PlaneStack | Any,
        *,
        config: PropagationConfig | None = None,
        axes: str | None = None,
        batch_size: int = 32,
    ) -> None:
        self.model = model
        self.stack = stack if isinstance(stack, PlaneStack) else PlaneStack(stack, model, axes=axes)
        self.config = config or PropagationConfig()
        self.batch_size = int(batch_size)
        self._objects: list[_Object] = []
        self._dirty: dict[int, set[int]] = {}  # object → anchors whose planes need decoding

    # -- editing --------------------------------------------------------------------------------

    def add(self, prompts: ObjectPrompt | Sequence[ObjectPrompt]) -> int:
        """Add an object from its prompts (one or more planes); returns its index."""
        items = [prompts] if isinstance(prompts, ObjectPrompt) else list(prompts)
        if not items:
            raise InputError("an object needs prompts on at least one plane")
        anchors: dict[int, ObjectPrompt] = {}
        for pr in items:
            checked = self._checked(pr)
            if checked.plane in anchors:
                raise InputError(f"two prompts for the same object on plane {checked.plane}; merge them")
            anchors[checked.plane] = checked
        self._objects.append(_Object(anchors))
        index = len(self._objects) - 1
        self._dirty[index] = set(anchors)
        return index

    def correct(self, index: int, prompt: ObjectPrompt) -> None:
        """Replace object ``index``'s prompts on ``prompt.plane`` (or add that plane as an anchor).

        The next :meth:`run` re-decodes that plane and re-propagates the planes nearer to it than
        to any other anchor of the object.
        """
        obj = self._object(index)
        checked = self._checked(prompt)
        obj.anchors[checked.plane] = checked
        self._dirty.setdefault(index, set()).add(checked.plane)

    def remove_anchor(self, index: int, plane: int) -> None:
        """Drop object ``index``'s prompts on ``plane`` (not its last anchor); its planes are redone."""
        obj = self._object(index)
        if plane not in obj.anchors:
            raise InputError(f"object {index} has no prompts on plane {plane}")
        if len(obj.anchors) == 1:
            raise InputError(f"plane {plane} holds object {index}'s only prompts; remove the object instead")
        del obj.anchors[plane]
        self._dirty[index] = set(obj.anchors)

    @property
    def n_objects(self) -> int:
        return len(self._objects)

    def _object(self, index: int) -> _Object:
        if not 0 <= index < len(self._objects):
            raise InputError(f"no object {index}: there are {len(self._objects)}")
        return self._objects[index]

    def _checked(self, pr: ObjectPrompt) -> ObjectPrompt:
        return check_prompt(pr, self.stack)

    # -- running --------------------------------------------------------------------------------

    def run(self) -> Propagation:
        """Decode the anchors that changed and propagate their planes; returns every object."""
        work: dict[int, set[int]] = {i: a for i, a in self._dirty.items() if a}
        if work:
            self._decode_anchors(work)
            self._sweep(work, up=True)
            self._sweep(work, up=False)
        self._dirty.clear()
        return self.result()

    def result(self) -> Propagation:
        """The objects as they stand (without running anything)."""
        objs = tuple(
            PropagatedObject(tuple(sorted(o.anchors)), dict(sorted(o.masks.items())), dict(o.stopped))
            for o in self._objects
        )
        st = self.stack
        return Propagation(objs, (st.n_planes, *st.plane_shape), st.work_shape)

    def _segments(self, obj: _Object, anchor: int) -> tuple[range, range]:
        """Planes propagated from ``anchor`` upwards and downwards (nearest anchor wins)."""
        cfg = self.config
        if prompt_absent(obj.anchors[anchor]):
            return range(0), range(0)
        anchors = sorted(obj.anchors)
        i = anchors.index(anchor)
        n = self.stack.n_planes
        if i == len(anchors) - 1:
            hi = n - 1
        elif cfg.directions == "forward" or prompt_absent(obj.anchors[anchors[i + 1]]):
            hi = anchors[i + 1] - 1  # nothing comes down from there
        else:
            hi = (anchor + anchors[i + 1]) // 2
        if i == 0:
            lo = 0
        elif cfg.directions == "backward" or prompt_absent(obj.anchors[anchors[i - 1]]):
            lo = anchors[i - 1] + 1
        else:
            lo = (anchors[i - 1] + anchor) // 2 + 1
        if cfg.max_planes is not None:
            hi, lo = min(hi, anchor + cfg.max_planes), max(lo, anchor - cfg.max_planes)
        up = range(anchor + 1, hi + 1) if cfg.directions in ("both", "forward") else range(0)
        down = range(anchor - 1, lo - 1, -1) if cfg.directions in ("both", "backward") else range(0)
        return up, down

    def _decode_anchors(self, work: dict[int, set[int]]) -> None:
        st = self.stack
        by_plane: dict[int, list[tuple[int, ObjectPrompt]]] = {}
        for i, anchors in work.items():
            obj = self._objects[i]
            for a in anchors:
                for seg in self._segments(obj, a):  # forget what the old propagation put there
                    for p in seg:
                        obj.masks.pop(p, None)
                        obj.stopped.pop(p, None)
                pr = obj.anchors[a]
                if pr.points is None and pr.box is None:  # a mask given as is
                    m = st.mask_to_work(pr.mask)
                    obj.masks[a] = PlaneMask.from_dense(a, m, predicted_iou=1.0, overlap=1.0, anchor=True)
                    if not m.any():
                        obj.stopped[a] = "absent (marked by the user)"
                    continue
                by_plane.setdefault(a, []).append((i, pr))
        for plane, items in sorted(by_plane.items()):
            groups: dict[tuple, list[tuple[int, ObjectPrompt]]] = {}
            for i, pr in items:
                single = pr.box is None and pr.points is not None and len(pr.points) == 1
                key = (pr.box is not None, pr.points is not None, pr.mask is not None, single)
                groups.setdefault(key, []).append((i, pr))
            for (has_box, has_pts, has_mask, single), group in groups.items():
                boxes = np.stack([st.box_to_work(pr.box) for _, pr in group]) if has_box else None
                points = labels = None
                if has_pts:
                    m = max(len(pr.points) for _, pr in group)
                    points = np.zeros((len(group), m, 2))
                    labels = np.full((len(group), m), -1, np.int64)
                    for j, (_, pr) in enumerate(group):
                        points[j, : len(pr.points)] = st.points_to_work(pr.points)
                        labels[j, : len(pr.labels)] = pr.labels
                masks = np.stack([st.mask_to_work(pr.mask) for _, pr in group]) if has_mask else None
                res = self._decode(plane, boxes, points, labels, masks, multimask=single)
                for j, (i, _) in enumerate(group):
                    self._objects[i].masks[plane] = PlaneMask.from_dense(
                        plane, res.masks[j], predicted_iou=float(res.iou[j]), overlap=1.0, anchor=True
                    )

    def _decode(self, plane, boxes, points, labels, masks, *, multimask=False):
        from samscope.prompting import segment_objects

        emb, index = self.stack.embeddings(plane)
        return segment_objects(
            self.model, emb, boxes=boxes, points=points, labels=labels, masks=masks,
            multimask=multimask, plane=index, batch_size=self.batch_size,
        )  # fmt: skip

    def _sweep(self, work: dict[int, set[int]], *, up: bool) -> None:
        """One pass over the planes in one direction, decoding every object that needs a plane."""
        st = self.stack
        # per object and anchor: the planes still to do, in order
        chains: dict[tuple[int, int], list[int]] = {}
        self._levels: dict[tuple[int, int], tuple[float, float, float]] = {}  # inside, ring, size
        for i, anchors in work.items():
            obj = self._objects[i]
            for a in anchors:
                seg = self._segments(obj, a)[0 if up else 1]
                if len(seg) and obj.masks.get(a) is not None and obj.masks[a].area:
                    chains[(i, a)] = list(seg)
                    if self.config.min_contrast > 0 or self.config.min_intensity > 0:
                        self._levels[(i, a)] = self._reference(obj)
        motion: dict[tuple[int, int], np.ndarray] = {}
        order = range(st.n_planes) if up else range(st.n_planes - 1, -1, -1)
        step = 1 if up else -1
        for plane in order:
            todo = [key for key, seg in chains.items() if seg and seg[0] == plane]
            if not todo:
                continue
            prompts = [
                self._prompt_from(self._objects[i].masks[plane - step], (i, a), motion)
                for i, a in todo
            ]
            self._decode_propagated(plane, todo, prompts, chains, motion, step)

    def _reference(self, obj: _Object) -> tuple[float, float, float]:
        """Inside and ring level and size of the object's best-contrast anchor: the reference
        for fading and trimming from every anchor (a correction on a dim plane does not lower it)."""
        st = self.stack
        best = None
        for a in sorted(obj.anchors):
            m = obj.masks.get(a)
            if m is None or not m.area:
                continue
            inside, ring = object_levels(st.image(a), m.dense(st.work_shape))
            if best is None or inside - ring > best[0] - best[1]:
                best = (inside, ring, float(np.sqrt(m.area)))
        return best if best is not None else (float("nan"), float("nan"), 0.0)

    def _prompt_from(self, prev: PlaneMask, key, motion) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Box, most interior point and dense mask of the previous plane's mask (shifted by motion)."""
        from scipy import ndimage as ndi

        h, w = self.stack.work_shape
        dense = prev.dense((h, w))
        shift = motion.get(key)
        if shift is not None and np.any(np.abs(shift) >= 0.5):
            dy, dx = (int(round(v)) for v in shift)
            dense = _shift(dense, dy, dx)
            if not dense.any():
                dense = prev.dense((h, w))
        ys = np.flatnonzero(dense.any(axis=1))
        xs = np.flatnonzero(dense.any(axis=0))
        y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
        ey = self.config.box_extension * (y1 - y0)
        ex = self.config.box_extension * (x1 - x0)
        box = np.array([max(0, y0 - ey), max(0, x0 - ex), min(h, y1 + ey), min(w, x1 + ex)])
        crop = np.pad(dense[y0:y1, x0:x1], 1)
        dist = ndi.distance_transform_edt(crop)
        cy, cx = np.unravel_index(int(np.argmax(dist)), dist.shape)
        point = np.array([cy - 1 + y0, cx - 1 + x0], np.float64)
        return box, point, dense

    def _decode_propagated(self, plane, todo, prompts, chains, motion, step) -> None:
        cfg = self.config
        kinds = cfg.kinds
        boxes = np.stack([b for b, _, _ in prompts]) if "box" in kinds else None
        points = np.stack([p[None] for _, p, _ in prompts]) if "points" in kinds else None
        labels = np.ones((len(todo), 1), np.int64) if points is not None else None
        masks = np.stack([m for _, _, m in prompts]) if "mask" in kinds else None
        res = self._decode(plane, boxes, points, labels, masks)
        image = self.stack.image(plane) if cfg.min_contrast > 0 or cfg.min_intensity > 0 else None
        for j, key in enumerate(todo):
            i, _ = key
            obj = self._objects[i]
            prev = obj.masks[plane - step]
            new, reason = self._faded(image, res.masks[j], self._levels.get(key))
            reason = reason or self._stop_reason(prev, new, float(res.iou[j]))
            chains[key].pop(0)
            if reason is not None:
                obj.stopped[plane] = reason
                chains[key] = []
                continue
            pm = PlaneMask.from_dense(
                plane, new, predicted_iou=float(res.iou[j]), overlap=plane_iou(prev, new), anchor=False
            )
            obj.masks[plane] = pm
            if cfg.motion_smoothing is not None:
                d = _centroid(pm) - _centroid(prev)
                old = motion.get(key)
                s = cfg.motion_smoothing
                motion[key] = d if old is None else s * old + (1 - s) * d

    def _faded(self, image, new: np.ndarray, levels) -> tuple[np.ndarray, str | None]:
        """The mask trimmed to the object's bright part, and a stop reason if it has faded."""
        cfg = self.config
        if image is None or levels is None or not new.any():
            return new, None
        inside, ring, size = levels
        ref = inside - ring
        if not (np.isfinite(ref) and ref != 0):
            return new, None
        if cfg.min_contrast > 0:
            here = object_levels(image, new)
            ratio = (here[0] - here[1]) / ref
            if ratio < cfg.min_contrast:
                return new, f"faded: contrast {ratio:.2f} of the anchor's (min_contrast {cfg.min_contrast})"
        if cfg.min_intensity > 0 and ref > 0:
            new = trim_dim(image, new, ring + cfg.min_intensity * ref, sigma=0.03 * size)
            if np.count_nonzero(new) < max(1, cfg.min_area):
                return new, f"faded: nothing brighter than the anchor's level (min_intensity {cfg.min_intensity})"
        return new, None

    def _stop_reason(self, prev: PlaneMask, new: np.ndarray, predicted: float) -> str | None:
        cfg = self.config
        area = int(new.sum())
        if area < max(1, cfg.min_area):
            return f"mask of {area} px (min_area {cfg.min_area})"
        if cfg.min_predicted_iou > 0 and predicted < cfg.min_predicted_iou:
            return f"predicted IoU {predicted:.2f} < {cfg.min_predicted_iou}"
        ratio = area / max(prev.area, 1)
        if ratio > cfg.max_growth:
            return f"area grew ×{ratio:.2f} (max_growth {cfg.max_growth})"
        if cfg.motion_smoothing is None:  # with motion the masks move; overlap with the last is no test
            ov = plane_iou(prev, new, smaller=cfg.overlap == "smaller")
            if ov < cfg.iou_threshold:
                return f"overlap {ov:.2f} with the previous plane < {cfg.iou_threshold}"
        return None


def prompt_absent(pr: ObjectPrompt) -> bool:
    """An anchor that marks the object absent: an empty mask and nothing else."""
    return pr.points is None and pr.box is None and pr.mask is not None and not pr.mask.any()


def plane_iou(prev: PlaneMask, new: np.ndarray, *, smaller: bool = False) -> float:
    y0, x0, y1, x1 = (int(v) for v in prev.box)
    inter = int(np.count_nonzero(new[y0:y1, x0:x1] & prev.crop))
    if smaller:
        low = min(prev.area, int(np.count_nonzero(new)))
        return inter / low if low else 0.0
    union = prev.area + int(np.count_nonzero(new)) - inter
    return inter / union if union else 0.0


def _centroid(m: PlaneMask) -> np.ndarray:
    ys, xs = np.nonzero(m.crop)
    return np.array([ys.mean() + m.box[0], xs.mean() + m.box[1]])


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    src = mask[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    out[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out


def propagate(
    model: Any,
    stack: PlaneStack | Any,
    objects: Sequence[ObjectPrompt | Sequence[ObjectPrompt]],
    *,
    config: PropagationConfig | None = None,
    axes: str | None = None,
    batch_size: int = 32,
    propagator: str = "projection",
) -> Propagation:
    """Segment objects through a stack from prompts on some of its planes, all objects at once.

    Parameters
    ----------
    model : SamscopeModel
    stack : PlaneStack or array-like
        ``(P, H, W)`` (or with channels); a :class:`PlaneStack` to reuse embeddings, resize to a
        model's working scale or compute embeddings into a cache.
    objects : sequence
        One entry per object: an :class:`ObjectPrompt`, or several (on different planes).
    config : PropagationConfig, optional
    axes : str, optional
        ``ZYX`` or ``TYX`` (with ``C``) when ``stack`` is an array; inferred otherwise.
    batch_size : int
        Objects per decoder call.
    propagator : {"projection", "sam2-memory"}
        ``projection``: each plane prompted from its neighbour's mask (this module);
        ``sam2-memory``: SAM2's video memory (:mod:`samscope.multidim.sam2_memory`; a SAM2 model).

    Returns
    -------
    Propagation
        ``.labels()`` gives the ``(P, H, W)`` labels (object ``i`` → ``i + 1``), ``.mask(i)`` one
        object, ``.objects[i].stopped`` where and why each object ended.

    Raises
    ------
    InputError
        A 2-D image, prompts on a plane outside the stack or outside the plane, no objects.

    Examples
    --------
    >>> result = propagate(model, volume, [ObjectPrompt(2, points=[[40, 50]])])  # doctest: +SKIP
    >>> labels = result.labels()                                                  # doctest: +SKIP
    """
    if propagator != "projection":
        from samscope.multidim.sam2_memory import propagate_with

        return propagate_with(propagator, model, stack, objects, config=config, axes=axes)
    prop = Propagator(model, stack, config=config, axes=axes, batch_size=batch_size)
    if not objects:
        raise InputError("no objects to propagate: give prompts for at least one object")
    for obj in objects:
        prop.add(obj)
    return prop.run()

