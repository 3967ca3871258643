"""Distance-map segmentation (SAMCell: VandeLoo et al., PLOS One 2025): a regressed distance map and a watershed.

The network part, :func:`predict_distance_map`, follows SAMCell's inference: CLAHE, then
``window``-pixel windows overlapping by ``overlap`` pixels on each side, each up-sampled to the
encoder input, encoded, decoded by the model's distance-map head
(:class:`~samscope.models.distance_head.DistanceMapHead`, sigmoid output), and blended with
cosine ramps (:func:`samscope.tiling.blend_weights`). The cheap part,
:func:`distance_from_map`, is the two-threshold watershed of
:func:`samscope.instance.targets.watershed_from_distance_map`, so thresholds can be changed on a
stored map without the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import TYPE_CHECKING, Any

import numpy as np

from samscope.errors import InputError
from samscope.instance.instances import Instances
from samscope.instance.settings import check_count, resolve_settings
from samscope.instance.targets import check_distance_thresholds, watershed_from_distance_map

if TYPE_CHECKING:  # pragma: no cover
    from samscope.models.sam import SamscopeModel

__all__ = ["SAMCELL", "DistanceConfig", "distance_from_map", "predict_distance_map", "segment_distance"]

#: SAMCell's thresholds (VandeLoo et al. 2025) and no size filter: an uncalibrated model's values.
SAMCELL = {"peak_thresh": 0.47, "fill_thresh": 0.09, "min_size": 0}


@dataclass(frozen=True)
class DistanceConfig:
    """Settings of distance-map segmentation; the field names are the CLI flags.

    ``peak_thresh``, ``fill_thresh`` and ``min_size`` left None are filled by :meth:`resolve`:
    with the values the model card calibrated for this mode (its ``mode_settings``), else
    SAMCell's (:data:`SAMCELL`). Validated on construction (and again when resolved).

    Attributes
    ----------
    peak_thresh : float or None
        Seeds are the components of ``dist > peak_thresh`` (SAMCell's "cell peak threshold").
    fill_thresh : float or None
        Cells grow within ``dist > fill_thresh`` ("cell fill threshold"); ``<= peak_thresh``.
    window : int
        Side of the sliding window in image pixels (each is up-sampled to the encoder input).
    overlap : int
        Overlap of neighbouring windows on each side; ``2 * overlap < window``.
    clahe : bool
        Contrast-limited adaptive histogram equalisation first (SAMCell does).
    clahe_clip_limit : float
        scikit-image's normalised clip limit in (0, 1]. 0.01 is about OpenCV's ``clipLimit`` 2.6
        (OpenCV's limit ≈ 256 × this); SAMCell's code uses OpenCV 1–3.
    min_size : int or None
        Objects with fewer pixels are dropped (0 in SAMCell).
    """

    peak_thresh: float | None = None
    fill_thresh: float | None = None
    window: int = 256
    overlap: int = 32
    clahe: bool = True
    clahe_clip_limit: float = 0.01
    min_size: int | None = None

    def __post_init__(self) -> None:
        peak, fill = self.peak_thresh, self.fill_thresh
        check_distance_thresholds(  # a None threshold is checked against the other one's bound
            peak_thresh=1.0 if peak is None else peak,
            fill_thresh=0.0 if fill is None else fill,
            min_size=0 if self.min_size is None else self.min_size,
        )
        check_count("window", self.window, minimum=8)
        check_count("overlap", self.overlap)
        if 2 * self.overlap >= self.window:
            raise InputError(
                f"overlap ({self.overlap}) must be less than half the window ({self.window})"
            )
        if not isinstance(self.clahe, bool):
            raise InputError(f"clahe must be True or False, got {self.clahe!r}")
        c = self.clahe_clip_limit
        if isinstance(c, bool) or not isinstance(c, Real) or not 0.0 < float(c) <= 1.0:
            raise InputError(f"clahe_clip_limit must be in (0, 1], got {c!r}")

    def card_defaults(self, card: Any = None) -> dict[str, Any]:
        """What None fields become without a calibration for this mode: SAMCell's values."""
        return dict(SAMCELL)

    def resolve(self, defaults: Any = None) -> DistanceConfig:
        """This config with every None field filled (see the class docstring):
        :func:`samscope.instance.settings.resolve_settings`."""
        return resolve_settings(self, defaults)


def _check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 2:
        raise InputError(
            f"distance mode takes a 2-D grey image (y, x), got shape {img.shape}; "
            "convert RGB to grey or select a channel first"
        )
    if img.dtype.kind not in "fiub":
        raise InputError(f"image must be numeric, got {img.dtype}")
    if img.size and img.dtype.kind == "f" and not np.isfinite(img).all():
        raise InputError("image contains NaN or infinite values")
    return img


def _is_constant(img: np.ndarray) -> bool:
    return img.size == 0 or bool(np.all(img == img.flat[0]))


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Starts of windows of ``window`` pixels every ``stride`` covering ``length`` (last flush)."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window, stride))
    starts.append(length - window)
    return starts


def _distance_head(model: SamscopeModel):
    from samscope.instance.modes import require_mode

    require_mode(model, "distance")
    return model.distance_head


def predict_distance_map(
    model: SamscopeModel, image: np.ndarray, *, config: DistanceConfig | None = None
) -> np.ndarray:
    """The blended distance map of a 2-D image (the network part).

    Steps: CLAHE (or the card's percentile normalisation) to 0–1; mirror-pad by ``overlap``;
    windows of ``window`` pixels every ``window − 2·overlap`` (the last flush with the edge);
    each window scaled to 0–255, repeated to RGB, bilinearly up-sampled to the encoder input
    ``S × S``, standardised with the card's mean/std, encoded, passed through the distance head
    and resized back to ``window × window``; windows are blended with
    :func:`samscope.tiling.blend_weights` (cosine ramps over ``overlap`` pixels), then the
    padding is cropped off.

    Parameters
    ----------
    model : SamscopeModel
        With a distance head (``model.distance_head``), else :class:`InputError` listing the
        modes the model supports.
    image : ndarray, (H, W)
        Grey image, any real dtype.
    config : DistanceConfig, optional

    Returns
    -------
    ndarray of float32, (H, W)
        In 0–1; all zeros (no network run) for a constant image.
    """
    import torch
    import torch.nn.functional as F

    from samscope.image import clahe, normalize_percentile
    from samscope.tiling import blend_weights

    cfg = config if config is not None else DistanceConfig()
    head = _distance_head(model)
    img = _check_image(image)
    if _is_constant(img):
        return np.zeros(img.shape, np.float32)
    norm = model.card.normalisation
    if cfg.clahe:
        unit = clahe(img, clip_limit=float(cfg.clahe_clip_limit))
    else:
        unit = normalize_percentile(img, low=norm.low_percentile, high=norm.high_percentile)
    unit = np.asarray(unit, np.float32)

    win, ov = cfg.window, cfg.overlap
    h, w = unit.shape
    # Mirror-pad so every image pixel is at least `overlap` from a window edge that has a
    # neighbour; pad further (mirrored) when the image is smaller than one window.
    ph, pw = max(h + 2 * ov, win), max(w + 2 * ov, win)
    padded = np.pad(unit, ((ov, ph - h - ov), (ov, pw - w - ov)), mode="symmetric")
    stride = win - 2 * ov
    weights = blend_weights((win, win), (ov, ov))
    acc = np.zeros((ph, pw), np.float32)
    wsum = np.zeros((ph, pw), np.float32)

    size = model.image_size
    mean = torch.tensor(norm.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(norm.std, dtype=torch.float32).view(1, 3, 1, 1)
    for y0 in window_starts(ph, win, stride):
        for x0 in window_starts(pw, win, stride):
            crop = torch.from_numpy(np.ascontiguousarray(padded[y0 : y0 + win, x0 : x0 + win]))
            x = (crop * 255.0)[None, None].expand(1, 3, win, win)
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            x = (x - mean) / std
            emb = model.encode(x)
            with torch.inference_mode():
                out = head(emb.to(model.device))
                out = F.interpolate(
                    out.float(), size=(win, win), mode="bilinear", align_corners=False
                )
            dist = out[0, 0].cpu().numpy()
            acc[y0 : y0 + win, x0 : x0 + win] += dist * weights
            wsum[y0 : y0 + win, x0 : x0 + win] += weights
    result = acc[ov : ov + h, ov : ov + w] / wsum[ov : ov + h, ov : ov + w]
    return np.clip(result, 0.0, 1.0).astype(np.float32)


def distance_from_map(dist: np.ndarray, *, config: DistanceConfig | None = None) -> Instances:
    """Instances from a distance map by the two-threshold watershed (the cheap part).

    Parameters
    ----------
    dist : ndarray, (H, W)
        From :func:`predict_distance_map` or
        :func:`samscope.instance.targets.distance_map_target`.
    config : DistanceConfig, optional
        Only ``peak_thresh``, ``fill_thresh`` and ``min_size`` are used here.

    Returns
    -------
    Instances
        ``mode="distance"``; each score is the object's maximum distance value (its peak height).
    """
    cfg = (config if config is not None else DistanceConfig()).resolve()
    d = np.asarray(dist)
    labels = watershed_from_distance_map(
        d, peak_thresh=cfg.peak_thresh, fill_thresh=cfg.fill_thresh, min_size=cfg.min_size
    )
    n = int(labels.max())
    if n == 0:
        return Instances.empty(labels.shape, mode="distance")
    from scipy import ndimage as ndi

    scores = ndi.maximum(d.astype(np.float64), labels, index=np.arange(1, n + 1))
    return Instances.from_labels(labels, np.asarray(scores, np.float32), mode="distance")


def segment_distance(
    model: SamscopeModel, image: np.ndarray, *, config: DistanceConfig | None = None
) -> Instances:
    """Distance-map segmentation of a 2-D image: :func:`predict_distance_map` then
    :func:`distance_from_map`. The config and the model's head are checked first; an empty or
    constant image gives an empty result without running the network.
    """
    cfg = (config if config is not None else DistanceConfig()).resolve(model.card)
    _distance_head(model)
    img = _check_image(image)
    if _is_constant(img):
        return Instances.empty(img.shape, mode="distance")
    return distance_from_map(predict_distance_map(model, img, config=cfg), config=cfg)
