"""samscope.io and zarr: groups and keys, OME-Zarr axes and scale, format 2 and 3, lazy reads."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from samscope.errors import InputError
from samscope.io import LazyView, read_image, read_labels, write_image

RNG = np.random.default_rng(2)


def _ome_group(path, data, *, axes, scale, units, zarr_format=2, extra_level=True):
    group = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    group.create_array("0", data=data, chunks=data.shape)
    if extra_level:  # a half-resolution level that must not be read
        group.create_array("1", data=data[..., ::2, ::2].copy(), chunks=data.shape)
    axes_meta = [{"name": a, "type": {"t": "time", "c": "channel"}.get(a, "space"),
                  **({"unit": u} if u else {})} for a, u in zip(axes, units, strict=True)]
    ms = [{"version": "0.4" if zarr_format == 2 else "0.5", "axes": axes_meta, "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]},
        {"path": "1", "coordinateTransformations": [
            {"type": "scale", "scale": [*scale[:-2], scale[-2] * 2, scale[-1] * 2]}]},
    ]}]
    if zarr_format == 2:
        group.attrs["multiscales"] = ms
    else:
        group.attrs["ome"] = {"version": "0.5", "multiscales": ms}
    return group


def test_ome_zarr_v04_axes_and_scale(tmp_path):
    data = RNG.integers(0, 1000, (2, 3, 8, 10)).astype(np.uint16)  # c z y x
    _ome_group(tmp_path / "o.zarr", data, axes="czyx", scale=[1, 0.5, 0.1, 0.1],
               units=[None, "micrometer", "micrometer", "micrometer"])
    img = read_image(tmp_path / "o.zarr")
    assert img.axes == "ZYXC"
    assert img.pixel_size == pytest.approx((500.0, 100.0, 100.0))
    np.testing.assert_array_equal(img.data, np.moveaxis(data, 0, -1))
    level1 = read_image(tmp_path / "o.zarr", key="1")  # a named level keeps the metadata
    assert level1.axes == "ZYXC" and level1.data.shape == (3, 4, 5, 2)
    assert level1.pixel_size == pytest.approx((500.0, 200.0, 200.0))


def test_ome_zarr_v05_on_zarr_format_3(tmp_path):
    data = RNG.integers(0, 1000, (4, 8, 10)).astype(np.uint16)
    _ome_group(tmp_path / "t.zarr", data, axes="tyx", scale=[1.0, 80, 80],
               units=["second", "nanometer", "nanometer"], zarr_format=3)
    img = read_image(tmp_path / "t.zarr")
    assert img.axes == "TYX" and img.pixel_size == pytest.approx((80.0, 80.0))
    np.testing.assert_array_equal(img.data, data)


def test_ome_zarr_without_units_has_no_pixel_size(tmp_path):
    data = np.zeros((8, 10), np.uint8)
    _ome_group(tmp_path / "n.zarr", data, axes="yx", scale=[2.0, 2.0], units=[None, None])
    assert read_image(tmp_path / "n.zarr").pixel_size is None


def test_group_key_selection_and_key_listing(tmp_path):
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w", zarr_format=2)
    raw = RNG.integers(0, 255, (5, 8, 10)).astype(np.uint8)
    group.create_array("raw", data=raw)
    group.create_array("labels/cells", data=np.arange(80, dtype=np.uint32).reshape(8, 10))
    with pytest.raises(InputError, match=r"g\.zarr' holds 2 arrays; choose one with key=: "
                                         r"labels/cells, raw"):
        read_image(tmp_path / "g.zarr")
    img = read_image(tmp_path / "g.zarr", key="raw")
    assert img.axes == "ZYX"
    np.testing.assert_array_equal(img.data, raw)
    labels = read_labels(tmp_path / "g.zarr", key="labels/cells")
    assert labels.dtype == np.uint32 and labels[7, 9] == 79
    sub = read_image(tmp_path / "g.zarr", key="labels")  # a group with a single array
    assert sub.data.shape == (8, 10)
    with pytest.raises(InputError, match="has no array 'nope'; arrays: labels/cells, raw"):
        read_image(tmp_path / "g.zarr", key="nope")


def test_single_array_store_and_dimension_names(tmp_path):
    arr = zarr.create_array(str(tmp_path / "a.zarr"), shape=(3, 8, 10), dtype="float32",
                            dimension_names=["t", "y", "x"], zarr_format=3)
    arr[...] = 1.5
    img = read_image(tmp_path / "a.zarr")
    assert img.axes == "TYX" and img.data.dtype == np.float32 and img.data.sum() == 1.5 * 240
    with pytest.raises(InputError, match="single zarr array; key='x' applies to groups"):
        read_image(tmp_path / "a.zarr", key="x")
    v2 = zarr.create_array(str(tmp_path / "b.zarr"), shape=(2, 8, 10), dtype="uint8",
                           zarr_format=2)
    v2.attrs["_ARRAY_DIMENSIONS"] = ["c", "y", "x"]  # xarray convention
    img = read_image(tmp_path / "b.zarr")
    assert img.axes == "YXC" and img.data.shape == (8, 10, 2)


def test_zarr_directory_without_suffix_and_empty_group(tmp_path):
    zarr.create_array(str(tmp_path / "store"), shape=(4, 4), dtype="uint8", zarr_format=2)
    assert read_image(tmp_path / "store").axes == "YX"
    zarr.open_group(str(tmp_path / "e.zarr"), mode="w")
    with pytest.raises(InputError, match="holds no zarr arrays"):
        read_image(tmp_path / "e.zarr")


def test_lazy_zarr_reads_on_access(tmp_path):
    data = RNG.integers(0, 1000, (2, 3, 8, 10)).astype(np.uint16)
    _ome_group(tmp_path / "o.zarr", data, axes="czyx", scale=[1, 1, 1, 1],
               units=[None] * 4, extra_level=False)
    img = read_image(tmp_path / "o.zarr", lazy=True)
    assert isinstance(img.data, LazyView) and img.is_lazy
    assert img.data.shape == (3, 8, 10, 2) and img.axes == "ZYXC"
    np.testing.assert_array_equal(img.data[1], np.moveaxis(data, 0, -1)[1])
    plain = read_image(tmp_path / "o.zarr", lazy=True, axes="ZYXC")  # stored order kept
    assert isinstance(plain.data, zarr.Array)


def test_written_zarr_is_ome_zarr_04(tmp_path):
    data = RNG.integers(0, 255, (3, 8, 10, 3)).astype(np.uint8)
    write_image(tmp_path / "w.zarr", data, axes="ZYXC", pixel_size=(300.0, 65.0, 65.0))
    group = zarr.open_group(str(tmp_path / "w.zarr"), mode="r")
    ms = group.attrs["multiscales"][0]
    assert ms["version"] == "0.4"
    assert [a["name"] for a in ms["axes"]] == ["c", "z", "y", "x"]
    assert ms["axes"][1]["unit"] == "micrometer"
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == pytest.approx(
        [1.0, 0.3, 0.065, 0.065])
    assert group["0"].metadata.zarr_format == 2
