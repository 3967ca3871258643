"""Simulated 3-D volumes of fluorescent nuclei (confocal-like, ZYX) with 3-D instance labels.

For tests and training of the volume path (:mod:`samscope.multidim`); the target look is the Cell
Tracking Challenge's Fluo-N3DH-CHO (``shared/data/cho``): large textured nuclei, a few planes
far apart. Every range is a field of :class:`Nuclei3DConfig`, drawn per volume or per nucleus.

Objects
    Ellipsoids (equivalent diameter ``diameter_um``, flattened in z by ``aspect_z``, in-plane
    minor/major ``aspect_xy``, turned by a random angle in the plane and tilted by up to
    ``tilt_deg``) whose radius is modulated by random in-plane harmonics 2–4 (``irregularity``).
Placement
    One by one, uniformly without overlap or, with probability ``touching_fraction``, against a
    placed nucleus (centres 0.8–0.95 of the summed radii apart, mostly side by side in the
    plane). Where two overlap, a voxel belongs to the one whose normalised height
    ``1 - r / R`` is larger: touching nuclei share a flat border.
Intensity
    ``brightness × rim × texture × nucleoli`` inside each nucleus: a soft rim, 3-D band-pass
    chromatin texture (``texture`` contrast) and 0–2 dark nucleoli; per-nucleus brightness is
    log-normal (``brightness_spread``).
Image formation
    Rendered on a grid ``z_step_nm / oversample_z`` fine in z, blurred in 3-D by the PSF and
    sampled every ``z_step_nm``: the z step differs from the xy pixel (``pixel_size_nm``). The
    PSF is ``psfmodels``' Gibson–Lanni scalar model (``na``, ``wavelength_nm``, ``ns``), squared
    for a confocal pinhole (``confocal``); without ``psfmodels`` (or ``psf="gaussian"``) a
    Gaussian with σ_xy = 0.21 λ/NA and σ_z = 0.66 λ n/NA² (each /√2 when confocal). Then a
    background, Poisson shot noise and Gaussian read noise.
Ground truth
    ``labels`` (Z, Y, X): the owner of the fine voxel at each plane's centre; nuclei with fewer
    than ``min_voxels`` voxels in the sampled planes are dropped; ids 1..n.

:func:`write_volumes` writes ``images/000000.tif`` (ZYX float32, with the pixel sizes in the
file's metadata: z step and xy pixel), ``labels/000000.tif``, ``params/000000.json`` and
``dataset.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.simulate.sample import SimulatedSample, config_to_dict, sample_rng

__all__ = ["Nuclei3DConfig", "nuclei_volume", "write_volumes"]


@dataclass(frozen=True)
class Nuclei3DConfig:
    """Parameters of :func:`nuclei_volume` (ranges are ``(min, max)``, drawn uniformly)."""

    pixel_size_nm: float = 250.0
    z_step_nm: float = 1000.0
    oversample_z: int = 4
    diameter_um: tuple[float, float] = (8.0, 12.0)
    aspect_z: tuple[float, float] = (0.55, 0.8)
    aspect_xy: tuple[float, float] = (0.7, 1.0)
    tilt_deg: float = 10.0
    irregularity: float = 0.06
    n_nuclei: tuple[int, int] = (10, 18)
    touching_fraction: float = 0.4
    texture: float = 0.25
    nucleoli: tuple[int, int] = (0, 2)
    brightness: tuple[float, float] = (150.0, 400.0)
    brightness_spread: float = 0.25
    background: float = 10.0
    read_noise: float = 2.0
    na: float = 1.0
    wavelength_nm: float = 520.0
    ns: float = 1.38
    confocal: bool = True
    psf: str = "psfmodels"
    min_voxels: int = 200

    def __post_init__(self) -> None:
        for name in ("pixel_size_nm", "z_step_nm", "na", "wavelength_nm", "ns"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.oversample_z < 1:
            raise InputError(f"oversample_z must be >= 1, got {self.oversample_z}")
        for name in ("diameter_um", "aspect_z", "aspect_xy", "n_nuclei", "nucleoli", "brightness"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise InputError(f"{name} must be a range 0 <= min <= max, got {(lo, hi)}")
        if not 0 <= self.touching_fraction <= 1:
            raise InputError(f"touching_fraction must be in [0, 1], got {self.touching_fraction}")
        if self.psf not in ("psfmodels", "gaussian"):
            raise InputError(f"psf must be 'psfmodels' or 'gaussian', got {self.psf!r}")


@dataclass
class _Nucleus:
    centre: np.ndarray  # µm (z, y, x)
    axes: np.ndarray  # semi-axes µm (z, a, b)
    rotation: np.ndarray  # 3×3, sample → nucleus frame
    harmonics: np.ndarray  # (k, 2): amplitude, phase for orders 2..

    @property
    def radius(self) -> float:
        return float(np.cbrt(np.prod(self.axes)))


def _rotation(rng: np.random.Generator, tilt_deg: float) -> np.ndarray:
    a = rng.uniform(0, np.pi)
    t = np.deg2rad(rng.uniform(-tilt_deg, tilt_deg))
    rz = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])  # in plane
    ry = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])  # tilt z–y
    return ry @ rz


def _place(rng: np.random.Generator, cfg: Nuclei3DConfig, extent: np.ndarray) -> list[_Nucleus]:
    """Nuclei placed one by one (µm), uniformly without overlap or touching a placed one."""
    n = int(rng.integers(cfg.n_nuclei[0], cfg.n_nuclei[1] + 1))
    placed: list[_Nucleus] = []
    for _ in range(40 * max(n, 1)):
        if len(placed) >= n:
            break
        d = rng.uniform(*cfg.diameter_um)
        az, axy = rng.uniform(*cfg.aspect_z), rng.uniform(*cfg.aspect_xy)
        r = d / 2
        # semi-axes with the equivalent diameter d: a·b·c = r³
        k = np.cbrt(1.0 / (az * axy))
        axes = np.array([r * k * az, r * k, r * k * axy])
        harm = np.stack([rng.normal(0, cfg.irregularity, 3), rng.uniform(0, 2 * np.pi, 3)], axis=1)
        nuc = _Nucleus(np.zeros(3), axes, _rotation(rng, cfg.tilt_deg), harm)
        if placed and rng.random() < cfg.touching_fraction:
            other = placed[int(rng.integers(len(placed)))]
            ang = rng.uniform(0, 2 * np.pi)
            direction = np.array([rng.normal(0, 0.15), np.sin(ang), np.cos(ang)])
            direction /= np.linalg.norm(direction)
            dist = rng.uniform(0.8, 0.95) * (nuc.radius + other.radius)
            nuc.centre = other.centre + dist * direction
            gap = 0.8
        else:
            nuc.centre = rng.uniform(0, 1, 3) * extent
            nuc.centre[0] = rng.uniform(0.3, 0.7) * extent[0]  # a layer of cells, as on a slide
            gap = 1.05
        nuc.centre[0] = np.clip(nuc.centre[0], 0.35 * axes[0], extent[0] - 0.35 * axes[0])
        if not (0 <= nuc.centre[1] <= extent[1] and 0 <= nuc.centre[2] <= extent[2]):
            continue
        if all(np.linalg.norm(nuc.centre - o.centre) >= gap * (nuc.radius + o.radius) - 1e-9 for o in placed):
            placed.append(nuc)
    return placed


def _paint(nuclei: list[_Nucleus], fine: tuple[int, int, int], step_um: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Owner id (0 = none) and normalised height of every fine voxel."""
    owner = np.zeros(fine, np.int32)
    height = np.zeros(fine, np.float32)
    for i, nuc in enumerate(nuclei, start=1):
        reach = 1.3 * nuc.axes.max()
        lo = np.maximum(np.floor((nuc.centre - reach) / step_um).astype(int), 0)
        hi = np.minimum(np.ceil((nuc.centre + reach) / step_um).astype(int) + 1, fine)
        if np.any(hi <= lo):
            continue
        grid = np.meshgrid(*[(np.arange(a, b) + 0.5) * s - c for a, b, s, c in zip(lo, hi, step_um, nuc.centre, strict=True)],
                           indexing="ij")  # fmt: skip
        p = np.einsum("ij,j...->i...", nuc.rotation.T, np.stack(grid))
        q = p / nuc.axes[:, None, None, None]
        r = np.sqrt((q**2).sum(0))
        theta = np.arctan2(q[1], q[2])
        equator = (q[1] ** 2 + q[2] ** 2) / np.maximum(r**2, 1e-12)  # no ripples at the poles
        ripple = sum(a * np.cos((k + 2) * theta + ph) for k, (a, ph) in enumerate(nuc.harmonics))
        bound = 1.0 + equator * ripple
        h = (1.0 - r / np.maximum(bound, 0.5)).astype(np.float32)
        sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        win = h > height[sl]
        height[sl] = np.where(win, h, height[sl])
        owner[sl] = np.where(win, i, owner[sl])
    return owner, height


def _psf(cfg: Nuclei3DConfig, dz_um: float) -> tuple[np.ndarray, str]:
    """The 3-D PSF on the fine grid (sums to 1) and the model used."""
    dxy = cfg.pixel_size_nm / 1000.0
    lam = cfg.wavelength_nm / 1000.0
    sxy = 0.21 * lam / cfg.na
    sz = 0.66 * lam * cfg.ns / cfg.na**2
    if cfg.confocal:
        sxy, sz = sxy / np.sqrt(2), sz / np.sqrt(2)
    rxy = max(1, int(np.ceil(3 * sxy / dxy)))
    rz = max(1, int(np.ceil(3 * sz / dz_um)))
    used = "gaussian"
    psf = None
    if cfg.psf == "psfmodels":
        try:
            import psfmodels

            wide = psfmodels.make_psf(2 * rz + 1, 2 * rxy + 1, dxy=dxy, dz=dz_um, NA=cfg.na, wvl=lam,
                                      ns=cfg.ns, model="scalar")  # fmt: skip
            psf = np.asarray(wide, np.float64) ** (2 if cfg.confocal else 1)
            used = "psfmodels scalar" + (" squared (confocal)" if cfg.confocal else "")
        except ImportError:
            psf = None
    if psf is None:
        z = np.arange(-rz, rz + 1)[:, None, None] * dz_um
        y = np.arange(-rxy, rxy + 1)[None, :, None] * dxy
        x = np.arange(-rxy, rxy + 1)[None, None, :] * dxy
        psf = np.exp(-(y**2 + x**2) / (2 * sxy**2) - z**2 / (2 * sz**2))
        used = f"gaussian sigma_xy {sxy * 1000:.0f} nm, sigma_z {sz * 1000:.0f} nm"
    return (psf / psf.sum()).astype(np.float32), used


def nuclei_volume(
    shape: tuple[int, int, int] = (16, 256, 256),
    config: Nuclei3DConfig | None = None,
    *,
    seed: int = 0,
    index: int = 0,
) -> SimulatedSample:
    """One simulated volume of nuclei with its 3-D labels.

    Parameters
    ----------
    shape : (int, int, int)
        Planes, y, x of the sampled volume.
    config : Nuclei3DConfig, optional
    seed, index : int
        The volume depends only on ``(seed, index)``.

    Returns
    -------
    SimulatedSample
        ``image`` float32 ``(z, y, x)``, ``labels`` ``(z, y, x)``; ``params`` holds the z step
        (``z_step_nm``), the PSF used and every drawn value; ``pixel_size_nm`` the xy pixel.

    Examples
    --------
    >>> s = nuclei_volume((6, 64, 64), Nuclei3DConfig(n_nuclei=(2, 2), diameter_um=(6, 6)), seed=1)
    >>> s.image.shape, s.labels.shape, bool(s.labels.max() >= 1)
    ((6, 64, 64), (6, 64, 64), True)
    """
    from scipy import ndimage as ndi
    from scipy.signal import fftconvolve

    cfg = config or Nuclei3DConfig()
    if len(shape) != 3 or min(shape) < 1 or min(shape[1:]) < 16:
        raise InputError(f"a volume shape is (planes, y, x) with y, x >= 16, got {shape}")
    nz, ny, nx = (int(v) for v in shape)
    rng = sample_rng(seed, index)
    k = int(cfg.oversample_z)
    px = cfg.pixel_size_nm / 1000.0
    dz = cfg.z_step_nm / 1000.0 / k
    step = np.array([dz, px, px])
    fine = (nz * k, ny, nx)
    extent = np.array(fine) * step
    nuclei = _place(rng, cfg, extent)
    owner, height = _paint(nuclei, fine, step)
    texture = ndi.gaussian_filter(rng.standard_normal(fine, dtype=np.float32), 0.6 / step) - ndi.gaussian_filter(
        rng.standard_normal(fine, dtype=np.float32), 1.5 / step
    )
    texture /= max(float(texture.std()), 1e-6)
    level = rng.uniform(*cfg.brightness)
    bright = np.concatenate([[0.0], level * rng.lognormal(0, cfg.brightness_spread, len(nuclei))])
    density = bright[owner] * (1 - np.exp(-height / 0.08)) * np.clip(1 + cfg.texture * texture, 0.2, None)
    for i, nuc in enumerate(nuclei, start=1):  # dark nucleoli
        for _ in range(int(rng.integers(cfg.nucleoli[0], cfg.nucleoli[1] + 1))):
            c = nuc.centre + rng.uniform(-0.4, 0.4, 3) * nuc.axes
            s = rng.uniform(0.5, 1.0)
            lo = np.maximum(((c - 3 * s) / step).astype(int), 0)
            hi = np.minimum(((c + 3 * s) / step).astype(int) + 1, fine)
            if np.any(hi <= lo):
                continue
            sl = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
            g = np.meshgrid(*[(np.arange(a, b) + 0.5) * st - cc for a, b, st, cc in zip(lo, hi, step, c, strict=True)],
                            indexing="ij")  # fmt: skip
            dip = 1 - 0.6 * np.exp(-sum(v**2 for v in g) / (2 * s**2))
            density[sl] *= np.where(owner[sl] == i, dip, 1.0)
    psf, psf_used = _psf(cfg, dz)
    blurred = fftconvolve(density.astype(np.float32), psf, mode="same")
    planes = np.arange(nz) * k + k // 2
    photons = np.clip(blurred[planes], 0, None) + cfg.background
    image = rng.poisson(photons).astype(np.float32) + rng.normal(0, cfg.read_noise, photons.shape).astype(np.float32)
    lab = owner[planes]
    counts = np.bincount(lab.ravel(), minlength=len(nuclei) + 1)
    keep = np.flatnonzero(counts[1:] >= cfg.min_voxels) + 1
    remap = np.zeros(len(nuclei) + 1, np.uint16)
    remap[keep] = np.arange(1, len(keep) + 1)
    labels = remap[lab]
    params = {
        "seed": int(seed), "index": int(index), "shape": [nz, ny, nx], "config": config_to_dict(cfg),
        "z_step_nm": cfg.z_step_nm, "pixel_size_nm": cfg.pixel_size_nm, "psf": psf_used,
        "brightness": float(level), "n_nuclei": int(len(keep)),
        "nuclei": [{"centre_um": n.centre.tolist(), "semi_axes_um": n.axes.tolist()} for n in nuclei],
    }  # fmt: skip
    return SimulatedSample(image, labels, None, labels > 0, params, float(cfg.pixel_size_nm))


def write_volumes(
    out: str | os.PathLike,
    n: int,
    *,
    shape: tuple[int, int, int] = (16, 256, 256),
    seed: int = 0,
    config: Nuclei3DConfig | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``n`` volumes: images/, labels/ (ZYX TIFF with pixel sizes), params/, dataset.json.

    Volumes already written for the same run (same ``dataset.json``) are kept, so a run resumes;
    a folder holding another dataset needs ``overwrite``.
    """
    from samscope.io import write_image, write_labels

    cfg = config or Nuclei3DConfig()
    if n < 1:
        raise InputError(f"n must be >= 1, got {n}")
    out = Path(out)
    run = {"format": "samscope-simulated-volumes", "kind": "nuclei-3d", "n": int(n), "seed": int(seed),
           "shape": [int(v) for v in shape], "config": config_to_dict(cfg), "axes": "ZYX"}  # fmt: skip
    meta = out / "dataset.json"
    if meta.exists() and json.loads(meta.read_text()) != run and not overwrite:
        raise InputError(f"'{out}' holds another dataset; pass --overwrite to replace it")
    for sub in ("images", "labels", "params"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    tmp = meta.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(run, indent=1))
    os.replace(tmp, meta)
    size = (cfg.z_step_nm, cfg.pixel_size_nm, cfg.pixel_size_nm)
    for i in range(n):
        name = f"{i:06d}"
        img_p, lab_p, par_p = out / "images" / f"{name}.tif", out / "labels" / f"{name}.tif", out / "params" / f"{name}.json"
        if par_p.exists() and img_p.exists() and lab_p.exists() and not overwrite:
            continue
        s = nuclei_volume(shape, cfg, seed=seed, index=i)
        write_image(img_p, s.image, axes="ZYX", pixel_size=size, overwrite=True)
        write_labels(lab_p, s.labels, axes="ZYX", pixel_size=size, overwrite=True)
        tmp = par_p.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(s.params, indent=1))
        os.replace(tmp, par_p)  # written last: marks the volume complete
    return out


def describe(sample: SimulatedSample) -> dict[str, Any]:
    """Counts of a simulated volume (objects, foreground fraction, z step) for a quick look."""
    return {
        "n_objects": sample.n_objects,
        "foreground": float(sample.foreground.mean()),
        "z_step_nm": sample.params.get("z_step_nm"),
        "pixel_size_nm": sample.pixel_size_nm,
    }
