"""Simulated fluorescent nuclei (widefield, e.g. Hoechst or H2B-GFP) with instance labels.

The target look is the Cell Tracking Challenge's Fluo-N2DL-HeLa (``shared/data/hela``: 20 frames of
700×1100, 16-bit, camera offset ≈ 33,000) and, through the ranges, the many fluorescent-nucleus
images that resemble it. Each image is built as follows (every range is a field of
:class:`NucleiConfig`, drawn per image or per object):

Objects
    Interphase nuclei are star-convex shapes: an ellipse (equivalent diameter ``diameter_px``
    times a per-image ``size_scale``, minor/major ``aspect``) whose radius is modulated by random
    harmonics 2–5 (``irregularity``), which gives the ovals, beans and kidneys of HeLa.
    ``dividing_fraction`` of the objects are mitoses: a metaphase plate (one thin bright bar),
    an anaphase (two parallel bars) or a telophase (two compact blobs), each chromatin mass its
    own instance, 2–4× brighter than interphase nuclei and nearly untextured.
    ``apoptotic_fraction`` are apoptotic: a small condensed round body or 2–5 bright fragments
    (each its own instance). ``dim_fraction`` of the nuclei are 5–30 % as bright as the rest
    (still labelled, as in the HeLa ground truth), ``defocus_fraction`` are blurred further.
Placement
    Objects are placed one by one, uniformly (no overlap of their equivalent discs) or, with
    probability ``cluster_fraction``, against a placed nucleus (centres 0.8–0.95 of the summed
    radii apart), so clusters and touching pairs form. Where shapes overlap, a pixel belongs to
    the object whose normalised height ``1 - r / R(θ)`` is larger: touching nuclei share a
    straight-ish border, as compressed neighbours do.
Intensity
    Inside its own pixels a nucleus is ``brightness × edge × dome × texture × nucleoli``: a soft
    rim (``1 - exp(-d / w)`` of the distance ``d`` to its border, so touching nuclei keep a dim
    seam), a slight dome, two-scale band-pass chromatin texture (``texture`` contrast) and 0–3
    dark nucleoli (``nucleoli``). Per-object brightness is log-normal around the image's
    ``brightness`` (photons per pixel above background) with spread ``brightness_spread``.
Image formation
    The photon image is blurred by a Gaussian PSF (``blur_px``) plus a faint wide halo of
    out-of-focus light, added to a smooth background (``background`` photons, ±10 % large-scale
    variation) and read by a camera (:func:`samscope.simulate.optics.camera`): Poisson shot
    noise, ``gain``, ``offset`` and Gaussian ``read_noise``, clipped to 16 bits.
Ground truth
    ``labels``: one id per object (sequential from 1); objects show at least ``min_area_px``
    pixels in the image or are dropped. Nuclei never overlap, so ``masks`` is None.
    ``foreground = labels > 0``.

Realism (matched to HeLa)
-------------------------
Measured with ``regionprops`` on objects that do not touch the image border, HeLa ground truth
of frames 0, 10 and 19 (477 nuclei) against 40 simulated 512² images (default configuration,
seed 0, 1,796 objects); intensities in camera counts, "normalised" after percentile
normalisation (1, 99.8) as a model sees them::

                                          HeLa                    simulated
    objects per 10⁴ px²                   2.10 (1.61 – 2.53)      2.14 (1.18 – 3.40)
    foreground fraction                   0.127 (0.09 – 0.16)     0.117 (0.05 – 0.18)
    area, px: median (IQR)                598 (503 – 705)         597 (476 – 747)
    area 5th / 95th percentile            302 / 878               93 / 939
    major / minor axis, median px         32.1 / 23.9             32.5 / 23.7
    eccentricity median (5th – 95th)      0.67 (0.41 – 0.84)      0.67 (0.36 – 0.84)
    background noise (pixel differences)  9.2                     9.2 (5.9 – 12.5)
    background level                      ≈ 33,050                ≈ 33,060
    object mean above background,
      percentiles 5 / 25 / 50 / 75 / 95    77 / 397 / 617 / 804 / 1,157    114 / 316 / 513 / 897 / 1,588
    texture (high-pass std / mean inside) 0.106 (IQR 0.09 – 0.12) 0.110 (IQR 0.09 – 0.13)
    normalised background / nuclei median 0.015 / 0.39            0.020 / 0.45
    objects touching another (1 px)       0.04                    0.17

Side-by-side views of real and simulated frames (percentile-normalised) agree by eye in size,
brightness spread, dim nuclei, crisp edges, nucleoli and the look of mitoses.
Deliberate differences: brightness and density spread wider than in the three HeLa frames, and
touching pairs are about four times as common (these frames are sparse; a model must see touching
nuclei to learn to split them). The small-object tail (5th percentile area) comes from mitoses
and apoptotic fragments, which are a little more frequent here. Remaining weaknesses: real
chromatin is more granular and real nuclei more varied in outline (peanuts, deep kidneys) than
harmonics 2–5 and one bend give.
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
from samscope.simulate.shapes import (  # also importable from here, as before the split
    Blob,
    Placer,
    assign_owners,
    finish_labels,
    grid_box,
    inner_distance,
    random_harmonics,
    smooth_field,
)

__all__ = [
    "NucleiConfig",
    "nuclei",
    "paint",
    "simulate_one",
    # the shared shapes (samscope.simulate.shapes) and check_fraction, importable from here too
    "Blob",
    "Placer",
    "assign_owners",
    "check_fraction",
    "finish_labels",
    "grid_box",
    "inner_distance",
    "random_harmonics",
    "smooth_field",
]


@dataclass(frozen=True)
class NucleiConfig:
    """Parameters of the fluorescent-nuclei simulator (field names are the CLI flags).

    Ranges are ``(min, max)``, drawn uniformly per image unless said otherwise. Defaults match the
    Fluo-N2DL-HeLa look (see the module docstring).

    Parameters
    ----------
    density : tuple of float
        Objects per 10,000 px² (before mitoses split in two).
    diameter_px : tuple of float
        Equivalent diameter of interphase nuclei in pixels, drawn per nucleus.
    size_scale : tuple of float
        Per-image factor on every size (magnification variety).
    aspect : tuple of float
        Minor/major axis ratio of the underlying ellipse, per nucleus, in (0, 1].
    irregularity : float
        Amplitude of the radial harmonics 2–5 (0 = ellipses).
    bend : float
        Largest bending of a nucleus's minor axis (kidney shapes; 0 = none).
    cluster_fraction : float
        Probability that an object is placed against an existing nucleus.
    brightness : tuple of float
        Median nucleus intensity above background in photons per pixel (log-uniform per image).
    brightness_spread : float
        Standard deviation of the per-nucleus log-brightness.
    dim_fraction : float
        Fraction of nuclei at 5–30 % of the brightness.
    texture : tuple of float
        Relative contrast of the chromatin texture.
    nucleoli : tuple of int
        Number of dark nucleoli per nucleus, drawn per nucleus.
    dividing_fraction, apoptotic_fraction, defocus_fraction : float
        Fractions of objects that are mitoses, apoptotic, or blurred further (1.5–3 px).
    background : tuple of float
        Background level in photons per pixel.
    blur_px : tuple of float
        Standard deviation of the Gaussian PSF in pixels.
    gain, offset, read_noise : tuple of float
        Camera counts per photon, baseline, and read-noise standard deviation (counts).
    min_area_px : int
        Objects with fewer visible pixels are dropped from the labels.
    pixel_size_nm : float
        Nominal pixel size recorded with the samples (Fluo-N2DL-HeLa: 645 nm).
    """

    density: tuple[float, float] = (1.2, 3.2)
    diameter_px: tuple[float, float] = (22.0, 33.0)
    size_scale: tuple[float, float] = (0.9, 1.15)
    aspect: tuple[float, float] = (0.55, 0.95)
    irregularity: float = 0.08
    bend: float = 0.3
    cluster_fraction: float = 0.06
    brightness: tuple[float, float] = (300.0, 1200.0)
    brightness_spread: float = 0.3
    dim_fraction: float = 0.08
    texture: tuple[float, float] = (0.07, 0.17)
    nucleoli: tuple[int, int] = (0, 3)
    dividing_fraction: float = 0.03
    apoptotic_fraction: float = 0.01
    defocus_fraction: float = 0.05
    background: tuple[float, float] = (20.0, 80.0)
    blur_px: tuple[float, float] = (0.6, 1.2)
    gain: tuple[float, float] = (0.8, 1.3)
    offset: tuple[float, float] = (32950.0, 33050.0)
    read_noise: tuple[float, float] = (3.0, 7.0)
    min_area_px: int = 8
    pixel_size_nm: float = 645.0

    def __post_init__(self) -> None:
        s = object.__setattr__
        pos = {"minimum": 0, "exclusive": True}
        s(self, "density", check_range("density", self.density, **pos))
        s(self, "diameter_px", check_range("diameter_px", self.diameter_px, minimum=4, maximum=400))
        s(self, "size_scale", check_range("size_scale", self.size_scale, **pos))
        s(self, "aspect", check_range("aspect", self.aspect, minimum=0, exclusive=True, maximum=1))
        s(self, "brightness", check_range("brightness", self.brightness, **pos))
        s(self, "texture", check_range("texture", self.texture, minimum=0, maximum=0.9))
        s(self, "nucleoli", check_range("nucleoli", self.nucleoli, minimum=0, maximum=20, integer=True))
        s(self, "background", check_range("background", self.background, **pos))
        check_camera(self)
        check_fraction("irregularity", self.irregularity, high=0.3)
        check_fraction("bend", self.bend, high=1.0)
        for name in (
            "cluster_fraction", "dim_fraction", "dividing_fraction", "apoptotic_fraction",
            "defocus_fraction",
        ):
            check_fraction(name, getattr(self, name))
        if self.dividing_fraction + self.apoptotic_fraction > 1:
            raise InputError("dividing_fraction + apoptotic_fraction must be <= 1")
        if not 0 <= float(self.brightness_spread) <= 2:
            raise InputError(f"brightness_spread must be in [0, 2], got {self.brightness_spread!r}")
        s(self, "min_area_px", check_count("min_area_px", self.min_area_px))
        check_positive("pixel_size_nm", self.pixel_size_nm)


def nuclei(
    n: int = 1,
    shape: tuple[int, int] = (512, 512),
    *,
    rng: int | np.random.Generator | None = None,
    config: NucleiConfig | None = None,
    **overrides,
) -> list[SimulatedSample]:
    """Simulate ``n`` widefield images of fluorescent nuclei with instance labels.

    Parameters
    ----------
    n : int
        Number of images (>= 1).
    shape : tuple of int
        Image shape ``(y, x)`` in pixels.
    rng : int or numpy.random.Generator, optional
        Root seed (sample ``i`` depends only on ``(seed, i)``) or a generator that draws one.
    config : NucleiConfig, optional
        Parameters; defaults match Fluo-N2DL-HeLa.
    **overrides
        Fields of :class:`NucleiConfig` to replace, e.g. ``dividing_fraction=0.2``.

    Returns
    -------
    list of SimulatedSample
        ``image`` in camera counts (offset included), ``labels`` uint16, ``masks`` None.

    Examples
    --------
    >>> from samscope.simulate import nuclei
    >>> [s] = nuclei(1, (128, 128), rng=0)
    >>> s.image.shape, s.labels.dtype.name, s.masks is None
    ((128, 128), 'uint16', True)
    """
    return simulate_samples(simulate_one, NucleiConfig, n, shape, rng, config, overrides)


# --------------------------------------------------------------------------------------------
# the nuclei simulator


def _make_blobs(rng: np.random.Generator, cfg: NucleiConfig, canvas: tuple[int, int], pad: int, scale: float) -> list[Blob]:
    """Draw and place every object of one image (canvas coordinates)."""
    h, w = canvas
    area = (h - 2 * pad + scale * 20) * (w - 2 * pad + scale * 20)
    density = rng.uniform(*cfg.density)
    n_units = int(rng.poisson(density * area / 1e4))
    kinds = rng.choice(
        3, size=n_units,
        p=[1 - cfg.dividing_fraction - cfg.apoptotic_fraction, cfg.dividing_fraction, cfg.apoptotic_fraction],
    )
    margin = 0.5 * scale * cfg.diameter_px[1]
    placer = Placer(rng, (pad - margin, pad - margin, h - pad + margin, w - pad + margin))
    blobs: list[Blob] = []
    for kind in kinds:
        if kind == 0:
            d = scale * rng.uniform(*cfg.diameter_px)
            asp = rng.uniform(*cfg.aspect)
            a, b = d / 2 / np.sqrt(asp), d / 2 * np.sqrt(asp)
            c = placer.place(d / 2, cluster=rng.random() < cfg.cluster_fraction)
            if c is None:
                continue
            dim = rng.random() < cfg.dim_fraction
            bright = rng.lognormal(0.0, cfg.brightness_spread) * (rng.uniform(0.05, 0.3) if dim else 1.0)
            # dim nuclei are often out of focus too
            defocus = rng.random() < (0.6 if dim else cfg.defocus_fraction)
            extra = {
                "defocus": float(rng.uniform(1.5, 3.0)) if defocus else 0.0,
                "dome": float(rng.uniform(0.0, 0.25)),
                "rim": float(rng.uniform(0.0, 0.25)),
                "edge": float(rng.uniform(0.6, 1.8)),
                # fewer nucleoli more often: visible in some nuclei, not in every one
                "nucleoli": int(min(rng.integers(cfg.nucleoli[0], cfg.nucleoli[1] + 1),
                                    rng.integers(cfg.nucleoli[0], cfg.nucleoli[1] + 1))),
            }
            blobs.append(Blob(c[0], c[1], a, b, rng.uniform(0, 2 * np.pi), random_harmonics(rng, cfg.irregularity),
                              "dim" if dim else "interphase", float(bright), extra,
                              bend=float(rng.uniform(-cfg.bend, cfg.bend))))
        elif kind == 1:
            blobs.extend(_mitosis(rng, placer, scale))
        else:
            blobs.extend(_apoptosis(rng, placer, scale))
    return blobs


def _mitosis(rng: np.random.Generator, placer: Placer, scale: float) -> list[Blob]:
    stage = int(rng.integers(3))  # metaphase, anaphase, telophase
    bright = float(rng.uniform(2.0, 4.0))
    axis = rng.uniform(0, np.pi)  # direction of separation
    u = np.array([np.sin(axis), np.cos(axis)])
    if stage == 0:
        a, b, sep = scale * rng.uniform(7, 11), scale * rng.uniform(2.5, 4.0), 0.0
    elif stage == 1:
        a, b, sep = scale * rng.uniform(6, 10), scale * rng.uniform(2.5, 4.0), scale * rng.uniform(5, 9)
    else:
        a, b, sep = scale * rng.uniform(5, 7.5), scale * rng.uniform(3.5, 5.5), scale * rng.uniform(8, 14)
    c = placer.place(a + sep, cluster=False, anchor=False)
    if c is None:
        return []
    centres = [np.array(c)] if stage == 0 else [np.array(c) + sep * u, np.array(c) - sep * u]
    # bars lie across the separation axis; telophase blobs are elongated across it too
    out = []
    for p in centres:
        extra = {"defocus": 0.0, "dome": 0.1, "edge": 0.8, "nucleoli": 0}
        out.append(Blob(float(p[0]), float(p[1]), a, b, axis + np.pi / 2 + rng.normal(0, 0.15),
                        random_harmonics(rng, 0.08), "mitosis", bright * rng.uniform(0.9, 1.1), extra))
    return out


def _apoptosis(rng: np.random.Generator, placer: Placer, scale: float) -> list[Blob]:
    bright = float(rng.uniform(1.8, 3.5))
    if rng.random() < 0.5:  # one condensed (pyknotic) body
        r = scale * rng.uniform(4, 7)
        c = placer.place(r, cluster=False, anchor=False)
        parts = [] if c is None else [(np.array(c), r)]
    else:  # fragments
        spread = scale * rng.uniform(6, 11)
        c = placer.place(spread + 3 * scale, cluster=False, anchor=False)
        parts = []
        if c is not None:
            for _ in range(int(rng.integers(2, 6))):
                r = scale * rng.uniform(2.0, 4.0)
                off = rng.normal(0, spread / 2, 2)
                p = np.array(c) + off
                if all(np.hypot(*(p - q)) > 1.1 * (r + s) for q, s in parts):
                    parts.append((p, r))
    return [
        Blob(float(p[0]), float(p[1]), r * rng.uniform(1.0, 1.2), r, rng.uniform(0, np.pi),
             random_harmonics(rng, 0.05), "apoptotic", bright * rng.uniform(0.8, 1.2),
             {"defocus": 0.0, "dome": 0.2, "edge": 0.7, "nucleoli": 0})
        for p, r in parts
    ]


def paint(
    rng: np.random.Generator, blobs: list[Blob], owner: np.ndarray, windows: list, texture: np.ndarray,
    contrast: float,
) -> np.ndarray:
    """Relative photon density (nucleus brightness × look) on the canvas, before the PSF."""
    from scipy import ndimage as ndi

    signal = np.zeros(owner.shape, dtype=np.float32)
    for i, (b, (win, hgt)) in enumerate(zip(blobs, windows, strict=True)):
        own = owner[win] == i + 1
        if not own.any():
            continue
        ex = b.extra or {}
        dist = inner_distance(own)
        val = (1.0 - np.exp(-dist / ex.get("edge", 1.5))) * (1.0 + ex.get("dome", 0.0) * np.clip(hgt, 0, 1))
        val *= 1.0 + ex.get("rim", 0.0) * np.exp(-dist / 2.0)  # peripheral heterochromatin
        c = contrast if b.kind in ("interphase", "dim") else 0.3 * contrast
        val *= np.clip(1.0 + c * texture[win], 0.2, None)
        yy = np.arange(win[0].start, win[0].stop, dtype=np.float32)[:, None]
        xx = np.arange(win[1].start, win[1].stop, dtype=np.float32)[None, :]
        for _ in range(ex.get("nucleoli", 0)):
            # a dark nucleolus well inside the nucleus
            rr = rng.uniform(0.0, 0.55) * b.radius
            ph = rng.uniform(0, 2 * np.pi)
            ny, nx = b.cy + rr * np.sin(ph), b.cx + rr * np.cos(ph)
            s = rng.uniform(1.5, 3.2) * max(b.radius / 13.0, 0.5)
            d2 = ((yy - ny) ** 2 + (xx - nx) ** 2) / (s * s)
            val *= 1.0 - rng.uniform(0.15, 0.55) * np.exp(-d2 * d2)  # flat-bottomed, sharp-edged
        val = np.where(own, val * b.brightness, 0.0).astype(np.float32)
        if ex.get("defocus", 0.0) > 0:
            val = ndi.gaussian_filter(val, ex["defocus"], mode="constant")
        signal[win] += val
    return signal


def simulate_one(shape: tuple[int, int], cfg: NucleiConfig, *, seed: int, index: int) -> SimulatedSample:
    """Simulate sample ``index`` of the run with root ``seed`` (see :func:`nuclei`)."""
    from scipy import ndimage as ndi

    from samscope.simulate.optics import camera

    rng = sample_rng(seed, index)
    h, w = shape
    scale = float(rng.uniform(*cfg.size_scale))
    pad = int(np.ceil(scale * cfg.diameter_px[1] * 1.5)) + 8
    canvas = (h + 2 * pad, w + 2 * pad)

    brightness = float(np.exp(rng.uniform(*np.log(cfg.brightness))))
    background = float(rng.uniform(*cfg.background))
    contrast = float(rng.uniform(*cfg.texture))
    blur = float(rng.uniform(*cfg.blur_px))
    gain = float(rng.uniform(*cfg.gain))
    offset = float(rng.uniform(*cfg.offset))
    read_noise = float(rng.uniform(*cfg.read_noise))

    blobs = _make_blobs(rng, cfg, canvas, pad, scale)
    owner, windows = assign_owners(blobs, canvas, margin=8.0)
    # chromatin texture: fine granules and coarser domains, each of unit variance
    texture = 0.6 * smooth_field(rng, canvas, 1.0) + 0.8 * smooth_field(rng, canvas, 2.5)
    rel = paint(rng, blobs, owner, windows, texture, contrast)

    photons = ndi.gaussian_filter(rel, blur) if blur > 0 else rel
    photons += ndi.gaussian_filter(rel, 12.0) * np.float32(rng.uniform(0.0, 0.06))  # out-of-focus haze
    photons *= np.float32(brightness)
    bg = background * (1.0 + 0.1 * smooth_field(rng, canvas, max(canvas) / 4))
    photons += bg.astype(np.float32)
    crop = (slice(pad, pad + h), slice(pad, pad + w))
    image = camera(photons[crop], rng, gain=gain, offset=offset, read_noise=read_noise)

    labels, kept = finish_labels(owner[crop], cfg.min_area_px)
    objs = [blobs[k - 1] for k in kept]
    params = {
        "kind": "nuclei",
        "seed": int(seed),
        "index": int(index),
        "shape": [int(h), int(w)],
        "config": config_to_dict(cfg),
        "size_scale": scale,
        "brightness": brightness,
        "background": background,
        "texture": contrast,
        "blur_px": blur,
        "gain": gain,
        "offset": offset,
        "read_noise": read_noise,
        "n_objects": len(objs),
        "objects": {
            "kind": [b.kind for b in objs],
            "centre_px": [[round(b.cy - pad, 1), round(b.cx - pad, 1)] for b in objs],
            "diameter_px": [round(2 * b.radius, 2) for b in objs],
            "brightness": [round(b.brightness * brightness, 1) for b in objs],
        },
    }
    return SimulatedSample(image, labels, None, labels > 0, params, float(cfg.pixel_size_nm))
