"""samscope.io: reading TIFF / PNG / npy, axes, pixel size, validation helpers, list_images."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from samscope.errors import InputError
from samscope.io import (
    ImageData,
    LazyView,
    as_float,
    is_constant,
    list_images,
    move_axes,
    read_image,
    read_labels,
    to_nm,
    validate_image,
)

HELA = Path("/work/shared/data/hela/images.tif")
RNG = np.random.default_rng(0)


def _u16(*shape: int) -> np.ndarray:
    return RNG.integers(0, 60000, shape, dtype=np.uint16)


# ---------------------------------------------------------------- ImageData and axis helpers


def test_imagedata_properties():
    img = ImageData(np.zeros((3, 4, 5, 2), np.uint8), "ZYXC", pixel_size=(500.0, 100.0, 100.0))
    assert img.ndim_spatial == 3
    assert img.spatial_axes == "ZYX"
    assert img.shape_of("C") == 2 and img.shape_of("z") == 3 and img.shape_of("T") == 1
    assert not img.is_rgb and not img.is_lazy


@pytest.mark.parametrize(
    ("axes", "shape", "match"),
    [
        ("YXZ", (2, 3, 4), "order"),  # valid letters, non-canonical order
        ("ZYX", (3, 4), "2-D"),
        ("ZZX", (2, 3, 4), "repeat"),
        ("ZYQ", (2, 3, 4), "unknown axis letter"),
        ("TZY", (2, 3, 4), "'Y' and 'X'"),
    ],
)
def test_imagedata_rejects_bad_axes(axes, shape, match):
    with pytest.raises(InputError, match=match):
        ImageData(np.zeros(shape), axes)


def test_imagedata_pixel_size_length():
    with pytest.raises(InputError, match="expected 3"):
        ImageData(np.zeros((2, 3, 4)), "ZYX", pixel_size=(1.0, 1.0))


def test_move_axes_inserts_reorders_and_drops():
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    out = move_axes(a, "TYX", "TZYXC")
    assert out.shape == (2, 1, 3, 4, 1)
    assert np.shares_memory(out, a)
    back = move_axes(out, "TZYXC", "TYX")
    np.testing.assert_array_equal(back, a)
    np.testing.assert_array_equal(move_axes(a, "CYX", "YXC"), np.moveaxis(a, 0, -1))
    with pytest.raises(InputError, match="cannot drop axis 'T' of size 2"):
        move_axes(a, "TYX", "YX")


def test_to_nm_units():
    assert to_nm(0.65, "µm") == 650.0
    assert to_nm(0.65, "\\u00B5m") == 650.0  # ImageJ's escaped micro sign
    assert to_nm(2, "micron") == 2000.0
    assert to_nm(5, "nm") == 5.0
    assert to_nm(1, "mm") == 1e6
    assert to_nm(1, "pixel") is None
    assert to_nm(1, None) is None
    assert to_nm(0, "um") is None


# ---------------------------------------------------------------- validate_image & friends


def test_validate_image_nan_message_counts():
    a = np.ones((8, 8), np.float32)
    a[0, :3] = np.nan
    a[1, 0] = np.inf
    with pytest.raises(InputError, match=r"contains 3 NaN and 1 infinite value\(s\) out of 64"):
        validate_image(a, name="cells.tif")
    with pytest.raises(InputError, match="all 4 values are NaN"):
        validate_image(np.full((2, 2), np.nan))


def test_validate_image_empty_complex_and_dimensionality():
    with pytest.raises(InputError, match=r"empty: axis 0 \(Y\) has size 0"):
        validate_image(np.zeros((0, 5)), axes="YX")
    with pytest.raises(InputError, match="complex"):
        validate_image(np.zeros((4, 4), complex))
    with pytest.raises(InputError, match=r"expected a 2-D image \(Y, X\).*got shape \(3, 4, 5\)"):
        validate_image(np.zeros((3, 4, 5)), spatial_ndim=2)
    validate_image(np.zeros((4, 5, 3), np.uint8), spatial_ndim=2)  # RGB is 2-D
    with pytest.raises(InputError, match="expected 3 spatial axes"):
        validate_image(np.zeros((4, 5)), axes="YX", spatial_ndim=3)
    img = ImageData(np.zeros((2, 4, 5), np.uint16), "ZYX", path=Path("vol.tif"))
    validate_image(img, spatial_ndim=3)
    validate_image(np.zeros((4, 4)))  # constant is fine


def test_is_constant_and_as_float():
    assert is_constant(np.full((3, 3), 7, np.uint16))
    assert not is_constant(np.eye(3))
    assert is_constant(np.array([[1.0, np.nan], [1.0, 1.0]]))
    u16 = np.array([[0, 65535], [300, 1]], np.uint16)
    f = as_float(u16)
    assert f.dtype == np.float32 and f.max() == 65535.0 and f[1, 0] == 300.0  # no wrap-around
    same = np.zeros((2, 2), np.float32)
    assert as_float(same) is same
    with pytest.raises(InputError, match="float32"):
        as_float(np.array([1e300, 0.0]))


# ---------------------------------------------------------------- TIFF reading


def test_read_2d_and_plain_stack_default_axes(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", _u16(10, 12), metadata=None)
    tifffile.imwrite(tmp_path / "b.tif", _u16(5, 10, 12), metadata=None)
    a, b = read_image(tmp_path / "a.tif"), read_image(tmp_path / "b.tif")
    assert (a.axes, a.data.shape, a.data.dtype) == ("YX", (10, 12), np.uint16)
    assert (b.axes, b.data.shape) == ("ZYX", (5, 10, 12))
    assert a.pixel_size is None and b.pixel_size is None  # no guessing
    assert a.path == tmp_path / "a.tif"


def test_read_time_series_from_metadata(tmp_path):
    data = _u16(4, 10, 12)
    tifffile.imwrite(tmp_path / "t.tif", data, imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(tmp_path / "s.tif", data, photometric="minisblack",
                     metadata={"axes": "TYX"})  # tifffile 'shaped'
    for name in ("t.tif", "s.tif"):
        img = read_image(tmp_path / name)
        assert img.axes == "TYX"
        np.testing.assert_array_equal(img.data, data)


def test_read_imagej_hyperstack_channels_last_and_pixel_size(tmp_path):
    data = _u16(3, 4, 2, 10, 12)  # ImageJ order TZCYX
    tifffile.imwrite(tmp_path / "h.tif", data, imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                     metadata={"axes": "TZCYX", "spacing": 2.0, "unit": "micron"})
    img = read_image(tmp_path / "h.tif")
    assert img.axes == "TZYXC"
    np.testing.assert_array_equal(img.data, np.moveaxis(data, 2, -1))
    assert img.pixel_size == pytest.approx((2000.0, 650.0, 650.0))
    one = read_image(tmp_path / "h.tif", channel=1)
    assert one.axes == "TZYX"
    np.testing.assert_array_equal(one.data, data[:, :, 1])


def test_read_imagej_without_spacing_gives_nan_z(tmp_path):
    tifffile.imwrite(tmp_path / "z.tif", _u16(3, 8, 8), imagej=True, resolution=(10, 10),
                     metadata={"axes": "ZYX", "unit": "um"})
    z, y, x = read_image(tmp_path / "z.tif").pixel_size
    assert np.isnan(z) and (y, x) == (100.0, 100.0)


def test_read_ome_tiff_pixel_size_units(tmp_path):
    data = _u16(2, 3, 10, 12)
    tifffile.imwrite(tmp_path / "o.ome.tif", data, ome=True, metadata={
        "axes": "CZYX", "PhysicalSizeX": 0.1, "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": 0.2, "PhysicalSizeYUnit": "µm", "PhysicalSizeZ": 0.5,
        "PhysicalSizeZUnit": "µm"})
    img = read_image(tmp_path / "o.ome.tif")
    assert img.axes == "ZYXC"
    assert img.pixel_size == pytest.approx((500.0, 200.0, 100.0))
    np.testing.assert_array_equal(img.data, np.moveaxis(data, 0, -1))
    tifffile.imwrite(tmp_path / "nm.ome.tif", _u16(10, 12), ome=True, metadata={
        "axes": "YX", "PhysicalSizeX": 80, "PhysicalSizeXUnit": "nm",
        "PhysicalSizeY": 80, "PhysicalSizeYUnit": "nm"})
    assert read_image(tmp_path / "nm.ome.tif").pixel_size == (80.0, 80.0)


def test_plain_tiff_resolution_tags(tmp_path):
    # 10000 px/cm = 1 µm per pixel; 72 dpi is a screen setting and ignored
    tifffile.imwrite(tmp_path / "cm.tif", _u16(8, 8), resolution=(10000, 10000),
                     resolutionunit="CENTIMETER")
    tifffile.imwrite(tmp_path / "dpi.tif", _u16(8, 8), resolution=(72, 72),
                     resolutionunit="INCH")
    assert read_image(tmp_path / "cm.tif").pixel_size == (1000.0, 1000.0)
    assert read_image(tmp_path / "dpi.tif").pixel_size is None


def test_read_rgb_tiff_and_yxc_default(tmp_path):
    rgb = RNG.integers(0, 255, (10, 12, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    img = read_image(tmp_path / "rgb.tif")
    assert img.axes == "YXC" and img.is_rgb
    np.testing.assert_array_equal(img.data, rgb)
    np.save(tmp_path / "rgb.npy", rgb)
    assert read_image(tmp_path / "rgb.npy").axes == "YXC"
    np.save(tmp_path / "vol.npy", rgb.astype(np.uint16))  # uint16 last-dim 3 is a stack
    assert read_image(tmp_path / "vol.npy").axes == "ZYX"


def test_axes_override_and_its_validation(tmp_path):
    data = _u16(5, 10, 12)
    tifffile.imwrite(tmp_path / "s.tif", data, metadata=None)
    img = read_image(tmp_path / "s.tif", axes="tyx")
    assert img.axes == "TYX"
    img = read_image(tmp_path / "s.tif", axes="YXC")
    assert img.axes == "YXC" and img.data.shape == (5, 10, 12)
    with pytest.raises(InputError, match=r"s\.tif.*'ZYXC' name 4 dimension\(s\).*\(5, 10, 12\)"):
        read_image(tmp_path / "s.tif", axes="ZYXC")
    with pytest.raises(InputError, match="s.tif.*must contain both 'Y' and 'X'"):
        read_image(tmp_path / "s.tif", axes="TZY")
    with pytest.raises(InputError, match="unknown axis letter"):
        read_image(tmp_path / "s.tif", axes="QYX")
    with pytest.raises(InputError, match="repeat"):
        read_image(tmp_path / "s.tif", axes="YYX")


def test_ambiguous_4d_needs_axes(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 3, 4, 5), np.uint16))
    with pytest.raises(InputError, match=r"a\.npy.*4-D.*pass axes="):
        read_image(tmp_path / "a.npy")
    assert read_image(tmp_path / "a.npy", axes="TZYX").axes == "TZYX"


def test_channel_errors(tmp_path):
    tifffile.imwrite(tmp_path / "g.tif", _u16(8, 8))
    with pytest.raises(InputError, match="no channel axis"):
        read_image(tmp_path / "g.tif", channel=0)
    rgb = np.zeros((8, 8, 3), np.uint8)
    tifffile.imwrite(tmp_path / "c.tif", rgb, photometric="rgb")
    with pytest.raises(InputError, match=r"channel=3 is out of range; the C axis has 3"):
        read_image(tmp_path / "c.tif", channel=3)


def test_tiff_series_key(tmp_path):
    with tifffile.TiffWriter(tmp_path / "multi.tif") as tw:
        tw.write(_u16(8, 8), metadata={"axes": "YX"})
        tw.write(np.full((4, 6), 3, np.uint16), metadata={"axes": "YX"})
    assert read_image(tmp_path / "multi.tif").data.shape == (8, 8)
    assert read_image(tmp_path / "multi.tif", key="1").data.shape == (4, 6)
    with pytest.raises(InputError, match=r"series number 0\.\.1"):
        read_image(tmp_path / "multi.tif", key="5")


def test_bool_npy_becomes_uint8(tmp_path):
    np.save(tmp_path / "m.npy", np.eye(4, dtype=bool))
    img = read_image(tmp_path / "m.npy")
    assert img.data.dtype == np.uint8 and img.data.sum() == 4


# ---------------------------------------------------------------- errors naming the file


def test_missing_unknown_corrupt_empty(tmp_path):
    with pytest.raises(InputError, match="no such file: .*nope.tif"):
        read_image(tmp_path / "nope.tif")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"notes\.txt.*unknown image format '\.txt'.*supported"):
        read_image(tmp_path / "notes.txt")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00" + b"garbage" * 20)
    with pytest.raises(InputError, match=r"bad\.tif.*corrupted"):
        read_image(tmp_path / "bad.tif")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 40)
    with pytest.raises(InputError, match=r"bad\.png.*corrupted"):
        read_image(tmp_path / "bad.png")
    good = tmp_path / "cut.tif"
    tifffile.imwrite(good, _u16(64, 64), compression="zlib")
    good.write_bytes(good.read_bytes()[:300])
    with pytest.raises(InputError, match=r"cut\.tif.*corrupted, truncated"):
        read_image(good)
    np.save(tmp_path / "empty.npy", np.zeros((0, 4), np.uint8))
    with pytest.raises(InputError, match=r"empty\.npy' is empty"):
        read_image(tmp_path / "empty.npy")
    np.save(tmp_path / "line.npy", np.zeros(5))
    with pytest.raises(InputError, match=r"line\.npy.*at least 2 dimensions"):
        read_image(tmp_path / "line.npy")
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        read_image(tmp_path / "folder")


def test_corrupt_tiff_keeps_library_error_as_cause(tmp_path):
    (tmp_path / "bad.tif").write_bytes(b"XX*\x00" + b"\xff" * 64)  # not a TIFF header
    with pytest.raises(InputError, match=r"bad\.tif.*corrupted") as info:
        read_image(tmp_path / "bad.tif")
    assert info.value.__cause__ is not None


# ---------------------------------------------------------------- PNG / JPEG


def test_png_grey_rgb_rgba_and_16bit(tmp_path, caplog):
    grey = RNG.integers(0, 255, (9, 11), dtype=np.uint8)
    rgb = RNG.integers(0, 255, (9, 11, 3), dtype=np.uint8)
    rgba = np.concatenate([rgb, np.full((9, 11, 1), 128, np.uint8)], axis=-1)
    u16 = np.array([[0, 1000], [40000, 65535]], np.uint16)
    Image.fromarray(grey).save(tmp_path / "g.png")
    Image.fromarray(rgb).save(tmp_path / "c.png")
    Image.fromarray(rgba).save(tmp_path / "a.png")
    Image.fromarray(u16).save(tmp_path / "w.png")
    g, c, w = (read_image(tmp_path / n) for n in ("g.png", "c.png", "w.png"))
    assert g.axes == "YX" and not g.is_rgb
    np.testing.assert_array_equal(g.data, grey)
    assert c.axes == "YXC" and c.is_rgb
    np.testing.assert_array_equal(c.data, rgb)
    assert w.data.dtype == np.uint16
    np.testing.assert_array_equal(w.data, u16)
    with caplog.at_level(logging.INFO, logger="samscope.io"):
        a = read_image(tmp_path / "a.png")
    assert a.data.shape == (9, 11, 3) and "alpha" in caplog.text
    np.testing.assert_array_equal(a.data, rgb)


def test_jpeg_reads_as_rgb(tmp_path):
    Image.fromarray(np.full((16, 16, 3), 100, np.uint8)).save(tmp_path / "p.jpg", quality=95)
    img = read_image(tmp_path / "p.jpg")
    assert img.axes == "YXC" and img.data.dtype == np.uint8
    assert abs(int(img.data.mean()) - 100) <= 2


def test_palette_png_labels_are_indices(tmp_path):
    ids = np.array([[0, 1], [2, 7]], np.uint8)
    im = Image.fromarray(ids, mode="L").convert("P")
    im.putpalette([v for i in range(256) for v in (i * 3 % 256, 0, 255 - i)])
    im.save(tmp_path / "lab.png")
    np.testing.assert_array_equal(read_labels(tmp_path / "lab.png"), ids)
    assert read_image(tmp_path / "lab.png").axes == "YXC"  # as an image it is colour


# ---------------------------------------------------------------- lazy reading


def test_lazy_uncompressed_tiff_is_memmap(tmp_path):
    data = _u16(3, 2, 10, 12)
    tifffile.imwrite(tmp_path / "m.tif", data, imagej=True, metadata={"axes": "ZCYX"})
    img = read_image(tmp_path / "m.tif", lazy=True)
    assert img.is_lazy and isinstance(img.data, np.memmap)  # a transposed view of the map
    assert img.axes == "ZYXC"
    np.testing.assert_array_equal(np.asarray(img.data), np.moveaxis(data, 1, -1))


def test_lazy_compressed_tiff_view_matches_eager(tmp_path):
    data = _u16(3, 2, 10, 12)
    tifffile.imwrite(tmp_path / "z.ome.tif", data, ome=True, compression="zlib",
                     metadata={"axes": "ZCYX"})
    img = read_image(tmp_path / "z.ome.tif", lazy=True)
    assert isinstance(img.data, LazyView) and img.data.shape == (3, 10, 12, 2)
    expected = np.moveaxis(data, 1, -1)
    np.testing.assert_array_equal(img.data[1, 2:5, :, 1], expected[1, 2:5, :, 1])
    np.testing.assert_array_equal(img.data[..., 0], expected[..., 0])
    one = read_image(tmp_path / "z.ome.tif", lazy=True, channel=1)
    assert one.data.shape == (3, 10, 12)
    np.testing.assert_array_equal(np.asarray(one.data), data[:, 1])


@pytest.mark.skipif(not HELA.exists(), reason="HeLa example data not present")
def test_lazy_hela_stack_matches_eager():
    eager = read_image(HELA)
    lazy = read_image(HELA, lazy=True)
    assert eager.axes == lazy.axes == "ZYX"
    assert lazy.data.shape == eager.data.shape == (20, 700, 1100)
    assert lazy.data.dtype == np.uint16 and lazy.is_lazy
    np.testing.assert_array_equal(lazy.data[7], eager.data[7])
    np.testing.assert_array_equal(lazy.data[:, 100:200, 500:600],
                                  eager.data[:, 100:200, 500:600])
    assert eager.pixel_size is None


def test_lazy_npy_is_memmap(tmp_path):
    data = _u16(2, 6, 7)
    np.save(tmp_path / "a.npy", data)
    img = read_image(tmp_path / "a.npy", lazy=True)
    assert isinstance(img.data, np.memmap)
    np.testing.assert_array_equal(img.data, data)


# ---------------------------------------------------------------- list_images


def test_list_images_folders_globs_and_errors(tmp_path):
    for name in ("img10.tif", "img2.tif", "img1.png", ".hidden.tif", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "vol.zarr").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.tif").write_bytes(b"")
    found = list_images([tmp_path])
    assert [p.name for p in found] == ["img1.png", "img2.tif", "img10.tif", "vol.zarr"]
    assert [p.name for p in list_images(str(tmp_path / "*.tif"))] == ["img2.tif", "img10.tif"]
    assert [p.name for p in list_images([tmp_path], patterns=["img*.tif"])] == [
        "img2.tif", "img10.tif"]
    both = list_images([tmp_path / "img2.tif", str(tmp_path / "img*.tif")])
    assert [p.name for p in both] == ["img2.tif", "img10.tif"]  # no duplicates
    assert [p.name for p in list_images(str(tmp_path / "**" / "x.tif"))] == ["x.tif"]
    with pytest.raises(InputError, match="no image files match"):
        list_images(str(tmp_path / "*.czi"))
    with pytest.raises(InputError, match="no such file or folder"):
        list_images([tmp_path / "missing.tif"])
    with pytest.raises(InputError, match="holds no images"):
        list_images([tmp_path / "sub"], patterns=["*.png"])
    with pytest.raises(InputError, match="unknown image format"):
        list_images([tmp_path / "notes.txt"])


def test_several_unnamed_axes_need_axes(tmp_path):
    data = _u16(2, 3, 8, 8)
    tifffile.imwrite(tmp_path / "q.tif", data, photometric="minisblack")  # axes "QQYX"
    with pytest.raises(InputError, match=r"q\.tif.*cannot tell the axes of shape \(2, 3, 8, 8\)"):
        read_image(tmp_path / "q.tif")
    img = read_image(tmp_path / "q.tif", axes="CZYX")
    assert img.axes == "ZYXC"
    np.testing.assert_array_equal(img.data, np.moveaxis(data, 0, -1))


def test_imagedata_normalises_its_fields():
    img = ImageData([[1, 2], [3, 4]], "yx", pixel_size=[100, 50], path="a.tif")
    assert isinstance(img.data, np.ndarray) and img.axes == "YX"
    assert img.pixel_size == (100.0, 50.0) and img.path == Path("a.tif")
