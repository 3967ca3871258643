"""Image preparation for SAM encoders: intensity normalisation, resizing, padding, coordinates.

Pure numpy / scikit-image (no torch). The :class:`Transform` records how an image of shape
``(H, W)`` became the square encoder input of side ``S`` — the longest side resized to ``S``
(as SAM's ``ResizeLongestSide``), then zero-padded at the bottom and right — and maps points,
boxes and masks both ways.

Conventions: user coordinates are ``(y, x)`` in original pixels (numpy / napari order); boxes are
``(y0, x0, y1, x1)`` with ``y1``/``x1`` exclusive (slice bounds). SAM's prompt encoder takes
``(x, y)`` in input pixels; :meth:`Transform.points_to_input` and :meth:`Transform.boxes_to_input`
do that conversion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samscope.errors import InputError
from samscope.io import has_colour_axis

__all__ = [
    "Transform",
    "clahe",
    "normalize_percentile",
    "prepare_input",
    "to_rgb",
]


def normalize_percentile(
    image: np.ndarray,
    *,
    low: float = 1.0,
    high: float = 99.8,
    mask: np.ndarray | None = None,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Scale intensities to [0, 1] between two percentiles, clipping outside.

    Never casts: 16-bit, float and signed data are handled in float32 without wrap-around.

    Parameters
    ----------
    image : ndarray
        Any real dtype, any shape (channels are normalised jointly).
    low, high : float
        Percentiles mapped to 0 and 1 (``0 <= low < high <= 100``).
    mask : ndarray of bool, optional
        Pixels that count for the percentiles (e.g. excluding padding).
    value_range : (float, float), optional
        Use these intensities as 0 and 1 instead of this image's percentiles (e.g. those of the
        whole image, from :func:`intensity_range`, for each of its tiles).

    Returns
    -------
    ndarray of float32
        Same shape; a constant image becomes all zeros.

    Raises
    ------
    InputError
        For NaN/inf values, an empty image or bad percentiles.

    Examples
    --------
    >>> img = np.array([[33000, 34000], [35000, 37000]], dtype=np.uint16)
    >>> normalize_percentile(img, low=0, high=100).round(2).tolist()
    [[0.0, 0.25], [0.5, 1.0]]
    """
    if not 0 <= low < high <= 100:
        raise InputError(
            f"percentiles must satisfy 0 <= low < high <= 100, got low={low}, high={high}"
        )
    data = np.asarray(image)
    if data.size == 0:
        raise InputError(f"cannot normalise an empty image of shape {data.shape}")
    if data.dtype.kind not in "buif":
        raise InputError(f"cannot normalise an image of dtype {data.dtype}")
    values = data[mask] if mask is not None else data
    if data.dtype.kind == "f" and not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise InputError(f"image has {bad} NaN or infinite values; clean or mask them first")
    if value_range is None:
        lo, hi = intensity_range(values, low=low, high=high)
    else:
        lo, hi = (float(v) for v in value_range)
    out = data.astype(np.float32, copy=True)
    if hi <= lo:
        return np.zeros(data.shape, np.float32)
    out -= np.float32(lo)
    out *= np.float32(1.0 / (hi - lo))
    np.clip(out, 0.0, 1.0, out=out)
    return out


def intensity_range(image: np.ndarray, *, low: float = 1.0, high: float = 99.8) -> tuple[float, float]:
    """The ``low`` and ``high`` percentiles of an image (min and max when they coincide).

    Large images are sampled with a stride (≥ 2 M values), so a 10,000² plane costs a fraction of
    a second. Tiled embeddings normalise every tile with the range of its whole plane, as the
    training data were: a tile of background is then not stretched into false objects.
    """
    sample = np.asarray(image).ravel()
    if sample.size == 0:
        raise InputError("cannot take the intensity range of an empty image")
    if sample.size > 4_000_000:
        sample = sample[:: sample.size // 2_000_000]
    sample = sample.astype(np.float64, copy=False)
    lo, hi = (float(v) for v in np.percentile(sample, [low, high]))
    if hi <= lo:  # constant (or nearly) image
        lo, hi = float(sample.min()), float(sample.max())
    return lo, hi


def clahe(image: np.ndarray, *, clip_limit: float = 0.01, tiles: int = 8) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of a 2-D image (SAMCell preprocessing).

    Parameters
    ----------
    image : ndarray, (y, x)
        Any real dtype; normalised to [0, 1] by min–max first.
    clip_limit : float
        scikit-image's normalised clip limit (0–1).
    tiles : int
        Number of contextual regions along each axis.

    Returns
    -------
    ndarray of float32 in [0, 1]
    """
    from skimage.exposure import equalize_adapthist

    scaled = normalize_percentile(image, low=0.0, high=100.0)
    if scaled.max() == 0:
        return scaled
    kernel = (max(1, scaled.shape[0] // tiles), max(1, scaled.shape[1] // tiles))
    return equalize_adapthist(scaled, kernel_size=kernel, clip_limit=clip_limit).astype(np.float32)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Return an ``(H, W, 3)`` view/copy of a grey ``(H, W)`` or ``(H, W, 1|3|4)`` image."""
    data = np.asarray(image)
    if data.ndim == 2:
        return np.repeat(data[..., None], 3, axis=-1)
    if data.ndim == 3 and data.shape[-1] == 1:
        return np.repeat(data, 3, axis=-1)
    if data.ndim == 3 and has_colour_axis(data.shape):
        return data[..., :3]
    raise InputError(
        f"expected a 2-D image (y, x) or RGB (y, x, 3), got shape {data.shape}; "
        "select a slice, frame or channel first"
    )


@dataclass(frozen=True)
class Transform:
    """Geometry of "resize the longest side to ``target_size``, pad bottom/right".

    Parameters
    ----------
    original_shape : (int, int)
        ``(H, W)`` of the original image.
    target_size : int
        Side ``S`` of the square encoder input.

    Examples
    --------
    >>> t = Transform((512, 256), 1024)
    >>> t.resized_shape
    (1024, 512)
    >>> t.points_to_input(np.array([[10.0, 20.0]])).tolist()  # (y, x) -> (x, y) scaled
    [[40.0, 20.0]]
    >>> t.points_from_input(t.points_to_input(np.array([[10.0, 20.0]]))).tolist()
    [[10.0, 20.0]]
    """

    original_shape: tuple[int, int]
    target_size: int

    def __post_init__(self) -> None:
        h, w = self.original_shape
        if h <= 0 or w <= 0:
            raise InputError(f"image shape must be positive, got {self.original_shape}")
        if self.target_size <= 0:
            raise InputError(f"target size must be positive, got {self.target_size}")

    @property
    def scale(self) -> float:
        """Resize factor ``S / max(H, W)``."""
        return self.target_size / max(self.original_shape)

    @property
    def resized_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the resized image before padding (rounded as SAM does)."""
        h, w = self.original_shape
        s = self.scale
        return int(h * s + 0.5), int(w * s + 0.5)

    @property
    def factors(self) -> tuple[float, float]:
        """Per-axis ``(fy, fx)`` = resized / original size (what coordinates are multiplied by)."""
        (h, w), (rh, rw) = self.original_shape, self.resized_shape
        return rh / h, rw / w

    def points_to_input(self, points_yx: np.ndarray) -> np.ndarray:
        """Map ``(N, 2)`` points ``(y, x)`` in original pixels to ``(x, y)`` in input pixels."""
        pts = np.asarray(points_yx, dtype=np.float64).reshape(-1, 2)
        fy, fx = self.factors
        return np.stack([pts[:, 1] * fx, pts[:, 0] * fy], axis=1)

    def points_from_input(self, points_xy: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`points_to_input`: ``(x, y)`` input → ``(y, x)`` original."""
        pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        fy, fx = self.factors
        return np.stack([pts[:, 1] / fy, pts[:, 0] / fx], axis=1)

    def boxes_to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Map ``(N, 4)`` boxes ``(y0, x0, y1, x1)`` to SAM's ``(x0, y0, x1, y1)`` input pixels."""
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        fy, fx = self.factors
        return np.stack([b[:, 1] * fx, b[:, 0] * fy, b[:, 3] * fx, b[:, 2] * fy], axis=1)

    def boxes_from_input(self, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`boxes_to_input`."""
        b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        fy, fx = self.factors
        return np.stack([b[:, 1] / fy, b[:, 0] / fx, b[:, 3] / fy, b[:, 2] / fx], axis=1)

    def interpolation_matrices(self, low_res: int) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear maps from decoder logits back to the original pixel grid.

        The decoder's ``(low_res, low_res)`` logits cover the padded ``S × S`` input. Pixel
        ``i`` of the original image has its centre at input coordinate ``(i + 0.5)·f``, which is
        low-resolution coordinate ``(i + 0.5)·f·low_res/S − 0.5``; sampling there bilinearly
        (edge-clamped) is one separable linear map per axis.

        Returns
        -------
        (ay, ax) : ndarrays of float32
            ``(H, low_res)`` and ``(W, low_res)``; the original-resolution logits of a
            ``(low_res, low_res)`` map ``L`` are ``ay @ L @ ax.T``.
        """
        fy, fx = self.factors
        h, w = self.original_shape
        return (
            _bilinear_matrix(h, fy * low_res / self.target_size, low_res),
            _bilinear_matrix(w, fx * low_res / self.target_size, low_res),
        )

    def mask_to_input(self, mask: np.ndarray, low_res: int) -> np.ndarray:
        """Resample an original-resolution mask/logit map to the decoder's ``(low_res, low_res)`` grid.

        Used to feed a previous mask back as a prompt. Areas outside the image (padding) are 0.
        Returns float32.
        """
        from skimage.transform import resize

        m = np.asarray(mask, dtype=np.float32)
        if m.shape != tuple(self.original_shape):
            raise InputError(
                f"mask shape {m.shape} does not match the image shape {self.original_shape}"
            )
        rh, rw = self.resized_shape
        ph = min(low_res, int(round(rh * low_res / self.target_size)))
        pw = min(low_res, int(round(rw * low_res / self.target_size)))
        out = np.zeros((low_res, low_res), np.float32)
        out[:ph, :pw] = resize(m, (ph, pw), order=1, anti_aliasing=True, preserve_range=True)
        return out


def _bilinear_matrix(n_out: int, step: float, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` bilinear sampling of source positions ``(i + 0.5)·step − 0.5``, edge-clamped."""
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * step - 0.5
    pos = np.clip(pos, 0.0, n_in - 1.0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    mat = np.zeros((n_out, n_in), np.float64)
    rows = np.arange(n_out)
    np.add.at(mat, (rows, lo), 1.0 - frac)
    np.add.at(mat, (rows, hi), frac)
    return mat.astype(np.float32)


def prepare_input(
    image: np.ndarray,
    target_size: int,
    *,
    low_percentile: float = 1.0,
    high_percentile: float = 99.8,
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53),
    std: tuple[float, float, float] = (58.395, 57.12, 57.375),
    value_range: tuple[float, float] | None = None,
    pad: str = "zero",
) -> tuple[np.ndarray, Transform]:
    """Turn a 2-D or RGB image into SAM encoder input.

    Steps: percentile normalisation to 0–255 (never a cast), grey → 3 channels, resize of the
    longest side to ``target_size`` (bilinear, anti-aliased when shrinking), per-channel
    standardisation with ``mean``/``std``, zero padding to ``target_size`` square (after
    standardisation, as SAM pads).

    Parameters
    ----------
    image : ndarray, (y, x) or (y, x, 3)
    target_size : int
    value_range : (float, float), optional
        Intensities mapped to 0 and 255 instead of this image's own percentiles (a tile of a
        larger image takes its plane's range).
    pad : {"zero", "reflect"}
        ``"zero"``: SAM's padding (0 after standardisation); ``"reflect"``: mirror the image
        into the padding, for models that never saw padding in training (samscope's own).

    Returns
    -------
    pixels : ndarray of float32, (3, S, S)
    transform : Transform
    """
    from skimage.transform import resize

    data = np.asarray(image)
    if data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[-1] not in (1, 3, 4)):
        raise InputError(
            f"expected a 2-D image (y, x) or RGB (y, x, 3), got shape {data.shape}; "
            "for stacks and time series pass one slice or use compute_embeddings"
        )
    rgb = to_rgb(data)
    if pad not in ("zero", "reflect"):
        raise InputError(f"pad must be 'zero' or 'reflect', got {pad!r}")
    scaled = normalize_percentile(
        rgb, low=low_percentile, high=high_percentile, value_range=value_range
    ) * np.float32(255.0)
    transform = Transform(tuple(int(s) for s in rgb.shape[:2]), int(target_size))
    rh, rw = transform.resized_shape
    if (rh, rw) != rgb.shape[:2]:
        shrinking = rh < rgb.shape[0]
        scaled = resize(
            scaled, (rh, rw, 3), order=1, anti_aliasing=shrinking, preserve_range=True
        ).astype(np.float32)
    out = np.zeros((3, target_size, target_size), np.float32)
    for c in range(3):
        out[c, :rh, :rw] = (scaled[..., c] - np.float32(mean[c])) / np.float32(std[c])
    if pad == "reflect" and (rh < target_size or rw < target_size):
        out = np.pad(out[:, :rh, :rw], ((0, 0), (0, target_size - rh), (0, target_size - rw)), mode="symmetric")
    return out, transform
