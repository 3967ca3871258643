"""Image formation for simulated fluorescence microscopy: PSF, focal stacks, projection, noise.

The widefield point spread function is the Gibson–Lanni scalar model computed by ``psfmodels``
(Aguet et al. 2009's implementation). It is computed **once per optical setting** and cached in
this process (:func:`otf_stack`), then reused for every sample: rendering a field is a few batched
FFTs and one small complex matrix product per spatial frequency.

Optical parameters
------------------
Jadhav et al. 2026 (SAM for mitochondria) fix NA 1.42, 100× magnification and 660 nm emission
with oil immersion. The remaining Gibson–Lanni parameters are samscope's choices, all fields
of :class:`OpticsConfig`:

* immersion oil and coverslip refractive index 1.515 (design = experimental), coverslip
  thickness 170 µm, working distance 150 µm — a standard #1.5 coverslip with matched oil;
* specimen refractive index 1.33 (live cells in aqueous medium, as in the PhySeg data the seed
  evaluates on); the ``ns < ni`` mismatch gives a depth-dependent spherical aberration;
* the axial range ``z ∈ [0, 500] nm`` starts 500 nm above the coverslip, and the PSF is computed
  once for a point in the middle of that layer (750 nm deep) and treated as shift-invariant across
  it (the aberration changes little over 500 nm). Defocus is measured from the plane of best focus,
  i.e. the focal shift caused by the index mismatch is removed;
* pixel integration by 3× oversampling (``psfmodels`` default); the PSF is truncated to a square
  of side ``2 * psf_radius_px + 1`` and band-limited to the objective's cut-off ``2 NA / λ``.

The 100× magnification only relates the 80 nm sample-space pixel to an 8 µm camera pixel; all
computations are in sample space.

Focal stacks
------------
Ten focal planes are spread evenly through the axial range (``f_j = j * 500 / 9`` nm). Fluorophore
density is rasterised on planes spaced twice as far apart (111 nm, well below the ≈ 600 nm axial
FWHM), aligned with the focal planes so that every (density plane, focal plane) pair uses one of
a few precomputed PSF planes. The image is the maximum intensity projection of the focal stack.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np

from samscope.errors import InputError

__all__ = [
    "OpticsConfig",
    "FocalGeometry",
    "focal_geometry",
    "otf_stack",
    "psf_stack",
    "render_focal_stacks",
    "scale_to_sbr",
    "measure_sbr",
    "camera",
]


@dataclass(frozen=True)
class OpticsConfig:
    """Optical setting of a simulated widefield fluorescence microscope.

    Parameters
    ----------
    na : float
        Numerical aperture of the objective (Jadhav et al. 2026: 1.42).
    magnification : float
        Objective magnification (Jadhav et al. 2026: 100); recorded, not used by the sample-space model.
    wavelength_nm : float
        Emission wavelength in nm (Jadhav et al. 2026: 660).
    ni : float
        Refractive index of the immersion oil (design and experimental value).
    ng : float
        Refractive index of the coverslip (design and experimental value).
    ns : float
        Refractive index of the specimen.
    tg_um : float
        Coverslip thickness in µm (design and experimental value).
    ti0_um : float
        Working distance of the objective in µm.
    depth_nm : float
        Height of the axial range's origin (``z = 0``) above the coverslip, in nm.
    pixel_size_nm : float
        Pixel size in sample space (Jadhav et al. 2026: 80 nm).
    axial_range_nm : tuple of float
        ``(z_min, z_max)``: the range through which the focal planes are spread (Jadhav et al. 2026: 0–500).
    n_focal_planes : int
        Number of focal planes that are maximum-projected (Jadhav et al. 2026: 10).
    psf_radius_px : int
        Half-width of the truncated PSF in pixels.
    """

    na: float = 1.42
    magnification: float = 100.0
    wavelength_nm: float = 660.0
    ni: float = 1.515
    ng: float = 1.515
    ns: float = 1.33
    tg_um: float = 170.0
    ti0_um: float = 150.0
    depth_nm: float = 500.0
    pixel_size_nm: float = 80.0
    axial_range_nm: tuple[float, float] = (0.0, 500.0)
    n_focal_planes: int = 10
    psf_radius_px: int = 12

    def __post_init__(self) -> None:
        for name in ("na", "magnification", "wavelength_nm", "ni", "ng", "ns", "tg_um", "ti0_um"):
            if not getattr(self, name) > 0:
                raise InputError(f"optics: {name} must be > 0, got {getattr(self, name)!r}")
        if self.na >= self.ni:
            raise InputError(f"optics: na ({self.na}) must be below the immersion index ni ({self.ni})")
        if not self.pixel_size_nm > 0:
            raise InputError(f"optics: pixel_size_nm must be > 0, got {self.pixel_size_nm!r}")
        if self.depth_nm < 0:
            raise InputError(f"optics: depth_nm must be >= 0, got {self.depth_nm!r}")
        lo, hi = (float(v) for v in self.axial_range_nm)
        if not hi > lo:
            raise InputError(f"optics: axial_range_nm must be (min, max) with min < max, got {self.axial_range_nm!r}")
        object.__setattr__(self, "axial_range_nm", (lo, hi))
        if int(self.n_focal_planes) < 2:
            raise InputError(f"optics: n_focal_planes must be >= 2, got {self.n_focal_planes!r}")
        if int(self.psf_radius_px) < 2:
            raise InputError(f"optics: psf_radius_px must be >= 2, got {self.psf_radius_px!r}")

    def to_dict(self) -> dict:
        """JSON-serialisable dictionary of every field."""
        d = asdict(self)
        d["axial_range_nm"] = list(self.axial_range_nm)
        return d


@dataclass(frozen=True)
class FocalGeometry:
    """Discretisation of the axial direction shared by rasterisation and rendering.

    Attributes
    ----------
    focal_step_nm : float
        Distance between neighbouring focal planes.
    density_step_nm : float
        Distance between density planes (twice ``focal_step_nm``).
    k_min, k_max : int
        Inclusive range of density plane indices; plane ``k`` lies at ``z_min + k * density_step_nm``.
    n_focal : int
        Number of focal planes; plane ``j`` lies at ``z_min + j * focal_step_nm``.
    z_min : float
        Axial origin of both grids.
    """

    focal_step_nm: float
    density_step_nm: float
    k_min: int
    k_max: int
    n_focal: int
    z_min: float

    @property
    def n_density(self) -> int:
        return self.k_max - self.k_min + 1

    def plane_index(self, z_nm: np.ndarray) -> np.ndarray:
        """Index (0-based, into ``k_min..k_max``) of the density plane nearest to ``z_nm``."""
        k = np.rint((np.asarray(z_nm) - self.z_min) / self.density_step_nm).astype(np.int64)
        return np.clip(k, self.k_min, self.k_max) - self.k_min


def focal_geometry(optics: OpticsConfig, z_margin_nm: float = 300.0) -> FocalGeometry:
    """Axial grids for ``optics``: density planes cover the axial range plus ``z_margin_nm``."""
    lo, hi = optics.axial_range_nm
    step = (hi - lo) / (optics.n_focal_planes - 1)
    dstep = 2.0 * step
    k_min = int(np.floor(-z_margin_nm / dstep))
    k_max = int(np.ceil((hi - lo + z_margin_nm) / dstep))
    return FocalGeometry(step, dstep, k_min, k_max, int(optics.n_focal_planes), lo)


def _defocus_offsets(optics: OpticsConfig) -> tuple[int, int]:
    geo = focal_geometry(optics)
    # defocus (f_j - z_k) / focal_step = j - 2 k
    lo = 0 - 2 * geo.k_max
    hi = (geo.n_focal - 1) - 2 * geo.k_min
    return lo, hi


@functools.lru_cache(maxsize=8)
def psf_stack(optics: OpticsConfig) -> tuple[np.ndarray, int]:
    """Gibson–Lanni PSF planes for every defocus the renderer needs (cached per setting).

    Parameters
    ----------
    optics : OpticsConfig
        The optical setting.

    Returns
    -------
    psf : numpy.ndarray
        float64 array ``(n_offsets, 2 r + 1, 2 r + 1)``; plane ``i`` is the PSF for a focal plane
        ``(i - offset0) * focal_step_nm`` above the point's plane of best focus. Normalised so that
        the in-focus plane sums to 1 (defocused planes lose the energy outside the square).
    offset0 : int
        Index of zero defocus.
    """
    import psfmodels

    geo = focal_geometry(optics)
    lo, hi = _defocus_offsets(optics)
    span = max(abs(lo), abs(hi))
    extra = 12  # search window for the focal shift of the index mismatch
    pz_um = (optics.depth_nm + 0.5 * (optics.axial_range_nm[0] + optics.axial_range_nm[1])) / 1000.0
    steps = np.arange(-(span + extra), span + extra + 1)
    zv = pz_um + steps * geo.focal_step_nm / 1000.0
    nx = 2 * int(optics.psf_radius_px) + 1
    psf = psfmodels.make_psf(
        list(zv),
        nx,
        dxy=optics.pixel_size_nm / 1000.0,
        pz=pz_um,
        NA=optics.na,
        wvl=optics.wavelength_nm / 1000.0,
        ns=optics.ns,
        ni=optics.ni,
        ni0=optics.ni,
        ng=optics.ng,
        ng0=optics.ng,
        tg=optics.tg_um,
        tg0=optics.tg_um,
        ti0=optics.ti0_um,
        normalize=False,
        model="scalar",
    )
    psf = np.asarray(psf, dtype=np.float64)
    best = int(np.argmax(psf.max(axis=(1, 2))))
    best = int(np.clip(best, span, len(steps) - 1 - span))
    planes = psf[best + lo : best + hi + 1]
    planes = planes / planes[-lo].sum()
    return planes, -lo


@dataclass(frozen=True)
class _Otf:
    support: np.ndarray  # flat indices into the (c, c // 2 + 1) rfft grid
    matrix: np.ndarray  # (n_support, n_density, n_focal) complex64


@functools.lru_cache(maxsize=32)
def otf_stack(optics: OpticsConfig, canvas: int) -> _Otf:
    """Band-limited OTF matrices for a square canvas of side ``canvas`` (cached).

    ``matrix[f, k, j]`` maps the spectrum of density plane ``k`` to focal plane ``j`` at spatial
    frequency ``support[f]``; frequencies beyond the objective's cut-off ``2 NA / λ`` are dropped.
    """
    import scipy.fft

    psf, off0 = psf_stack(optics)
    geo = focal_geometry(optics)
    r = psf.shape[-1] // 2
    if canvas < 2 * r + 1:
        raise InputError(f"canvas {canvas} is smaller than the PSF ({2 * r + 1})")
    padded = np.zeros((psf.shape[0], canvas, canvas))
    padded[:, : 2 * r + 1, : 2 * r + 1] = psf
    padded = np.roll(padded, (-r, -r), axis=(1, 2))
    otf = scipy.fft.rfft2(padded, axes=(1, 2))
    fy = np.fft.fftfreq(canvas)[:, None]
    fx = np.fft.rfftfreq(canvas)[None, :]
    cutoff = 2 * optics.na / optics.wavelength_nm * optics.pixel_size_nm  # cycles / pixel
    support = np.flatnonzero((np.hypot(fy, fx) <= cutoff * 1.02).ravel())
    otf = otf.reshape(psf.shape[0], -1)[:, support]
    ks = np.arange(geo.k_min, geo.k_max + 1)
    js = np.arange(geo.n_focal)
    idx = js[None, :] - 2 * ks[:, None] + off0  # (n_density, n_focal)
    matrix = np.ascontiguousarray(np.transpose(otf[idx], (2, 0, 1))).astype(np.complex64)
    return _Otf(support, matrix)


def render_focal_stacks(density: np.ndarray, optics: OpticsConfig) -> np.ndarray:
    """Blur density volumes into widefield focal stacks.

    Parameters
    ----------
    density : numpy.ndarray
        ``(n, n_density, c, c)`` fluorophore density on the density planes of
        :func:`focal_geometry`, on square canvases. Content must stay ``psf_radius_px`` away
        from the canvas edge, or the circular convolution wraps around.
    optics : OpticsConfig
        The optical setting.

    Returns
    -------
    numpy.ndarray
        float32 ``(n, n_focal_planes, c, c)``: the image at every focal plane.
    """
    import scipy.fft

    n, nk, c, c2 = density.shape
    if c != c2:
        raise InputError("render_focal_stacks: canvases must be square")
    otf = otf_stack(optics, c)
    nf = otf.matrix.shape[2]
    spec = scipy.fft.rfft2(density.astype(np.float32, copy=False), axes=(2, 3))
    spec = spec.reshape(n, nk, -1)[:, :, otf.support]  # (n, nk, S)
    spec = np.ascontiguousarray(np.transpose(spec, (2, 0, 1)))  # (S, n, nk)
    out = np.matmul(spec, otf.matrix)  # (S, n, nf)
    full = np.zeros((n, nf, c * (c // 2 + 1)), dtype=np.complex64)
    full[:, :, otf.support] = np.transpose(out, (1, 2, 0))
    stacks = scipy.fft.irfft2(full.reshape(n, nf, c, c // 2 + 1), s=(c, c), axes=(2, 3))
    return stacks.astype(np.float32, copy=False)


def scale_to_sbr(
    signal: np.ndarray, foreground: np.ndarray, *, sbr: float, background: float
) -> np.ndarray:
    """Expected photon counts ``background + a * signal`` with the requested SBR.

    The signal-to-background ratio is defined as ``SBR = (mean(E[fg]) - B) / B``: the mean
    expected intensity above background over the ground-truth foreground pixels, divided by the
    background level ``B`` (expected photons per pixel far from any object).

    Parameters
    ----------
    signal : numpy.ndarray
        Noise-free signal without background, any non-negative scale.
    foreground : numpy.ndarray
        bool, same shape: the ground-truth foreground.
    sbr : float
        Requested SBR, > 0.
    background : float
        Background level in photons per pixel, > 0.

    Returns
    -------
    numpy.ndarray
        float64 expected photon counts.
    """
    if not sbr > 0:
        raise InputError(f"sbr must be > 0, got {sbr!r}")
    if not background > 0:
        raise InputError(f"background must be > 0, got {background!r}")
    mean_fg = float(signal[foreground].mean()) if foreground.any() else 0.0
    scale = sbr * background / mean_fg if mean_fg > 0 else 0.0
    return background + scale * signal.astype(np.float64)


def measure_sbr(image: np.ndarray, foreground: np.ndarray, *, margin_px: int = 16) -> float:
    """Measure the SBR of an image as defined in :func:`scale_to_sbr`.

    The background level is the mean of pixels more than ``margin_px`` from the foreground (beyond
    the PSF's reach); the signal is the mean over the foreground minus that level.
    """
    from scipy import ndimage as ndi

    far = ndi.distance_transform_edt(~foreground) > margin_px
    if not far.any() or not foreground.any():
        raise InputError("measure_sbr: needs both foreground and background far from it")
    b = float(image[far].mean())
    return (float(image[foreground].mean()) - b) / b


def camera(
    expected: np.ndarray,
    rng: np.random.Generator,
    *,
    gain: float = 1.0,
    offset: float = 0.0,
    read_noise: float = 0.0,
    saturation: float = 65535.0,
) -> np.ndarray:
    """A camera's reading of an expected photon image: shot noise, gain, offset, read noise.

    ``offset + gain * Poisson(expected) + Normal(0, read_noise)``, rounded to integers and
    clipped to ``[0, saturation]`` (a 16-bit camera saturates; nothing wraps around).

    Parameters
    ----------
    expected : numpy.ndarray
        Expected photons per pixel, >= 0.
    rng : numpy.random.Generator
        Random stream.
    gain : float
        Counts per photon, > 0.
    offset : float
        Camera baseline in counts, >= 0.
    read_noise : float
        Standard deviation of the read-out noise in counts, >= 0.
    saturation : float
        Largest count.

    Returns
    -------
    numpy.ndarray
        float32 integer counts, same shape.
    """
    if not gain > 0 or offset < 0 or read_noise < 0:
        raise InputError(f"camera: need gain > 0, offset >= 0, read_noise >= 0; got {gain}, {offset}, {read_noise}")
    counts = rng.poisson(np.maximum(expected, 0.0)).astype(np.float32)
    counts *= np.float32(gain)
    counts += np.float32(offset)
    if read_noise > 0:
        counts += rng.standard_normal(counts.shape, dtype=np.float32) * np.float32(read_noise)
    np.rint(counts, out=counts)  # the analogue-to-digital converter gives integers
    return np.clip(counts, 0.0, saturation, out=counts)
