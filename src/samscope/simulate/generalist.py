"""The generalist corpus: every kind of cell, nucleus and bacterium, in every look, at one scale.

One simulator that draws, per image, a *domain* (what the objects are and how they are laid out)
and a *look* (how the microscope shows them), then an acquisition (blur, contrast curve, noise,
resolution loss, bit depth, JPEG; :mod:`samscope.simulate.appearance`). Appearance is randomised
far beyond realism, as in SynthSeg (Billot et al., *Medical Image Analysis* 2023), while the
shapes stay realistic: what a model can learn from it is shapes and borders, not one dataset.

Domains (``domains``; what real images each imitates)
    ``nuclei``
        Fluorescent nuclei (Hoechst/DAPI/H2B widefield and confocal: HeLa, CHO, U2OS…) from the
        nuclei simulator with every range opened up: sparse to clumped, smooth to coarse
        granular chromatin, round to elongated, with mitoses and apoptotic bodies.
    ``cocci``
        Round bacteria and yeast: small near-circular, smooth objects in dense clusters.
    ``phase_cells``
        Adherent mammalian cells in phase contrast (SAMCell's use case) from the label-free
        simulator: lobed and spread outlines, halos, shade-off.
    ``bacteria``
        Rod bacteria (*E. coli*, *B. subtilis*) in aligned colonies of touching rods.
    ``monolayer``
        Confluent and sub-confluent cultures and epithelial sheets (:mod:`samscope.simulate.layouts`):
        cells that fill space and share borders, irregular or elongated.
Looks
    ``native`` (the domain simulator's own image formation, for the first four domains) or a
    re-rendering of the labels (:mod:`samscope.simulate.render`): fluorescent, cytoplasm
    stain, membrane stain, phase contrast, bright-field, DIC.

Scale
    The generalist model works at one scale: samscope estimates each image's object size and
    rescales it so that objects have the model's working diameter (28 px for samscope's own
    models) before segmenting. Training images therefore draw the median equivalent object
    diameter from ``diameter_px`` (log-uniform, default 14–56 px: half to twice the working
    size, room for estimation errors), not from the 8–150 px of real images. The resolution-loss
    step of the acquisition imitates small-object images enlarged to that scale.

Every sample records its domain, look, target diameter and acquisition in ``params``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samscope.errors import InputError
from samscope.simulate.sample import (
    SimulatedSample,
    check_range,
    config_to_dict,
    labels_dtype,
    resolve_config,
    sample_rng,
)

__all__ = ["DOMAINS", "GeneralistConfig", "simulate_one"]

DOMAINS = ("nuclei", "cocci", "phase_cells", "bacteria", "monolayer")
LOOKS = ("native", "fluorescent", "cytoplasm", "membrane", "phase", "brightfield", "dic")
#: Looks that the domain simulators produce themselves.
_NATIVE = {"nuclei", "cocci", "phase_cells", "bacteria"}


@dataclass(frozen=True)
class GeneralistConfig:
    """Parameters of the generalist corpus (field names are the CLI flags).

    Attributes
    ----------
    domains : tuple of str
        Domains drawn from (see the module docstring), with ``domain_weights``.
    domain_weights : tuple of float
        Relative frequency of each domain (same length as ``domains``).
    looks : tuple of str
        Looks drawn from. ``native`` (the domain simulator's own image formation) is used with
        probability ``native_prob`` for domains that have one; the others re-render the labels.
    native_prob : float
        Probability of the native look for domains that have one (when ``native`` is in
        ``looks``).
    diameter_px : (float, float)
        Median equivalent object diameter per image, drawn log-uniformly.
    coverage : (float, float)
        Fraction of the image covered by objects (drawn per image).
    debris : (float, float)
        Unlabelled specks per 10,000 px² in re-rendered images.
    min_area_px : int
        Objects with fewer visible pixels are dropped.
    pixel_size_nm : float
        Nominal pixel size recorded with the samples.
    """

    domains: tuple[str, ...] = DOMAINS
    domain_weights: tuple[float, ...] = (0.34, 0.08, 0.2, 0.16, 0.22)
    looks: tuple[str, ...] = LOOKS
    native_prob: float = 0.5
    diameter_px: tuple[float, float] = (14.0, 56.0)
    coverage: tuple[float, float] = (0.05, 0.6)
    debris: tuple[float, float] = (0.0, 3.0)
    min_area_px: int = 12
    pixel_size_nm: float = 500.0

    def __post_init__(self) -> None:
        s = object.__setattr__
        doms = tuple(self.domains)
        if not doms or any(d not in DOMAINS for d in doms):
            raise InputError(f"domains must be a non-empty subset of {DOMAINS}, got {doms!r}")
        s(self, "domains", doms)
        weights = tuple(float(x) for x in self.domain_weights)
        if len(weights) != len(doms):
            if tuple(self.domain_weights) == GeneralistConfig.domain_weights and doms != DOMAINS:
                weights = (1.0,) * len(doms)  # a subset of domains: equal weights by default
            else:
                raise InputError(
                    f"domain_weights needs one weight per domain ({len(doms)}), got {len(weights)}"
                )
        if any(not w >= 0 for w in weights) or sum(weights) <= 0:
            raise InputError(f"domain_weights must be >= 0 and not all 0, got {weights!r}")
        s(self, "domain_weights", weights)
        looks = tuple(self.looks)
        if not looks or any(x not in LOOKS for x in looks):
            raise InputError(f"looks must be a non-empty subset of {LOOKS}, got {looks!r}")
        s(self, "looks", looks)
        if not 0 <= float(self.native_prob) <= 1:
            raise InputError(f"native_prob must be in [0, 1], got {self.native_prob!r}")
        s(self, "diameter_px", check_range("diameter_px", self.diameter_px, minimum=4, maximum=400))
        s(self, "coverage", check_range("coverage", self.coverage, minimum=0, exclusive=True, maximum=1))
        s(self, "debris", check_range("debris", self.debris, minimum=0))
        if int(self.min_area_px) < 1:
            raise InputError(f"min_area_px must be >= 1, got {self.min_area_px!r}")


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _nuclei_layout(shape, rng, d: float, coverage: float, *, cocci: bool, seed: int, index: int):
    import importlib

    nuc = importlib.import_module("samscope.simulate.nuclei")  # the package binds the function

    density = coverage * 1e4 * 4 / (np.pi * d * d)
    if cocci:
        cfg = nuc.NucleiConfig(
            density=(density, density), diameter_px=(0.85 * d, 1.15 * d), size_scale=(1, 1),
            aspect=(0.8, 1.0), irregularity=0.02, bend=0.0, cluster_fraction=float(rng.uniform(0.3, 0.8)),
            texture=(0.0, 0.05), nucleoli=(0, 0), dividing_fraction=0.0, apoptotic_fraction=0.0,
            dim_fraction=0.05, min_area_px=8,
        )
    else:
        cfg = nuc.NucleiConfig(
            density=(density, density), diameter_px=(0.75 * d, 1.3 * d), size_scale=(1, 1),
            aspect=(float(rng.uniform(0.35, 0.8)), 0.98), irregularity=float(rng.uniform(0.0, 0.2)),
            bend=float(rng.uniform(0.0, 0.5)), cluster_fraction=float(rng.uniform(0.0, 0.5)),
            texture=tuple(sorted((float(rng.uniform(0.0, 0.45)), float(rng.uniform(0.0, 0.45))))),
            dividing_fraction=float(rng.uniform(0.0, 0.06)), apoptotic_fraction=0.01,
            dim_fraction=float(rng.uniform(0.0, 0.15)), blur_px=(0.4, 0.3 + 0.04 * d), min_area_px=8,
        )
    return nuc.simulate_one(shape, cfg, seed=seed, index=index)


def _cells_layout(shape, rng, d: float, coverage: float, *, rods: bool, seed: int, index: int):
    import importlib

    cl = importlib.import_module("samscope.simulate.cells")  # the package binds the function

    if rods:
        aspect = float(rng.uniform(2.0, 6.0))
        width = d * np.sqrt(np.pi / (4 * aspect))
        length = aspect * width
        density = coverage * 1e4 / (width * length)
        cfg = cl.CellsConfig(
            look="bacteria", rod_density=(density, density),
            rod_length_px=(0.75 * length, 1.25 * length), rod_width_px=(0.85 * width, 1.15 * width),
            cluster_fraction=float(rng.uniform(0.3, 0.9)), halo_px=(0.1 * d + 1, 0.25 * d + 1),
            min_area_px=8,
        )
    else:
        density = coverage * 1e4 * 4 / (np.pi * d * d)
        cfg = cl.CellsConfig(
            look="phase", cell_density=(density, density), cell_diameter_px=(0.7 * d, 1.3 * d),
            irregularity=float(rng.uniform(0.05, 0.28)), edge_px=(0.04 * d, 0.12 * d + 0.5),
            halo_px=(0.08 * d + 1, 0.2 * d + 1), min_area_px=8,
        )
    return cl.simulate_one(shape, cfg, seed=seed, index=index)


def simulate_one(shape: tuple[int, int], cfg: GeneralistConfig, *, seed: int, index: int) -> SimulatedSample:
    """Simulate sample ``index`` of the run with root ``seed`` (see the module docstring)."""
    from samscope.simulate.appearance import randomise_appearance
    from samscope.simulate.layouts import tessellation
    from samscope.simulate.render import render

    rng = sample_rng(seed, index)
    weights = np.asarray(cfg.domain_weights, dtype=float)
    domain = str(rng.choice(cfg.domains, p=weights / weights.sum()))
    d = _loguniform(rng, *cfg.diameter_px)
    coverage = float(rng.uniform(*cfg.coverage))
    sub_seed = int(rng.integers(0, 2**31 - 1))
    native = None
    if domain in ("nuclei", "cocci"):
        native = _nuclei_layout(shape, rng, d, coverage, cocci=domain == "cocci", seed=sub_seed, index=0)
    elif domain in ("phase_cells", "bacteria"):
        native = _cells_layout(shape, rng, d, min(1.0, 1.4 * coverage), rods=domain == "bacteria",
                               seed=sub_seed, index=0)
    if native is not None:
        labels = np.asarray(native.labels)
    else:
        labels = tessellation(
            shape, rng, diameter=d, coverage=float(rng.uniform(0.4, 1.0)),
            irregularity=float(rng.uniform(0.0, 0.35)),
            elongation=float(rng.uniform(1.0, 2.5)) if rng.random() < 0.4 else 1.0,
            gap_px=float(rng.choice([0.0, 0.0, 1.0, 2.0])), min_area=cfg.min_area_px,
        )
    if native is not None and "native" in cfg.looks and rng.random() < cfg.native_prob:
        look = "native"
        relative = np.asarray(native.image, dtype=np.float32)
    else:
        choices = [x for x in cfg.looks if x != "native"] or ["fluorescent"]  # native only: no
        # native image for this domain (monolayers), render it as fluorescence
        look = str(rng.choice(choices))
        relative = render(labels, rng, modality=look, diameter=d, debris=float(rng.uniform(*cfg.debris)))
    image, drawn = randomise_appearance(relative, rng)

    from skimage.segmentation import relabel_sequential

    counts = np.bincount(labels.ravel())
    small = counts < cfg.min_area_px
    small[0] = False
    labels = relabel_sequential(np.where(small[labels], 0, labels))[0]
    n = int(labels.max())
    labels = labels.astype(labels_dtype(n))
    params = {
        "kind": "generalist",
        "seed": int(seed),
        "index": int(index),
        "shape": [int(shape[0]), int(shape[1])],
        "config": config_to_dict(cfg),
        "domain": domain,
        "look": look,
        "diameter_px": round(d, 2),
        "coverage": round(coverage, 3),
        "acquisition": drawn,
        "n_objects": n,
    }
    return SimulatedSample(image, labels, None, labels > 0, params, float(cfg.pixel_size_nm))


def generalist_config(**overrides) -> GeneralistConfig:
    """A validated :class:`GeneralistConfig` (defaults plus ``overrides``)."""
    return resolve_config(GeneralistConfig, None, overrides)


#: Evaluation suites at the images' own scale (objects from 8 to 150 px), for the multi-domain
#: benchmark (``benchmarks/eval_generalist.py``): name → (GeneralistConfig overrides, image shape).
SUITES: dict[str, tuple[dict, tuple[int, int]]] = {
    "nuclei_8_16": ({"domains": ("nuclei",), "looks": ("native", "fluorescent"), "diameter_px": (8.0, 16.0),
                     "coverage": (0.1, 0.5)}, (384, 384)),
    "nuclei_16_40": ({"domains": ("nuclei",), "looks": ("native", "fluorescent"), "diameter_px": (16.0, 40.0),
                      "coverage": (0.1, 0.5)}, (512, 512)),
    "nuclei_40_150": ({"domains": ("nuclei",), "looks": ("native", "fluorescent"),
                       "diameter_px": (40.0, 150.0), "coverage": (0.15, 0.5)}, (1024, 1024)),
    "phase_cells": ({"domains": ("phase_cells",), "looks": ("native", "phase"), "native_prob": 0.7,
                     "diameter_px": (20.0, 80.0), "coverage": (0.15, 0.6)}, (512, 512)),
    "bacteria": ({"domains": ("bacteria",), "looks": ("native", "phase", "fluorescent"),
                  "diameter_px": (10.0, 35.0), "coverage": (0.2, 0.6)}, (512, 512)),
    "cytoplasm": ({"domains": ("monolayer",), "looks": ("cytoplasm", "membrane"),
                   "diameter_px": (20.0, 80.0)}, (512, 512)),
}  # fmt: skip


def suite(name: str, n: int, *, seed: int) -> list[SimulatedSample]:
    """``n`` samples of the evaluation suite ``name`` (see :data:`SUITES`) with root ``seed``.

    Use seeds that no training run used (samscope's recipes train on seed 201 and validate on
    202; the benchmark tunes on 301 and reports on 401).
    """
    if name not in SUITES:
        raise InputError(f"unknown suite {name!r}; suites: {', '.join(SUITES)}")
    overrides, shape = SUITES[name]
    cfg = generalist_config(**overrides)
    return [simulate_one(shape, cfg, seed=int(seed), index=i) for i in range(int(n))]
