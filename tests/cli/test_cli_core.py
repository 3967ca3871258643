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


def test_prompt_embeds_at_the_object_size(tmp_path, capsys):
    """Nuclei three times the example's size: the default model embeds the image at ×28/90, one
    click still gives the whole nucleus, and the mask is in the image's own pixels."""
    from pathlib import Path

    from scipy import ndimage as ndi
    from skimage.transform import resize

    examples = Path(__file__).resolve().parents[2] / "examples"
    im = tifffile.imread(examples / "nuclei.tif")
    gt = tifffile.imread(examples / "nuclei_labels.tif")
    shape = (im.shape[0] * 3, im.shape[1] * 3)
    big = resize(im.astype(np.float32), shape, order=1, preserve_range=True).astype(im.dtype)
    gtb = resize(gt, shape, order=0, preserve_range=True, anti_aliasing=False).astype(gt.dtype)
    edge = np.unique(np.concatenate([gtb[0], gtb[-1], gtb[:, 0], gtb[:, -1]]))
    target = next(i for i in range(1, int(gtb.max()) + 1) if i not in edge)
    y, x = np.unravel_index(ndi.distance_transform_edt(gtb == target).argmax(), shape)
    path, out = tmp_path / "big.tif", tmp_path / "mask.tif"
    tifffile.imwrite(path, big)
    try:
        main(["prompt", str(path), "-p", f"{y},{x}", "--diameter", "90", "-o", str(out)])
    except SystemExit as exc:  # pragma: no cover - shown on failure
        raise AssertionError(f"exit {exc.code}: {capsys.readouterr().err}") from None
    assert "embedding at ×0.311" in capsys.readouterr().err
    mask = tifffile.imread(out) > 0
    assert mask.shape == shape
    truth = gtb == target
    assert (mask & truth).sum() / (mask | truth).sum() > 0.8
