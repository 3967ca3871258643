"""The mitochondria simulator of seed 000 §3.1: image formation, SBR, ground truth, morphology."""

import dataclasses
import time

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import regionprops

from samscope.errors import InputError
from samscope.simulate import MitochondriaConfig, mitochondria, stream
from samscope.simulate.optics import OpticsConfig, psf_stack


@pytest.fixture(scope="module")
def field():
    """One default 512² field (4×4 crops of 128², Table 1 parameters)."""
    return mitochondria(1, rng=7)[0]


def test_types_and_ground_truth_are_consistent(field):
    s = field
    assert s.image.dtype == np.float32 and s.image.shape == (512, 512)
    assert s.labels.dtype == np.uint16 and s.labels.shape == (512, 512)
    assert s.masks.dtype == bool and s.masks.shape[1:] == (512, 512)
    n = s.masks.shape[0]
    # 4–16 per crop, 16 crops; a few may vanish when cut by their crop
    assert 16 * 4 * 0.8 <= n <= 16 * 16
    assert s.params["n_objects"] == n == len(s.params["objects"]["length_nm"])
    assert (s.foreground == s.masks.any(axis=0)).all()
    assert ((s.labels > 0) == s.foreground).all()
    # every labelled pixel lies in the mask of its label
    ys, xs = np.nonzero(s.labels)
    assert s.masks[s.labels[ys, xs].astype(int) - 1, ys, xs].all()
    assert s.masks.reshape(n, -1).any(axis=1).all()  # no empty mask
    assert s.pixel_size_nm == 80.0
    assert (s.image >= 0).all() and np.allclose(s.image, np.round(s.image))  # photon counts


def test_overlaps_are_kept_and_labels_follow_the_brightest(field):
    s = mitochondria(1, (256, 256), rng=1, n_per_crop=(16, 16))[0]
    shared = s.masks.sum(axis=0) >= 2
    assert shared.sum() > 20  # crossing mitochondria share pixels
    ys, xs = np.nonzero(shared)
    owners = s.labels[ys, xs].astype(int) - 1
    assert s.masks[owners, ys, xs].all()


def _independent_sbr(image: np.ndarray, masks: np.ndarray) -> float:
    """SBR as documented: (mean over the foreground - background) / background.

    The background is estimated from pixels farther than 20 px from every mask (beyond the PSF).
    """
    fg = masks.any(axis=0)
    far = ndi.distance_transform_edt(~fg) > 20
    b = image[far].mean()
    return float((image[fg].mean() - b) / b)


@pytest.mark.parametrize("sbr", [2.0, 3.5, 6.0])
def test_requested_sbr_is_measured_on_the_output(sbr):
    for s in mitochondria(2, rng=11, sbr=(sbr, sbr)):
        assert s.params["sbr"] == sbr
        measured = _independent_sbr(s.image, s.masks)
        assert abs(measured - sbr) / sbr < 0.10, (sbr, measured)


def test_sbr_is_drawn_from_the_range():
    values = [s.params["sbr"] for s in mitochondria(6, (128, 128), rng=3)]
    assert all(2 <= v <= 6 for v in values) and len(set(values)) == 6


def test_deterministic_per_seed_and_index():
    a = mitochondria(3, (128, 256), rng=5)
    b = mitochondria(3, (128, 256), rng=5)
    c = mitochondria(1, (128, 256), rng=6)[0]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.masks, y.masks)
    assert not np.array_equal(a[0].image, c.image)
    third = next(stream("mitochondria", seed=5, shape=(128, 256), start=2))
    assert np.array_equal(third.image, a[2].image) and np.array_equal(third.labels, a[2].labels)


def test_crops_are_imaged_separately_and_seamless_is_not():
    crops = mitochondria(1, (256, 256), rng=2, n_per_crop=(16, 16))[0]
    seamless = mitochondria(1, (256, 256), rng=2, n_per_crop=(16, 16), tiling="seamless")[0]

    def crossing(masks):
        left = masks[:, :, 126:128].any(axis=(1, 2))
        right = masks[:, :, 128:130].any(axis=(1, 2))
        return int((left & right).sum())

    assert crossing(crops.masks) == 0  # each object is cut at its crop's border
    assert crossing(seamless.masks) > 0


def test_morphology_parameters_make_dots_or_rods():
    dots = mitochondria(1, (256, 256), rng=4, length_nm=(200, 500), width_nm=(300, 500))[0]
    rods = mitochondria(1, (256, 256), rng=4, length_nm=(2000, 4000), bezier_points=2)[0]

    def shape_stats(masks):
        props = [regionprops(m.astype(np.uint8))[0] for m in masks]
        area = np.array([p.area for p in props])
        elong = np.array([p.axis_major_length / max(p.axis_minor_length, 1) for p in props])
        return np.median(area), np.median(elong)

    dot_area, dot_elong = shape_stats(dots.masks)
    rod_area, rod_elong = shape_stats(rods.masks)
    assert dot_elong < 1.6 < 3.0 < rod_elong
    assert rod_area > 3 * dot_area
    assert (dots.masks.sum(axis=(1, 2)) <= 200).mean() > 0.95  # dots by seed 000's 200-px rule


def test_psf_matches_the_objective():
    psf, zero = psf_stack(OpticsConfig())
    plane = psf[zero]
    assert plane.sum() == pytest.approx(1.0)
    profile = plane[plane.shape[0] // 2]
    fwhm_px = (profile >= profile.max() / 2).sum()
    # Abbe/Rayleigh: lateral FWHM ≈ 0.51 λ / NA = 237 nm ≈ 3 pixels of 80 nm
    assert fwhm_px == 3
    assert np.argmax(psf.max(axis=(1, 2))) == zero  # best focus at zero defocus


@pytest.mark.parametrize(
    "bad",
    [
        {"length_nm": (-100, 500)},
        {"width_nm": (0, 300)},
        {"length_nm": (2500, 500)},
        {"sbr": (0, 3)},
        {"sbr": (-1, 2)},
        {"n_per_crop": (0, 0)},
        {"n_per_crop": (8, 4)},
        {"bezier_points": 1},
        {"tiling": "mosaic"},
        {"mask_threshold": 1.5},
        {"no_such_field": 1},
    ],
)
def test_impossible_parameters_are_rejected_before_any_work(bad):
    t = time.perf_counter()
    with pytest.raises(InputError):
        mitochondria(1000, (4096, 4096), rng=0, **bad)
    assert time.perf_counter() - t < 0.5


def test_bad_calls_are_rejected():
    with pytest.raises(InputError, match="positive integer"):
        mitochondria(0)
    with pytest.raises(InputError, match="shape"):
        mitochondria(1, (-5, 10))
    with pytest.raises(InputError, match="na"):
        OpticsConfig(na=1.6)
    with pytest.raises(InputError, match="MitochondriaConfig"):
        mitochondria(1, config=OpticsConfig())
    cfg = MitochondriaConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.sbr = (1, 2)
