"""Blockwise labels as a tiled BigTIFF: ``samscope segment BIG -o OUT.tif``."""

import numpy as np
import pytest
import tifffile
import zarr

from samscope.errors import InputError


def _store(tmp_path, shape=(300, 420)):
    from scipy import ndimage as ndi

    from samscope.blockwise import BlockwiseRequest, ThresholdSegmenter, segment_blockwise

    rng = np.random.default_rng(3)
    img = (ndi.uniform_filter(rng.random(shape), 7) > 0.53).astype(np.uint16) * 900
    tifffile.imwrite(tmp_path / "img.tif", img, resolution=(1e4 / 0.25, 1e4 / 0.25),
                     resolutionunit="CENTIMETER")
    out = tmp_path / "lab.zarr"
    segment_blockwise(BlockwiseRequest(tmp_path / "img.tif", out, block_size=128, halo=16),
                      segmenter=ThresholdSegmenter(100))
    return out


def test_write_bigtiff_equals_the_store(tmp_path):
    from samscope.blockwise.tiff import write_bigtiff
    from samscope.io import read_image

    store = _store(tmp_path)
    labels = zarr.open_group(str(store), mode="r")["0"][...]
    path = write_bigtiff(store, tmp_path / "lab.ome.tif", tile=64)
    with tifffile.TiffFile(path) as tf:
        page = tf.pages[0]
        assert tf.is_bigtiff and page.is_tiled and page.tilewidth == 64
        assert np.array_equal(page.asarray(), labels)
    im = read_image(path)
    assert im.pixel_size is not None and im.pixel_size[-1] == pytest.approx(250)
    with pytest.raises(InputError, match="exists"):
        write_bigtiff(store, path)
    assert not list(tmp_path.glob(".*partial"))


def test_cli_segment_to_bigtiff(tmp_path, capsys):
    from samscope.cli.main import main

    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "img.tif", (rng.random((64, 128)) * 4000).astype(np.uint16))
    out = tmp_path / "labels.tif"
    args = ["segment", str(tmp_path / "img.tif"), "-o", str(out), "--model",
            "samscope-generalist", "--block-size", "64", "--halo", "16", "--diameter", "28"]
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code
    text = capsys.readouterr()
    assert code in (0, None), text.err
    store = tmp_path / "labels.zarr"
    assert np.array_equal(tifffile.imread(out), zarr.open_group(str(store), mode="r")["0"][...])
    assert "BigTIFF" in text.out and (tmp_path / "labels_objects.csv").exists()
