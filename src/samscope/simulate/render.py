"""Render any instance layout as a microscope image of a randomly chosen modality.

Following SynthSeg (Billot et al., *Medical Image Analysis* 2023) — a network trained on images
whose contrast is drawn at random for every sample learns shapes rather than one look — the
generalist corpus renders the same label layouts in many ways. Each modality imitates a real look
in outline; the strength of every effect is drawn from a wide range:

``fluorescent``
    Filled objects on a dark background (nuclear stains, cytoplasmic GFP, fluorescent bacteria):
    per-object brightness (log-normal spread, a few dim objects), a soft rim so touching objects
    keep a dim seam, an optional dome, and band-pass texture of random grain and contrast
    (smooth to the coarse granular chromatin of confocal CHO nuclei).
``cytoplasm``
    Cells stained in the cytoplasm (CellMask, phalloidin-like diffuse stains): filled and
    textured, darker at a central "nucleus" region, and darker lines where neighbours meet.
``membrane``
    Membrane stains (WGA, CellMask plasma membrane, E-cadherin): a bright band along every
    object's border, shared by touching neighbours, over a dim interior.
``phase``
    Phase contrast: an optical-thickness map (a rim rising to a plateau per object) through a
    halo model ``1 − c·(φ − s·G_σ∗φ)``: dark objects with bright halos, or the reverse for
    negative phase contrast.
``brightfield``
    Bright-field: faint absorption with a dark or bright ring at the border (slight defocus).
``dic``
    Differential interference contrast: the directional derivative of the thickness along a
    random shear axis, a relief lit from one side.

:func:`render` returns a float32 image of relative intensities (background near 1 for the
transmitted-light looks, near 0 for the fluorescent ones) with smooth illumination variation; the
camera, bit depth and other acquisition effects come after, from
:mod:`samscope.simulate.appearance`.
"""

from __future__ import annotations

import numpy as np

from samscope.errors import InputError
from samscope.simulate.shapes import smooth_field

__all__ = ["MODALITIES", "inner_border_distance", "render"]

MODALITIES = ("fluorescent", "cytoplasm", "membrane", "phase", "brightfield", "dic")


def inner_border_distance(labels: np.ndarray) -> np.ndarray:
    """Distance (px) of every object pixel to its own object's border; 0 on background.

    Touching objects each have their own border, so the distance drops to 1 on both sides of a
    shared contact.
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    inner = (labels > 0) & ~find_boundaries(labels, mode="inner")
    return ndi.distance_transform_edt(np.pad(inner, 1))[1:-1, 1:-1].astype(np.float32) + (
        labels > 0
    )


def _per_object(rng: np.random.Generator, labels: np.ndarray, spread: float, dim: float) -> np.ndarray:
    n = int(labels.max())
    vals = np.exp(rng.normal(0.0, spread, n + 1)).astype(np.float32)
    dimmed = rng.random(n + 1) < dim
    vals[dimmed] *= rng.uniform(0.15, 0.5, int(dimmed.sum())).astype(np.float32)
    vals[0] = 0.0
    return vals[labels]


def _texture(rng: np.random.Generator, shape: tuple[int, int], diameter: float) -> np.ndarray:
    """Band-pass texture of unit spread whose grain is a random fraction of the object size."""
    grain = float(rng.uniform(0.03, 0.15)) * diameter
    t = smooth_field(rng, shape, max(grain, 0.7))
    if rng.random() < 0.5:
        t = 0.6 * t + 0.8 * smooth_field(rng, shape, max(2.5 * grain, 1.0))
    return t


def _illumination(rng: np.random.Generator, shape: tuple[int, int], strength: float) -> np.ndarray:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(ang) * xx / max(w, 1) + np.sin(ang) * yy / max(h, 1)).astype(np.float32)
    field = 1.0 + strength * (ramp - ramp.mean()) + 0.5 * strength * smooth_field(
        rng, shape, max(shape) / 3
    )
    return np.clip(field, 0.2, None).astype(np.float32)


def _thickness(rng: np.random.Generator, labels: np.ndarray, dist: np.ndarray, diameter: float) -> np.ndarray:
    """Optical thickness: a rim rising over a fraction of the radius to a per-object plateau."""
    rise = float(rng.uniform(0.08, 0.5)) * diameter / 2
    height = _per_object(rng, labels, 0.25, 0.0)
    phi = height * (1.0 - np.exp(-dist / max(rise, 0.5)))
    if rng.random() < 0.5:  # a nucleus-like bulge
        phi *= 1.0 + float(rng.uniform(0.1, 0.6)) * np.clip(dist / (0.5 * diameter), 0, 1)
    return phi.astype(np.float32)


def render(
    labels: np.ndarray,
    rng: np.random.Generator,
    *,
    modality: str,
    diameter: float,
    debris: float = 0.0,
) -> np.ndarray:
    """Render ``labels`` as a float32 image of the given modality (see the module docstring).

    Parameters
    ----------
    labels : numpy.ndarray
        Integer ``(y, x)`` instance labels (0 = background).
    rng : numpy.random.Generator
    modality : str
        One of :data:`MODALITIES`.
    diameter : float
        Typical object diameter in pixels (sets texture grain and rim widths).
    debris : float
        Expected number of unlabelled specks per 10,000 px² (dust, dead cells, vesicles).

    Returns
    -------
    numpy.ndarray
        float32 ``(y, x)`` relative intensities, >= 0.
    """
    from scipy import ndimage as ndi

    if modality not in MODALITIES:
        raise InputError(f"unknown modality {modality!r}; choose one of {', '.join(MODALITIES)}")
    labels = np.asarray(labels)
    shape = labels.shape
    fg = labels > 0
    dist = inner_border_distance(labels)
    d = float(diameter)
    light = _illumination(rng, shape, float(rng.uniform(0.0, 0.6)))

    if modality in ("fluorescent", "cytoplasm", "membrane"):
        obj = _per_object(rng, labels, float(rng.uniform(0.1, 0.6)), float(rng.uniform(0, 0.15)))
        tex = 1.0 + float(rng.uniform(0.0, 0.5)) * _texture(rng, shape, d)
        rim = 1.0 - np.exp(-dist / float(rng.uniform(0.7, 0.12 * d + 1.0)))
        if modality == "fluorescent":
            body = obj * rim * np.clip(tex, 0.05, None)
            if rng.random() < 0.5:
                body *= 1.0 + float(rng.uniform(0.1, 0.5)) * np.clip(dist / (0.5 * d), 0, 1)
        elif modality == "cytoplasm":
            centre = np.clip(dist / (0.5 * d), 0, 1)
            hole = 1.0 - float(rng.uniform(0.3, 0.85)) * (centre > float(rng.uniform(0.5, 0.8)))
            hole = ndi.gaussian_filter(hole.astype(np.float32), 1.0)
            body = obj * rim * np.clip(tex, 0.05, None) * hole
        else:
            width = float(rng.uniform(1.0, max(1.2, 0.08 * d)))
            band = np.exp(-(dist - 1.0) / width) * fg
            interior = float(rng.uniform(0.0, 0.35))
            body = obj * (band + interior * fg) * np.clip(tex, 0.05, None)
        background = float(rng.uniform(0.0, 0.15)) * (1.0 + 0.3 * smooth_field(rng, shape, d))
        image = body + np.clip(background, 0, None)
        if rng.random() < 0.5:  # out-of-focus haze
            image = image + float(rng.uniform(0, 0.15)) * ndi.gaussian_filter(body, 2.0 + d / 3)
        image = image * light
    else:
        phi = _thickness(rng, labels, dist, d)
        if modality == "phase":
            sigma = float(rng.uniform(0.08, 0.35)) * d + 1.0
            s = float(rng.uniform(0.6, 1.1))
            c = float(rng.uniform(0.25, 0.8)) * (1.0 if rng.random() < 0.85 else -1.0)
            image = 1.0 - c * (phi - s * ndi.gaussian_filter(phi, sigma))
        elif modality == "brightfield":
            c = float(rng.uniform(0.05, 0.35))
            ring = ndi.gaussian_laplace(phi, float(rng.uniform(1.0, 3.0)))
            image = 1.0 - c * phi + float(rng.uniform(-2.0, 2.0)) * ring
        else:  # dic
            sm = ndi.gaussian_filter(phi, float(rng.uniform(0.7, 2.0)))
            ang = rng.uniform(0, 2 * np.pi)
            gy, gx = np.gradient(sm)
            shear = np.cos(ang) * gx + np.sin(ang) * gy
            image = 1.0 + float(rng.uniform(2.0, 8.0)) * shear + float(rng.uniform(-0.2, 0.2)) * phi
        grain = 1.0 + float(rng.uniform(0.0, 0.08)) * _texture(rng, shape, d) * fg
        image = np.clip(image * grain, 0.02, None) * light
    if debris > 0:
        image = _add_debris(rng, image, debris, d)
    return np.clip(image, 0.0, None).astype(np.float32)


def _add_debris(rng: np.random.Generator, image: np.ndarray, per_1e4: float, d: float) -> np.ndarray:
    from scipy import ndimage as ndi

    h, w = image.shape
    n = rng.poisson(per_1e4 * h * w / 1e4)
    if n == 0:
        return image
    spots = np.zeros_like(image)
    ys = rng.integers(0, h, n)
    xs = rng.integers(0, w, n)
    spots[ys, xs] = rng.normal(0.0, 1.0, n).astype(np.float32)
    spots = ndi.gaussian_filter(spots, float(rng.uniform(0.8, max(1.0, 0.12 * d)))) * 8.0
    scale = float(np.percentile(image, 99) - np.percentile(image, 1)) or 1.0
    return image + spots * scale * float(rng.uniform(0.2, 1.0))
