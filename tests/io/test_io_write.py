"""samscope.io writers: round trips, labels, atomic writes, overwrite refusal, inputs untouched."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from samscope.errors import InputError
from samscope.io import ImageData, read_image, read_labels, write_image, write_labels

RNG = np.random.default_rng(1)

DTYPES = {
    "uint8": RNG.integers(0, 256, (3, 10, 12)).astype(np.uint8),
    "uint16": RNG.integers(0, 65536, (3, 10, 12)).astype(np.uint16),
    "float32": RNG.normal(size=(3, 10, 12)).astype(np.float32),
    "float64": RNG.normal(size=(3, 10, 12)),
    "int16": RNG.integers(-300, 300, (3, 10, 12)).astype(np.int16),
    "uint32": RNG.integers(0, 2**32 - 1, (3, 10, 12), dtype=np.uint32),
    "bool": RNG.random((3, 10, 12)) > 0.5,
}


def _expected(a: np.ndarray) -> np.ndarray:
    return a.astype(np.uint8) if a.dtype == bool else a


def _no_temp_files(folder) -> bool:
    return not [p for p in os.listdir(folder) if p.startswith(".")]


@pytest.mark.parametrize("suffix", [".tif", ".ome.tif", ".zarr", ".npy"])
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_round_trip_stack(tmp_path, suffix, dtype):
    data = DTYPES[dtype]
    target = tmp_path / f"img{suffix}"
    assert write_image(target, data, axes="ZYX") == target
    img = read_image(target)
    assert img.axes == "ZYX"
    assert img.data.dtype == _expected(data).dtype
    np.testing.assert_array_equal(img.data, _expected(data))
    assert _no_temp_files(tmp_path)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "bool"])
def test_round_trip_png(tmp_path, dtype):
    data = DTYPES[dtype][0]
    write_image(tmp_path / "a.png", data)
    img = read_image(tmp_path / "a.png")
    assert img.axes == "YX" and img.data.dtype == _expected(data).dtype
    np.testing.assert_array_equal(img.data, _expected(data))


def test_png_written_with_fast_zlib_level(tmp_path):
    """PNGs (the overlay of every ``samscope segment``) use zlib level 3, not PIL's default 6:
    the zlib stream's header says so (FLG 0x5E: levels 2-5; 0x9C: the default)."""
    rgb = RNG.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    path = write_image(tmp_path / "o.png", rgb, axes="YXC")
    raw = path.read_bytes()
    idat = raw.index(b"IDAT") + 4
    assert raw[idat : idat + 2] == b"\x78\x5e"
    assert np.array_equal(read_image(path).data, rgb)


def test_png_rgb_and_refusals(tmp_path):
    rgb = RNG.integers(0, 256, (8, 9, 3)).astype(np.uint8)
    write_image(tmp_path / "c.png", rgb)
    img = read_image(tmp_path / "c.png")
    assert img.axes == "YXC" and img.is_rgb
    np.testing.assert_array_equal(img.data, rgb)
    with pytest.raises(InputError, match=r"PNG holds a uint8 or uint16.*float32.*Use \.tif"):
        write_image(tmp_path / "f.png", DTYPES["float32"][0])
    with pytest.raises(InputError, match="PNG"):
        write_image(tmp_path / "z.png", DTYPES["uint8"], axes="ZYX")
    with pytest.raises(InputError, match="JPEG is not written"):
        write_image(tmp_path / "c.jpg", rgb)
    assert _no_temp_files(tmp_path)


@pytest.mark.parametrize("suffix", [".tif", ".ome.tif", ".zarr"])
def test_round_trip_axes_and_pixel_size(tmp_path, suffix):
    data = RNG.integers(0, 4000, (2, 3, 10, 12, 2)).astype(np.uint16)  # TZYXC
    write_image(tmp_path / f"h{suffix}", data, axes="TZYXC", pixel_size=(2000.0, 650.0, 650.0))
    img = read_image(tmp_path / f"h{suffix}")
    assert img.axes == "TZYXC"
    assert img.pixel_size == pytest.approx((2000.0, 650.0, 650.0))
    np.testing.assert_array_equal(img.data, data)
    again = tmp_path / f"again{suffix}"
    write_image(again, img)  # ImageData carries axes and pixel size
    back = read_image(again)
    assert back.axes == "TZYXC" and back.pixel_size == pytest.approx(img.pixel_size)


def test_imagej_file_is_what_fiji_expects(tmp_path):
    data = RNG.integers(0, 4000, (3, 10, 12)).astype(np.uint16)
    write_image(tmp_path / "v.tif", data, pixel_size=(500.0, 108.0, 108.0))
    with tifffile.TiffFile(tmp_path / "v.tif") as tif:
        assert tif.is_imagej and not tif.is_ome
        meta = tif.imagej_metadata
        assert meta["unit"] == "um" and meta["spacing"] == pytest.approx(0.5)
        assert tif.pages[0].compression == 1  # ImageJ hyperstacks are uncompressed
        num, den = tif.pages[0].tags["XResolution"].value
        assert den / num == pytest.approx(0.108, rel=1e-6)
    write_image(tmp_path / "c.ome.tif", data)
    with tifffile.TiffFile(tmp_path / "c.ome.tif") as tif:
        assert tif.is_ome and tif.pages[0].compression == 8  # zlib (deflate)


def test_rgb_tiff_round_trip(tmp_path):
    rgb = RNG.integers(0, 256, (8, 9, 3)).astype(np.uint8)
    write_image(tmp_path / "c.tif", rgb)
    img = read_image(tmp_path / "c.tif")
    assert img.axes == "YXC" and img.is_rgb
    np.testing.assert_array_equal(img.data, rgb)


def test_2d_pixel_size_and_unknown_z(tmp_path):
    write_image(tmp_path / "a.tif", DTYPES["uint16"][0], pixel_size=(80.0, 80.0))
    assert read_image(tmp_path / "a.tif").pixel_size == pytest.approx((80.0, 80.0))
    write_image(tmp_path / "z.ome.tif", DTYPES["uint16"], pixel_size=(np.nan, 80.0, 80.0))
    z, y, x = read_image(tmp_path / "z.ome.tif").pixel_size
    assert np.isnan(z) and (y, x) == pytest.approx((80.0, 80.0))


def test_write_validation_errors(tmp_path):
    with pytest.raises(InputError, match=r"pixel_size .* expected 3 for axes 'ZYX'"):
        write_image(tmp_path / "a.tif", DTYPES["uint16"], pixel_size=(1.0, 1.0))
    with pytest.raises(InputError, match="positive number of nanometres"):
        write_image(tmp_path / "a.tif", DTYPES["uint16"][0], pixel_size=(-1.0, 1.0))
    with pytest.raises(InputError, match="empty"):
        write_image(tmp_path / "a.tif", np.zeros((0, 3)))
    with pytest.raises(InputError, match="unknown format '.gif'"):
        write_image(tmp_path / "a.gif", DTYPES["uint8"][0])
    with pytest.raises(InputError, match="name 2 dimension"):
        write_image(tmp_path / "a.tif", DTYPES["uint8"], axes="YX")
    with pytest.raises(InputError, match="folder .* does not exist"):
        write_image(tmp_path / "missing" / "a.tif", DTYPES["uint8"][0])
    with pytest.raises(InputError, match="compression"):
        write_image(tmp_path / "a.tif", DTYPES["uint8"][0], compression="lzma")
    assert not os.listdir(tmp_path)


# ---------------------------------------------------------------- labels


def test_labels_above_65535_stored_as_uint32(tmp_path):
    labels = np.zeros((2, 20, 30), np.int64)
    labels[0, :5, :5] = 70000
    labels[1, 10:, 10:] = 3
    labels[1, 0, 0] = 65536
    for suffix in (".tif", ".zarr"):
        write_labels(tmp_path / f"l{suffix}", labels)
        back = read_labels(tmp_path / f"l{suffix}")
        assert back.dtype == np.uint32
        np.testing.assert_array_equal(back, labels)
    with tifffile.TiffFile(tmp_path / "l.tif") as tif:
        assert tif.series[0].dtype == np.uint32


def test_labels_small_are_uint16_and_floats_must_be_whole(tmp_path):
    write_labels(tmp_path / "s.tif", np.array([[0, 1], [2, 255]], np.int32))
    assert read_labels(tmp_path / "s.tif").dtype == np.uint16
    write_labels(tmp_path / "f.png", np.array([[0.0, 1.0], [2.0, 300.0]]))
    back = read_labels(tmp_path / "f.png")
    assert back.dtype == np.uint16 and back[1, 1] == 300
    with pytest.raises(InputError, match=r"whole numbers; 1 fractional value\(s\), e\.g\. 1\.5"):
        write_labels(tmp_path / "x.tif", np.array([[0.0, 1.5]]))
    with pytest.raises(InputError, match=r"labels must be >= 0; 2 negative"):
        write_labels(tmp_path / "x.tif", np.array([[0, -1], [-4, 2]]))
    with pytest.raises(InputError, match="does not fit a 16-bit PNG"):
        write_labels(tmp_path / "x.png", np.array([[0, 70000]]))
    with pytest.raises(InputError, match="no channel axis"):
        write_labels(tmp_path / "x.tif", np.zeros((4, 4, 2), np.uint16), axes="YXC")
    assert not (tmp_path / "x.tif").exists()


def test_read_labels_rejects_negative_float_and_colour(tmp_path):
    tifffile.imwrite(tmp_path / "neg.tif", np.array([[0, -2], [3, 1]], np.int16))
    with pytest.raises(InputError, match=r"neg\.tif.*1 negative value\(s\), minimum -2"):
        read_labels(tmp_path / "neg.tif")
    tifffile.imwrite(tmp_path / "f.tif", np.array([[0, 2.0], [3, 1]], np.float32))
    assert read_labels(tmp_path / "f.tif").dtype == np.uint16
    tifffile.imwrite(tmp_path / "h.tif", np.array([[0, 2.5]], np.float32))
    with pytest.raises(InputError, match="fractional"):
        read_labels(tmp_path / "h.tif")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "c.png")
    with pytest.raises(InputError, match="a label image has one channel"):
        read_labels(tmp_path / "c.png")
    # a uint8 stack whose last dimension is 3 is a 3-D label volume, never RGB
    np.save(tmp_path / "v.npy", np.ones((5, 6, 3), np.uint8))
    assert read_labels(tmp_path / "v.npy").shape == (5, 6, 3)


# ---------------------------------------------------------------- atomicity and overwrite


def test_overwrite_refused_then_allowed(tmp_path):
    target = tmp_path / "a.tif"
    write_image(target, DTYPES["uint8"][0])
    before = target.read_bytes()
    with pytest.raises(InputError, match=r"refusing to overwrite existing .*a\.tif"):
        write_image(target, DTYPES["uint16"][0])
    assert target.read_bytes() == before
    write_image(target, DTYPES["uint16"][0], overwrite=True)
    np.testing.assert_array_equal(read_image(target).data, DTYPES["uint16"][0])


def test_zarr_overwrite_replaces_the_whole_store(tmp_path):
    target = tmp_path / "a.zarr"
    write_image(target, DTYPES["uint16"])
    with pytest.raises(InputError, match="refusing to overwrite"):
        write_image(target, DTYPES["uint8"][0])
    write_image(target, DTYPES["uint8"][0], overwrite=True)
    img = read_image(target)
    assert img.axes == "YX" and img.data.dtype == np.uint8
    assert _no_temp_files(tmp_path)


@pytest.mark.parametrize("suffix", [".tif", ".png", ".zarr", ".npy"])
def test_failed_replace_leaves_no_temp_and_no_target(tmp_path, monkeypatch, suffix):
    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_image(tmp_path / f"a{suffix}", DTYPES["uint8"][0])
    assert os.listdir(tmp_path) == []


def test_failed_writer_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.tif"
    write_image(target, DTYPES["uint8"][0])
    before = target.read_bytes()

    def broken(*args, **kwargs):
        with open(args[0], "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError("writer crashed")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(RuntimeError, match="writer crashed"):
        write_image(target, DTYPES["uint16"][0], overwrite=True)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.tif"]


# ---------------------------------------------------------------- inputs are never modified


def test_inputs_unmodified(tmp_path):
    data = DTYPES["uint16"].copy()
    labels = np.array([[0.0, 1.0], [2.0, 70000.0]])
    img = ImageData(data, "ZYX", pixel_size=(1.0, 2.0, 3.0))
    data_copy, labels_copy = data.copy(), labels.copy()
    write_image(tmp_path / "a.tif", data, axes="ZYX")
    write_image(tmp_path / "b.zarr", img)
    write_image(tmp_path / "bool.tif", DTYPES["bool"])
    write_labels(tmp_path / "l.tif", labels)
    np.testing.assert_array_equal(data, data_copy)
    np.testing.assert_array_equal(labels, labels_copy)
    assert labels.dtype == np.float64 and DTYPES["bool"].dtype == bool
    file_bytes = (tmp_path / "a.tif").read_bytes()
    read_image(tmp_path / "a.tif")
    read_image(tmp_path / "a.tif", lazy=True)
    assert (tmp_path / "a.tif").read_bytes() == file_bytes
    lazy = read_image(tmp_path / "a.tif", lazy=True)
    with pytest.raises(ValueError, match="read-only"):
        lazy.data[0, 0, 0] = 1
