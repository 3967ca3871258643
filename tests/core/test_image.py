import numpy as np
import pytest

from samscope.errors import InputError
from samscope.image import Transform, normalize_percentile, prepare_input, to_rgb


def test_normalize_uint16_high_offset_is_not_cast():
    img = np.array([[33000, 34000], [35000, 37000]], np.uint16)
    out = normalize_percentile(img, low=0, high=100)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0, 0.25], [0.5, 1.0]])
    assert img[0, 0] == 33000  # input untouched


def test_normalize_constant_and_bad_input():
    assert not normalize_percentile(np.full((5, 5), 7, np.uint8)).any()
    with pytest.raises(InputError, match="NaN"):
        normalize_percentile(np.array([[1.0, np.nan]]))
    with pytest.raises(InputError, match="empty"):
        normalize_percentile(np.zeros((0, 4)))
    with pytest.raises(InputError, match="percentiles"):
        normalize_percentile(np.ones((2, 2)), low=50, high=10)


def test_transform_points_boxes_roundtrip():
    t = Transform((300, 200), 1024)
    assert t.resized_shape == (1024, 683)
    pts = np.array([[0.0, 0.0], [299.0, 199.0], [12.5, 77.25]])
    back = t.points_from_input(t.points_to_input(pts))
    np.testing.assert_allclose(back, pts, atol=1e-9)
    xy = t.points_to_input(pts)
    assert xy[1, 0] == pytest.approx(199 * 683 / 200) and xy[1, 1] == pytest.approx(299 * 1024 / 300)
    boxes = np.array([[10, 20, 50, 80]])
    np.testing.assert_allclose(t.boxes_from_input(t.boxes_to_input(boxes)), boxes, atol=1e-9)


def test_interpolation_matrices_reproduce_constant_and_ramp():
    t = Transform((120, 90), 256)
    ay, ax = t.interpolation_matrices(64)
    np.testing.assert_allclose(ay.sum(1), 1, atol=1e-6)
    ramp = np.tile(np.arange(64, dtype=np.float32), (64, 1))  # increases along x
    up = ay @ ramp @ ax.T
    assert up.shape == (120, 90)
    assert np.all(np.diff(up[0]) >= -1e-5)


def test_prepare_input_layout_and_padding():
    img = np.random.default_rng(0).random((100, 50)).astype(np.float32)
    px, t = prepare_input(img, 256)
    assert px.shape == (3, 256, 256) and px.dtype == np.float32
    assert t.resized_shape == (256, 128)
    assert np.all(px[:, :, 128:] == 0)  # padding after standardisation
    assert px[:, :, :128].std() > 0.1


def test_prepare_input_rejects_stacks_and_to_rgb_errors():
    with pytest.raises(InputError, match="2-D image"):
        prepare_input(np.zeros((4, 5, 6, 7)), 64)
    with pytest.raises(InputError):
        to_rgb(np.zeros((5, 5, 7)))
