"""Patch sampling with augmentation: one affine warp shared by the image and every label map.

Geometric augmentation (flip, rotation, zoom) and the choice of the patch are one affine map
from patch coordinates to image coordinates, applied with :func:`scipy.ndimage.affine_transform`
to the image (linear interpolation) and to the labels and masks (nearest neighbour), so they can
never drift apart. Intensity augmentation (brightness, contrast, inversion, noise) touches the
image only. Everything takes an explicit :class:`numpy.random.Generator`.

Pure numpy/scipy (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from samscope.training.config import AugmentConfig

__all__ = ["Affine", "Patch", "augment_intensity", "random_affine", "sample_patch", "warp"]

#: Attempts at drawing a patch with enough objects before the best one is taken.
MAX_TRIES = 20


@dataclass(frozen=True)
class Affine:
    """Map from output (patch) pixel ``o`` to input pixel ``matrix @ o + offset`` (row, col)."""

    matrix: np.ndarray
    offset: np.ndarray
    shape: tuple[int, int]


@dataclass(frozen=True, eq=False)
class Patch:
    """One training patch.

    Attributes
    ----------
    image : numpy.ndarray
        float32 ``(C, p, p)`` in 0–1 (C = 1 grey or 3 RGB).
    labels : numpy.ndarray
        int32 ``(p, p)`` label image.
    masks : numpy.ndarray or None
        bool ``(n, p, p)`` overlapping masks of the objects present in the patch.
    """

    image: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None


def random_affine(
    image_shape: tuple[int, int],
    patch_size: int,
    config: AugmentConfig,
    rng: np.random.Generator,
    *,
    augment: bool = True,
) -> Affine:
    """Draw a patch position with random flip, rotation and zoom.

    The patch centre is drawn so that the rotated, zoomed patch lies inside the image when the
    image is large enough; otherwise it is centred and the outside reads as 0 (background).

    Parameters
    ----------
    image_shape : (int, int)
        ``(H, W)`` of the source image.
    patch_size : int
        Side of the output patch.
    config : AugmentConfig
    rng : numpy.random.Generator
    augment : bool
        False: an axis-aligned crop at a random position (no flip, rotation or zoom).
    """
    h, w = image_shape
    p = patch_size
    angle, scale, fy, fx = 0.0, 1.0, 1.0, 1.0
    if augment:
        if config.rotation == "any":
            angle = float(rng.uniform(0.0, 2 * np.pi))
        elif config.rotation == "90":
            angle = float(rng.integers(4)) * np.pi / 2
        if config.scale_max > config.scale_min:
            scale = float(np.exp(rng.uniform(np.log(config.scale_min), np.log(config.scale_max))))
        else:
            scale = float(config.scale_min)
        if config.flip:
            fy = -1.0 if rng.random() < 0.5 else 1.0
            fx = -1.0 if rng.random() < 0.5 else 1.0
    c, s = np.cos(angle), np.sin(angle)
    if abs(c) < 1e-12:
        c = 0.0
    if abs(s) < 1e-12:
        s = 0.0
    rot = np.array([[c, -s], [s, c]])
    matrix = rot @ np.diag([fy / scale, fx / scale])
    # half extent of the patch footprint in the source image, per axis
    half = (p / 2.0) * np.abs(matrix).sum(axis=1)
    centre = np.empty(2)
    for axis, size in enumerate((h, w)):
        lo, hi = half[axis], size - half[axis]
        centre[axis] = rng.uniform(lo, hi) if hi > lo else size / 2.0
    out_centre = np.array([(p - 1) / 2.0, (p - 1) / 2.0])
    offset = centre - 0.5 - matrix @ out_centre
    return Affine(matrix, offset, (p, p))


def warp(array: np.ndarray, affine: Affine, *, order: int) -> np.ndarray:
    """Apply ``affine`` to a ``(y, x)`` array or to each plane of ``(n, y, x)``.

    ``order=0`` (nearest) for labels and masks, ``order=1`` (linear) for images; outside the
    source reads 0.
    """
    if array.ndim == 2:
        out = np.empty(affine.shape, dtype=array.dtype)
        ndi.affine_transform(
            array, affine.matrix, affine.offset, output_shape=affine.shape, output=out,
            order=order, mode="constant", cval=0, prefilter=False,
        )  # fmt: skip
        return out
    return np.stack([warp(plane, affine, order=order) for plane in array]) if len(array) else (
        np.zeros((0, *affine.shape), array.dtype)
    )


def _count_objects(labels: np.ndarray, min_size: int) -> int:
    counts = np.bincount(labels.ravel())
    return int(np.count_nonzero(counts[1:] >= min_size)) if counts.size > 1 else 0


def sample_patch(
    image: np.ndarray,
    labels: np.ndarray,
    masks: np.ndarray | None,
    patch_size: int,
    config: AugmentConfig,
    rng: np.random.Generator,
    *,
    min_objects: int = 1,
    min_object_size: int = 25,
    augment: bool = True,
) -> Patch:
    """Draw one augmented patch holding at least ``min_objects`` objects (if possible).

    Parameters
    ----------
    image : numpy.ndarray
        float32 ``(C, H, W)`` in 0–1.
    labels : numpy.ndarray
        Integer ``(H, W)`` label image.
    masks : numpy.ndarray or None
        bool ``(n, H, W)`` overlapping object masks (their union is ``labels > 0``).
    patch_size : int
    config : AugmentConfig
    rng : numpy.random.Generator
    min_objects, min_object_size : int
        Up to :data:`MAX_TRIES` patches are drawn until one holds ``min_objects`` objects of at
        least ``min_object_size`` pixels; otherwise the one with most objects is used.
    augment : bool
        Geometric and intensity augmentation (False for validation patches).

    Returns
    -------
    Patch
        Objects smaller than ``min_object_size`` inside the patch are removed from the labels
        and masks (they are too small to prompt reliably).
    """
    best: tuple[int, Affine, np.ndarray] | None = None
    for _ in range(MAX_TRIES):
        affine = random_affine(labels.shape, patch_size, config, rng, augment=augment)
        lab = warp(labels, affine, order=0)
        n = _count_objects(lab, min_object_size)
        if best is None or n > best[0]:
            best = (n, affine, lab)
        if n >= min_objects:
            break
    assert best is not None
    _, affine, lab = best
    img = warp(image, affine, order=1).astype(np.float32, copy=False)
    # drop objects too small to prompt
    counts = np.bincount(lab.ravel())
    small = np.flatnonzero(counts < min_object_size)
    small = small[small > 0]
    if small.size:
        lab = np.where(np.isin(lab, small), 0, lab)
    out_masks = None
    if masks is not None:
        # only the objects whose bounding boxes can reach the patch are warped
        warped = []
        for m in masks:
            wm = warp(m.view(np.uint8), affine, order=0).astype(bool)
            if np.count_nonzero(wm) >= min_object_size:
                warped.append(wm)
        out_masks = (
            np.stack(warped) if warped else np.zeros((0, patch_size, patch_size), bool)
        )
    if augment:
        img = augment_intensity(img, config, rng)
    return Patch(img, lab.astype(np.int32, copy=False), out_masks)


def augment_intensity(
    image: np.ndarray, config: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """Random contrast, brightness, inversion and Gaussian noise on a 0–1 image (returns a copy).

    The result is clipped to 0–1.
    """
    out = np.array(image, dtype=np.float32, copy=True)
    if config.contrast > 0:
        factor = float(rng.uniform(1 - config.contrast, 1 + config.contrast))
        mean = float(out.mean())
        out = (out - mean) * np.float32(factor) + np.float32(mean)
    if config.brightness > 0:
        out += np.float32(rng.uniform(-config.brightness, config.brightness))
    if config.invert_prob > 0 and rng.random() < config.invert_prob:
        out = 1.0 - out
    if config.noise_prob > 0 and rng.random() < config.noise_prob:
        sigma = float(rng.uniform(0, config.noise_std))
        out += rng.normal(0.0, sigma, out.shape).astype(np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    return out
