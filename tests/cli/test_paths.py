"""Output checks: never an input, writable, nothing created."""

from __future__ import annotations

import os

import pytest

from samscope.errors import InputError
from samscope.io.paths import check_not_input, check_output_dir, check_output_file, same_path


def test_same_path_sees_links_and_dots(tmp_path):
    a = tmp_path / "a.tif"
    a.write_bytes(b"x")
    os.link(a, tmp_path / "h.tif")
    (tmp_path / "s.tif").symlink_to(a)
    assert same_path(a, tmp_path / "h.tif") and same_path(a, tmp_path / "s.tif")
    assert same_path(a, tmp_path / "sub" / ".." / "a.tif")
    assert not same_path(a, tmp_path / "b.tif")


def test_outputs_never_inputs(tmp_path):
    img = tmp_path / "img.tif"
    img.write_bytes(b"x")
    store = tmp_path / "img.zarr"
    store.mkdir()
    with pytest.raises(InputError, match="is the input"):
        check_output_file(img, inputs=[img], overwrite=True)
    with pytest.raises(InputError, match="inside the input"):
        check_not_input(store / "c.zarr", [store])
    with pytest.raises(InputError, match="holds the input"):
        check_not_input(tmp_path, [img])
    check_output_dir(tmp_path, inputs=[img])  # a folder of outputs may hold inputs


def test_locations_checked_without_creating_anything(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_output_file(f / "a" / "m.tif")
    with pytest.raises(InputError, match="exists; pass --overwrite"):
        check_output_file(f)
    assert check_output_file(f, overwrite=True) == f
    with pytest.raises(InputError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        check_output_dir(f)
    check_output_dir(tmp_path / "new" / "deep")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]
    with pytest.raises(InputError, match="not writable"):
        check_output_file("/proc/m.tif")
