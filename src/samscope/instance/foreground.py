"""Foreground-prompted, overlap-aware instance segmentation (Jadhav et al. 2026, SAM for mitochondria, §3.3).

The pipeline of the synthetic-mitochondria paper:

1. rescale the image to the model's training pixel size (80 nm by default), when the image's
   pixel size is known or given;
2. embed it in ``patch_size`` patches (512 px; tiles with a halo);
3. threshold a foreground (Otsu on the percentile-normalised, lightly smoothed image, or a fixed
   value) and sample many point prompts from it, at most one per ``min_spacing``² cell, up to
   ``n_points`` per patch;
4. decode one mask per point (the model was trained to answer a point with the least-loss
   object it lies on, so single-mask output is the default);
5. keep the largest connected component of each mask, drop masks under ``min_size`` pixels (at
   the target pixel size), and drop a mask when more than ``overlap_thresh`` of it is covered by
   a single better-scored kept mask (scores: predicted IoU);
6. rescale the masks back to the image.

Instances may share pixels: the result's ``masks`` are the overlapping masks, ``labels`` paints
higher scores on top. Each point is decoded in the patch whose inner region holds it, so an
object is whole when it reaches at most ``halo`` pixels beyond that region (64 px at the default
512-px patches, far longer than a mitochondrion at 80 nm); longer objects crossing a patch border
come out as pieces (masks are not stitched across patches). Like every mode, the expensive part (embeddings, decoding) is separate from
the cheap filters: :func:`foreground_predict` returns the upsampled candidate masks at the target
pixel size and :func:`foreground_postprocess` applies steps 5–6.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage as ndi

from samscope.errors import InputError
from samscope.instance.instances import CroppedMasks, Instances
from samscope.instance.postprocess import (
    filter_small,
    largest_component,
    mask_overlap_filter,
    select,
    upsample_logit_crop,
)

__all__ = [
    "ForegroundConfig",
    "ForegroundPrediction",
    "foreground_postprocess",
    "foreground_predict",
    "sample_points",
    "segment_foreground",
]

DEFAULT_PIXEL_SIZE_NM = 80.0


@dataclass(frozen=True)
class ForegroundConfig:
    """Options of the foreground-prompted mode (field names are the CLI flags).

    Attributes
    ----------
    target_pixel_size_nm : float or None
        Pixel size the model was trained at; None = the model card's ``pixel_size_nm``, else 80.
    patch_size : int or None
        Inner patch side in pixels at the target pixel size; None = the card's ``tile_shape``
        (a model with a small encoder input works at its native resolution), else 512 (seed).
    halo : int or None
        Overlap added on each side of a patch; None = the card's ``halo`` with its
        ``tile_shape``, else ``patch_size // 8``.
    foreground_thresh : float or None
        Foreground cut-off on the percentile-normalised (0–1), smoothed image; None = Otsu.
    smoothing : float
        Gaussian sigma (pixels) before thresholding; 0 = none.
    n_points : int
        Point prompts per patch at most.
    min_spacing : int or None
        Side of the cells of which each holds at most one point; None = 6 px at 80 nm (the
        seed's 480 nm), scaled to the target pixel size.
    min_size : int or None
        Drop masks with fewer pixels (at the target pixel size); None = 10 px at 80 nm (seed),
        scaled by area to the target pixel size.
    overlap_thresh : float or None
        Drop a mask when more than this fraction of it lies in one better-scored kept mask;
        None = the card's ``mask_overlap_thresh`` (seed: 0.5).
    pred_iou_thresh : float or None
        Drop masks with predicted IoU at or below this; None = the card's ``point_iou_thresh``
        (seed: 0 = off).
    multimask : bool
        Decode three masks per point and keep the one with the highest predicted IoU.
    batch : int
        Point prompts decoded at once.
    """

    target_pixel_size_nm: float | None = None
    patch_size: int | None = None
    halo: int | None = None
    foreground_thresh: float | None = None
    smoothing: float = 1.0
    n_points: int = 256
    min_spacing: int | None = None
    min_size: int | None = None
    overlap_thresh: float | None = None
    pred_iou_thresh: float | None = None
    multimask: bool = False
    batch: int = 32

    def __post_init__(self) -> None:
        if self.target_pixel_size_nm is not None and not self.target_pixel_size_nm > 0:
            raise InputError(f"target_pixel_size_nm must be > 0, got {self.target_pixel_size_nm}")
        for name in ("patch_size", "n_points", "min_spacing", "batch"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.halo is not None and self.halo < 0:
            raise InputError(f"halo must be >= 0, got {self.halo}")
        for name in ("foreground_thresh", "overlap_thresh", "pred_iou_thresh"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and 0.0 <= value <= 1.0):
                raise InputError(f"{name} must lie in [0, 1], got {value}")
        if self.smoothing < 0:
            raise InputError(f"smoothing must be >= 0, got {self.smoothing}")
        if self.min_size is not None and self.min_size < 0:
            raise InputError(f"min_size must be >= 0, got {self.min_size}")

    def card_defaults(self, card=None) -> dict:
        """Values for the None fields, from a model card (or the published defaults).

        The card's pixel size sets the target scale, and the point spacing and minimum size
        follow it (6 px and 10 px² at 80 nm); the card's native tiling sets the patch and halo;
        its automatic defaults give the overlap and IoU thresholds.
        """
        from samscope.instance.settings import automatic_defaults

        auto = automatic_defaults(card)
        target = self.target_pixel_size_nm or getattr(card, "pixel_size_nm", None)
        target = float(target or DEFAULT_PIXEL_SIZE_NM)
        ratio = DEFAULT_PIXEL_SIZE_NM / target
        card_tile = getattr(card, "tile_shape", None)
        patch = self.patch_size or card_tile or 512
        use_card = self.patch_size is None and card_tile is not None
        halo = int(getattr(card, "halo", None) or 0) if use_card else patch // 8
        return {
            "target_pixel_size_nm": target,
            "patch_size": int(patch),
            "halo": int(halo),
            "min_spacing": max(1, round(6 * ratio)),
            "min_size": round(10 * ratio**2),
            "overlap_thresh": auto.mask_overlap_thresh if card is not None else 0.5,
            "pred_iou_thresh": auto.point_iou_thresh if card is not None else 0.0,
        }

    def resolve(self, card=None) -> ForegroundConfig:
        """This config with every None field filled from a model card (or the seed's defaults):
        :func:`samscope.instance.settings.resolve_settings`.

        Parameters
        ----------
        card : samscope.models.card.ModelCard, optional
            Supplies the target pixel size and the native tiling.
        """
        from samscope.instance.settings import resolve_settings

        resolved = resolve_settings(self, card)
        return replace(resolved, patch_size=int(resolved.patch_size), halo=int(resolved.halo))


@dataclass(frozen=True)
class ForegroundPrediction:
    """Decoded candidate masks of the foreground mode, at the target pixel size.

    Attributes
    ----------
    image_shape : (int, int)
        Shape of the original image.
    scaled_shape : (int, int)
        Shape after rescaling to the target pixel size.
    masks : CroppedMasks
        One mask per decoded point (largest component not yet taken), ``scaled_shape``.
    scores : ndarray of float32, (n,)
        Predicted IoU.
    points : ndarray of float64, (n, 2)
        The prompts ``(y, x)`` at the target pixel size.
    """

    image_shape: tuple[int, int]
    scaled_shape: tuple[int, int]
    masks: CroppedMasks
    scores: np.ndarray
    points: np.ndarray


def _grey(image) -> np.ndarray:
    data = image.data if hasattr(image, "data") and hasattr(image, "axes") else image
    from samscope.io import colour_to_grey

    arr = colour_to_grey(np.asarray(data))
    if arr.ndim != 2:
        raise InputError(
            f"segment_foreground takes a 2-D image (y, x) or RGB, got shape {arr.shape}; "
            "select a slice, frame or channel first"
        )
    return arr


def _pixel_size(image, pixel_size_nm):
    if pixel_size_nm is not None:
        value = np.asarray(pixel_size_nm, np.float64).ravel()
    elif getattr(image, "pixel_size", None) is not None:
        value = np.asarray(image.pixel_size, np.float64).ravel()[-2:]
    else:
        return None
    if value.size == 1:
        value = np.repeat(value, 2)
    if value.size != 2 or not np.all(np.isfinite(value) & (value > 0)):
        raise InputError(f"pixel size must be positive (nm), got {pixel_size_nm!r}")
    return value


def sample_points(
    foreground: np.ndarray,
    *,
    n_points: int,
    min_spacing: int,
    rng: int | np.random.Generator = 0,
    region: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """Random foreground points, at most one per ``min_spacing``² cell, ``(n, 2)`` ``(y, x)``.

    Parameters
    ----------
    foreground : ndarray of bool, (H, W)
    n_points : int
        At most this many (cells are drawn at random when there are more).
    min_spacing : int
    rng : int or numpy.random.Generator
    region : (y0, x0, y1, x1), optional
        Sample only inside this box.

    Returns
    -------
    ndarray of float64
        Pixel indices ``(y, x)`` (whole numbers), in random-cell order.
    """
    gen = np.random.default_rng(rng)
    y0, x0, y1, x1 = region if region is not None else (0, 0) + foreground.shape
    ys, xs = np.nonzero(foreground[y0:y1, x0:x1])
    if ys.size == 0:
        return np.zeros((0, 2))
    order = gen.permutation(ys.size)
    ys, xs = ys[order], xs[order]
    cells = (ys // min_spacing) * ((x1 - x0) // min_spacing + 1) + xs // min_spacing
    _, first = np.unique(cells, return_index=True)  # one random pixel per cell
    if first.size > n_points:
        first = gen.choice(first, n_points, replace=False)
    first = np.sort(first)
    return np.stack([ys[first] + y0, xs[first] + x0], axis=1).astype(np.float64)


def _foreground_mask(image: np.ndarray, config: ForegroundConfig) -> np.ndarray:
    from skimage.filters import threshold_otsu

    from samscope.image import normalize_percentile

    norm = normalize_percentile(image)
    if config.smoothing > 0:
        norm = ndi.gaussian_filter(norm, config.smoothing)
    if config.foreground_thresh is not None:
        return norm > config.foreground_thresh
    if not norm.max() > norm.min():
        return np.zeros(norm.shape, bool)
    return norm > threshold_otsu(norm)


def foreground_predict(
    model,
    image,
    *,
    pixel_size_nm: float | tuple[float, float] | None = None,
    config: ForegroundConfig | None = None,
    rng: int | np.random.Generator = 0,
) -> ForegroundPrediction:
    """Rescale, embed by patches, sample foreground points and decode one mask per point.

    Parameters
    ----------
    model : SamscopeModel
    image : ndarray, (y, x) or (y, x, 3), or samscope.io.ImageData
    pixel_size_nm : float or (float, float), optional
        The image's pixel size; default the ``ImageData``'s, else no rescaling.
    config : ForegroundConfig, optional
    rng : int or numpy.random.Generator
        Seeds the point sampling.

    Returns
    -------
    ForegroundPrediction
    """
    from skimage.transform import rescale

    from samscope.embeddings import compute_embeddings
    from samscope.models.decoder import PointDecoder, valid_nodes

    config = (config or ForegroundConfig()).resolve(model.card)
    grey = _grey(image)
    size = _pixel_size(image, pixel_size_nm)
    shape = tuple(int(s) for s in grey.shape)
    if grey.size == 0 or np.all(grey == grey.flat[0]):
        return _empty(shape, shape)
    if grey.dtype.kind == "f" and not np.isfinite(grey).all():
        raise InputError("image has NaN or infinite values; clean or mask them first")
    scaled = grey
    if size is not None:
        factor = size / config.target_pixel_size_nm
        if not np.allclose(factor, 1.0):
            scaled = rescale(
                grey.astype(np.float32), tuple(factor), order=1, preserve_range=True,
                anti_aliasing=bool(np.any(factor < 1)),
            ).astype(np.float32)  # fmt: skip
    sshape = tuple(int(s) for s in scaled.shape)
    fg = _foreground_mask(scaled, config)
    if not fg.any():
        return _empty(shape, sshape)
    tiled = max(sshape) > config.patch_size
    halo = config.halo
    emb = compute_embeddings(
        scaled, model, tile_shape=config.patch_size if tiled else None, halo=halo if tiled else None
    )
    gen = np.random.default_rng(rng)
    low_res = model.arch.low_res_size
    boxes, crops, scores, points = [], [], [], []
    for t, tile in enumerate(emb.tiles):
        pts = sample_points(
            fg, n_points=config.n_points, min_spacing=config.min_spacing, rng=gen, region=tile.inner
        )
        if len(pts) == 0:
            continue
        oy, ox = tile.outer[:2]
        transform = emb.transform(t)
        decoder = PointDecoder(model, emb.get(0, t), transform, (oy, ox))
        ay, ax = transform.interpolation_matrices(low_res)
        ny, nx = valid_nodes(transform, low_res)  # the nodes that reach the image
        for s in range(0, len(pts), config.batch):
            batch = pts[s : s + config.batch]
            local = batch - (oy, ox)  # pixel coordinates, as SAM and samscope.prompting take them
            logits, iou = decoder(transform.points_to_input(local), config.multimask)
            best = iou.argmax(dim=1)
            rows = np.arange(len(batch))
            lg = logits[rows, best.numpy()][:, :ny, :nx].float().numpy()
            ious = iou[rows, best.numpy()].float().numpy()
            for p in range(len(batch)):
                pos = lg[p] > 0
                if not pos.any():
                    continue
                r = np.flatnonzero(pos.any(axis=1))
                c = np.flatnonzero(pos.any(axis=0))
                r0, r1 = max(r[0] - 1, 0), min(r[-1] + 2, ny)
                c0, c1 = max(c[0] - 1, 0), min(c[-1] + 2, nx)
                (y0, x0, y1, x1), m = upsample_logit_crop(lg[p, r0:r1, c0:c1], (r0, c0), ay, ax)
                if m.size == 0:
                    continue
                boxes.append((y0 + oy, x0 + ox, y1 + oy, x1 + ox))
                crops.append(m)
                scores.append(ious[p])
                points.append(batch[p])
    masks = CroppedMasks(sshape, np.array(boxes, np.int64).reshape(-1, 4), tuple(crops))
    return ForegroundPrediction(
        shape, sshape, masks, np.array(scores, np.float32), np.array(points, np.float64).reshape(-1, 2)
    )


def _empty(shape: tuple[int, int], scaled: tuple[int, int]) -> ForegroundPrediction:
    masks = CroppedMasks(scaled, np.zeros((0, 4), np.int64), ())
    return ForegroundPrediction(shape, scaled, masks, np.zeros(0, np.float32), np.zeros((0, 2)))


def _to_original(masks: CroppedMasks, shape: tuple[int, int]) -> CroppedMasks:
    """Resample masks from the rescaled grid back to ``shape`` (bilinear, cut at 0.5)."""
    sh, sw = masks.shape
    fy, fx = sh / shape[0], sw / shape[1]  # rescaled pixels per original pixel
    boxes, crops = [], []
    for (y0, x0, y1, x1), crop in zip(masks.boxes, masks.crops, strict=True):
        # original pixels whose centres fall within a pixel of the crop
        oy0, ox0 = max(int(np.floor((y0 - 0.5) / fy)), 0), max(int(np.floor((x0 - 0.5) / fx)), 0)
        oy1 = min(int(np.ceil((y1 + 0.5) / fy)) + 1, shape[0])
        ox1 = min(int(np.ceil((x1 + 0.5) / fx)) + 1, shape[1])
        yy = (np.arange(oy0, oy1) + 0.5) * fy - 0.5 - y0
        xx = (np.arange(ox0, ox1) + 0.5) * fx - 0.5 - x0
        grid = np.stack(np.meshgrid(yy, xx, indexing="ij"))
        padded = np.pad(crop.astype(np.float32), 1)
        m = ndi.map_coordinates(padded, grid + 1, order=1, mode="nearest") > 0.5
        ys = np.flatnonzero(m.any(axis=1))
        if ys.size == 0:  # thinner than a pixel of the original: keep its centre pixel
            cy, cx = np.argwhere(crop)[len(np.argwhere(crop)) // 2] + (y0, x0)
            py = min(int((cy + 0.5) / fy), shape[0] - 1)
            px = min(int((cx + 0.5) / fx), shape[1] - 1)
            boxes.append((py, px, py + 1, px + 1))
            crops.append(np.ones((1, 1), bool))
            continue
        xs = np.flatnonzero(m.any(axis=0))
        crops.append(m[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1])
        boxes.append((oy0 + ys[0], ox0 + xs[0], oy0 + ys[-1] + 1, ox0 + xs[-1] + 1))
    return CroppedMasks(tuple(shape), np.array(boxes, np.int64).reshape(-1, 4), tuple(crops))


def foreground_postprocess(
    pred: ForegroundPrediction, *, config: ForegroundConfig | None = None
) -> Instances:
    """Largest component, size and overlap filters, rescaling back: the network-free half.

    Returns
    -------
    Instances
        ``mode="foreground"``, overlapping ``masks`` at the original resolution, ``scores`` =
        predicted IoU.
    """
    config = (config or ForegroundConfig()).resolve(None)
    keep = np.arange(len(pred.scores))
    if config.pred_iou_thresh > 0:
        keep = np.flatnonzero(pred.scores > config.pred_iou_thresh)
    masks = largest_component(select(pred.masks, keep))
    scores = pred.scores[keep]
    big = filter_small(masks, min_size=max(config.min_size, 1))
    masks, scores = select(masks, big), scores[big]
    kept = mask_overlap_filter(masks, scores, overlap_thresh=config.overlap_thresh)
    masks, scores = select(masks, kept), scores[kept]
    if tuple(pred.scaled_shape) != tuple(pred.image_shape):
        masks = _to_original(masks, pred.image_shape)
    if len(masks) == 0:
        return Instances.empty(pred.image_shape, mode="foreground", overlapping=True)
    return Instances.from_masks(masks, scores, mode="foreground")


def segment_foreground(
    model,
    image,
    *,
    pixel_size_nm: float | tuple[float, float] | None = None,
    config: ForegroundConfig | None = None,
    rng: int | np.random.Generator = 0,
) -> Instances:
    """Foreground-prompted, overlap-aware segmentation (Jadhav et al. 2026, SAM for mitochondria): predict, then post-process.

    Parameters
    ----------
    model : SamscopeModel
    image : ndarray, (y, x) or (y, x, 3), or samscope.io.ImageData
    pixel_size_nm : float or (float, float), optional
        The image's pixel size (nm); the image is rescaled to the target pixel size when known.
    config : ForegroundConfig, optional
    rng : int or numpy.random.Generator
        Seeds the point sampling.

    Returns
    -------
    Instances
        Overlapping ``masks`` and ``labels`` at the image's resolution; empty for an empty or
        constant image.

    Examples
    --------
    >>> from samscope.models.registry import load_model
    >>> model = load_model("vit_test", device="cpu")
    >>> img = np.zeros((64, 64), np.float32); img[20:30, 10:50] = 1
    >>> res = segment_foreground(model, img, config=ForegroundConfig(n_points=8))
    >>> res.mode, res.labels.shape
    ('foreground', (64, 64))
    """
    config = (config or ForegroundConfig()).resolve(model.card)
    pred = foreground_predict(model, image, pixel_size_nm=pixel_size_nm, config=config, rng=rng)
    return foreground_postprocess(pred, config=config)
