"""Classical baselines: Otsu components and Otsu + watershed (samscope.instance.classical)."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.draw import disk

from samscope.errors import InputError
from samscope.instance.classical import (
    BASELINES,
    default_min_distance,
    otsu_components,
    otsu_foreground,
    otsu_watershed,
)

SHAPE = (128, 128)
#: Two overlapping discs (centres 26 px apart, radius 14) and one apart.
DISCS = (((40, 40), 14), ((40, 66), 14), ((95, 90), 12))


def discs_image(*, background=100.0, foreground=1000.0, noise=40.0, seed=0):
    """Float image of DISCS with Gaussian noise, and the disc masks."""
    rng = np.random.default_rng(seed)
    img = np.full(SHAPE, background, np.float64)
    masks = []
    for centre, radius in DISCS:
        mask = np.zeros(SHAPE, bool)
        mask[disk(centre, radius, shape=SHAPE)] = True
        img[mask] = foreground
        masks.append(mask)
    img += rng.normal(0.0, noise, SHAPE)
    return img, masks


def disc_ids(labels, masks):
    """The label covering most of each disc."""
    return [int(np.bincount(labels[m]).argmax()) for m in masks]


def test_components_merge_touching_discs_watershed_splits_them():
    img, masks = discs_image()
    comp = otsu_components(img)
    ws = otsu_watershed(img)
    assert comp.dtype == np.int32 and ws.dtype == np.int32
    assert comp.shape == ws.shape == SHAPE
    assert comp.max() == 2 and set(np.unique(comp)) == {0, 1, 2}
    a, b, c = disc_ids(comp, masks)
    assert a == b != c
    assert ws.max() == 3 and set(np.unique(ws)) == {0, 1, 2, 3}
    assert len(set(disc_ids(ws, masks))) == 3
    for mask, ident in zip(masks, disc_ids(ws, masks), strict=True):
        obj = ws == ident
        iou = (obj & mask).sum() / (obj | mask).sum()
        assert iou > 0.8


def test_uint16_with_large_offset_and_uint8_and_negative_floats():
    img, _ = discs_image()
    u16 = np.clip(img + 60000, 0, 65535).astype(np.uint16)
    assert u16.min() > 59000
    assert otsu_components(u16).max() == 2
    assert otsu_watershed(u16).max() == 3
    u8 = np.clip(img / 5, 0, 255).astype(np.uint8)
    assert otsu_watershed(u8).max() == 3
    assert otsu_watershed((img - 5000).astype(np.float32)).max() == 3


def test_input_not_modified():
    img, _ = discs_image()
    u16 = img.astype(np.uint16)
    before = u16.copy()
    otsu_watershed(u16)
    otsu_components(u16)
    np.testing.assert_array_equal(u16, before)


@pytest.mark.parametrize("fn", [otsu_components, otsu_watershed])
@pytest.mark.parametrize(
    "image",
    [
        np.zeros((32, 40), np.uint8),
        np.full((32, 40), 7, np.uint16),
        np.full((32, 40), -3.5, np.float32),
        np.zeros((0, 5), np.float32),
    ],
)
def test_constant_or_empty_image_gives_zero_labels(fn, image):
    out = fn(image)
    assert out.shape == image.shape and out.dtype == np.int32
    assert not out.any()


@pytest.mark.parametrize("fn", [otsu_components, otsu_watershed])
def test_nan_and_inf_are_input_errors_with_a_count(fn):
    img, _ = discs_image()
    img[3, 4] = np.nan
    img[5, 6] = np.inf
    with pytest.raises(InputError, match="2 NaN or infinite"):
        fn(img)


@pytest.mark.parametrize("fn", [otsu_components, otsu_watershed])
@pytest.mark.parametrize("shape", [(2, 32, 32), (32,), (32, 32, 3)])
def test_non_2d_input_is_an_input_error(fn, shape):
    with pytest.raises(InputError, match="2-D"):
        fn(np.ones(shape, np.float32))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"smoothing": -1.0}, "smoothing"),
        ({"smoothing": float("nan")}, "smoothing"),
        ({"min_size": -1}, "min_size"),
        ({"min_size": 2.5}, "min_size"),
        ({"low_percentile": 50, "high_percentile": 10}, "percentiles"),
    ],
)
def test_bad_options_are_input_errors(kwargs, match):
    img, _ = discs_image()
    for fn in BASELINES.values():
        with pytest.raises(InputError, match=match):
            fn(img, **kwargs)


def test_non_numeric_and_bad_min_distance_are_input_errors():
    with pytest.raises(InputError, match="numeric"):
        otsu_components(np.array([["a", "b"], ["c", "d"]]))
    img, _ = discs_image()
    with pytest.raises(InputError, match="min_distance"):
        otsu_watershed(img, min_distance=0)


def test_min_size_drops_small_objects():
    img, _ = discs_image(noise=0.0)
    img[110:113, 10:13] = 1000.0  # a 3x3 speck
    assert otsu_components(img, min_size=0).max() == 3
    assert otsu_components(img, min_size=50).max() == 2
    assert otsu_watershed(img, min_size=50).max() == 3


def test_small_holes_filled_large_ones_kept():
    img = np.zeros((80, 80), np.float32)
    img[10:40, 10:40] = 1.0
    img[20:22, 20:22] = 0.0  # 4-pixel hole
    img[45:75, 45:75] = 1.0
    img[52:68, 52:68] = 0.0  # 256-pixel hole
    fg = otsu_foreground(img, smoothing=0, min_size=10)
    assert fg[20:22, 20:22].all()
    assert not fg[55:65, 55:65].any()


def test_min_distance_rule_and_override():
    img, _ = discs_image()
    comp = otsu_components(img)
    areas = np.bincount(comp.ravel())[1:]
    expected = max(3, round(0.25 * np.median(np.sqrt(4 * areas / np.pi))))
    assert default_min_distance(comp) == expected
    assert default_min_distance(np.zeros((4, 4), int)) == 3
    # seeds further apart than the two touching discs' centres: no split
    assert otsu_watershed(img, min_distance=40).max() == 2


def test_baselines_registry():
    assert BASELINES == {"otsu_watershed": otsu_watershed, "otsu_components": otsu_components}
