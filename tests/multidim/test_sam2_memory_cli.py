"""``samscope prompt VOLUME --propagate --propagator sam2-memory``: 3-D labels from SAM2's memory,
and a clear error for a model without it."""

from types import SimpleNamespace

import numpy as np
import pytest
import tifffile

pytest.importorskip("transformers")

from sam2_tiny import tiny_video_model, two_nuclei  # noqa: E402

from samscope.cli.main import main  # noqa: E402


def _run(args, capsys):
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_prompt_propagate_with_sam2_memory(tmp_path, capsys, monkeypatch):
    import samscope.cli.core as core

    video = tiny_video_model(size=64)
    monkeypatch.setattr(core, "load", lambda *a, **k: SimpleNamespace(sam=video, card=None))
    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, two_nuclei(), photometric="minisblack")
    out = tmp_path / "objects.tif"
    args = ["prompt", str(path), "--axes", "ZYX", "--plane", "2", "-b", "4,4,17,17;16,16,29,29",
            "--propagate", "--propagator", "sam2-memory", "-o", str(out)]  # fmt: skip
    code, stdout, err = _run(args, capsys)
    assert code == 0, err
    labels = tifffile.imread(out)
    assert labels.shape == (5, 32, 32) and set(np.unique(labels)) <= {0, 1, 2} and labels[2].any()
    assert "planes" in stdout


def test_prompt_sam2_memory_needs_a_sam2_model(tmp_path, capsys):
    path = tmp_path / "vol.tif"
    tifffile.imwrite(path, two_nuclei(), photometric="minisblack")
    out = tmp_path / "objects.tif"
    args = ["prompt", str(path), "--axes", "ZYX", "--plane", "2", "-p", "10,10", "--model", "vit_test",
            "--propagate", "--propagator", "sam2-memory", "-o", str(out)]  # fmt: skip
    code, _, err = _run(args, capsys)
    assert code == 2 and "no SAM2 video memory" in err and not out.exists()
    code, _, err = _run(args[:-4] + ["--propagate", "--propagator", "magic", "-o", str(out)], capsys)
    assert code == 2 and "unknown propagator" in err and not out.exists()
