"""The rules of interactive tracking, shared by the 2-D+t and 3-D+t trackers: the config, when a
track stops, when a mask that fell apart is a division, and the prompts made from a mask.

Pure numpy (scipy.ndimage): no model here. :mod:`samscope.multidim.track` (TYX) and
:mod:`samscope.multidim.track3d` (TZYX) decode with the model and apply these rules.

A **division** needs two well-separated daughters of plausible size, not two fragments of one
textured nucleus (:func:`division_pieces`): the two largest pieces of the new mask must be
comparable (``division_min_fraction``), each must lie mostly inside the mother's previous mask
(``division_min_inside``), their areas must add up to a plausible share of the mother
(``division_min_sum`` … ``division_max_sum`` of the previous mask), and a gap of at least
``division_min_gap`` of the mother's equivalent diameter must part them. The trackers then
confirm it with the model (``division_probe``): each piece's most interior point is decoded alone,
and if either point's mask covers most of the other piece, the pieces are one object.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samscope.errors import InputError
from samscope.multidim.objects import PlaneMask

__all__ = [
    "TrackingConfig",
    "box_of",
    "continuing_mask",
    "division_pieces",
    "interior_point",
    "largest_component",
    "mask_centroid",
    "prompts_from",
    "same_object",
    "shift_mask",
    "stop_reason",
]

PROMPTS = ("box", "box+mask", "box+points", "box+points+mask")


@dataclass(frozen=True)
class TrackingConfig:
    """How a track's previous mask prompts the next frame, and when a track ends or divides.

    Attributes
    ----------
    prompt : {"box", "box+mask", "box+points", "box+points+mask"}
        Prompts made from the previous frame's (motion-shifted) mask: its box, the mask itself,
        its most interior point.
    box_extension : float
        Fraction of the box's side added on each side (room for the object to move and grow).
    motion_smoothing : float
        Weight of the previous motion estimate in the exponentially smoothed centroid motion
        (0: the last displacement only). µSAM uses 0.5.
    min_overlap : float
        End a track when its new mask overlaps the shifted previous mask by less than this
        (intersection over the smaller of the two): the object vanished, the prompt found another.
    min_predicted_iou : float
        End a track when the decoder's predicted IoU is below this.
    min_area : int
        End a track when its mask has fewer pixels (working resolution): it left the image.
    max_growth : float
        End a track when its area grows by more than this factor in one frame (a leak).
    max_shared : float
        Two tracks whose masks on a frame overlap by more than this (over the smaller mask) have
        collided: the younger one (the higher id) ends there.
    detect_divisions : bool
        Look for divisions (see the module docstring); off: only user-marked divisions.
    division_min_fraction : float
        A division's smaller daughter is at least this fraction of the larger.
    division_min_sum, division_max_sum : float
        The daughters' areas add up to this share of the mother's previous mask at least / at
        most.
    division_min_gap : float
        The daughters are parted by at least this fraction of the mother's equivalent diameter.
    division_min_inside : float
        Each daughter lies at least this fraction inside the mother's (shifted) previous mask: a
        piece of a neighbour caught by the box is not a daughter.
    division_probe : bool
        Confirm a division by decoding each daughter's interior point alone (module docstring).
    division_shrink : float
        Probe for a sister when the mask shrinks below this fraction of the previous one.
    max_frames : int or None
        Follow a track at most this many frames past its anchor.
    """

    prompt: str = "box"
    box_extension: float = 0.1
    motion_smoothing: float = 0.5
    min_overlap: float = 0.2
    min_predicted_iou: float = 0.0
    min_area: int = 10
    max_growth: float = 2.5
    max_shared: float = 0.6
    detect_divisions: bool = True
    division_min_fraction: float = 0.3
    division_min_sum: float = 0.5
    division_max_sum: float = 1.2
    division_min_gap: float = 0.15
    division_min_inside: float = 0.3
    division_probe: bool = True
    division_shrink: float = 0.7
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if self.prompt not in PROMPTS:
            raise InputError(f"prompt must be one of {', '.join(PROMPTS)}; got {self.prompt!r}")
        for name in ("box_extension", "min_overlap", "min_predicted_iou", "max_shared",
                     "division_min_fraction", "division_shrink", "division_min_sum",
                     "division_min_gap", "division_min_inside"):  # fmt: skip
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise InputError(f"{name} must be in [0, 1], got {v}")
        if not self.division_max_sum >= self.division_min_sum:
            raise InputError(
                f"division_max_sum ({self.division_max_sum}) must be >= division_min_sum "
                f"({self.division_min_sum})"
            )
        if not 0 <= self.motion_smoothing < 1:
            raise InputError(f"motion_smoothing must be in [0, 1), got {self.motion_smoothing}")
        if self.min_area < 0:
            raise InputError(f"min_area must be >= 0, got {self.min_area}")
        if not self.max_growth > 1:
            raise InputError(f"max_growth must be > 1, got {self.max_growth}")
        if self.max_frames is not None and self.max_frames < 0:
            raise InputError(f"max_frames must be >= 0 or None, got {self.max_frames}")


def stop_reason(cfg: TrackingConfig, prev: np.ndarray, new: np.ndarray, predicted: float) -> str | None:
    """Why a track whose shifted previous mask is ``prev`` ends at ``new`` (None: it goes on)."""
    area, parea = int(new.sum()), int(prev.sum())
    if area < max(1, cfg.min_area):
        return f"mask of {area} px (min_area {cfg.min_area}): left the image or vanished"
    if cfg.min_predicted_iou > 0 and predicted < cfg.min_predicted_iou:
        return f"predicted IoU {predicted:.2f} < {cfg.min_predicted_iou}"
    if area > cfg.max_growth * max(parea, 1):
        return f"area grew ×{area / max(parea, 1):.2f} (max_growth {cfg.max_growth})"
    inter = int(np.count_nonzero(new & prev))
    ov = inter / max(min(area, parea), 1)
    if ov < cfg.min_overlap:
        return f"overlap {ov:.2f} with the moved previous mask < {cfg.min_overlap}"
    return None


def division_pieces(mask: np.ndarray, prev: np.ndarray, cfg: TrackingConfig):
    """The two daughters of ``mask`` if it fell apart like a division (module docstring), else None.

    Parameters
    ----------
    mask : ndarray of bool
        The track's new mask.
    prev : ndarray of bool
        Its previous mask (shifted by the motion estimate).
    cfg : TrackingConfig

    Returns
    -------
    (ndarray, ndarray) or None
        The larger and the smaller piece.
    """
    from scipy import ndimage as ndi

    lab, n = ndi.label(mask)
    if n < 2:
        return None
    sizes = np.bincount(lab.ravel())[1:]
    order = np.argsort(sizes)[::-1]
    a, b = int(sizes[order[0]]), int(sizes[order[1]])
    if b < max(cfg.min_area, cfg.division_min_fraction * a):
        return None
    prev = np.asarray(prev, bool)
    prev_area = max(int(prev.sum()), 1)
    if not cfg.division_min_sum * prev_area <= a + b <= cfg.division_max_sum * prev_area:
        return None
    big, small = lab == order[0] + 1, lab == order[1] + 1
    for piece in (big, small):  # both daughters come out of the mother, not from a neighbour
        if np.count_nonzero(piece & prev) < cfg.division_min_inside * piece.sum():
            return None
    if cfg.division_min_gap > 0:
        gap = float(ndi.distance_transform_edt(~big)[small].min()) - 1.0  # background px between
        if gap < cfg.division_min_gap * np.sqrt(4 * prev_area / np.pi):
            return None
    return big, small


def continuing_mask(mask: np.ndarray, prev: np.ndarray, cfg: TrackingConfig) -> np.ndarray:
    """What a track that did not divide goes on with: its largest piece and the pieces close to
    it (fragments of one textured nucleus, parted by less than ``division_min_gap``); a piece
    well apart from it is another object the box caught."""
    from scipy import ndimage as ndi

    mask = np.asarray(mask, bool)
    lab, n = ndi.label(mask)
    if n < 2:
        return mask
    sizes = np.bincount(lab.ravel())[1:]
    big = lab == int(np.argmax(sizes)) + 1
    limit = cfg.division_min_gap * np.sqrt(4 * max(int(np.asarray(prev).sum()), 1) / np.pi)
    near = ndi.distance_transform_edt(~big) - 1.0 < max(limit, 1.0)
    keep = np.unique(lab[near & mask])
    return np.isin(lab, keep[keep > 0])


def same_object(pieces, probes) -> bool:
    """True when a probe mask (one per piece, decoded from its interior point) covers most of the
    other piece: the pieces are fragments of one object."""
    (a, b), (pa, pb) = pieces, probes
    pa, pb = np.asarray(pa, bool), np.asarray(pb, bool)
    return bool(np.count_nonzero(pa & b) > 0.5 * b.sum() or np.count_nonzero(pb & a) > 0.5 * a.sum())


def interior_point(mask: np.ndarray) -> np.ndarray:
    """``(y, x)`` of the pixel of ``mask`` farthest from its edge."""
    from scipy import ndimage as ndi

    dist = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    return np.array(np.unravel_index(int(np.argmax(dist)), mask.shape), np.float64)


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest connected piece of ``mask``."""
    from scipy import ndimage as ndi

    mask = np.asarray(mask, bool)
    lab, n = ndi.label(mask)
    if n <= 1:
        return mask
    return lab == (int(np.argmax(np.bincount(lab.ravel())[1:])) + 1)


def box_of(mask: np.ndarray, extension: float, shape: tuple[int, int]) -> np.ndarray:
    """``(y0, x0, y1, x1)`` of ``mask``, each side extended by ``extension`` of its length."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
    ey, ex = extension * (y1 - y0), extension * (x1 - x0)
    h, w = shape
    return np.array([max(0, y0 - ey), max(0, x0 - ex), min(h, y1 + ey), min(w, x1 + ex)])


def shift_mask(mask: np.ndarray, motion: np.ndarray) -> np.ndarray:
    """``mask`` moved by ``motion`` (dy, dx), rounded; unchanged if it would leave the plane."""
    dy, dx = (int(round(v)) for v in motion)
    if dy == 0 and dx == 0:
        return mask
    out = np.zeros_like(mask)
    h, w = mask.shape
    src = mask[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
    out[max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out if out.any() else mask


def mask_centroid(m: PlaneMask) -> np.ndarray:
    """``(y, x)`` centroid of a stored plane mask."""
    ys, xs = np.nonzero(m.crop)
    return np.array([ys.mean() + m.box[0], xs.mean() + m.box[1]])


def prompts_from(shifted, cfg: TrackingConfig, shape: tuple[int, int]):
    """``(boxes, points, labels, masks)`` for the decoder from each track's shifted previous mask,
    as ``cfg.prompt`` asks (None where a kind is not used)."""
    boxes = np.stack([box_of(m, cfg.box_extension, shape) for m in shifted])
    points = labels = masks = None
    if "points" in cfg.prompt:
        points = np.stack([interior_point(m) for m in shifted])[:, None, :]
        labels = np.ones((len(shifted), 1), np.int64)
    if "mask" in cfg.prompt:
        masks = np.stack(shifted)
    return boxes, points, labels, masks
