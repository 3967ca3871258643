"""Batch inputs and output names: folder structure kept, clashes and unwritable places refused."""

import os
from pathlib import Path, PurePath

import numpy as np
import pytest
import tifffile

from samscope.errors import InputError
from samscope.pipeline import OutputPaths, check_locations, collect_inputs, plan_outputs


def _img(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16))
    return path


def test_a_recursive_glob_keeps_the_folders_under_the_output(tmp_path):
    _img(tmp_path / "data" / "a" / "img.tif")
    _img(tmp_path / "data" / "b" / "img.tif")
    inputs = collect_inputs([str(tmp_path / "data" / "**" / "*.tif")])
    assert [str(i.relative) for i in inputs] == ["a", "b"]
    plan = plan_outputs(inputs, tmp_path / "out")
    labels = [outs.labels for _, outs in plan.items]
    assert labels == [tmp_path / "out" / "a" / "img_labels.tif",
                      tmp_path / "out" / "b" / "img_labels.tif"]  # fmt: skip
    assert not (tmp_path / "out").exists()  # planning creates nothing


def test_a_folder_and_a_file_go_directly_under_the_output(tmp_path):
    _img(tmp_path / "d" / "x.tif")
    lone = _img(tmp_path / "elsewhere" / "y.tif")
    inputs = collect_inputs([tmp_path / "d", lone])
    assert [i.relative for i in inputs] == [PurePath("."), PurePath(".")]
    plan = plan_outputs(inputs, tmp_path / "out")
    assert [o.labels.parent for _, o in plan.items] == [tmp_path / "out"] * 2


@pytest.mark.parametrize("layout", ["two_folders", "png_and_tif"])
def test_clashing_names_are_an_error_naming_both_inputs(tmp_path, layout):
    if layout == "two_folders":
        first, second = _img(tmp_path / "a" / "img.tif"), _img(tmp_path / "b" / "img.tif")
        entries = [first, second]
    else:
        first = _img(tmp_path / "d" / "img.tif")
        second = tmp_path / "d" / "img.png"
        from PIL import Image

        Image.fromarray(np.zeros((8, 8), np.uint8)).save(second)
        entries = [tmp_path / "d"]
    with pytest.raises(InputError, match="would both write") as err:
        plan_outputs(collect_inputs(entries), tmp_path / "out")
    assert str(first) in str(err.value) or str(second) in str(err.value)
    assert first.name in str(err.value) and second.name in str(err.value)


def test_an_output_that_is_an_input_is_refused_and_own_outputs_are_left_out(tmp_path):
    a = _img(tmp_path / "d" / "a.tif")
    earlier = _img(tmp_path / "d" / "a_labels.tif")  # a previous run without -o
    plan = plan_outputs(collect_inputs([tmp_path / "d"]), None)
    assert [i.path for i, _ in plan.items] == [a]
    assert [i.path for i in plan.dropped] == [earlier]
    # named on their own, both are inputs: a's labels would overwrite one
    with pytest.raises(InputError, match="would overwrite the input"):
        plan_outputs(collect_inputs([a, earlier]), None)
    # given on its own, a's outputs cannot overwrite it: here the input is named like an output
    b = _img(tmp_path / "e" / "b.tif")
    with pytest.raises(InputError, match="would overwrite the input"):
        plan_outputs(
            collect_inputs([b]),
            None,
            single_file=b,
            writes=("labels",),
        )


def test_locations_are_checked_before_anything_is_written(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_locations([tmp_path / "file" / "sub" / "a_labels.tif"])
    (tmp_path / "dir_labels.tif").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        check_locations([tmp_path / "dir_labels.tif"])
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permission bits
            pytest.skip("running with permission to write everywhere")
        with pytest.raises(InputError, match="cannot write"):
            check_locations([ro / "new" / "a_labels.tif"])
    finally:
        os.chmod(ro, 0o700)
    check_locations([tmp_path / "new" / "deeper" / "a_labels.tif"])  # creatable: fine
    assert not (tmp_path / "new").exists()


def test_output_paths_names():
    outs = OutputPaths.for_stem(Path("o"), "cells")
    assert [p.name for p in outs.paths()] == [
        "cells_labels.tif", "cells_objects.csv", "cells_masks.tif", "cells_overlay.png",
        "cells_segmentation.json",
    ]  # fmt: skip
