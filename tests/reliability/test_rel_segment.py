"""``samscope segment`` through the batch runner: names never collide silently, outputs never
land on inputs, bad locations fail before the model runs, nothing is left by failed runs."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tifffile
from _library import blobs
from _rel import expect_error, expect_ok, files_in


def _labels(folder):
    return sorted(p for p in folder.rglob("*_labels.tif"))


def test_same_name_in_two_folders_never_overwrites(samscope, work):
    for sub, seed in (("a", 1), ("b", 2)):
        (work / "in" / sub).mkdir(parents=True)
        tifffile.imwrite(work / "in" / sub / "img.tif",
                         blobs(seed=seed, centres=((40, 50),) if seed == 1 else ((80, 110), (30, 30))))  # fmt: skip
    res = samscope("segment", "in/a/img.tif", "in/b/img.tif", "-o", "out")
    if res.rc != 0:  # refusing, naming both, is the other correct ending
        expect_error(res, "in/a/img.tif", "in/b/img.tif")
        assert not (work / "out").exists()
        return
    expect_ok(res)
    found = _labels(work / "out")
    assert len(found) == 2, files_in(work / "out")
    for sub in ("a", "b"):  # each output is that image's own segmentation
        alone = work / f"alone-{sub}"
        expect_ok(samscope("segment", f"in/{sub}/img.tif", "-o", alone))
        mine = [p for p in found if f"{sub}/" in str(p.relative_to(work / "out")) or f"{sub}_" in p.name]
        assert len(mine) == 1, found
        np.testing.assert_array_equal(tifffile.imread(mine[0]), tifffile.imread(_labels(alone)[0]))


def test_png_and_tif_of_one_name_never_overwrite(samscope, work, library):
    (work / "in").mkdir()
    shutil.copy(library / "cells.tif", work / "in/img.tif")
    shutil.copy(library / "cells_gray8.png", work / "in/img.png")
    res = samscope("segment", "in", "-o", "out")
    if res.rc != 0:
        expect_error(res, "img.png", "img.tif")
        assert not (work / "out").exists()
        return
    expect_ok(res)
    assert len(_labels(work / "out")) == 2, files_in(work / "out")


def test_output_name_equal_to_an_input_is_refused(samscope, work, library):
    (work / "in").mkdir()
    shutil.copy(library / "cells.tif", work / "in/img.tif")
    shutil.copy(library / "cells.tif", work / "in/img_labels.tif")  # an input named like an output
    before = {p.name: p.read_bytes() for p in (work / "in").iterdir()}
    res = samscope("segment", "in/img.tif", "in/img_labels.tif")
    if res.rc == 0:
        expect_ok(res)
    else:
        expect_error(res, "img_labels.tif")
    assert (work / "in/img_labels.tif").read_bytes() == before["img_labels.tif"]


@pytest.fixture()
def readonly(work):
    folder = work / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


@pytest.mark.parametrize(("output", "fragment"), [
    ("ro", "writ"),
    ("ro/new/sub", "writ"),
    ("afile.txt", "not a folder"),
    ("afile.txt/sub", "not a folder"),
])  # fmt: skip
def test_bad_output_folder_fails_before_the_model(samscope, work, library, readonly, output, fragment):
    (work / "afile.txt").write_text("x")
    listing = files_in(work)
    res = samscope("segment", library / "cells.tif", "-o", output, obey_permissions=True)
    expect_error(res, fragment, rc=res.rc if res.rc in (1, 2) else 2)
    assert files_in(work) == listing


@pytest.mark.parametrize("inputs", [("{lib}/random.tif",), ("{lib}/nan.tif",), ("{lib}/nothing*.tif",),
                                    ("{lib}/folder.tif",), ("{lib}/truncated.tif",)])  # fmt: skip
def test_failed_run_leaves_no_folder(samscope, work, library, inputs):
    res = samscope("segment", *(i.format(lib=library) for i in inputs), "-o", "out/sub")
    expect_error(res, rc=res.rc if res.rc in (1, 2) else 2)
    assert files_in(work) == []


SETTINGS = [
    (("--mode", "nope"), "unknown mode"),
    (("-s", "nope=1"), "no setting 'nope'"),
    (("-s", "min_size"), "FIELD=VALUE"),
    (("--tile-shape", "x"), "tile shape"),
    (("--pixel-size", "-5"), "pixel"),
    (("--axes", "QQ"), "axis"),
]


@pytest.mark.parametrize(("args", "fragment"), SETTINGS, ids=[a[0] + a[1] for a, _ in SETTINGS])
def test_bad_settings(samscope, work, library, args, fragment):
    res = samscope("segment", library / "cells.tif", "-o", "out", *args)
    expect_error(res, fragment)
    assert files_in(work) == []


def test_resume_skips_finished_images(samscope, work, library):
    (work / "in").mkdir()
    for i in range(3):
        shutil.copy(library / "cells.tif", work / f"in/img{i}.tif")
    expect_ok(samscope("segment", "in", "-o", "out"), "3 image(s)")
    stamp = {p: p.stat().st_mtime_ns for p in _labels(work / "out")}
    expect_ok(samscope("segment", "in", "-o", "out"), "3 of 3 image(s) already segmented")
    assert {p: p.stat().st_mtime_ns for p in _labels(work / "out")} == stamp
