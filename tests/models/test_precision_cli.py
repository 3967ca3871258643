"""``--precision`` on the commands that run a model (embed, prompt, segment)."""

import json

import numpy as np
import pytest
import tifffile

from samscope.cli.main import main
from samscope.embeddings import load_embeddings


def run(args, capsys):
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def image_file(tmp_path):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:120, :160]
    img = 33000 + 3000 * np.exp(-((yy - 40) ** 2 + (xx - 50) ** 2) / 200.0)
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, (img + rng.normal(0, 50, img.shape)).astype(np.uint16))
    return path


def test_embed_and_prompt_with_precision(tmp_path, image_file, capsys):
    cache = tmp_path / "cells.zarr"
    code, _, err = run(["embed", str(image_file), "-o", str(cache), "--model", "vit_test",
                        "--precision", "bf16"], capsys)  # fmt: skip
    assert code == 0, err
    assert load_embeddings(cache).signature["precision"] == "bf16"
    mask = tmp_path / "mask.tif"
    base = ["prompt", str(image_file), "-p", "40,50", "-o", str(mask), "--model", "vit_test",
            "-e", str(cache), "--native"]  # fmt: skip
    code, _, err = run(base, capsys)  # fp32 (the default) must not reuse the bf16 cache
    assert code == 2 and "precision" in err and not mask.exists()
    code, _, err = run([*base, "--precision", "bf16"], capsys)
    assert code == 0, err
    assert tifffile.imread(mask).shape == (120, 160)


def test_bad_precision_is_a_clear_error(tmp_path, image_file, capsys):
    code, _, err = run(["embed", str(image_file), "-o", str(tmp_path / "e.zarr"), "--model",
                        "vit_test", "--precision", "fp16"], capsys)  # fmt: skip
    assert code == 2
    assert "precision must be one of fp32, bf16, int8, got 'fp16'" in err
    assert not (tmp_path / "e.zarr").exists()
    code, _, err = run(["segment", str(image_file), "-o", str(tmp_path / "out"), "--model",
                        "vit_test", "--precision", "half"], capsys)  # fmt: skip
    assert code == 2 and "precision must be one of" in err


def test_segment_records_its_precision(tmp_path, image_file, capsys):
    out = tmp_path / "out"
    code, _, err = run(["segment", str(image_file), "-o", str(out), "--model", "vit_test",
                        "--precision", "int8", "--no-overlay"], capsys)  # fmt: skip
    assert code == 0, err
    record = json.loads((out / "cells_segmentation.json").read_text())
    assert record["precision"] == "int8"
    assert (out / "cells_labels.tif").exists()
