"""pair_files: an image and its labels, or two folders, paired by name."""

import numpy as np
import pytest
import tifffile

from samscope.errors import InputError
from samscope.pipeline.interactive import pair_files


def _write(folder, *names):
    folder.mkdir(exist_ok=True)
    for name in names:
        tifffile.imwrite(folder / name, np.zeros((4, 4), np.uint16))
    return folder


def test_same_names_pair(tmp_path):
    a = _write(tmp_path / "a", "x.tif", "y.tif")
    b = _write(tmp_path / "b", "y.tif", "x.tif")
    assert [(n, p.name, q.name) for n, p, q in pair_files(a, b, names=("p", "g"))] == [
        ("x", "x.tif", "x.tif"), ("y", "y.tif", "y.tif"),
    ]  # fmt: skip


def test_role_endings_pair_segment_output_with_ground_truth(tmp_path):
    seg = _write(tmp_path / "seg", "img1_labels.tif", "img2_labels.tif")
    gt = _write(tmp_path / "gt", "img1_masks.tif", "img2.tif")
    pairs = pair_files(seg, gt, names=("prediction", "ground-truth"))
    assert [(n, p.name, q.name) for n, p, q in pairs] == [
        ("img1", "img1_labels.tif", "img1_masks.tif"), ("img2", "img2_labels.tif", "img2.tif"),
    ]  # fmt: skip


def test_ambiguous_or_missing_names_are_refused(tmp_path):
    seg = _write(tmp_path / "seg", "a_labels.tif", "b_labels.tif")
    gt = _write(tmp_path / "gt", "a.tif", "a_masks.tif")  # two candidates for a, none for b
    with pytest.raises(InputError, match="do not pair up"):
        pair_files(seg, gt, names=("prediction", "ground-truth"))
