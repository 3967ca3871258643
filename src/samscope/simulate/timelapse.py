"""Simulated time-lapses of fluorescent nuclei with lineage ground truth (for tracking).

Each series follows a population of nuclei drawn and rendered as :mod:`samscope.simulate.nuclei`
does (the same shapes, textures, optics and camera, HeLa-like defaults), frame by frame:

Motion
    Each nucleus moves by a persistent random walk: its velocity is ``persistence`` × the last
    one plus Gaussian noise, with a per-nucleus speed drawn from ``speed_px`` (pixels per frame).
    Overlapping nuclei push each other apart; shapes deform slowly (the harmonics' phases and the
    orientation drift) and nuclei grow through their cycle.
Divisions
    Every nucleus has a cycle of ``cycle_frames`` frames (its age at frame 0 is random). In its
    last ``mitosis_frames`` frames it condenses into a bright, compact mitotic figure; then it is
    replaced by two daughters (half its area, placed across its long axis and moving apart) whose
    first frames are compact and bright too, as telophase nuclei are. The mother's track ends in
    the frame before the daughters' tracks begin, and the daughters' parent is the mother.
Entering, leaving, dying
    Nuclei cross the image border both ways (the population lives on a canvas larger than the
    image); ``enter_rate`` nuclei per frame enter from outside; a nucleus dies (vanishes) with
    probability ``death_rate`` per frame.
Intensity drift
    The brightness falls by a drawn fraction of ``bleaching`` over the series (photobleaching)
    and the background drifts by up to ±5 %.

Ground truth: ``labels`` ``(T, Y, X)`` whose ids are track ids, and a :class:`~samscope.multidim.
Lineage` (rows ``L B E P`` as the Cell Tracking Challenge's ``man_track.txt``; a nucleus that
leaves and re-enters continues as a new track whose parent is its earlier part, which is how the
challenge's format records a gap).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from samscope.errors import InputError
from samscope.simulate.nuclei import NucleiConfig, paint
from samscope.simulate.sample import (
    check_range,
    check_shape,
    config_to_dict,
    sample_rng,
    sample_seeds,
)
from samscope.simulate.shapes import Blob, assign_owners, random_harmonics, smooth_field

__all__ = ["SimulatedSeries", "TimelapseConfig", "nuclei_timelapse", "write_series_dataset", "write_timelapse"]


@dataclass(frozen=True)
class TimelapseConfig:
    """Parameters of a simulated nuclei time-lapse (the look comes from ``nuclei``).

    Attributes
    ----------
    frames : int
        Frames per series (>= 2).
    speed_px : (float, float)
        Per-nucleus typical displacement per frame, pixels.
    persistence : float
        Weight of the previous velocity in the next (0: a pure random walk).
    cycle_frames : (float, float)
        Cell-cycle length in frames, per nucleus.
    mitosis_frames : int
        Frames of mitotic look before and after a division.
    enter_rate : float
        Expected nuclei entering the canvas per frame.
    death_rate : float
        Probability per nucleus and frame of vanishing.
    bleaching : (float, float)
        Fraction of the brightness lost over the series.
    nuclei : NucleiConfig
        Shapes, density, look, optics and camera (``dividing_fraction`` and
        ``apoptotic_fraction`` are not used: divisions come from the cycle).
    """

    frames: int = 30
    speed_px: tuple[float, float] = (0.5, 3.0)
    persistence: float = 0.7
    cycle_frames: tuple[float, float] = (25.0, 70.0)
    mitosis_frames: int = 2
    enter_rate: float = 0.3
    death_rate: float = 0.002
    bleaching: tuple[float, float] = (0.0, 0.3)
    nuclei: NucleiConfig = field(default_factory=NucleiConfig)

    def __post_init__(self) -> None:
        s = object.__setattr__
        if isinstance(self.frames, bool) or int(self.frames) != self.frames or self.frames < 2:
            raise InputError(f"frames must be an integer >= 2, got {self.frames!r}")
        s(self, "frames", int(self.frames))
        s(self, "speed_px", check_range("speed_px", self.speed_px, minimum=0, maximum=100))
        s(self, "cycle_frames", check_range("cycle_frames", self.cycle_frames, minimum=2))
        s(self, "bleaching", check_range("bleaching", self.bleaching, minimum=0, maximum=0.95))
        if not 0 <= self.persistence < 1:
            raise InputError(f"persistence must be in [0, 1), got {self.persistence!r}")
        if not 0 <= self.enter_rate <= 10:
            raise InputError(f"enter_rate must be in [0, 10], got {self.enter_rate!r}")
        if not 0 <= self.death_rate < 1:
            raise InputError(f"death_rate must be in [0, 1), got {self.death_rate!r}")
        if int(self.mitosis_frames) != self.mitosis_frames or self.mitosis_frames < 0:
            raise InputError(f"mitosis_frames must be an integer >= 0, got {self.mitosis_frames!r}")


@dataclass(frozen=True)
class SimulatedSeries:
    """One simulated time-lapse.

    Attributes
    ----------
    image : numpy.ndarray, float32, (T, Y, X)
        Camera counts.
    labels : numpy.ndarray, uint16, (T, Y, X)
        Ids are track ids.
    lineage : samscope.multidim.Lineage
    params : dict
    pixel_size_nm : float
    """

    image: np.ndarray
    labels: np.ndarray
    lineage: object
    params: dict
    pixel_size_nm: float


@dataclass
class _Cell:
    id: int
    blob: Blob
    base: tuple[float, float]  # full-grown semi-axes (a, b)
    velocity: np.ndarray
    speed: float
    age: float
    cycle: float
    parent: int = 0
    born: int = 0


def nuclei_timelapse(
    n: int = 1,
    shape: tuple[int, int] = (256, 256),
    *,
    rng: int | np.random.Generator | None = None,
    config: TimelapseConfig | None = None,
) -> list[SimulatedSeries]:
    """Simulate ``n`` time-lapses of moving, dividing nuclei with lineage ground truth.

    Parameters
    ----------
    n : int
    shape : (int, int)
        Frame shape ``(y, x)``.
    rng : int or numpy.random.Generator, optional
        Root seed: series ``i`` depends only on ``(seed, i)``.
    config : TimelapseConfig, optional

    Returns
    -------
    list of SimulatedSeries

    Examples
    --------
    >>> [s] = nuclei_timelapse(1, (96, 96), rng=0, config=TimelapseConfig(frames=3))
    >>> s.image.shape, s.labels.shape, s.labels.dtype.name
    ((3, 96, 96), (3, 96, 96), 'uint16')
    """
    cfg = config or TimelapseConfig()
    shape = check_shape(shape)
    seed, indices = sample_seeds(n, rng)
    return [_simulate_series(shape, cfg, seed=seed, index=i) for i in indices]


def _new_cell(rng, cfg: TimelapseConfig, cid: int, cy: float, cx: float, scale: float, age=None) -> _Cell:
    nc = cfg.nuclei
    d = scale * rng.uniform(*nc.diameter_px)
    asp = rng.uniform(*nc.aspect)
    a, b = d / 2 / np.sqrt(asp), d / 2 * np.sqrt(asp)
    dim = rng.random() < nc.dim_fraction
    bright = rng.lognormal(0.0, nc.brightness_spread) * (rng.uniform(0.2, 0.4) if dim else 1.0)
    extra = {
        "defocus": 0.0, "dome": float(rng.uniform(0.0, 0.25)), "rim": float(rng.uniform(0.0, 0.25)),
        "edge": float(rng.uniform(0.6, 1.8)), "nucleoli": int(rng.integers(nc.nucleoli[0], nc.nucleoli[1] + 1)),
    }  # fmt: skip
    blob = Blob(cy, cx, a, b, rng.uniform(0, 2 * np.pi), random_harmonics(rng, nc.irregularity),
                "interphase", float(bright), extra, bend=float(rng.uniform(-nc.bend, nc.bend)))  # fmt: skip
    speed = float(rng.uniform(*cfg.speed_px))
    phi = rng.uniform(0, 2 * np.pi)
    cycle = float(rng.uniform(*cfg.cycle_frames))
    return _Cell(cid, blob, (a, b), speed * np.array([np.sin(phi), np.cos(phi)]), speed,
                 float(rng.uniform(0, cycle) if age is None else age), cycle)  # fmt: skip


def _look(cell: _Cell, cfg: TimelapseConfig) -> Blob:
    """The blob as rendered this frame: grown with age, condensed around mitosis."""
    from dataclasses import replace

    m = cfg.mitosis_frames
    grow = np.sqrt(0.55 + 0.45 * min(cell.age / cell.cycle, 1.0))  # area from ~0.55 to 1
    a, b = cell.base[0] * grow, cell.base[1] * grow
    kind, bright, extra = "interphase", cell.blob.brightness, dict(cell.blob.extra or {})
    if m and (cell.cycle - cell.age <= m or cell.age < m):
        kind = "mitosis"
        bright *= 2.5
        a, b = 0.75 * a, 0.6 * b
        extra.update(nucleoli=0, dome=0.1, edge=0.8)
    return replace(cell.blob, a=float(a), b=float(b), kind=kind, brightness=float(bright), extra=extra)


def _simulate_series(shape: tuple[int, int], cfg: TimelapseConfig, *, seed: int, index: int) -> SimulatedSeries:
    from scipy import ndimage as ndi

    from samscope.multidim.lineage import Lineage, make_continuous
    from samscope.simulate.optics import camera

    nc = cfg.nuclei
    rng = sample_rng(seed, index)
    h, w = shape
    scale = float(rng.uniform(*nc.size_scale))
    pad = int(np.ceil(scale * nc.diameter_px[1] * 1.5)) + 8
    canvas = (h + 2 * pad, w + 2 * pad)
    brightness = float(np.exp(rng.uniform(*np.log(nc.brightness))))
    background = float(rng.uniform(*nc.background))
    contrast = float(rng.uniform(*nc.texture))
    blur = float(rng.uniform(*nc.blur_px))
    gain, offset = float(rng.uniform(*nc.gain)), float(rng.uniform(*nc.offset))
    read_noise = float(rng.uniform(*nc.read_noise))
    bleach = float(rng.uniform(*cfg.bleaching))
    bg_drift = float(rng.uniform(-0.05, 0.05))

    density = rng.uniform(*nc.density)
    n0 = int(rng.poisson(density * canvas[0] * canvas[1] / 1e4))
    cells: list[_Cell] = []
    next_id = 1
    for _ in range(n0):  # free-standing start positions (rejection against placed cells)
        for _try in range(30):
            cy, cx = rng.uniform(0, canvas[0]), rng.uniform(0, canvas[1])
            r = scale * nc.diameter_px[1] / 2
            if all(np.hypot(c.blob.cy - cy, c.blob.cx - cx) > 1.05 * (r + c.blob.radius) for c in cells):
                cells.append(_new_cell(rng, cfg, next_id, cy, cx, scale))
                next_id += 1
                break
    bg_field = 1.0 + 0.1 * smooth_field(rng, canvas, max(canvas) / 4)
    frames, label_frames = [], []
    parents: dict[int, int] = {}
    n_div = 0
    for t in range(cfg.frames):
        if t > 0:
            cells, next_id, k = _advance(rng, cfg, cells, next_id, canvas, scale, t, parents)
            n_div += k
        blobs = [_look(c, cfg) for c in cells]
        owner, windows = assign_owners(blobs, canvas, margin=8.0)
        texture = 0.6 * smooth_field(rng, canvas, 1.0) + 0.8 * smooth_field(rng, canvas, 2.5)
        rel = paint(rng, blobs, owner, windows, texture, contrast)
        photons = ndi.gaussian_filter(rel, blur) if blur > 0 else rel
        photons = photons + ndi.gaussian_filter(rel, 12.0) * np.float32(0.03)
        level = brightness * (1.0 - bleach * t / max(cfg.frames - 1, 1))
        photons = photons * np.float32(level)
        photons += (background * (1 + bg_drift * t / max(cfg.frames - 1, 1)) * bg_field).astype(np.float32)
        crop = (slice(pad, pad + h), slice(pad, pad + w))
        frames.append(camera(photons[crop], rng, gain=gain, offset=offset, read_noise=read_noise))
        own = owner[crop]
        counts = np.bincount(own.ravel(), minlength=len(cells) + 1)
        lut = np.zeros(len(cells) + 1, np.int64)
        for i, c in enumerate(cells):
            if counts[i + 1] >= nc.min_area_px:
                lut[i + 1] = c.id
        label_frames.append(lut[own])
    labels = np.stack(label_frames)
    seen = set(np.unique(labels).tolist())  # a mother that never showed in the image is no parent
    lineage = Lineage.from_labels(labels, parents={k: v for k, v in parents.items() if v in seen})
    fixed = make_continuous(labels, valid_parents(lineage))
    out_labels = fixed.labels.astype(np.uint16 if fixed.labels.max() < 65536 else np.uint32)
    params = {
        "kind": "nuclei-timelapse", "seed": int(seed), "index": int(index), "shape": [h, w],
        "frames": cfg.frames, "config": config_to_dict(cfg), "size_scale": scale,
        "brightness": brightness, "background": background, "bleaching": bleach, "blur_px": blur,
        "n_tracks": len(fixed.lineage), "n_divisions": fixed.lineage.n_divisions,
    }  # fmt: skip
    return SimulatedSeries(np.stack(frames).astype(np.float32), out_labels, fixed.lineage, params,
                           float(nc.pixel_size_nm))  # fmt: skip


def valid_parents(lineage):
    """Drop parent links whose parent does not end before the child starts (or is absent)."""
    from samscope.multidim.lineage import Lineage, Track

    span = {t.id: t for t in lineage.tracks}
    tracks = []
    for t in lineage.tracks:
        p = span.get(t.parent)
        ok = p is not None and p.end < t.start
        tracks.append(Track(t.id, t.start, t.end, t.parent if ok else 0))
    return Lineage(tuple(tracks))


def _advance(rng, cfg: TimelapseConfig, cells: list[_Cell], next_id: int, canvas, scale, t, parents):
    """One frame of motion, growth, division, death and entry."""
    h, w = canvas
    out: list[_Cell] = []
    n_div = 0
    for c in cells:
        if rng.random() < cfg.death_rate:
            continue
        c.age += 1
        if c.age >= c.cycle:  # divide: two daughters across the long axis, moving apart
            n_div += 1
            u = np.array([np.sin(c.blob.angle), np.cos(c.blob.angle)])
            sep = 0.45 * c.blob.radius
            for sign in (1, -1):
                d = _new_cell(rng, cfg, next_id, c.blob.cy + sign * sep * u[0], c.blob.cx + sign * sep * u[1],
                              scale, age=0.0)  # fmt: skip
                d.blob.brightness = c.blob.brightness * float(rng.uniform(0.9, 1.1))
                d.base = c.base
                d.velocity = sign * 1.5 * u + 0.3 * c.velocity
                d.parent, d.born = c.id, t
                parents[next_id] = c.id
                next_id += 1
                out.append(d)
            continue
        noise = rng.normal(0, 1, 2) * c.speed * np.sqrt(1 - cfg.persistence**2)
        c.velocity = cfg.persistence * c.velocity + noise
        c.blob.cy += float(c.velocity[0])
        c.blob.cx += float(c.velocity[1])
        c.blob.angle += float(rng.normal(0, 0.05))
        c.blob.harmonics[:, 2] += rng.normal(0, 0.05, len(c.blob.harmonics))
        out.append(c)
    # push overlapping nuclei apart (half the overlap each)
    if len(out) > 1:
        pos = np.array([[c.blob.cy, c.blob.cx] for c in out])
        rad = np.array([c.blob.radius for c in out])
        for _ in range(2):
            diff = pos[:, None, :] - pos[None, :, :]
            dist = np.hypot(diff[..., 0], diff[..., 1]) + np.eye(len(out))
            over = np.clip(0.95 * (rad[:, None] + rad[None, :]) - dist, 0, None)
            np.fill_diagonal(over, 0)
            push = (diff / dist[..., None] * (0.5 * over)[..., None]).sum(axis=1)
            pos += np.clip(push, -3, 3)
        for c, p in zip(out, pos, strict=True):
            c.blob.cy, c.blob.cx = float(p[0]), float(p[1])
    out = [c for c in out if -c.blob.radius < c.blob.cy < h + c.blob.radius and -c.blob.radius < c.blob.cx < w + c.blob.radius]
    for _ in range(int(rng.poisson(cfg.enter_rate))):  # enter from a canvas edge, inwards
        side = int(rng.integers(4))
        pos = rng.uniform(0, 1) * (w if side < 2 else h)
        cy, cx = [(0.0, pos), (float(h), pos), (pos, 0.0), (pos, float(w))][side]
        cell = _new_cell(rng, cfg, next_id, cy, cx, scale)
        inward = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]][side], float)
        cell.velocity = cell.speed * inward
        next_id += 1
        out.append(cell)
    return out, next_id, n_div


def write_timelapse(
    output: str | os.PathLike,
    n: int,
    *,
    shape: tuple[int, int] = (256, 256),
    seed: int = 0,
    config: TimelapseConfig | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``n`` simulated time-lapses with their ground truth.

    For series ``i`` (``NNNNNN`` = ``i`` in six digits): ``OUTPUT/images/NNNNNN.tif`` (``TYX``
    float32 camera counts), ``OUTPUT/labels/NNNNNN.tif`` (``TYX`` track ids),
    ``OUTPUT/tracks/NNNNNN.txt`` (``L B E P`` rows, the CTC's ``man_track.txt``),
    ``OUTPUT/params/NNNNNN.json``, and ``OUTPUT/dataset.json``. Series already written by the
    same run (same ``dataset.json``) are kept (a re-run resumes).

    Returns
    -------
    list of Path
        The image files.

    Raises
    ------
    InputError
        An output folder that holds another dataset (unless ``overwrite``).
    """
    return write_series_dataset(output, n, seed=seed, shape=shape, config=config or TimelapseConfig(),
                                kind="nuclei-timelapse", simulate=_simulate_series, overwrite=overwrite)  # fmt: skip


def write_series_dataset(output, n: int, *, seed: int, shape, config, kind: str, simulate,
                         overwrite: bool = False) -> list[Path]:  # fmt: skip
    """The folder layout of simulated time-lapses with lineage (nuclei, colonies), resumable.

    ``simulate(shape, config, seed=, index=)`` makes one series with ``image``, ``labels``,
    ``lineage``, ``params`` and ``pixel_size_nm``; see :func:`write_timelapse` for the files.
    """
    from samscope.io import atomic_target, write_image, write_labels
    from samscope.io.tracks import write_track_table

    cfg = config
    out = Path(output)
    doc = {"kind": kind, "n": int(n), "seed": int(seed), "shape": list(check_shape(shape)),
           "config": config_to_dict(cfg)}  # fmt: skip
    meta = out / "dataset.json"
    if meta.exists() and json.loads(meta.read_text()) != json.loads(json.dumps(doc)) and not overwrite:
        raise InputError(f"'{out}' holds another dataset; pass --overwrite to replace it")
    for sub in ("images", "labels", "tracks", "params"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    with atomic_target(meta, overwrite=True) as tmp:
        Path(tmp).write_text(json.dumps(doc, indent=1))
    seed_, indices = sample_seeds(n, seed)
    files = []
    for i in indices:
        name = f"{i:06d}"
        img = out / "images" / f"{name}.tif"
        files.append(img)
        if img.exists() and (out / "tracks" / f"{name}.txt").exists() and not overwrite:
            continue
        s = simulate(tuple(doc["shape"]), cfg, seed=seed_, index=i)
        px = (s.pixel_size_nm, s.pixel_size_nm)
        write_labels(out / "labels" / f"{name}.tif", s.labels, axes="TYX", pixel_size=px, overwrite=True)
        with atomic_target(out / "params" / f"{name}.json", overwrite=True) as tmp:
            Path(tmp).write_text(json.dumps(s.params, indent=1))
        write_track_table(out / "tracks" / f"{name}.txt", s.lineage, overwrite=True)
        write_image(img, s.image, axes="TYX", pixel_size=px, overwrite=True)  # last: marks it done
    return files


#: Former private names kept for modules of other owners that still import them.
