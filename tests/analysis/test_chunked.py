"""Chunk-by-chunk measurements equal the in-memory ones (objects crossing chunks combined)."""

from __future__ import annotations

import numpy as np
import pytest

from samscope.analysis import measure_objects, neighbour_counts
from samscope.analysis.chunked import chunked_neighbour_counts, measure_objects_chunked
from samscope.errors import InputError


def _labels_2d(seed: int = 0, shape=(150, 170)) -> np.ndarray:
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    field = ndi.gaussian_filter(rng.normal(size=shape), 4)
    lab, _ = ndi.label(field > 0.02)
    # non-consecutive ids, and one object with two parts far apart (one id, two chunks)
    lab = np.where(lab > 0, lab * 3 + 7, 0).astype(np.uint32)
    lab[2:6, 160:168] = lab.max() + 5
    lab[140:145, 3:9] = lab.max()
    return lab


@pytest.mark.parametrize("chunk", [(32, 48), (64, 64), (150, 170)])
def test_chunked_equals_in_memory_2d(chunk):
    lab = _labels_2d()
    rng = np.random.default_rng(1)
    img = rng.integers(0, 4000, size=(*lab.shape, 2)).astype(np.uint16)
    ref = measure_objects(lab, img, pixel_size_nm=(100, 125))
    got = measure_objects_chunked(lab, img, pixel_size_nm=(100, 125), chunk=chunk,
                                  neighbour_distance_px=2)
    assert len(ref) > 20 and len(got) == len(ref)
    for name in ref.names:
        if name == "solidity":
            assert np.isnan(got[name]).all()
            continue
        a, b = np.asarray(ref[name]), np.asarray(got[name])
        if a.dtype.kind in "iub":
            assert np.array_equal(a, b), name
        else:
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-9, err_msg=name)
    ids, counts = neighbour_counts(lab, distance_px=2)
    assert np.array_equal(ids, got["id"]) and np.array_equal(counts, got["n_neighbours"])
    # extra intensity statistics, straight from the pixels
    for k in (0, 5, len(ref) - 1):
        i = int(got["id"][k])
        pix = img[lab == i][:, 1].astype(np.float64)
        assert got["min_intensity_c1"][k] == pix.min()
        assert got["max_intensity_c1"][k] == pix.max()
        assert got["std_intensity_c1"][k] == pytest.approx(pix.std(), rel=1e-9)


@pytest.mark.filterwarnings("ignore")
def test_chunked_equals_in_memory_3d_and_zarr(tmp_path):
    zarr = pytest.importorskip("zarr")
    from scipy import ndimage as ndi

    rng = np.random.default_rng(2)
    field = ndi.gaussian_filter(rng.normal(size=(12, 40, 50)), 3)
    lab, _ = ndi.label(field > 0.03)
    lab = lab.astype(np.uint16)
    img = rng.random(lab.shape).astype(np.float32)
    arr = zarr.create_array(str(tmp_path / "lab.zarr"), shape=lab.shape, dtype=lab.dtype,
                            chunks=(5, 17, 30), zarr_format=2)
    arr[...] = lab
    ref = measure_objects(lab, img, pixel_size_nm=(300, 100, 100))
    got = measure_objects_chunked(arr, img, pixel_size_nm=(300, 100, 100))
    assert len(ref) > 5 and np.array_equal(ref["id"], got["id"])
    for name in ("volume_vox", "volume_um3", "equivalent_diameter_px", "centroid_z_px",
                 "centroid_y_um", "bbox_z0", "bbox_x1", "touches_border", "mean_intensity",
                 "integrated_intensity", "major_axis_px", "minor_axis_px", "major_axis_um",
                 "minor_axis_um"):
        np.testing.assert_allclose(np.asarray(got[name], np.float64),
                                   np.asarray(ref[name], np.float64), rtol=1e-6, atol=1e-6,
                                   err_msg=name)
    ids, counts = chunked_neighbour_counts(arr, distance_px=1.5)
    ref_ids, ref_counts = neighbour_counts(lab, distance_px=1.5)
    assert np.array_equal(ids, ref_ids) and np.array_equal(counts, ref_counts)


def test_chunked_bad_input():
    with pytest.raises(InputError, match="integer"):
        measure_objects_chunked(np.zeros((4, 4), np.float32) + 0.5)
    with pytest.raises(InputError, match="does not fit"):
        measure_objects_chunked(np.zeros((4, 4), np.uint8), np.zeros((5, 4)))
    empty = measure_objects_chunked(np.zeros((8, 8), np.uint8), chunk=(4, 4))
    assert len(empty) == 0 and "area_px" in empty
