"""Simulated fluorescence images of mitochondria with overlapping instance masks (Jadhav et al. 2026, SAM for mitochondria, §3.1).

Model
-----
Each mitochondrion is a tube of width ``W`` (uniform in ``width_nm``, default 200–500 nm) around
a centreline that is an ``n``-point Bézier curve (``bezier_points``), closed by hemispherical caps.
Its length ``L`` (uniform in ``length_nm``, default 500–2500 nm) is measured tip to tip along the
centreline, caps included, so the Bézier body is ``max(L - W, 0)`` long and an object with
``L <= W`` is a sphere ("dot"). The control polygon turns by up to ``bend_deg`` between legs and
rises with an axial slope of up to ``z_tilt``. The tube is filled with fluorophores placed
uniformly at random (a 3-D point cloud, ``fluorophores_per_um3``), weighted by a per-object
brightness (``brightness``; a samscope addition, 1–1 reproduces the seed).

Each 128-px crop (``crop_size``) receives 4–16 mitochondria (``n_per_crop``) whose centres are
uniform in ``x, y ∈ [−5000, 5000]`` nm around the crop centre (``xy_range_nm``) and
``z ∈ [0, 500]`` nm (the optics' axial range); they cross and overlap freely. Fields larger than
one crop are tiled from crops (``tiling="crops"``, the seed's 4×4 tiling of 128² crops into a
512² field: each crop is imaged on its own, so objects are cut at crop borders) or rendered as one
seamless field with the same per-crop density (``tiling="seamless"``, no seams).

Image formation (:mod:`samscope.simulate.optics`): the point cloud is rasterised on 80 nm pixels
and 111 nm density planes, imaged through the Gibson–Lanni widefield PSF (NA 1.42, 100×, 660 nm,
oil) at 10 focal planes spread through ``z ∈ [0, 500]`` nm, maximum-projected, scaled to a
signal-to-background ratio ``SBR`` drawn from ``sbr`` (2–6) over a background ``B`` drawn from
``background`` photons per pixel, and Poisson-sampled. **SBR** is defined as the mean expected
intensity above background over the ground-truth foreground, divided by ``B``:
``SBR = (mean(E[foreground]) − B) / B``; :func:`samscope.simulate.optics.measure_sbr` measures it
back on an output.

Ground truth
------------
Every object is rendered alone, noise-free, through the same optics (its own 10-plane focal stack
and maximum projection, computed on a canvas around its bounding box). Its **mask** is the set of
pixels where that own projection reaches ``mask_threshold`` (default 0.5, i.e. the half-maximum
footprint) of its own peak. Masks are kept where objects overlap (``masks`` is ``(n, y, x)``
bool). In the **label image** a pixel claimed by several masks goes to the object whose own
noise-free projection is brightest there (ties: the lower object index). ``foreground`` is the
union of the masks. Objects whose mask is empty inside the field are dropped. In crops tiling an
object's mask is clipped to its crop, like its image.

Morphology
----------
``length_nm``, ``width_nm``, ``bezier_points``, ``bend_deg`` and ``z_tilt`` shape the population:
``length_nm=(200, 500), width_nm=(300, 500)`` gives dot-like mitochondria (mask areas mostly
below the 200 px dot/rod threshold of Jadhav et al. 2026, §4.5), ``length_nm=(2000, 4000), bend_deg=20``
gives long rods.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from samscope.errors import InputError
from samscope.simulate.optics import (
    OpticsConfig,
    focal_geometry,
    render_focal_stacks,
    scale_to_sbr,
)
from samscope.simulate.sample import (
    SimulatedSample,
    check_range,
    config_to_dict,
    labels_dtype,
    sample_rng,
    simulate_samples,
)

__all__ = ["MitochondriaConfig", "mitochondria", "simulate_one"]

_CURVE_SAMPLES = 32


@dataclass(frozen=True)
class MitochondriaConfig:
    """Parameters of the mitochondria simulator (field names are the CLI flags).

    Ranges are ``(min, max)`` and drawn uniformly per object (per sample for ``sbr`` and
    ``background``). Defaults follow Jadhav et al. 2026, Table 1.

    Parameters
    ----------
    n_per_crop : tuple of int
        Mitochondria per ``crop_size`` crop (4–16).
    length_nm : tuple of float
        Tip-to-tip length along the centreline, caps included (500–2500 nm).
    width_nm : tuple of float
        Tube diameter (200–500 nm).
    sbr : tuple of float
        Signal-to-background ratio, see the module docstring (2–6).
    background : tuple of float
        Background level in expected photons per pixel.
    brightness : tuple of float
        Relative fluorophore density per object.
    bezier_points : int
        Control points of the Bézier centreline (>= 2; 2 is a straight rod).
    bend_deg : float
        Largest turn between consecutive legs of the control polygon, degrees.
    z_tilt : float
        Largest axial slope ``|dz / ds|`` of the centreline.
    xy_range_nm : tuple of float
        Range of object centres around each crop centre, nm.
    crop_size : int
        Side of a crop in pixels (128).
    tiling : {"crops", "seamless"}
        ``"crops"``: crops imaged separately and tiled (Jadhav et al. 2026). ``"seamless"``: one field.
    mask_threshold : float
        Fraction of an object's own noise-free peak that delimits its mask, in (0, 1).
    fluorophores_per_um3 : float
        Mean fluorophore density inside the tubes.
    optics : OpticsConfig
        The microscope.
    """

    n_per_crop: tuple[int, int] = (4, 16)
    length_nm: tuple[float, float] = (500.0, 2500.0)
    width_nm: tuple[float, float] = (200.0, 500.0)
    sbr: tuple[float, float] = (2.0, 6.0)
    background: tuple[float, float] = (20.0, 100.0)
    brightness: tuple[float, float] = (0.6, 1.0)
    bezier_points: int = 4
    bend_deg: float = 45.0
    z_tilt: float = 0.15
    xy_range_nm: tuple[float, float] = (-5000.0, 5000.0)
    crop_size: int = 128
    tiling: str = "crops"
    mask_threshold: float = 0.5
    fluorophores_per_um3: float = 20000.0
    optics: OpticsConfig = field(default_factory=OpticsConfig)

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "n_per_crop", check_range("n_per_crop", self.n_per_crop, minimum=1, integer=True))
        s(self, "length_nm", check_range("length_nm", self.length_nm, minimum=0, exclusive=True))
        s(self, "width_nm", check_range("width_nm", self.width_nm, minimum=0, exclusive=True))
        s(self, "sbr", check_range("sbr", self.sbr, minimum=0, exclusive=True))
        s(self, "background", check_range("background", self.background, minimum=0, exclusive=True))
        s(self, "brightness", check_range("brightness", self.brightness, minimum=0, exclusive=True))
        s(self, "xy_range_nm", check_range("xy_range_nm", self.xy_range_nm))
        if isinstance(self.bezier_points, bool) or int(self.bezier_points) != self.bezier_points or self.bezier_points < 2:
            raise InputError(f"bezier_points must be an integer >= 2, got {self.bezier_points!r}")
        s(self, "bezier_points", int(self.bezier_points))
        if not 0 <= float(self.bend_deg) <= 180:
            raise InputError(f"bend_deg must be in [0, 180], got {self.bend_deg!r}")
        if not 0 <= float(self.z_tilt) <= 10:
            raise InputError(f"z_tilt must be in [0, 10], got {self.z_tilt!r}")
        if isinstance(self.crop_size, bool) or int(self.crop_size) != self.crop_size or self.crop_size < 16:
            raise InputError(f"crop_size must be an integer >= 16, got {self.crop_size!r}")
        s(self, "crop_size", int(self.crop_size))
        if self.tiling not in ("crops", "seamless"):
            raise InputError(f"tiling must be 'crops' or 'seamless', got {self.tiling!r}")
        if not 0 < float(self.mask_threshold) < 1:
            raise InputError(f"mask_threshold must be in (0, 1), got {self.mask_threshold!r}")
        if not float(self.fluorophores_per_um3) > 0:
            raise InputError(f"fluorophores_per_um3 must be > 0, got {self.fluorophores_per_um3!r}")
        if not isinstance(self.optics, OpticsConfig):
            raise InputError("optics must be an OpticsConfig")
        if self.width_nm[1] / 2 > 600:
            raise InputError(f"width_nm above 1200 nm is not supported, got {self.width_nm!r}")


def mitochondria(
    n: int = 1,
    shape: tuple[int, int] = (512, 512),
    *,
    rng: int | np.random.Generator | None = None,
    config: MitochondriaConfig | None = None,
    **overrides,
) -> list[SimulatedSample]:
    """Simulate ``n`` fluorescence images of mitochondria with overlapping instance masks.

    Parameters
    ----------
    n : int
        Number of images (>= 1).
    shape : tuple of int
        Image shape ``(y, x)`` in pixels (default one 512² field of 4×4 crops).
    rng : int or numpy.random.Generator, optional
        Root seed (sample ``i`` depends only on ``(seed, i)``) or a generator that draws one.
    config : MitochondriaConfig, optional
        Parameters; defaults follow Jadhav et al. 2026, Table 1.
    **overrides
        Fields of :class:`MitochondriaConfig` to replace, e.g. ``length_nm=(300, 600)``.

    Returns
    -------
    list of SimulatedSample
        ``masks`` are ``(n_objects, y, x)`` bool and may overlap; see the module docstring for
        the SBR definition, the mask rule and the label tie rule.

    Examples
    --------
    >>> from samscope.simulate import mitochondria
    >>> [s] = mitochondria(1, (128, 128), rng=0, n_per_crop=(4, 4))
    >>> s.image.shape, s.masks.shape[0] >= 1, s.labels.dtype.name
    ((128, 128), True, 'uint16')
    """
    return simulate_samples(simulate_one, MitochondriaConfig, n, shape, rng, config, overrides)


# --------------------------------------------------------------------------------------------
# geometry


def _bezier_matrix(n_ctrl: int, m: int) -> np.ndarray:
    from scipy.special import comb

    t = np.linspace(0.0, 1.0, m)[:, None]
    k = np.arange(n_ctrl)[None, :]
    return comb(n_ctrl - 1, k) * t**k * (1 - t) ** (n_ctrl - 1 - k)


def _centrelines(rng: np.random.Generator, body: np.ndarray, cfg: MitochondriaConfig) -> np.ndarray:
    """Centrelines ``(n, m, 3)`` in nm, resampled evenly by arc length, centred on the origin."""
    n = body.shape[0]
    nc = cfg.bezier_points
    heading0 = rng.uniform(0, 2 * np.pi, n)
    turns = rng.uniform(-1, 1, (n, nc - 1)) * np.deg2rad(cfg.bend_deg)
    turns[:, 0] = 0.0
    heading = heading0[:, None] + np.cumsum(turns, axis=1)
    slope = rng.uniform(-cfg.z_tilt, cfg.z_tilt, n)
    legs = np.stack([np.cos(heading), np.sin(heading), np.broadcast_to(slope[:, None], heading.shape)], -1)
    ctrl = np.concatenate([np.zeros((n, 1, 3)), np.cumsum(legs, axis=1)], axis=1)
    curve = np.einsum("mk,nkd->nmd", _bezier_matrix(nc, 4 * _CURVE_SAMPLES), ctrl)
    seg = np.linalg.norm(np.diff(curve, axis=1), axis=2)
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(seg, axis=1)], axis=1)
    total = cum[:, -1]
    out = np.empty((n, _CURVE_SAMPLES, 3))
    for i in range(n):
        s = np.linspace(0, total[i], _CURVE_SAMPLES)
        for d in range(3):
            out[i, :, d] = np.interp(s, cum[i], curve[i, :, d])
    scale = np.where(total > 0, body / np.maximum(total, 1e-12), 0.0)
    out *= scale[:, None, None]
    out -= out.mean(axis=1, keepdims=True)
    return out


def _tangents(line: np.ndarray) -> np.ndarray:
    t = np.gradient(line, axis=1)
    norm = np.linalg.norm(t, axis=2, keepdims=True)
    default = np.array([1.0, 0.0, 0.0])
    return np.where(norm > 1e-9, t / np.maximum(norm, 1e-12), default)


def _frames(line: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit tangent and two unit normals ``(n, m, 3)`` along each centreline."""
    t = _tangents(line)
    helper = np.zeros_like(t)
    steep = np.abs(t[..., 2]) >= 0.9
    helper[..., 2] = ~steep
    helper[..., 0] = steep
    n1 = np.cross(t, helper)
    n1 /= np.linalg.norm(n1, axis=-1, keepdims=True)
    n2 = np.cross(t, n1)
    return t, n1, n2


def _fill_points(
    rng: np.random.Generator, line: np.ndarray, radius: np.ndarray, body: np.ndarray, density: float
) -> tuple[np.ndarray, np.ndarray]:
    """Fluorophore positions ``(p, 3)`` (float32, nm) uniformly filling each capped tube, and ids.

    Body points sit at a uniform arc length with a uniform offset in the normal disc; cap points
    are uniform in a half ball at either end, facing outwards.
    """
    n, m, _ = line.shape
    vol_body = np.pi * radius**2 * body
    vol_caps = 4.0 / 3.0 * np.pi * radius**3
    counts = np.maximum(rng.poisson(density * (vol_body + vol_caps) * 1e-9), 1)
    n_caps = rng.binomial(counts, vol_caps / (vol_body + vol_caps))
    n_body = counts - n_caps
    tang, n1, n2 = _frames(line)
    # float32 and flat gathers: positions are tens of µm, float32 keeps them to < 0.01 nm
    f32 = np.float32
    flat = line.reshape(-1, 3).astype(f32)
    n1f = n1.reshape(-1, 3).astype(f32)
    n2f = n2.reshape(-1, 3).astype(f32)
    rad = radius.astype(f32)

    obj_b = np.repeat(np.arange(n), n_body)
    pb = obj_b.size
    u = rng.random(pb, dtype=f32) * f32(m - 1)
    i0 = np.minimum(u.astype(np.int64), m - 2)
    f = (u - i0)[:, None]
    g = obj_b * m + i0
    gc = obj_b * m + np.rint(u).astype(np.int64)
    rho = rad[obj_b] * np.sqrt(rng.random(pb, dtype=f32))
    phi = rng.random(pb, dtype=f32) * f32(2 * np.pi)
    body_pts = flat[g]
    body_pts += (flat[g + 1] - body_pts) * f
    body_pts += (rho * np.cos(phi))[:, None] * n1f[gc]
    body_pts += (rho * np.sin(phi))[:, None] * n2f[gc]

    obj_c = np.repeat(np.arange(n), n_caps)
    pc = obj_c.size
    d = rng.standard_normal((pc, 3), dtype=f32)
    d *= (rad[obj_c] * rng.random(pc, dtype=f32) ** f32(1.0 / 3.0) / np.linalg.norm(d, axis=1))[:, None]
    end = rng.random(pc) < 0.5
    tf = tang.astype(f32)
    outward = np.where(end[:, None], tf[obj_c, -1], -tf[obj_c, 0])
    dot = np.sum(d * outward, axis=1, keepdims=True)
    d -= 2 * np.minimum(dot, 0) * outward
    d += np.where(end[:, None], flat[obj_c * m + m - 1], flat[obj_c * m])
    return np.concatenate([body_pts, d]), np.concatenate([obj_b, obj_c])


# --------------------------------------------------------------------------------------------
# rendering


_CANVASES = (32, 48, 64, 80, 96, 128, 160, 192, 256)


def _render_objects(
    pts_px: np.ndarray,
    plane: np.ndarray,
    obj: np.ndarray,
    weight: np.ndarray,
    n_obj: int,
    optics: OpticsConfig,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Per-object focal stacks on canvases around each object's bounding box.

    Returns a list of ``(n_focal, c, c)`` stacks, the canvas origins ``(n, 2)`` (y, x) in field
    pixels, and the canvas sizes.
    """
    geo = focal_geometry(optics)
    r = int(optics.psf_radius_px)
    iy = np.floor(pts_px[:, 0]).astype(np.int64)
    ix = np.floor(pts_px[:, 1]).astype(np.int64)
    ymin = np.full(n_obj, np.iinfo(np.int64).max)
    xmin = ymin.copy()
    ymax = np.full(n_obj, np.iinfo(np.int64).min)
    xmax = ymax.copy()
    np.minimum.at(ymin, obj, iy)
    np.minimum.at(xmin, obj, ix)
    np.maximum.at(ymax, obj, iy)
    np.maximum.at(xmax, obj, ix)
    extent = np.maximum(ymax - ymin, xmax - xmin) + 1
    need = extent + 2 * r + 1
    sizes = np.array(_CANVASES)
    if need.max() > sizes[-1]:
        raise InputError("an object is too large to render; reduce length_nm or width_nm")
    canvas = sizes[np.searchsorted(sizes, need)]
    origin = np.stack([ymin - r, xmin - r], axis=1)
    stacks: list[np.ndarray] = [None] * n_obj  # type: ignore[list-item]
    nk = geo.n_density
    for c in np.unique(canvas):
        ids = np.flatnonzero(canvas == c)
        local = np.full(n_obj, -1)
        local[ids] = np.arange(ids.size)
        sel = local[obj] >= 0
        o = local[obj[sel]]
        ly = iy[sel] - origin[obj[sel], 0]
        lx = ix[sel] - origin[obj[sel], 1]
        flat = ((o * nk + plane[sel]) * c + ly) * c + lx
        dens = np.bincount(flat, weights=weight[sel], minlength=ids.size * nk * c * c)
        dens = dens.reshape(ids.size, nk, c, c).astype(np.float32)
        rendered = render_focal_stacks(dens, optics)
        for k, i in enumerate(ids):
            stacks[i] = rendered[k]
    return stacks, origin, canvas


def simulate_one(
    shape: tuple[int, int], cfg: MitochondriaConfig, *, seed: int, index: int
) -> SimulatedSample:
    """Simulate sample ``index`` of the run with root ``seed`` (see :func:`mitochondria`)."""
    rng = sample_rng(seed, index)
    h, w = shape
    optics = cfg.optics
    px = optics.pixel_size_nm
    cs = cfg.crop_size
    ny, nx = -(-h // cs), -(-w // cs)
    n_crops = ny * nx

    sbr = float(rng.uniform(*cfg.sbr))
    background = float(rng.uniform(*cfg.background))
    counts = rng.integers(cfg.n_per_crop[0], cfg.n_per_crop[1] + 1, n_crops)
    crop_of = np.repeat(np.arange(n_crops), counts)
    n_obj = int(crop_of.size)
    length = rng.uniform(*cfg.length_nm, n_obj)
    width = rng.uniform(*cfg.width_nm, n_obj)
    bright = rng.uniform(*cfg.brightness, n_obj)
    radius = width / 2
    body = np.maximum(length - width, 0.0)
    cy = (crop_of // nx + 0.5) * cs * px + rng.uniform(*cfg.xy_range_nm, n_obj)
    cx = (crop_of % nx + 0.5) * cs * px + rng.uniform(*cfg.xy_range_nm, n_obj)
    z_lo, z_hi = optics.axial_range_nm
    cz = rng.uniform(z_lo, z_hi, n_obj)
    line = _centrelines(rng, body, cfg)
    line[..., 0] += cx[:, None]
    line[..., 1] += cy[:, None]
    line[..., 2] = np.clip(line[..., 2] + cz[:, None], z_lo, z_hi)
    pts, obj = _fill_points(rng, line, radius, body, cfg.fluorophores_per_um3)

    geo = focal_geometry(optics)
    pts_px = np.stack([pts[:, 1] / px, pts[:, 0] / px], axis=1)  # (y, x) in pixels
    plane = geo.plane_index(pts[:, 2])
    stacks, origin, canvas = _render_objects(pts_px, plane, obj, bright[obj], n_obj, optics)

    # the field's focal stack: each object contributes only within its region (its crop, or the
    # whole field), clipped to the field
    stack = np.zeros((geo.n_focal, h, w), dtype=np.float32)
    if cfg.tiling == "crops":
        regions = [
            ((c // nx) * cs, (c % nx) * cs, min((c // nx + 1) * cs, h), min((c % nx + 1) * cs, w))
            for c in range(n_crops)
        ]
    else:
        regions = [(0, 0, h, w)] * n_crops
    kept: list[int] = []
    boxes = []
    for i in range(n_obj):
        y0, x0 = int(origin[i, 0]), int(origin[i, 1])
        c = stacks[i].shape[-1]
        ry0, rx0, ry1, rx1 = regions[crop_of[i]]
        a0, b0 = max(y0, ry0), max(x0, rx0)
        a1, b1 = min(y0 + c, ry1), min(x0 + c, rx1)
        if a1 <= a0 or b1 <= b0:
            continue
        win = (slice(a0 - y0, a1 - y0), slice(b0 - x0, b1 - x0))
        stack[:, a0:a1, b0:b1] += stacks[i][(slice(None), *win)]
        # ground truth from the object's own noise-free projection (the whole canvas sets the peak)
        proj = stacks[i].max(axis=0)
        peak = float(proj.max())
        if peak <= 0:
            continue
        val = proj[win]
        sub = val >= cfg.mask_threshold * peak
        if not sub.any():
            continue
        kept.append(i)
        boxes.append((a0, b0, a1, b1, sub, val))
    signal = stack.max(axis=0)
    del stack, stacks

    n_kept = len(kept)
    masks = np.zeros((n_kept, h, w), dtype=bool)
    labels = np.zeros((h, w), dtype=labels_dtype(n_kept))
    best = np.full((h, w), -1.0, dtype=np.float32)
    for k, (a0, b0, a1, b1, sub, val) in enumerate(boxes):
        masks[k, a0:a1, b0:b1] = sub
        cur = best[a0:a1, b0:b1]
        win = sub & (val > cur)  # strictly brighter: ties stay with the lower index
        cur[win] = val[win]
        labels[a0:a1, b0:b1][win] = k + 1
    foreground = labels > 0

    expected = scale_to_sbr(signal, foreground, sbr=sbr, background=background)
    image = rng.poisson(expected).astype(np.float32)

    params = {
        "kind": "mitochondria",
        "seed": int(seed),
        "index": int(index),
        "shape": [int(h), int(w)],
        "config": config_to_dict(cfg),
        "sbr": sbr,
        "background": background,
        "n_objects": n_kept,
        "objects_per_crop": [int(c) for c in counts],
        "objects": {
            "length_nm": [round(float(v), 2) for v in length[kept]],
            "width_nm": [round(float(v), 2) for v in width[kept]],
            "brightness": [round(float(v), 4) for v in bright[kept]],
            "centre_nm": [[round(float(a), 1) for a in (cx[i], cy[i], cz[i])] for i in kept],
            "crop": [int(crop_of[i]) for i in kept],
        },
    }
    return SimulatedSample(image, labels, masks, foreground, params, float(px))
