"""Acquisition randomisation: what a microscope, a camera and a file format do to an image.

Applied to every image of the generalist corpus (:mod:`samscope.simulate.generalist`) so that a
model never learns one look (the SynthSeg idea: appearance breadth instead of realism). In
order, each with a probability and a range drawn per image (:class:`AppearanceConfig`):

1. optical blur (Gaussian PSF);
2. contrast curve: percentile stretch, gamma;
3. polarity inversion (bright objects become dark and the reverse);
4. photon shot noise at a random photon budget and Gaussian read noise;
5. resolution loss: down- and up-sampling by a random factor, as when a small-object image is
   enlarged to the model's working scale (noise grain and edges spread over several pixels);
6. the file: 8-bit, 12-bit in 16, 16-bit with a camera offset or float32 with an arbitrary scale
   and offset; 8-bit images may go through JPEG compression.

The result is what a user's file would hold; models see it through samscope's usual percentile
normalisation.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from samscope.simulate.sample import check_range

__all__ = ["AppearanceConfig", "randomise_appearance"]

DTYPES = ("uint8", "uint12", "uint16", "float32")


@dataclass(frozen=True)
class AppearanceConfig:
    """Ranges of the acquisition randomisation (probabilities in [0, 1], ranges ``(lo, hi)``).

    Attributes
    ----------
    blur_px : (float, float)
        Gaussian PSF standard deviation in px.
    gamma : (float, float)
        Gamma of the contrast curve (log-uniform), applied with probability ``gamma_prob``.
    invert_prob : float
        Probability of inverting the polarity.
    photons : (float, float)
        Peak photon count (log-uniform): low values are noisy.
    read_noise : (float, float)
        Read-noise standard deviation relative to the peak signal.
    resample_prob : float
        Probability of a resolution loss.
    resample_factor : (float, float)
        Down-sampling factor of the resolution loss.
    jpeg_prob : float
        Probability that an 8-bit image is JPEG compressed (quality 35–90).
    dtypes : tuple of str
        File types drawn uniformly: ``uint8``, ``uint12`` (12-bit values in uint16), ``uint16``,
        ``float32``.
    """

    blur_px: tuple[float, float] = (0.0, 2.0)
    gamma: tuple[float, float] = (0.5, 2.0)
    gamma_prob: float = 0.5
    invert_prob: float = 0.1
    photons: tuple[float, float] = (15.0, 5000.0)
    read_noise: tuple[float, float] = (0.0, 0.03)
    resample_prob: float = 0.3
    resample_factor: tuple[float, float] = (1.3, 3.5)
    jpeg_prob: float = 0.3
    dtypes: tuple[str, ...] = DTYPES

    def __post_init__(self) -> None:
        s = object.__setattr__
        s(self, "blur_px", check_range("blur_px", self.blur_px, minimum=0, maximum=20))
        s(self, "gamma", check_range("gamma", self.gamma, minimum=0.05, maximum=20))
        s(self, "photons", check_range("photons", self.photons, minimum=1))
        s(self, "read_noise", check_range("read_noise", self.read_noise, minimum=0, maximum=1))
        s(self, "resample_factor", check_range("resample_factor", self.resample_factor, minimum=1, maximum=8))
        from samscope.errors import InputError

        for name in ("gamma_prob", "invert_prob", "resample_prob", "jpeg_prob"):
            v = float(getattr(self, name))
            if not 0 <= v <= 1:
                raise InputError(f"{name} must be in [0, 1], got {v!r}")
        dts = tuple(self.dtypes)
        if not dts or any(d not in DTYPES for d in dts):
            raise InputError(f"dtypes must be a non-empty subset of {DTYPES}, got {dts!r}")
        s(self, "dtypes", dts)


def _stretch(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (0.5, 99.9))
    if not hi > lo:
        hi = lo + 1.0
    return np.clip((image - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _resample(image: np.ndarray, factor: float) -> np.ndarray:
    from skimage.transform import resize

    small = (max(2, int(round(image.shape[0] / factor))), max(2, int(round(image.shape[1] / factor))))
    low = resize(image, small, order=1, anti_aliasing=True, preserve_range=True)
    return resize(low, image.shape, order=1, preserve_range=True).astype(np.float32)


def _jpeg(image8: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image8).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("L"))


def randomise_appearance(
    image: np.ndarray, rng: np.random.Generator, config: AppearanceConfig | None = None
) -> tuple[np.ndarray, dict]:
    """Apply the acquisition randomisation to a relative-intensity image.

    Parameters
    ----------
    image : numpy.ndarray
        float ``(y, x)`` relative intensities (any scale).
    rng : numpy.random.Generator
    config : AppearanceConfig, optional

    Returns
    -------
    image : numpy.ndarray
        uint8, uint16 or float32 ``(y, x)``.
    drawn : dict
        The values drawn (JSON-serialisable), for the sample's parameters.
    """
    from scipy import ndimage as ndi

    cfg = config or AppearanceConfig()
    drawn: dict = {}
    out = np.asarray(image, dtype=np.float32)
    blur = float(rng.uniform(*cfg.blur_px))
    drawn["blur_px"] = round(blur, 3)
    if blur > 0.2:
        out = ndi.gaussian_filter(out, blur)
    out = _stretch(out)
    if rng.random() < cfg.gamma_prob:
        g = float(np.exp(rng.uniform(*np.log(cfg.gamma))))
        out = out**g
        drawn["gamma"] = round(g, 3)
    if rng.random() < cfg.invert_prob:
        out = 1.0 - out
        drawn["inverted"] = True
    photons = float(np.exp(rng.uniform(*np.log(cfg.photons))))
    base = float(rng.uniform(0.0, 0.05))
    noisy = rng.poisson((out + base) * photons).astype(np.float32) / photons
    read = float(rng.uniform(*cfg.read_noise))
    if read > 0:
        noisy += rng.standard_normal(noisy.shape, dtype=np.float32) * np.float32(read)
    out = noisy
    drawn["photons"] = round(photons, 1)
    drawn["read_noise"] = round(read, 4)
    if rng.random() < cfg.resample_prob:
        f = float(rng.uniform(*cfg.resample_factor))
        out = _resample(out, f)
        drawn["resample_factor"] = round(f, 3)
    dtype = str(rng.choice(cfg.dtypes))
    drawn["dtype"] = dtype
    lo, hi = float(out.min()), float(out.max())
    span = hi - lo if hi > lo else 1.0
    unit = (out - lo) / span
    if dtype == "uint8":
        use = float(rng.uniform(0.25, 1.0))
        q = np.clip(np.rint(unit * 255 * use + rng.uniform(0, (1 - use) * 255)), 0, 255).astype(np.uint8)
        if rng.random() < cfg.jpeg_prob:
            quality = int(rng.integers(35, 91))
            q = _jpeg(q, quality)
            drawn["jpeg_quality"] = quality
        return q, drawn
    if dtype in ("uint12", "uint16"):
        top = 4095.0 if dtype == "uint12" else 65535.0
        offset = float(rng.uniform(0, 0.5 * top))
        use = float(rng.uniform(0.05, 1.0)) * (top - offset)
        q = np.clip(np.rint(offset + unit * use), 0, top).astype(np.uint16)
        return q, drawn
    scale = float(np.exp(rng.uniform(np.log(1e-3), np.log(1e4))))
    shift = float(rng.normal(0.0, 2.0)) * scale
    return (unit * scale + shift).astype(np.float32), drawn
