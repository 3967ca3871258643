"""Volumes through the ``samscope`` command: prompt --propagate, segment with 3-D ids."""

import numpy as np
import pytest
import tifffile

from samscope.cli.main import main


def _run(args, capsys):
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def volume_file(tmp_path):
    z, y, x = np.indices((3, 48, 64))
    img = np.where(((y - 20) / 9.0) ** 2 + ((x - 24) / 9.0) ** 2 <= 1, 200, 10).astype(np.uint8)
    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, img, photometric="minisblack")
    return path


def test_prompt_propagate_writes_3d_labels(volume_file, tmp_path, capsys):
    out = tmp_path / "objects.tif"
    args = ["prompt", str(volume_file), "--axes", "ZYX", "--plane", "1", "--model", "vit_test",
            "-b", "10,14,30,34;5,40,20,60", "--propagate", "-o", str(out)]  # fmt: skip
    code, stdout, err = _run(args, capsys)
    assert code == 0, err
    labels = tifffile.imread(out)
    assert labels.shape == (3, 48, 64) and set(np.unique(labels)) <= {0, 1, 2}
    assert "planes" in stdout


def test_prompt_propagate_refuses_a_2d_image(tmp_path, capsys):
    path = tmp_path / "flat.tif"
    tifffile.imwrite(path, np.zeros((40, 50), np.uint8) + np.arange(50, dtype=np.uint8))
    out = tmp_path / "m.tif"
    code, _, err = _run(["prompt", str(path), "-p", "5,5", "--propagate", "--model", "vit_test",
                         "-o", str(out)], capsys)  # fmt: skip
    assert code == 2 and "needs a stack" in err and not out.exists()
