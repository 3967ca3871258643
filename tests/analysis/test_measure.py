"""Per-object measures: equal to scikit-image's regionprops, physical units, masks, 3-D."""

import math

import numpy as np
import pytest
from skimage.measure import regionprops, regionprops_table
from skimage.segmentation import watershed

from samscope.analysis import measure_masks, measure_objects
from samscope.errors import InputError

PAIRS = {
    "area_px": "area",
    "perimeter_px": "perimeter",
    "major_axis_px": "axis_major_length",
    "minor_axis_px": "axis_minor_length",
    "eccentricity": "eccentricity",
    "solidity": "solidity",
    "equivalent_diameter_px": "equivalent_diameter_area",
    "centroid_y_px": "centroid-0",
    "centroid_x_px": "centroid-1",
    "bbox_y0": "bbox-0",
    "bbox_x0": "bbox-1",
    "bbox_y1": "bbox-2",
    "bbox_x1": "bbox-3",
    "mean_intensity": "intensity_mean",
}


def blobs(seed=0, shape=(160, 200), n=40):
    """Touching, irregular objects (watershed of random seeds), some cut by the border."""
    rng = np.random.default_rng(seed)
    fg = rng.random(shape) < 0.55
    from scipy import ndimage as ndi

    fg = ndi.binary_opening(ndi.gaussian_filter(fg.astype(float), 3) > 0.5, iterations=1)
    markers = np.zeros(shape, np.int32)
    pts = rng.integers(0, shape, size=(n, 2))
    markers[pts[:, 0], pts[:, 1]] = np.arange(1, n + 1)
    lab = watershed(-ndi.distance_transform_edt(fg), markers, mask=fg)
    return lab.astype(np.uint16), rng.random(shape).astype(np.float32) * 100


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equal_to_regionprops(seed):
    lab, img = blobs(seed)
    # ids with gaps, one single pixel, one line and one ring (a hole) as well
    lab = np.where(lab > 0, lab * 3 + 7, 0).astype(np.uint16)
    lab[0, 0] = 500
    lab[150:152, 10:40] = 501
    lab[100:120, 150:170] = 502
    lab[105:115, 155:165] = 0
    t = measure_objects(lab, img)
    ref = regionprops_table(lab, img, properties=["label", *{v.split("-")[0] for v in PAIRS.values()}])
    assert t["id"].tolist() == ref["label"].tolist()
    for ours, theirs in PAIRS.items():
        rtol = 1e-5 if ours == "mean_intensity" else 1e-9  # skimage sums float32 in float32
        np.testing.assert_allclose(t[ours], ref[theirs], rtol=rtol, atol=1e-9, err_msg=ours)
    np.testing.assert_allclose(t["integrated_intensity"], ref["intensity_mean"] * ref["area"],
                               rtol=1e-6)
    border = (ref["bbox-0"] == 0) | (ref["bbox-1"] == 0) | (ref["bbox-2"] == lab.shape[0]) | (
        ref["bbox-3"] == lab.shape[1])
    assert t["touches_border"].tolist() == border.tolist()
    ratio = np.where(ref["axis_minor_length"] > 0,
                     ref["axis_major_length"] / np.maximum(ref["axis_minor_length"], 1e-300),
                     np.nan)
    np.testing.assert_allclose(t["aspect_ratio"], ratio, rtol=1e-9)
    assert np.isnan(t["aspect_ratio"][t["id"] == 500])  # a single pixel has no minor axis


def test_physical_units_scale_with_pixel_size():
    lab, _ = blobs(3)
    px = measure_objects(lab)
    assert np.isnan(px["area_um2"]).all() and np.isnan(px["perimeter_um"]).all()
    um = measure_objects(lab, pixel_size_nm=250.0)
    np.testing.assert_allclose(um["area_um2"], px["area_px"] * 0.0625)
    np.testing.assert_allclose(um["perimeter_um"], px["perimeter_px"] * 0.25)
    np.testing.assert_allclose(um["major_axis_um"], px["major_axis_px"] * 0.25)
    np.testing.assert_allclose(um["centroid_x_um"], px["centroid_x_px"] * 0.25)
    np.testing.assert_allclose(um["equivalent_diameter_um"], px["equivalent_diameter_px"] * 0.25)
    assert um.units["area_um2"] == "µm²"


def test_anisotropic_pixels_use_physical_moments():
    lab, _ = blobs(4)
    t = measure_objects(lab, pixel_size_nm=(200.0, 100.0))
    ref = regionprops_table(lab, spacing=(0.2, 0.1), properties=["label", "area",
                                                                 "axis_major_length",
                                                                 "axis_minor_length"])
    np.testing.assert_allclose(t["area_um2"], ref["area"])
    np.testing.assert_allclose(t["major_axis_um"], ref["axis_major_length"], rtol=1e-9)
    np.testing.assert_allclose(t["minor_axis_um"], ref["axis_minor_length"], rtol=1e-9)


def test_channels_give_per_channel_intensities():
    lab, img = blobs(5)
    rgb = np.stack([img, 2 * img], axis=-1)
    t = measure_objects(lab, rgb)
    np.testing.assert_allclose(t["mean_intensity_c1"], 2 * t["mean_intensity_c0"], rtol=1e-6)


def test_overlapping_masks_are_measured_whole():
    rng = np.random.default_rng(7)
    h, w = 90, 120
    masks = np.zeros((12, h, w), bool)
    yy, xx = np.mgrid[:h, :w]
    for k in range(12):
        cy, cx, ry, rx = rng.uniform(10, 80), rng.uniform(10, 110), *rng.uniform(3, 14, 2)
        masks[k] = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    masks[5] = False  # an empty mask is left out
    assert (masks.sum(0) > 1).any()  # they overlap
    img = rng.random((h, w))
    t = measure_masks(masks, img, pixel_size_nm=100)
    kept = [k for k in range(12) if masks[k].any()]
    assert t["id"].tolist() == [k + 1 for k in kept]
    for row, k in zip(t.rows(), kept, strict=True):
        (r,) = regionprops(masks[k].astype(np.uint8), img)
        assert row["area_px"] == r.area
        assert row["perimeter_px"] == pytest.approx(r.perimeter)
        assert row["solidity"] == pytest.approx(r.solidity)
        assert row["major_axis_px"] == pytest.approx(r.axis_major_length)
        assert row["mean_intensity"] == pytest.approx(r.intensity_mean)
        assert row["area_um2"] == pytest.approx(r.area * 0.01)
    from samscope.instance.instances import CroppedMasks

    cropped = measure_masks(CroppedMasks.from_dense(masks), img, pixel_size_nm=100)
    np.testing.assert_allclose(cropped["perimeter_px"], t["perimeter_px"])


def test_empty_labels_give_an_empty_table():
    t = measure_objects(np.zeros((30, 40), np.uint16), np.ones((30, 40)))
    assert len(t) == 0 and "area_px" in t and "solidity" in t
    assert len(measure_masks(np.zeros((0, 30, 40), bool))) == 0


def test_volumes_and_surfaces_in_3d():
    lab = np.zeros((20, 30, 30), np.uint16)
    lab[2:12, 5:15, 5:15] = 1  # a 10³ cube
    zz, yy, xx = np.mgrid[:20, :30, :30]
    lab[((zz - 10) ** 2 + (yy - 20) ** 2 + (xx - 22) ** 2) <= 36] = 2  # a ball of radius 6
    t = measure_objects(lab, pixel_size_nm=(500.0, 250.0, 250.0))
    assert t["volume_vox"].tolist() == [1000, int((lab == 2).sum())]
    assert t["volume_um3"][0] == pytest.approx(1000 * 0.5 * 0.25 * 0.25)
    # marching cubes at the border of the voxels: about the cube's 600 faces (corners cut)
    assert 520 < t["surface_area_vox"][0] < 600
    assert t["surface_area_vox"][1] == pytest.approx(4 * math.pi * 6.5**2, rel=0.1)
    assert t["surface_area_um2"][0] < t["surface_area_vox"][0] * 0.5 * 0.25
    assert "area_px" not in t and "centroid_z_um" in t


@pytest.mark.parametrize(
    ("labels", "kwargs", "match"),
    [
        (np.full((5, 5), 0.5), {}, "integer"),
        (-np.ones((5, 5), np.int32), {}, "negative"),
        (np.zeros((2, 2, 2, 2), np.uint8), {}, "2-D"),
        (np.zeros((5, 5), np.uint8), {"image": np.zeros((4, 5))}, "does not fit"),
        (np.zeros((5, 5), np.uint8), {"pixel_size_nm": (1, 2, 3)}, "values"),
        (np.zeros((5, 5), np.uint8), {"pixel_size_nm": -80}, "positive"),
    ],
)
def test_bad_input_is_a_clear_error(labels, kwargs, match):
    with pytest.raises(InputError, match=match):
        measure_objects(labels, **kwargs)
