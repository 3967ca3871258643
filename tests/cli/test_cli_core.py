"""End to end through the ``samscope`` command: info, embed, prompt."""

import subprocess
import sys

import numpy as np
import pytest
import tifffile

from samscope.cli.main import main


def run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def ok(args, capsys):
    try:
        main(args)
    except SystemExit as exc:  # pragma: no cover - shown on failure
        out = capsys.readouterr()
        raise AssertionError(f"exit {exc.code}: {out.err}") from None
    return capsys.readouterr().out


@pytest.fixture()
def image_file(tmp_path, blobs_image):
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, blobs_image)
    return path


@pytest.fixture()
def blobs_image():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:120, :160]
    img = 33000 + 3000 * np.exp(-((yy - 40) ** 2 + (xx - 50) ** 2) / 200.0) + rng.normal(0, 50, (120, 160))
    return img.astype(np.uint16)


def test_help_teaches_with_examples():
    res = subprocess.run([sys.executable, "-m", "samscope.cli.main", "prompt", "--help"], capture_output=True, text=True)
    assert res.returncode == 0
    assert "Examples" in res.stdout and "samscope prompt" in res.stdout
    top = subprocess.run([sys.executable, "-m", "samscope.cli.main", "--help"], capture_output=True, text=True)
    for command in ("info", "embed", "prompt", "models"):
        assert command in top.stdout


def test_info(capsys):
    out = ok(["info"], capsys)
    assert "torch" in out and "model cache" in out and "vit_test" in out


def test_embed_then_prompt_points_and_boxes(tmp_path, image_file, capsys):
    cache = tmp_path / "cells.zarr"
    out = ok(["embed", str(image_file), "-o", str(cache), "--model", "vit_test"], capsys)
    assert cache.is_dir() and "1 plane" in out
    mask = tmp_path / "mask.tif"
    ok(["prompt", str(image_file), "-p", "40,50", "-o", str(mask), "--model", "vit_test", "-e", str(cache)], capsys)
    labels = tifffile.imread(mask)
    assert labels.shape == (120, 160) and set(np.unique(labels)) <= {0, 1}
    boxes = tmp_path / "boxes.tif"
    ok(
        ["prompt", str(image_file), "-b", "10,10,60,70;70,80,110,150", "-o", str(boxes), "--model", "vit_test"],
        capsys,
    )
    assert tifffile.imread(boxes).max() <= 2
    # an existing output is not overwritten without --overwrite
    code, _, err = run(["prompt", str(image_file), "-p", "40,50", "-o", str(mask), "--model", "vit_test"], capsys)
    assert code == 2 and "exists" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "500,5"], "outside the image"),
        (["-b", "10,10,10,50"], "zero or negative area"),
        (["-p", "4"], "needs 2 numbers"),
        ([], "give --points"),
    ],
)
def test_prompt_bad_input_is_one_clear_line(tmp_path, image_file, capsys, args, message):
    code, _, err = run(["prompt", str(image_file), "-o", str(tmp_path / "m.tif"), "--model", "vit_test", *args], capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "m.tif").exists()


def test_embed_refuses_cache_of_another_image(tmp_path, image_file, blobs_image, capsys):
    cache = tmp_path / "c.zarr"
    ok(["embed", str(image_file), "-o", str(cache), "--model", "vit_test"], capsys)
    other = tmp_path / "other.tif"
    tifffile.imwrite(other, blobs_image[::-1])
    code, _, err = run(["embed", str(other), "-o", str(cache), "--model", "vit_test"], capsys)
    assert code == 2 and "data_hash" in err


def test_unknown_format_and_missing_file(tmp_path, capsys):
    bad = tmp_path / "x.xyz"
    bad.write_text("hello")
    code, _, err = run(["embed", str(bad), "-o", str(tmp_path / "c.zarr"), "--model", "vit_test"], capsys)
    assert code == 2 and "x.xyz" in err
    code, _, err = run(["embed", str(tmp_path / "nope.tif"), "-o", str(tmp_path / "c.zarr"), "--model", "vit_test"], capsys)
    assert code == 2 and "nope.tif" in err
