"""``samscope baseline`` end to end: files, folders, stacks, overwrite protection."""

import numpy as np
import pytest
import tifffile
from skimage.draw import disk

from samscope.cli.main import main


def call(args, capsys):
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def discs(seed=0, shape=(96, 96)):
    """uint16 image: two touching discs and one apart, on a 30000 offset with noise."""
    rng = np.random.default_rng(seed)
    img = np.full(shape, 30000.0)
    for centre, radius in (((30, 30), 12), ((30, 52), 12), ((72, 68), 10)):
        img[disk(centre, radius, shape=shape)] = 31000.0
    return (img + rng.normal(0, 40, shape)).astype(np.uint16)


@pytest.fixture()
def folder(tmp_path):
    d = tmp_path / "images"
    d.mkdir()
    tifffile.imwrite(d / "a.tif", discs(0))
    tifffile.imwrite(
        d / "stack.tif",
        np.stack([discs(1), discs(2)]),
        imagej=True,
        metadata={"axes": "ZYX"},
    )
    return d


def test_folder_writes_labels_per_image_and_skips_existing(folder, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["baseline", "otsu_watershed", str(folder), "-o", str(out), "--min-size", "20"]
    code, text, err = call(args, capsys)
    assert code == 0, err
    labels = tifffile.imread(out / "a_labels.tif")
    assert labels.shape == (96, 96) and labels.dtype == np.uint16
    assert len(np.unique(labels)) - 1 == 3
    stack = tifffile.imread(out / "stack_labels.tif")
    assert stack.shape == (2, 96, 96)
    assert [len(np.unique(p)) - 1 for p in stack] == [3, 3]
    assert "a.tif: 3 object(s)" in text and "done: 2 image(s)" in text

    # without --overwrite existing labels are left alone
    tifffile.imwrite(out / "a_labels.tif", np.zeros((96, 96), np.uint16))
    code, text, _ = call(args, capsys)
    assert code == 0 and "2 of 2 image(s) already have labels" in text
    assert not tifffile.imread(out / "a_labels.tif").any()
    code, text, _ = call([*args, "--overwrite", "--quiet"], capsys)
    assert code == 0 and "a.tif:" not in text
    assert len(np.unique(tifffile.imread(out / "a_labels.tif"))) - 1 == 3


def test_components_to_a_file_refuses_to_overwrite(folder, tmp_path, capsys):
    target = tmp_path / "a_cc.tif"
    args = ["baseline", "otsu_components", str(folder / "a.tif"), "-o", str(target)]
    code, _, err = call(args, capsys)
    assert code == 0, err
    assert len(np.unique(tifffile.imread(target))) - 1 == 2  # touching discs merge
    code, _, err = call(args, capsys)
    assert code == 2 and "exists" in err and "--overwrite" in err
    code, _, err = call([*args, "--overwrite", "--smoothing", "2"], capsys)
    assert code == 0, err


def test_errors_are_clear(folder, tmp_path, capsys):
    code, _, err = call(["baseline", "kmeans", str(folder), "-o", str(tmp_path / "o")], capsys)
    assert code == 2 and "otsu_watershed" in err
    code, _, err = call(
        ["baseline", "otsu_watershed", str(folder), "-o", str(tmp_path / "x.tif")], capsys
    )
    assert code == 2 and "2 images" in err
    code, _, err = call(
        [
            "baseline",
            "otsu_watershed",
            str(folder / "a.tif"),
            "-o",
            str(tmp_path / "o"),
            "--smoothing",
            "-1",
        ],
        capsys,
    )
    assert code == 2 and "smoothing" in err
