"""Augmentation keeps image, labels and masks aligned."""

from __future__ import annotations

import numpy as np
import pytest

from samscope.training.augment import augment_intensity, random_affine, sample_patch, warp
from samscope.training.config import AugmentConfig


def arrow(size=96):
    """An asymmetric object (an L shape) with its own intensity, plus a square elsewhere."""
    image = np.zeros((1, size, size), np.float32)
    labels = np.zeros((size, size), np.int32)
    labels[30:70, 30:40] = 1
    labels[60:70, 30:60] = 1  # the foot of the L
    labels[10:20, 70:85] = 2
    image[0][labels == 1] = 1.0
    image[0][labels == 2] = 0.5
    return image, labels


@pytest.mark.parametrize("seed", range(8))
def test_geometry_moves_image_and_labels_together(seed):
    image, labels = arrow()
    masks = np.stack([labels == 1, labels == 2])
    cfg = AugmentConfig(rotation="any", scale_min=0.8, scale_max=1.2, brightness=0, contrast=0)
    patch = sample_patch(image, labels, masks, 64, cfg, np.random.default_rng(seed),
                         min_objects=1, min_object_size=5)
    img, lab = patch.image[0], patch.labels
    for obj, value in ((1, 1.0), (2, 0.5)):
        inside = lab == obj
        if inside.sum() < 20:
            continue
        # interior of the warped label (away from interpolated edges) has the object's intensity
        from scipy import ndimage as ndi

        core = ndi.binary_erosion(inside, iterations=2)
        if core.any():
            assert np.allclose(img[core], value, atol=0.05)
    assert (img[lab == 0] < 0.95).mean() > 0.9  # background stays dark
    # masks warp with the labels
    for m in patch.masks:
        ids = np.unique(lab[m])
        assert len(ids) == 1 and ids[0] in (1, 2)
        assert np.array_equal(m, lab == ids[0])  # same object, same pixels


def test_rotation_by_90_degrees_is_exact():
    image, labels = arrow()
    rng = np.random.default_rng(3)
    cfg = AugmentConfig(rotation="90", scale_min=1, scale_max=1, flip=False)
    for _ in range(10):
        aff = random_affine(labels.shape, 96, cfg, rng)
        lab = warp(labels, aff, order=0)
        rotated = [np.rot90(labels, k) for k in range(4)]
        assert any(np.array_equal(lab, r) for r in rotated)
        img = warp(image[0], aff, order=1)
        assert np.allclose(img[lab == 1], 1.0) and np.allclose(img[lab == 0], 0.0)


def test_identity_crop_without_augmentation():
    image, labels = arrow()
    patch = sample_patch(image, labels, None, 96, AugmentConfig(), np.random.default_rng(0),
                         augment=False, min_object_size=1)
    assert np.array_equal(patch.labels, labels)
    assert np.allclose(patch.image, image)


def test_patch_has_minimum_objects_and_drops_small_ones():
    image, labels = arrow(96)
    labels[90:92, 90:92] = 3  # 4 px: too small to prompt
    patch = sample_patch(image, labels, None, 96, AugmentConfig(), np.random.default_rng(0),
                         augment=False, min_objects=2, min_object_size=25)
    assert set(np.unique(patch.labels)) == {0, 1, 2}


def test_intensity_augmentation_touches_the_image_only():
    image, _ = arrow()
    cfg = AugmentConfig(brightness=0.1, contrast=0.2, invert_prob=1.0, noise_prob=1.0)
    out = augment_intensity(image, cfg, np.random.default_rng(0))
    assert out.shape == image.shape and out.min() >= 0 and out.max() <= 1
    assert out[0][30:40, 33].mean() < out[0][0:5, 0:5].mean()  # inverted: object darker
    assert image.max() == 1.0  # input untouched
