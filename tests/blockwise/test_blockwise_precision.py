"""Blockwise runs at another encoder precision (``samscope segment -o OUT.zarr --precision``)."""

import numpy as np
import pytest
import tifffile
import zarr

from samscope.blockwise import BlockwiseRequest, segment_blockwise
from samscope.blockwise.segmenter import ModelSegmenter
from samscope.cli.main import main
from samscope.errors import InputError


@pytest.fixture()
def image(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, (rng.random((64, 128)) * 4000).astype(np.uint16))
    return path


def _settings(out):
    return dict(zarr.open_group(str(out), mode="r").attrs)["samscope_blockwise"]["settings"]


def test_int8_block_equals_int8_whole_plane_segment():
    from samscope.instance.segment import segment
    from samscope.models.registry import load_model

    rng = np.random.default_rng(5)
    plane = (rng.random((64, 64)) * 3000).astype(np.uint16)
    seg = ModelSegmenter(model="vit_test", precision="int8").resolved()
    net, mode, _ = seg.loaded()
    assert net.precision == "int8"
    expected = segment(plane, load_model("vit_test", precision="int8"), mode=mode).labels
    got = seg.segment(plane, "YX")
    assert got.shape == plane.shape
    # same partition (ids may be renumbered by relabel_local)
    pairs = np.unique(np.stack([expected.ravel(), got.ravel()]), axis=1)
    assert len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))
    assert seg.signature()["precision"] == "int8"
    assert "precision" not in ModelSegmenter(model="vit_test").resolved().signature()


def test_run_records_precision_and_refuses_to_resume_at_another(image, tmp_path):
    out = tmp_path / "out.zarr"
    request = BlockwiseRequest(image, out, model="vit_test", block_size=64, halo=16,
                               precision="int8")
    result = segment_blockwise(request)
    assert result.status == "done"
    assert _settings(out)["segmenter"]["precision"] == "int8"
    assert segment_blockwise(request).status == "skipped"
    with pytest.raises(InputError, match="other settings"):
        segment_blockwise(BlockwiseRequest(image, out, model="vit_test", block_size=64,
                                           halo=16, precision="fp32"))


def test_cli_precision_blockwise(image, tmp_path, capsys):
    out = tmp_path / "cli.zarr"
    base = ["segment", str(image), "-o", str(out), "--model", "vit_test", "--block-size", "64",
            "--halo", "16"]
    main([*base, "--precision", "int8"])
    assert _settings(out)["segmenter"]["precision"] == "int8"
    bad = tmp_path / "bad.zarr"
    with pytest.raises(SystemExit) as exc:
        main(["segment", str(image), "-o", str(bad), "--model", "vit_test", "--block-size", "64",
              "--precision", "fp9"])
    assert exc.value.code == 2 and "precision" in capsys.readouterr().err
    assert not bad.exists()
