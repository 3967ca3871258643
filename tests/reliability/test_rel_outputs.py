"""Outputs never write over an input (whatever the flags), and bad output locations fail first.

Read-only cases run with the permission bits obeyed even as root (``obey_permissions``: the
child drops CAP_DAC_OVERRIDE), so they test what a normal user sees.
"""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest
import tifffile
from _rel import expect_error, expect_ok, files_in


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture()
def img(work, library):
    """A private copy of the test image (cases may try to write over it)."""
    path = work / "img.tif"
    shutil.copy(library / "cells.tif", path)
    return path


@pytest.fixture()
def readonly(work):
    folder = work / "ro"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


OVER_INPUT = [  # prompt/embed outputs that are one of the inputs
    ("prompt-same", ("prompt", "img.tif", "-p", "40,50", "-o", "img.tif"), "is the input"),
    ("prompt-same-overwrite", ("prompt", "img.tif", "-p", "40,50", "-o", "img.tif", "--overwrite"),
     "is the input"),
    ("prompt-dot-path", ("prompt", "img.tif", "-p", "40,50", "-o", "./sub/../img.tif", "--overwrite"),
     "is the input"),
    ("prompt-symlink", ("prompt", "img.tif", "-p", "40,50", "-o", "link.tif", "--overwrite"),
     "is the input"),
    ("prompt-hardlink", ("prompt", "img.tif", "-p", "40,50", "-o", "hard.tif", "--overwrite"),
     "is the input"),
    ("prompt-over-model", ("prompt", "img.tif", "-p", "40,50", "-m", "mine.pt", "-o", "mine.pt",
                           "--overwrite"), "is the input"),  # fmt: skip
    ("prompt-over-cache", ("prompt", "img.tif", "-p", "40,50", "-e", "c.zarr", "-o", "c.zarr",
                           "--overwrite"), "is the input"),  # fmt: skip
    ("prompt-cache-is-image", ("prompt", "img.tif", "-p", "40,50", "-e", "img.tif", "-o", "m.tif"),
     "is the input"),
    ("prompt-cache-in-zarr-image", ("prompt", "img.zarr", "-p", "40,50", "-e", "img.zarr/c.zarr",
                                    "-o", "m.tif"), "inside the input"),  # fmt: skip
    ("embed-same", ("embed", "img.tif", "-o", "img.tif"), "is the input"),
    ("embed-same-zarr", ("embed", "img.zarr", "-o", "img.zarr"), "is the input"),
    ("embed-inside-zarr", ("embed", "img.zarr", "-o", "img.zarr/cache.zarr"), "inside the input"),
    ("embed-over-model", ("embed", "img.tif", "-m", "mine.pt", "-o", "mine.pt"), "is the input"),
]


@pytest.mark.parametrize(("args", "fragment"), [(a, f) for _, a, f in OVER_INPUT],
                         ids=[i for i, *_ in OVER_INPUT])  # fmt: skip
def test_never_writes_over_an_input(samscope, work, img, library, args, fragment):
    shutil.copytree(library / "cells.zarr", work / "img.zarr")
    (work / "link.tif").symlink_to(img)
    os.link(img, work / "hard.tif")
    shutil.copy(samscope_lm(), work / "mine.pt")
    (work / "sub").mkdir()
    before = {p: sha(p) for p in work.rglob("*") if p.is_file()}
    listing = files_in(work)
    res = samscope(*args)
    expect_error(res, fragment)
    assert files_in(work) == listing
    assert {p: sha(p) for p in work.rglob("*") if p.is_file()} == before


def samscope_lm():
    from samscope.models.registry import get_card, shipped_path

    return shipped_path(get_card("samscope-lm"))


def test_prompt_overwrite_replaces_only_its_own_output(samscope, work, img):
    expect_ok(samscope("prompt", "img.tif", "-p", "40,50", "-o", "m.tif"))
    first = tifffile.imread(work / "m.tif")
    res = samscope("prompt", "img.tif", "-p", "40,50", "-o", "m.tif")
    expect_error(res, "exists", "--overwrite")
    expect_ok(samscope("prompt", "img.tif", "-p", "80,110", "-o", "m.tif", "--overwrite"))
    second = tifffile.imread(work / "m.tif")
    assert first[40, 50] == 1 and second[80, 110] == 1 and second[40, 50] == 0


LOCATIONS = [  # output locations that cannot work: refused before any model runs
    ("prompt-readonly", ("prompt", "img.tif", "-p", "40,50", "-o", "ro/m.tif"), "not writable"),
    ("prompt-readonly-new-sub", ("prompt", "img.tif", "-p", "40,50", "-o", "ro/new/sub/m.tif"),
     "not writable"),
    ("prompt-cache-readonly", ("prompt", "img.tif", "-p", "40,50", "-e", "ro/c.zarr", "-o", "m.tif"),
     "not writable"),
    ("embed-readonly", ("embed", "img.tif", "-o", "ro/c.zarr"), "not writable"),
    ("embed-readonly-new-sub", ("embed", "img.tif", "-o", "ro/new/c.zarr"), "not writable"),
    ("prompt-under-a-file", ("prompt", "img.tif", "-p", "40,50", "-o", "img.tif/m.tif"),
     "is a file, not a folder"),
    ("prompt-deep-under-a-file", ("prompt", "img.tif", "-p", "40,50", "-o", "img.tif/a/b/m.tif"),
     "is a file, not a folder"),
    ("embed-under-a-file", ("embed", "img.tif", "-o", "img.tif/c.zarr"), "is a file, not a folder"),
    ("prompt-output-is-folder", ("prompt", "img.tif", "-p", "40,50", "-o", "ro"), "is a folder"),
    ("embed-output-is-file", ("embed", "img.tif", "-o", "other.txt"), "not an embeddings cache"),
    ("embed-output-foreign-folder", ("embed", "img.tif", "-o", "ro"), "not a samscope"),
    ("prompt-system-folder", ("prompt", "img.tif", "-p", "40,50", "-o", "/proc/m.tif"),
     "not writable"),
]


@pytest.mark.parametrize(("args", "fragment"), [(a, f) for _, a, f in LOCATIONS],
                         ids=[i for i, *_ in LOCATIONS])  # fmt: skip
def test_bad_output_locations_fail_first(samscope, work, img, readonly, args, fragment):
    (work / "other.txt").write_text("mine")
    listing = files_in(work)
    res = samscope(*args, obey_permissions=True)
    expect_error(res, fragment)
    assert "embeddings:" not in res.err, "refused before any model ran"
    assert files_in(work) == listing, "nothing created"


def test_new_output_folders_made_only_when_writing(samscope, work, library):
    expect_ok(samscope("prompt", library / "cells.tif", "-p", "40,50", "-o", "new/sub/m.tif"))
    assert (work / "new/sub/m.tif").is_file()
    for args in (
        ("prompt", library / "nan.tif", "-p", "4,4", "-o", "a/b/m.tif"),
        ("prompt", library / "cells.tif", "-p", "500,5", "-o", "c/d/m.tif"),
        ("embed", library / "nan.tif", "-o", "e/f/c.zarr"),
        ("embed", library / "truncated.tif", "-o", "g/c.zarr"),
        ("prompt", library / "nan.tif", "-p", "4,4", "-e", "h/c.zarr", "-o", "m2.tif"),
    ):
        expect_error(samscope(*args))
    assert files_in(work) == ["new", "new/sub", "new/sub/m.tif"]


def test_read_only_input_is_fine(samscope, work, img):
    img.chmod(0o444)
    expect_ok(samscope("embed", "img.tif", "-o", "c.zarr", obey_permissions=True))
