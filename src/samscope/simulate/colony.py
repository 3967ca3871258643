"""Simulated bacteria colonies: growing, dividing rods in a packed colony, with lineage truth.

A colony starts from a few founder rods near the middle of the field. Each rod is a capsule
(centre, axis angle, length, width) that elongates exponentially (a doubling time drawn per
colony) and divides across its middle when it reaches twice its birth length (± 10 %): the two
daughters, half the length each and slightly turned, start where the two halves of the mother
were. Rods push each other apart (a few relaxation passes of pairwise overlap removal between
points along their axes) and turn a little at random, so the colony spreads as a packed
monolayer. Rods that leave the field are gone from the labels (they left).

Images are fluorescence-like (bright rods on a dim, smoothly varying background, blurred, camera
noise) or phase-contrast-like (dark rods with a bright halo), chosen by ``look``. Labels carry
track ids; the lineage (mother → two daughters) is the Cell Tracking Challenge's ``man_track.txt``.

Example::

    from samscope.simulate.colony import ColonyConfig, colony_timelapse

    [s] = colony_timelapse(1, (256, 256), rng=0, config=ColonyConfig(frames=30))
    s.labels.shape, s.lineage.n_divisions      # (30, 256, 256), ≈ 20-40 divisions
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samscope.errors import InputError
from samscope.simulate.sample import check_shape, config_to_dict, sample_rng, sample_seeds

__all__ = ["ColonyConfig", "colony_timelapse", "write_colony"]


@dataclass(frozen=True)
class ColonyConfig:
    """A bacteria colony time-lapse (ranges are MIN, MAX drawn per colony).

    Attributes
    ----------
    frames : int
    founders : (int, int)
        Rods at the first frame.
    birth_length_px : (float, float)
        Length of a rod just after division (pixels, tip to tip).
    width_px : (float, float)
    doubling_frames : (float, float)
        Frames for a rod to double its length (then it divides).
    jitter_deg : float
        Random turn of each rod per frame (degrees, standard deviation).
    look : {"fluorescence", "phase"}
    blur_px : (float, float)
    brightness : (float, float)
        Photons per pixel inside a rod (fluorescence) or of the background (phase).
    read_noise : (float, float)
    """

    frames: int = 30
    founders: tuple[int, int] = (1, 3)
    birth_length_px: tuple[float, float] = (12.0, 16.0)
    width_px: tuple[float, float] = (6.0, 8.0)
    doubling_frames: tuple[float, float] = (7.0, 10.0)
    jitter_deg: float = 4.0
    look: str = "fluorescence"
    blur_px: tuple[float, float] = (0.8, 1.5)
    brightness: tuple[float, float] = (80.0, 200.0)
    read_noise: tuple[float, float] = (1.0, 4.0)

    def __post_init__(self) -> None:
        if int(self.frames) != self.frames or self.frames < 1:
            raise InputError(f"frames must be an integer >= 1, got {self.frames!r}")
        for name in ("founders", "birth_length_px", "width_px", "doubling_frames", "blur_px",
                     "brightness", "read_noise"):  # fmt: skip
            lo, hi = getattr(self, name)
            if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo <= hi):
                raise InputError(f"{name} must be MIN,MAX with 0 <= MIN <= MAX, got {getattr(self, name)!r}")
        if self.founders[0] < 1 or self.doubling_frames[0] <= 0 or self.width_px[0] <= 0:
            raise InputError("founders, doubling_frames and width_px must be positive")
        if self.look not in ("fluorescence", "phase"):
            raise InputError(f"look must be 'fluorescence' or 'phase', got {self.look!r}")


@dataclass
class _Rod:
    id: int
    y: float
    x: float
    angle: float
    length: float
    birth: float
    width: float


def colony_timelapse(n: int, shape: tuple[int, int] = (256, 256), *, rng: int = 0,
                     config: ColonyConfig | None = None) -> list:  # fmt: skip
    """``n`` simulated colonies (:class:`~samscope.simulate.timelapse.SimulatedSeries`: image,
    labels with track ids, lineage, params); colony ``i`` depends only on ``(rng, i)``."""
    cfg = config or ColonyConfig()
    shape = check_shape(shape)
    seed, indices = sample_seeds(n, rng)
    return [_simulate(shape, cfg, seed=seed, index=i) for i in indices]


def _simulate(shape: tuple[int, int], cfg: ColonyConfig, *, seed: int, index: int):
    from samscope.multidim.lineage import Lineage, make_continuous
    from samscope.simulate.timelapse import SimulatedSeries, valid_parents

    rng = sample_rng(seed, index)
    h, w = shape
    width = float(rng.uniform(*cfg.width_px))
    growth = np.log(2) / float(rng.uniform(*cfg.doubling_frames))
    rods, next_id = [], 1
    for _ in range(int(rng.integers(cfg.founders[0], cfg.founders[1] + 1))):
        birth = float(rng.uniform(*cfg.birth_length_px))
        cy, cx = h / 2 + rng.normal(0, h / 12), w / 2 + rng.normal(0, w / 12)
        rods.append(_Rod(next_id, cy, cx, float(rng.uniform(0, np.pi)), birth * rng.uniform(1, 1.6), birth, width))
        next_id += 1
    _relax(rods, iterations=20)
    parents: dict[int, int] = {}
    look = _Look.draw(rng, cfg, shape)
    frames, labels = [], []
    for t in range(cfg.frames):
        if t > 0:
            rods, next_id = _grow(rng, cfg, rods, growth, next_id, parents)
            _relax(rods, iterations=8)
        lab = _rasterize(rods, shape)
        labels.append(lab)
        frames.append(look.render(rng, lab, t, cfg.frames))
    labels = np.stack(labels)
    seen = set(np.unique(labels).tolist())
    lineage = Lineage.from_labels(labels, parents={k: v for k, v in parents.items() if v in seen})
    fixed = make_continuous(labels, valid_parents(lineage))
    out = fixed.labels.astype(np.uint16 if fixed.labels.max() < 65536 else np.uint32)
    params = {"kind": "colony-timelapse", "seed": int(seed), "index": int(index), "shape": [h, w],
              "frames": cfg.frames, "config": config_to_dict(cfg), "width_px": width,
              "doubling_frames": float(np.log(2) / growth), "n_tracks": len(fixed.lineage),
              "n_divisions": fixed.lineage.n_divisions}  # fmt: skip
    return SimulatedSeries(np.stack(frames).astype(np.float32), out, fixed.lineage, params, 65.0)


def _grow(rng, cfg: ColonyConfig, rods: list[_Rod], growth: float, next_id: int, parents: dict):
    out = []
    for r in rods:
        r.length *= float(np.exp(growth * rng.uniform(0.85, 1.15)))
        r.angle += float(np.deg2rad(rng.normal(0, cfg.jitter_deg)))
        if r.length < 2 * r.birth * rng.uniform(0.9, 1.1):
            out.append(r)
            continue
        half = r.length / 2
        dy, dx = np.sin(r.angle), np.cos(r.angle)
        for sign in (-1, 1):
            c = _Rod(next_id, r.y + sign * dy * half / 2, r.x + sign * dx * half / 2,
                     r.angle + float(np.deg2rad(rng.normal(0, 6))), half, half, r.width)  # fmt: skip
            parents[next_id] = r.id
            next_id += 1
            out.append(c)
    return out, next_id


def _axis_points(r: _Rod, k: int = 5) -> np.ndarray:
    s = np.linspace(-0.5, 0.5, k) * max(r.length - r.width, 0.0)
    return np.stack([r.y + s * np.sin(r.angle), r.x + s * np.cos(r.angle)], axis=1)


def _relax(rods: list[_Rod], iterations: int) -> None:
    """Push overlapping rods apart (pairwise, along the line between their closest axis points)."""
    n = len(rods)
    if n < 2:
        return
    for _ in range(iterations):
        pts = [_axis_points(r) for r in rods]
        centres = np.array([[r.y, r.x] for r in rods])
        reach = np.array([r.length / 2 + r.width for r in rods])
        moved = False
        for i in range(n):
            d = np.hypot(*(centres[i + 1 :] - centres[i]).T)
            for j in np.flatnonzero(d < reach[i] + reach[i + 1 :]) + i + 1:
                diff = pts[i][:, None, :] - pts[j][None, :, :]
                dist = np.hypot(diff[..., 0], diff[..., 1])
                a, b = np.unravel_index(int(np.argmin(dist)), dist.shape)
                gap = (rods[i].width + rods[j].width) / 2 + 0.5 - dist[a, b]
                if gap <= 0:
                    continue
                u = diff[a, b] / max(dist[a, b], 1e-6) if dist[a, b] > 1e-6 else np.array([1.0, 0.0])
                for r, sgn in ((rods[i], 0.5), (rods[j], -0.5)):
                    r.y += sgn * gap * u[0]
                    r.x += sgn * gap * u[1]
                moved = True
        if not moved:
            return


def _rasterize(rods: list[_Rod], shape: tuple[int, int]) -> np.ndarray:
    """Track ids: each pixel goes to the rod whose axis is nearest, within half its width."""
    h, w = shape
    lab = np.zeros(shape, np.int32)
    best = np.full(shape, np.inf, np.float32)
    for r in rods:
        half = r.length / 2 + 1
        y0, y1 = max(0, int(r.y - half)), min(h, int(r.y + half) + 2)
        x0, x1 = max(0, int(r.x - half)), min(w, int(r.x + half) + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dy, dx = np.sin(r.angle), np.cos(r.angle)
        s = np.clip((yy - r.y) * dy + (xx - r.x) * dx, -(r.length - r.width) / 2, (r.length - r.width) / 2)
        dist = np.hypot(yy - (r.y + s * dy), xx - (r.x + s * dx)) / (r.width / 2)
        win = best[y0:y1, x0:x1]
        take = (dist < 1) & (dist < win)
        win[take] = dist[take]
        lab[y0:y1, x0:x1][take] = r.id
    return lab


@dataclass(frozen=True)
class _Look:
    phase: bool
    level: float
    background: float
    blur: float
    read_noise: float
    field: np.ndarray

    @classmethod
    def draw(cls, rng, cfg: ColonyConfig, shape) -> _Look:
        from samscope.simulate.shapes import smooth_field

        level = float(rng.uniform(*cfg.brightness))
        return cls(cfg.look == "phase", level, level * float(rng.uniform(0.05, 0.2)),
                   float(rng.uniform(*cfg.blur_px)), float(rng.uniform(*cfg.read_noise)),
                   1.0 + 0.15 * smooth_field(rng, shape, max(shape) / 4))  # fmt: skip

    def render(self, rng, lab: np.ndarray, t: int, frames: int) -> np.ndarray:
        from scipy import ndimage as ndi

        from samscope.simulate.optics import camera

        inside = (lab > 0).astype(np.float32)
        edges = inside - ndi.grey_erosion(inside, size=3)  # a slightly dimmer rim between rods
        if self.phase:  # dark rods, bright halo, on a bright background
            rel = 1.0 - 0.6 * inside + 0.5 * (ndi.gaussian_filter(inside, 2.5) - inside).clip(0)
            photons = self.level * rel * self.field
        else:
            texture = 1.0 + 0.1 * rng.standard_normal(lab.shape).astype(np.float32)
            rel = inside * (1 - 0.35 * edges) * texture
            bleach = 1.0 - 0.2 * t / max(frames - 1, 1)
            photons = self.level * bleach * rel + self.background * self.field
        photons = ndi.gaussian_filter(photons.astype(np.float32), self.blur)
        return camera(photons, rng, gain=1.0, offset=100.0, read_noise=self.read_noise)


def write_colony(output: str | os.PathLike, n: int, *, shape: tuple[int, int] = (256, 256), seed: int = 0,
                 config: ColonyConfig | None = None, overwrite: bool = False) -> list[Path]:  # fmt: skip
    """Write ``n`` colonies as :func:`samscope.simulate.timelapse.write_timelapse` writes nuclei:
    ``images/NNNNNN.tif`` (TYX), ``labels/NNNNNN.tif`` (track ids), ``tracks/NNNNNN.txt`` (CTC
    ``man_track.txt``), ``params/NNNNNN.json``, ``dataset.json``; a re-run resumes."""
    from samscope.simulate.timelapse import write_series_dataset

    return write_series_dataset(output, n, seed=seed, shape=shape, config=config or ColonyConfig(),
                                kind="colony-timelapse", simulate=_simulate, overwrite=overwrite)  # fmt: skip
