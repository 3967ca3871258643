"""SAM3 through the command line: segment --mode concept --text with a SAM3 folder or the imported
``sam3``, and the message when SAM3 is not imported."""

import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

pytest.importorskip("transformers")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "instance"))

from sam3_tiny import save_tiny_sam3_folder  # noqa: E402

from samscope.cli.main import main  # noqa: E402


def _run(args, capsys):
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_segment_concept_from_a_folder_and_after_import(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SAMSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    folder = save_tiny_sam3_folder(tmp_path / "sam3-download")
    image = tmp_path / "cells.tif"
    tifffile.imwrite(image, np.random.default_rng(0).integers(0, 255, (40, 50)).astype(np.uint8))
    args = ["segment", str(image), "--mode", "concept", "--text", "nucleus", "-s", "score_threshold=0",
            "-s", "mask_threshold=0"]  # fmt: skip
    code, _, err = _run([*args, "-o", str(tmp_path / "a"), "--model", str(folder)], capsys)
    assert code == 0, err
    assert tifffile.imread(tmp_path / "a" / "cells_labels.tif").max() > 0
    code, _, err = _run([*args, "-o", str(tmp_path / "b"), "--model", "sam3"], capsys)
    assert code != 0 and "gated" in err  # not imported yet
    code, out, err = _run(["models", "import", str(folder), "--name", "sam3"], capsys)
    assert code == 0, err
    code, _, err = _run([*args, "-o", str(tmp_path / "b"), "--model", "sam3"], capsys)
    assert code == 0, err
    code, _, err = _run(["segment", str(image), "-o", str(tmp_path / "c"), "--model", "sam3",
                         "--mode", "concept"], capsys)  # fmt: skip
    assert code != 0 and "needs a text" in err
