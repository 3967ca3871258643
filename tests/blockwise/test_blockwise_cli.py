"""``samscope segment IMAGE -o OUT.zarr``: the blockwise branch of the command, with a model."""

import numpy as np
import pytest
import tifffile
import zarr

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
def image(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, (rng.random((64, 128)) * 4000).astype(np.uint16))
    return path


def test_segment_to_zarr_blockwise_with_a_model_and_resume(image, tmp_path, capsys):
    out = tmp_path / "out.zarr"
    args = ["segment", str(image), "-o", str(out), "--model", "vit_test", "--block-size", "64",
            "--halo", "16"]
    code, text, err = call(args, capsys)
    assert code == 0, err
    assert "done: 2 block(s) of 64×64 with halo 16×16" in text
    labels = zarr.open_group(str(out), mode="r")["0"]
    assert labels.shape == (64, 128) and labels.chunks == (64, 64)
    assert (tmp_path / "out_objects.csv").exists()
    settings = dict(zarr.open_group(str(out), mode="r").attrs)["samscope_blockwise"]["settings"]
    assert settings["segmenter"]["model"] == "vit_test" and settings["segmenter"]["mode"] == "ais"
    code, text, _ = call(args, capsys)
    assert code == 0 and "already complete" in text
    code, _, err = call(args[:-1] + ["8"], capsys)
    assert code == 2 and "other settings" in err


@pytest.mark.parametrize(("extra", "words"), [
    (["--block-size", "512"], "larger than the image"),
    (["--block-size", "64", "--halo", "40"], "more than half the block"),
    (["--workers", "2"], "need --dask"),
    (["--dask", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
    (["--block-size", "64", "--per-plane"], "not supported with blockwise"),
])
def test_bad_blockwise_options_exit_2(image, tmp_path, capsys, extra, words):
    out = tmp_path / "bad.zarr"
    code, _, err = call(["segment", str(image), "-o", str(out), "--model", "vit_test", *extra],
                        capsys)
    assert code == 2 and words in err
    assert not out.exists()


def test_blockwise_takes_one_image(image, tmp_path, capsys):
    code, _, err = call(["segment", str(image), str(image), "-o", str(tmp_path / "o.zarr")], capsys)
    assert code == 2 and "takes one image" in err


def test_evaluate_reads_zarr_labels_chunk_by_chunk(tmp_path, capsys):
    import csv

    from scipy import ndimage as ndi

    from samscope.blockwise import BlockwiseRequest, ThresholdSegmenter, segment_blockwise

    rng = np.random.default_rng(1)
    img = (ndi.uniform_filter(rng.random((120, 130)), 5) > 0.55).astype(np.uint8) * 9
    tifffile.imwrite(tmp_path / "img.tif", img)
    gt, _ = ndi.label(img > 4)
    tifffile.imwrite(tmp_path / "gt.tif", gt.astype(np.uint16))
    segment_blockwise(BlockwiseRequest(tmp_path / "img.tif", tmp_path / "pred.zarr",
                                       block_size=48, halo=16), segmenter=ThresholdSegmenter(4))
    code, _, err = call(["evaluate", str(tmp_path / "pred.zarr"), str(tmp_path / "gt.tif"),
                         "-m", "sa", "-o", str(tmp_path / "ev")], capsys)
    assert code == 0, err
    [row] = list(csv.DictReader(open(tmp_path / "ev" / "metrics.csv")))
    assert float(row["msa"]) == 1.0 and int(row["n_gt"]) == int(gt.max())
    # without -m: zarr labels default to the chunked sa metrics (never read whole)
    code, _, err = call(["evaluate", str(tmp_path / "pred.zarr"), str(tmp_path / "gt.tif"),
                         "-o", str(tmp_path / "ev2")], capsys)
    assert code == 0, err
    [row] = list(csv.DictReader(open(tmp_path / "ev2" / "metrics.csv")))
    assert float(row["msa"]) == 1.0 and "dice" not in row
