"""``samscope segment`` end to end: files, folders, stacks, resume, outputs."""

import csv

import numpy as np
import pytest
import tifffile

from samscope.cli.main import main


def call(args, capsys):
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def folder(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "images"
    d.mkdir()
    tifffile.imwrite(d / "a.tif", (rng.random((90, 110)) * 4000).astype(np.uint16))
    tifffile.imwrite(d / "b.tif", (rng.random((80, 70)) * 4000).astype(np.uint16))
    tifffile.imwrite(
        d / "stack.tif",
        (rng.random((3, 64, 60)) * 4000).astype(np.uint16),
        imagej=True,
        metadata={"axes": "ZYX"},
    )
    return d


def test_segment_folder_writes_labels_tables_and_resumes(folder, tmp_path, capsys):
    out = tmp_path / "out"
    args = [
        "segment",
        str(folder),
        "-o",
        str(out),
        "--model",
        "vit_test",
        "--mode",
        "apg",
        "-s",
        "foreground_thresh=0",
        "-s",
        "min_size=0",
    ]
    code, text, err = call(args, capsys)
    assert code == 0, err
    for stem in ("a", "b", "stack"):
        assert (out / f"{stem}_labels.tif").exists() and (out / f"{stem}_objects.csv").exists()
    labels = tifffile.imread(out / "a_labels.tif")
    assert labels.shape == (90, 110) and labels.dtype == np.uint16
    stack = tifffile.imread(out / "stack_labels.tif")
    assert stack.shape == (3, 64, 60)
    with open(out / "stack_objects.csv") as f:
        header = next(csv.reader(f))
    assert header[:2] == ["plane", "id"]
    with open(out / "a_objects.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(np.unique(labels)) - 1 or (out / "a_masks.tif").exists()
    if (out / "a_masks.tif").exists():  # apg keeps overlapping masks
        masks = tifffile.imread(out / "a_masks.tif")
        assert masks.shape[0] == len(rows)
    # a second run skips everything: an interrupted folder run resumes
    (out / "b_objects.csv").unlink()
    code, text, _ = call(args, capsys)
    assert code == 0 and "2 of 3 image(s) already segmented" in text


def test_segment_errors_are_clear(folder, tmp_path, capsys):
    base = ["segment", str(folder / "a.tif"), "-o", str(tmp_path / "o"), "--model", "vit_test"]
    code, _, err = call([*base, "--mode", "distance"], capsys)
    assert code == 2 and "it supports" in err
    code, _, err = call([*base, "-s", "bogus=1"], capsys)
    assert code == 2 and "no setting 'bogus'" in err
    code, _, err = call([*base, "-s", "foreground_thresh=3"], capsys)
    assert code == 2
    code, _, err = call(
        [
            "segment",
            str(tmp_path / "nothing*.tif"),
            "-o",
            str(tmp_path / "o"),
            "--model",
            "vit_test",
        ],
        capsys,
    )
    assert code == 2
