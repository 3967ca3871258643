"""Simulated label-free images: phase-contrast cells and rod-shaped bacteria, with instance labels.

Two looks share one image model (``look`` picks one, or ``"mixed"`` draws one per image):

``"phase"``
    Adherent mammalian cells (equivalent diameter ``cell_diameter_px``): star-convex outlines
    with radial harmonics 2–7 (``irregularity``) for lobes and protrusions, a thin lamella that
    thickens over ``edge_px`` towards the cell body, a thicker nucleus with nucleoli, granular
    cytoplasm, and ``round_fraction`` of rounded (mitotic or detaching) cells that are small,
    thick and compact.
``"bacteria"``
    Rods (capsules of length ``rod_length_px`` and width ``rod_width_px``, slightly curved) whose
    thickness is the chord of a cylinder. Rods placed in a colony take their neighbour's
    orientation (± 20°), so colonies look like aligned rafts.

Image formation
    The optical path difference ``φ`` (the sum of the objects' thicknesses, plus unlabelled debris)
    goes through a positive phase-contrast model: ``I / B = 1 − c · (φ − s · G_σ * φ)``, where
    ``G_σ`` is a Gaussian of width ``halo_px`` (the low-pass leak of the phase ring), ``s`` the
    halo strength (``halo``) and ``c`` the contrast (``contrast``). Thick objects turn dark, a
    bright halo surrounds them, and large flat cells fade towards their middle (the shade-off
    artefact). ``B`` is a bright background (``background`` photons per pixel) with vignetting
    and a fine ``background_texture``; then a Gaussian PSF (``blur_px``) and the camera
    (:func:`samscope.simulate.optics.camera`: Poisson noise, gain, offset, read noise).
Placement and ground truth
    Objects are placed one at a time, uniformly or (``cluster_fraction``) against an earlier one;
    a candidate is accepted if at most ``max_overlap`` of it lies on earlier objects, and shared
    pixels go to the object with the larger normalised height (touching neighbours split their
    contact). ``labels``: one id per object with at least ``min_area_px`` visible pixels;
    objects never overlap, so ``masks`` is None; ``foreground = labels > 0``.

No real label-free data ships with samscope to compare against; the look was checked by eye
against typical 10–20× phase-contrast images (dark cell bodies, bright halos, shade-off) and
100× phase images of *E. coli* colonies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samscope.errors import InputError
from samscope.simulate.sample import (
    SimulatedSample,
    check_camera,
    check_count,
    check_fraction,
    check_positive,
    check_range,
    config_to_dict,
    sample_rng,
    simulate_samples,
)
from samscope.simulate.shapes import (
    Blob,
    finish_labels,
    grid_box,
    inner_distance,
    random_harmonics,
    smooth_field,
)

__all__ = ["CellsConfig", "cells", "simulate_one"]

LOOKS = ("phase", "bacteria", "mixed")


@dataclass(frozen=True)
class CellsConfig:
    """Parameters of the label-free simulator (field names are the CLI flags).

    Ranges are ``(min, max)``, drawn uniformly per image unless said otherwise.

    Parameters
    ----------
    look : {"phase", "bacteria", "mixed"}
        Mammalian cells in phase contrast, rod bacteria, or either (50/50 per image).
    cell_density : tuple of float
        Cells per 10,000 px² (``"phase"``).
    cell_diameter_px : tuple of float
        Equivalent diameter of a spread cell, per cell.
    irregularity : float
        Amplitude of the radial harmonics of cell outlines.
    round_fraction : float
        Fraction of cells that are rounded up (compact, thick).
    edge_px : tuple of float
        Distance over which a cell thickens from its edge, per cell.
    rod_density : tuple of float
        Rods per 10,000 px² (``"bacteria"``).
    rod_length_px, rod_width_px : tuple of float
        Tip-to-tip length and width of rods, per rod.
    cluster_fraction : float
        Probability that an object is placed against an earlier one.
    max_overlap : float
        Largest fraction of a new object that may lie on earlier ones.
    contrast : tuple of float
        Phase contrast ``c`` (darkness of a thick body).
    halo : tuple of float
        Halo strength ``s`` in [0, 1.2].
    halo_px : tuple of float
        Width of the halo (Gaussian sigma, pixels).
    background : tuple of float
        Background level in photons per pixel.
    background_texture : tuple of float
        Relative amplitude of the fine background texture.
    blur_px : tuple of float
        Standard deviation of the Gaussian PSF.
    gain, offset, read_noise : tuple of float
        Camera counts per photon, baseline, read-noise standard deviation (counts).
    min_area_px : int
        Objects with fewer visible pixels are dropped from the labels.
    pixel_size_nm : float
        Nominal pixel size recorded with the samples.
    """

    look: str = "mixed"
    cell_density: tuple[float, float] = (0.6, 2.5)
    cell_diameter_px: tuple[float, float] = (28.0, 60.0)
    irregularity: float = 0.18
    round_fraction: float = 0.1
    edge_px: tuple[float, float] = (1.0, 3.5)
    rod_density: tuple[float, float] = (4.0, 14.0)
    rod_length_px: tuple[float, float] = (14.0, 36.0)
    rod_width_px: tuple[float, float] = (6.0, 9.0)
    cluster_fraction: float = 0.5
    max_overlap: float = 0.08
    contrast: tuple[float, float] = (0.4, 0.8)
    halo: tuple[float, float] = (0.8, 1.1)
    halo_px: tuple[float, float] = (2.5, 6.0)
    background: tuple[float, float] = (300.0, 2000.0)
    background_texture: tuple[float, float] = (0.005, 0.02)
    blur_px: tuple[float, float] = (0.6, 1.4)
    gain: tuple[float, float] = (0.8, 1.5)
    offset: tuple[float, float] = (90.0, 2000.0)
    read_noise: tuple[float, float] = (2.0, 8.0)
    min_area_px: int = 15
    pixel_size_nm: float = 325.0

    def __post_init__(self) -> None:
        s = object.__setattr__
        if self.look not in LOOKS:
            raise InputError(f"look must be one of {', '.join(LOOKS)}, got {self.look!r}")
        pos = {"minimum": 0, "exclusive": True}
        s(self, "cell_density", check_range("cell_density", self.cell_density, **pos))
        s(self, "cell_diameter_px", check_range("cell_diameter_px", self.cell_diameter_px, minimum=6, maximum=400))
        s(self, "edge_px", check_range("edge_px", self.edge_px, **pos))
        s(self, "rod_density", check_range("rod_density", self.rod_density, **pos))
        s(self, "rod_length_px", check_range("rod_length_px", self.rod_length_px, minimum=2, maximum=400))
        s(self, "rod_width_px", check_range("rod_width_px", self.rod_width_px, minimum=2, maximum=100))
        if self.rod_width_px[1] > self.rod_length_px[0]:
            raise InputError(
                f"rod_width_px max ({self.rod_width_px[1]}) must not exceed rod_length_px min "
                f"({self.rod_length_px[0]}): rods are at least as long as they are wide"
            )
        s(self, "contrast", check_range("contrast", self.contrast, minimum=0, exclusive=True, maximum=1))
        s(self, "halo", check_range("halo", self.halo, minimum=0, maximum=1.2))
        s(self, "halo_px", check_range("halo_px", self.halo_px, **pos))
        s(self, "background", check_range("background", self.background, **pos))
        s(self, "background_texture", check_range("background_texture", self.background_texture, minimum=0, maximum=0.5))
        check_camera(self)
        check_fraction("irregularity", self.irregularity, high=0.4)
        check_fraction("round_fraction", self.round_fraction)
        check_fraction("cluster_fraction", self.cluster_fraction)
        check_fraction("max_overlap", self.max_overlap, high=0.5)
        s(self, "min_area_px", check_count("min_area_px", self.min_area_px))
        check_positive("pixel_size_nm", self.pixel_size_nm)


def cells(
    n: int = 1,
    shape: tuple[int, int] = (512, 512),
    *,
    rng: int | np.random.Generator | None = None,
    config: CellsConfig | None = None,
    **overrides,
) -> list[SimulatedSample]:
    """Simulate ``n`` label-free (phase-contrast) images of cells or bacteria with instance labels.

    Parameters
    ----------
    n : int
        Number of images (>= 1).
    shape : tuple of int
        Image shape ``(y, x)`` in pixels.
    rng : int or numpy.random.Generator, optional
        Root seed (sample ``i`` depends only on ``(seed, i)``) or a generator that draws one.
    config : CellsConfig, optional
        Parameters.
    **overrides
        Fields of :class:`CellsConfig` to replace, e.g. ``look="bacteria"``.

    Returns
    -------
    list of SimulatedSample
        ``image`` in camera counts, ``labels`` uint16, ``masks`` None.

    Examples
    --------
    >>> from samscope.simulate import cells
    >>> [s] = cells(1, (128, 128), rng=0, look="bacteria")
    >>> s.params["look"], s.masks is None
    ('bacteria', True)
    """
    return simulate_samples(simulate_one, CellsConfig, n, shape, rng, config, overrides)


# --------------------------------------------------------------------------------------------
# shapes


@dataclass
class Rod(Blob):
    """A capsule (segment of half-length ``a - b`` dilated by ``b``), optionally curved.

    ``a`` is the half length tip to tip, ``b`` the radius; ``bend`` curves the axis.
    """

    @property
    def reach(self) -> float:
        return float(self.a * (1 + abs(self.bend)) + self.b)

    def height(self, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        u, v = self.frame(yy, xx)
        half = max(self.a - self.b, 0.0)
        d = np.hypot(np.maximum(np.abs(u) - half, 0.0), v)
        return 1.0 - d / self.b


def _place(
    rng: np.random.Generator,
    blobs: list[Blob],
    make,
    *,
    n: int,
    cluster_fraction: float,
    max_overlap: float,
    bounds: tuple[float, float, float, float],
    canvas: tuple[int, int],
    align: bool,
    tries: int = 25,
) -> tuple[np.ndarray, list]:
    """Place ``n`` objects drawn by ``make(rng, cy, cx, angle)``; returns owners and windows.

    Ownership is by the largest normalised height, as in :func:`samscope.simulate.nuclei.assign_owners`.
    """
    owner = np.zeros(canvas, dtype=np.int32)
    best = np.zeros(canvas, dtype=np.float32)
    windows = []
    y0, x0, y1, x1 = bounds
    for _ in range(n):
        cluster = bool(blobs) and rng.random() < cluster_fraction
        for _ in range(tries):
            if cluster:
                j = int(rng.integers(len(blobs)))
                nb = blobs[j]
                angle = nb.angle + rng.normal(0, np.deg2rad(20)) if align else rng.uniform(0, 2 * np.pi)
                cand = make(rng, 0.0, 0.0, angle)
                phi = rng.uniform(0, 2 * np.pi)
                # the distance of the two outlines along phi, roughly: use the equivalent radii,
                # or the rods' half-width across their axis when aligned side by side
                if align:
                    side = rng.random() < 0.6
                    ax = nb.angle + (np.pi / 2 if side else 0.0) + rng.normal(0, 0.2)
                    dist = (nb.b + cand.b) if side else (nb.a + cand.a)
                    phi = ax + (np.pi if rng.random() < 0.5 else 0.0)
                else:
                    dist = nb.radius + cand.radius
                dist *= rng.uniform(0.85, 1.05)
                cand.cy, cand.cx = nb.cy + dist * np.sin(phi), nb.cx + dist * np.cos(phi)
            else:
                cand = make(rng, rng.uniform(y0, y1), rng.uniform(x0, x1), rng.uniform(0, 2 * np.pi))
            if not (y0 <= cand.cy <= y1 and x0 <= cand.cx <= x1):
                continue
            win = grid_box(cand, 2.0, canvas)
            yy = np.arange(win[0].start, win[0].stop, dtype=np.float32)[:, None]
            xx = np.arange(win[1].start, win[1].stop, dtype=np.float32)[None, :]
            hgt = cand.height(yy, xx).astype(np.float32)
            inside = hgt > 0
            n_in = int(inside.sum())
            if n_in == 0 or np.count_nonzero(inside & (owner[win] > 0)) > max_overlap * n_in:
                continue
            cur = best[win]
            take = hgt > cur
            cur[take] = hgt[take]
            owner[win][take] = len(blobs) + 1
            blobs.append(cand)
            windows.append((win, hgt))
            break
    return owner, windows


def _make_cell(cfg: CellsConfig):
    def make(rng: np.random.Generator, cy: float, cx: float, angle: float) -> Blob:
        rounded = rng.random() < cfg.round_fraction
        if rounded:
            d = rng.uniform(*cfg.cell_diameter_px) * rng.uniform(0.45, 0.6)
            asp, harm, kind = rng.uniform(0.85, 1.0), random_harmonics(rng, 0.03), "rounded"
            thick, edge = rng.uniform(1.6, 2.2), max(d / 5, 1.5)
        else:
            d = rng.uniform(*cfg.cell_diameter_px)
            asp = rng.uniform(0.4, 0.95)
            harm = random_harmonics(rng, cfg.irregularity, orders=(2, 3, 4, 5, 6, 7))
            kind, thick, edge = "spread", rng.uniform(0.7, 1.1), rng.uniform(*cfg.edge_px)
        a, b = d / 2 / np.sqrt(asp), d / 2 * np.sqrt(asp)
        extra = {"thickness": float(thick), "edge": float(edge)}
        return Blob(cy, cx, a, b, angle, harm, kind, 1.0, extra, bend=float(rng.uniform(-0.3, 0.3)))

    return make


def _make_rod(cfg: CellsConfig):
    def make(rng: np.random.Generator, cy: float, cx: float, angle: float) -> Blob:
        length = rng.uniform(*cfg.rod_length_px)
        r = rng.uniform(*cfg.rod_width_px) / 2
        extra = {"thickness": float(rng.uniform(0.8, 1.1))}
        return Rod(cy, cx, length / 2, r, angle, np.zeros((0, 3)), "rod", 1.0, extra,
                   bend=float(rng.uniform(-0.08, 0.08)))

    return make


# --------------------------------------------------------------------------------------------
# image formation


def _thickness(
    rng: np.random.Generator, blobs: list[Blob], owner: np.ndarray, windows: list, granules: np.ndarray
) -> np.ndarray:
    """Optical path difference (relative thickness) of every object on the canvas."""
    phi = np.zeros(owner.shape, dtype=np.float32)
    for i, (b, (win, hgt)) in enumerate(zip(blobs, windows, strict=True)):
        own = owner[win] == i + 1
        if not own.any():
            continue
        ex = b.extra or {}
        if b.kind == "rod":
            t = np.sqrt(np.clip(hgt * (2 - hgt), 0, 1))  # chord of a cylinder
            t = t * (1 + 0.05 * granules[win])
        else:
            dist = inner_distance(own)
            t = 1.0 - np.exp(-dist / ex["edge"])
            t = t * (1 + 0.25 * np.clip(hgt, 0, 1))
            # nucleus: a thicker ellipse off-centre, with a few darker nucleoli
            yy = np.arange(win[0].start, win[0].stop, dtype=np.float32)[:, None]
            xx = np.arange(win[1].start, win[1].stop, dtype=np.float32)[None, :]
            rn = b.radius * (rng.uniform(0.3, 0.45) if b.kind == "spread" else 0.6)
            off = rng.uniform(0, 0.3) * b.radius
            ph = rng.uniform(0, 2 * np.pi)
            ny, nx = b.cy + off * np.sin(ph), b.cx + off * np.cos(ph)
            nuc = np.clip(1 - ((yy - ny) ** 2 + (xx - nx) ** 2) / (rn * rn), 0, 1) ** 0.5
            t = t + 0.5 * nuc
            for _ in range(int(rng.integers(0, 3))):
                q = rng.uniform(0, 2 * np.pi)
                rr = rng.uniform(0, 0.5) * rn
                s = rng.uniform(1.0, 2.0)
                t = t + 0.35 * np.exp(-((yy - ny - rr * np.sin(q)) ** 2 + (xx - nx - rr * np.cos(q)) ** 2) / (2 * s * s))
            t = t * (1 + 0.15 * granules[win])  # granular cytoplasm
            if b.kind == "rounded":
                # phase-bright sphere: a dark rim around a bright core (the path difference
                # exceeds the range where phase contrast is linear)
                t = 1.6 * np.exp(-dist / 1.5) - 0.9 * np.clip(hgt, 0, 1) ** 0.7
        phi[win] += np.where(own, ex.get("thickness", 1.0) * t, 0.0).astype(np.float32)
    return phi


def _debris(rng: np.random.Generator, phi: np.ndarray, area_px: float) -> None:
    """Add small unlabelled particles (dust, dead-cell fragments) to the phase map, in place."""
    h, w = phi.shape
    for _ in range(int(rng.poisson(area_px / 1e4 * 1.5))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(1.0, 3.0)
        y0, y1 = int(max(cy - 3 * r, 0)), int(min(cy + 3 * r + 1, h))
        x0, x1 = int(max(cx - 3 * r, 0)), int(min(cx + 3 * r + 1, w))
        yy = np.arange(y0, y1)[:, None]
        xx = np.arange(x0, x1)[None, :]
        phi[y0:y1, x0:x1] += rng.uniform(0.3, 1.2) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))


def simulate_one(shape: tuple[int, int], cfg: CellsConfig, *, seed: int, index: int) -> SimulatedSample:
    """Simulate sample ``index`` of the run with root ``seed`` (see :func:`cells`)."""
    from scipy import ndimage as ndi

    from samscope.simulate.optics import camera

    rng = sample_rng(seed, index)
    h, w = shape
    look = cfg.look if cfg.look != "mixed" else ("phase" if rng.random() < 0.5 else "bacteria")
    if look == "phase":
        size = cfg.cell_diameter_px[1] / 2 * 1.6
        density = float(rng.uniform(*cfg.cell_density))
        make = _make_cell(cfg)
    else:
        size = cfg.rod_length_px[1] / 2 * 1.2
        density = float(rng.uniform(*cfg.rod_density))
        make = _make_rod(cfg)
    pad = int(np.ceil(size)) + 16
    canvas = (h + 2 * pad, w + 2 * pad)
    n_obj = int(rng.poisson(density * (h + size) * (w + size) / 1e4))
    bounds = (pad - size / 2, pad - size / 2, pad + h + size / 2, pad + w + size / 2)

    contrast = float(rng.uniform(*cfg.contrast))
    halo = float(rng.uniform(*cfg.halo))
    halo_px = float(rng.uniform(*cfg.halo_px))
    background = float(rng.uniform(*cfg.background))
    bg_texture = float(rng.uniform(*cfg.background_texture))
    blur = float(rng.uniform(*cfg.blur_px))
    gain = float(rng.uniform(*cfg.gain))
    offset = float(rng.uniform(*cfg.offset))
    read_noise = float(rng.uniform(*cfg.read_noise))

    blobs: list[Blob] = []
    owner, windows = _place(
        rng, blobs, make, n=n_obj, cluster_fraction=cfg.cluster_fraction,
        max_overlap=cfg.max_overlap, bounds=bounds, canvas=canvas, align=look == "bacteria",
    )
    granules = smooth_field(rng, canvas, 1.2)
    phi = _thickness(rng, blobs, owner, windows, granules)
    _debris(rng, phi, float(canvas[0] * canvas[1]))

    rel = 1.0 - contrast * (phi - halo * ndi.gaussian_filter(phi, halo_px))
    illum = 1.0 + 0.05 * smooth_field(rng, canvas, max(canvas) / 3)
    illum += bg_texture * (0.6 * smooth_field(rng, canvas, 1.5) + 0.8 * smooth_field(rng, canvas, 6.0))
    photons = np.clip(rel, 0.03, None) * illum * np.float32(background)
    if blur > 0:
        photons = ndi.gaussian_filter(photons, blur)
    crop = (slice(pad, pad + h), slice(pad, pad + w))
    image = camera(photons[crop].astype(np.float32), rng, gain=gain, offset=offset, read_noise=read_noise)

    labels, kept = finish_labels(owner[crop], cfg.min_area_px)
    objs = [blobs[k - 1] for k in kept]
    params = {
        "kind": "cells",
        "seed": int(seed),
        "index": int(index),
        "shape": [int(h), int(w)],
        "config": config_to_dict(cfg),
        "look": look,
        "density": density,
        "contrast": contrast,
        "halo": halo,
        "halo_px": halo_px,
        "background": background,
        "background_texture": bg_texture,
        "blur_px": blur,
        "gain": gain,
        "offset": offset,
        "read_noise": read_noise,
        "n_objects": len(objs),
        "objects": {
            "kind": [b.kind for b in objs],
            "centre_px": [[round(b.cy - pad, 1), round(b.cx - pad, 1)] for b in objs],
            "angle_deg": [round(float(np.rad2deg(b.angle)) % 360, 1) for b in objs],
        },
    }
    return SimulatedSample(image, labels, None, labels > 0, params, float(cfg.pixel_size_nm))
