"""Star-convex objects, their placement and pixel ownership: the building blocks of the
nuclei, cells and time-lapse simulators.

A :class:`Blob` is an ellipse whose radius is modulated by radial harmonics (and optionally bent):
``R(θ) = ellipse(a, b)(θ) * (1 + Σ_k amp_k cos(k θ + phase_k))``. :class:`Placer` puts discs on a
canvas one by one, free-standing or against a neighbour; :func:`assign_owners` gives each pixel to
the blob with the largest normalised height ``1 - r / R(θ)``, so touching objects share a
straight-ish border; :func:`finish_labels` makes sequential labels of what is left in view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samscope.simulate.sample import labels_dtype

__all__ = [
    "Blob",
    "Placer",
    "assign_owners",
    "finish_labels",
    "grid_box",
    "inner_distance",
    "random_harmonics",
    "smooth_field",
]


@dataclass
class Blob:
    """One object before rendering: a star-convex shape and how it looks.

    The boundary is ``R(θ) = ellipse(a, b)(θ) * (1 + Σ_k amp_k cos(k θ + phase_k))`` around
    ``(cy, cx)`` (canvas pixels) in a frame rotated by ``angle`` and bent by ``bend``; ``kind``
    names the look for the renderer.
    """

    cy: float
    cx: float
    a: float
    b: float
    angle: float
    harmonics: np.ndarray  # (k, 3): order, amplitude, phase
    kind: str
    brightness: float = 1.0
    extra: dict | None = None
    bend: float = 0.0

    @property
    def radius(self) -> float:
        """Equivalent radius (of the disc with the ellipse's area)."""
        return float(np.sqrt(self.a * self.b))

    @property
    def reach(self) -> float:
        """An upper bound of ``R(θ)`` (bending included)."""
        return float(self.a * (1 + np.abs(self.harmonics[:, 1]).sum()) * (1 + abs(self.bend)))

    def frame(self, yy: np.ndarray, xx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid coordinates in the blob's frame: ``u`` along the major axis, ``v`` across it,
        bent by ``bend * u² / a`` (kidney shapes, curved rods)."""
        dy, dx = yy - self.cy, xx - self.cx
        ca, sa = np.cos(self.angle), np.sin(self.angle)
        u = dx * ca + dy * sa
        v = dy * ca - dx * sa
        if self.bend:
            v = v - self.bend * u * u / self.a
        return u, v

    def height(self, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        """Normalised height ``1 - r / R(θ)`` on a grid: positive inside, 1 at the centre.

        Coordinates are taken in the blob's :meth:`frame`.
        """
        u, v = self.frame(yy, xx)
        r = np.hypot(u, v)
        t = np.arctan2(v, u)
        big_r = self.a * self.b / np.sqrt((self.b * np.cos(t)) ** 2 + (self.a * np.sin(t)) ** 2)
        if self.harmonics.size:
            k, amp, ph = (self.harmonics[:, j, None, None] for j in range(3))
            big_r = big_r * (1 + (amp * np.cos(k * t + ph)).sum(axis=0))
        return 1.0 - r / np.maximum(big_r, 1e-6)


def random_harmonics(rng: np.random.Generator, amplitude: float, orders=(2, 3, 4, 5)) -> np.ndarray:
    """Radial harmonics ``(k, 3)`` (order, amplitude, phase) with amplitudes falling as 1/k."""
    k = np.asarray(orders, dtype=float)
    amp = amplitude * rng.uniform(0, 1, k.size) * 2.0 / k
    ph = rng.uniform(0, 2 * np.pi, k.size)
    return np.stack([k, amp, ph], axis=1)


class Placer:
    """Sequential placement of discs on a canvas: free-standing or against a chosen neighbour.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    bounds : tuple of float
        ``(y0, x0, y1, x1)``: where centres may go.
    """

    def __init__(self, rng: np.random.Generator, bounds: tuple[float, float, float, float]) -> None:
        self.rng = rng
        self.bounds = bounds
        self.centres = np.zeros((0, 2))
        self.radii = np.zeros(0)
        self.anchor = np.zeros(0, dtype=bool)

    def _ok(self, c: np.ndarray, r: float, factor: float, skip: int = -1) -> bool:
        y0, x0, y1, x1 = self.bounds
        if not (y0 <= c[0] <= y1 and x0 <= c[1] <= x1):
            return False
        if not self.radii.size:
            return True
        d = np.hypot(*(self.centres - c).T)
        lim = factor * (self.radii + r)
        if skip >= 0:
            lim[skip] = 0.0
        return bool((d >= lim).all())

    def place(
        self,
        r: float,
        *,
        cluster: bool,
        touch: tuple[float, float] = (0.8, 0.95),
        free_gap: float = 1.0,
        anchor: bool = True,
        tries: int = 30,
    ) -> tuple[float, float] | None:
        """Centre for a disc of radius ``r`` (None if no room after ``tries``).

        ``cluster``: against a random anchor, centres ``touch`` × the summed radii apart, others
        at least 0.8 × the summed radii away. Otherwise uniform, ``free_gap`` × summed radii away.
        """
        rng = self.rng
        y0, x0, y1, x1 = self.bounds
        anchors = np.flatnonzero(self.anchor)
        for _ in range(tries):
            if cluster and anchors.size:
                j = int(rng.choice(anchors))
                phi = rng.uniform(0, 2 * np.pi)
                dist = rng.uniform(*touch) * (self.radii[j] + r)
                c = self.centres[j] + dist * np.array([np.sin(phi), np.cos(phi)])
                ok = self._ok(c, r, 0.8, skip=j)
            else:
                c = np.array([rng.uniform(y0, y1), rng.uniform(x0, x1)])
                ok = self._ok(c, r, free_gap)
            if ok:
                self.centres = np.vstack([self.centres, c])
                self.radii = np.append(self.radii, r)
                self.anchor = np.append(self.anchor, anchor)
                return float(c[0]), float(c[1])
        return None


def grid_box(blob: Blob, margin: float, canvas: tuple[int, int]) -> tuple[slice, slice]:
    """The canvas window around ``blob`` with ``margin`` pixels beyond its reach."""
    r = blob.reach + margin
    y0, y1 = int(np.floor(blob.cy - r)), int(np.ceil(blob.cy + r)) + 1
    x0, x1 = int(np.floor(blob.cx - r)), int(np.ceil(blob.cx + r)) + 1
    h, w = canvas
    return slice(max(y0, 0), min(y1, h)), slice(max(x0, 0), min(x1, w))


def assign_owners(blobs: list[Blob], canvas: tuple[int, int], margin: float) -> tuple[np.ndarray, list]:
    """Label canvas (id ``i + 1`` for ``blobs[i]``) by the largest positive normalised height.

    Returns the int32 owner image and, per blob, ``(window, height)`` on its window.
    """
    owner = np.zeros(canvas, dtype=np.int32)
    best = np.zeros(canvas, dtype=np.float32)
    windows = []
    for i, b in enumerate(blobs):
        win = grid_box(b, margin, canvas)
        yy = np.arange(win[0].start, win[0].stop, dtype=np.float32)[:, None]
        xx = np.arange(win[1].start, win[1].stop, dtype=np.float32)[None, :]
        hgt = b.height(yy, xx).astype(np.float32)
        cur = best[win]
        take = hgt > cur  # best starts at 0: only the inside can take a pixel
        cur[take] = hgt[take]
        owner[win][take] = i + 1
        windows.append((win, hgt))
    return owner, windows


def inner_distance(own: np.ndarray) -> np.ndarray:
    """Euclidean distance of each pixel of ``own`` to the nearest pixel outside it."""
    from scipy import ndimage as ndi

    return ndi.distance_transform_edt(np.pad(own, 1))[1:-1, 1:-1]


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation (float32)."""
    from scipy import ndimage as ndi

    # filter a coarse grid and upsample when the scale is large: same look, far less work
    step = max(1, int(sigma // 4))
    small = (-(-shape[0] // step) + 2, -(-shape[1] // step) + 2)
    f = ndi.gaussian_filter(rng.standard_normal(small, dtype=np.float32), sigma / step, mode="wrap")
    if step > 1:
        f = ndi.zoom(f, step, order=1, grid_mode=False)
    f = f[: shape[0], : shape[1]]
    sd = float(f.std())
    return (f - f.mean()) / (sd if sd > 0 else 1.0)


def finish_labels(owner: np.ndarray, min_area: int) -> tuple[np.ndarray, np.ndarray]:
    """Sequential labels (0 = background) keeping objects of at least ``min_area`` pixels.

    Returns the labels and, for each new id ``1..n``, the old owner id it came from.
    """
    counts = np.bincount(owner.ravel())
    keep = np.flatnonzero(counts >= min_area)
    keep = keep[keep > 0]
    lut = np.zeros(counts.size, dtype=np.int64)
    lut[keep] = np.arange(1, keep.size + 1)
    labels = lut[owner].astype(labels_dtype(keep.size))
    return labels, keep
