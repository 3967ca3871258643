"""``samscope evaluate`` and ``samscope evaluate-interactive`` on volumes (issue 12)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile

from samscope.cli.main import main


def run(argv, capsys):
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def volume_labels(shape=(5, 40, 48)):
    z, y, x = np.indices(shape)
    lab = np.zeros(shape, np.uint16)
    lab[(((z - 2) / 1.8) ** 2 + ((y - 12) / 8) ** 2 + ((x - 14) / 8) ** 2) <= 1] = 1
    lab[(((z - 2) / 1.8) ** 2 + ((y - 26) / 9) ** 2 + ((x - 32) / 9) ** 2) <= 1] = 2
    return lab


def test_evaluate_matches_objects_in_3d(tmp_path, capsys):
    gt = volume_labels()
    split = gt.copy()
    split[3:][split[3:] == 2] = 7  # object 2 cut in two between planes 2 and 3: right in every plane
    tifffile.imwrite(tmp_path / "gt.tif", gt, imagej=True, metadata={"axes": "ZYX"})
    tifffile.imwrite(tmp_path / "pred.tif", split, imagej=True, metadata={"axes": "ZYX"})
    tifffile.imwrite(tmp_path / "same.tif", np.where(gt > 0, 9 - gt, 0).astype(np.uint16), imagej=True,
                     metadata={"axes": "ZYX"})  # fmt: skip
    code, out, err = run(["evaluate", str(tmp_path / "same.tif"), str(tmp_path / "gt.tif"), "-m", "sa,ctc",
                          "-o", str(tmp_path / "a")], capsys)  # fmt: skip
    assert code == 0, err
    row = json.loads((tmp_path / "a" / "metrics.json").read_text())["images"][0]
    assert row["n_gt"] == 2 and row["msa"] == pytest.approx(1.0) and row["seg"] == pytest.approx(1.0)
    code, out, err = run(["evaluate", str(tmp_path / "pred.tif"), str(tmp_path / "gt.tif"), "-m", "sa,ctc",
                          "-o", str(tmp_path / "b")], capsys)  # fmt: skip
    assert code == 0, err
    row = json.loads((tmp_path / "b" / "metrics.json").read_text())["images"][0]
    assert row["n_gt"] == 2 and row["n_pred"] == 3  # 3-D objects, not per-plane pieces
    assert row["msa"] < 0.8 and row["seg"] < 0.95  # the split object does not count as whole


def test_evaluate_interactive_on_a_volume(tmp_path, capsys, monkeypatch):
    pytest.importorskip("samscope.prompting")
    monkeypatch.setenv("SAMSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    gt = volume_labels()
    rng = np.random.default_rng(0)
    image = (100 + 120 * (gt > 0) + rng.normal(0, 5, gt.shape)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "vol.tif", image, imagej=True, metadata={"axes": "ZYX"})
    tifffile.imwrite(tmp_path / "vol_gt.tif", gt, imagej=True, metadata={"axes": "ZYX"})
    out = tmp_path / "out"
    code, stdout, err = run(["evaluate-interactive", str(tmp_path / "vol.tif"), str(tmp_path / "vol_gt.tif"),
                             "--model", "vit_test", "-n", "1", "-o", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    with open(out / "interactive.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == [0, 1]
    assert all(0.0 <= float(r["msa"]) <= 1.0 for r in rows) and int(rows[0]["n_objects"]) == 2
    audit = json.loads((out / "run_vit_test.json").read_text())
    first = audit["images"][0]["objects"][0]["points"][0]
    assert len(first) == 3 and first[0] == 2  # (z, y, x) on the object's largest plane
