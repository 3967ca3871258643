"""``samscope evaluate`` and ``samscope evaluate-interactive``."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import tifffile
from typer.testing import CliRunner

from samscope.cli.main import build_app, main
from samscope.evaluation.ctc import ctc_scores
from samscope.evaluation.metrics import MaskStack, dice_protocol, segmentation_accuracy

runner = CliRunner()


def blobs(seed: int, shape=(64, 80), n=6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint16)
    for i in range(1, n + 1):
        y, x = rng.integers(6, shape[0] - 10), rng.integers(6, shape[1] - 10)
        labels[y : y + rng.integers(4, 9), x : x + rng.integers(4, 9)] = i * 3  # gaps in ids
    return labels


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture()
def folders(tmp_path):
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()
    pairs = {}
    for k, name in enumerate(["img2", "img10"]):
        gt = blobs(k)
        pred = np.roll(gt, 1, axis=1)
        pred[pred == 3] = 0  # one object missed
        tifffile.imwrite(gt_dir / f"{name}.tif", gt)
        tifffile.imwrite(pred_dir / f"{name}.tif", pred.astype(np.uint32))
        pairs[name] = (gt, pred)
    return tmp_path, pairs


@pytest.mark.parametrize("command", ["evaluate", "evaluate-interactive"])
def test_help_has_an_example(command):
    result = runner.invoke(build_app(), [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and f"samscope {command}" in result.output


def test_evaluate_folders_writes_table_csv_json_plot(folders, capsys):
    root, pairs = folders
    out = root / "out"
    code, stdout, _ = run(
        ["evaluate", str(root / "pred"), str(root / "gt"), "-o", str(out)], capsys
    )
    assert code == 0
    assert "img2" in stdout and "img10" in stdout and "mean" in stdout and "msa" in stdout
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["image"] for r in rows] == ["img2", "img10", "mean"]  # natural order
    for row in rows[:2]:
        gt, pred = pairs[row["image"]]
        sa = segmentation_accuracy(gt, pred)
        d = dice_protocol(gt, pred)
        c = ctc_scores(gt, pred)
        assert float(row["msa"]) == pytest.approx(sa.msa)
        assert float(row["sa50"]) == pytest.approx(sa.sa50)
        assert int(row["n_gt"]) == sa.n_gt and int(row["n_pred"]) == sa.n_pred
        assert float(row["mean_dice"]) == pytest.approx(d.mean_dice)
        assert float(row["dice_recall"]) == pytest.approx(d.recall)
        assert float(row["op_csb"]) == pytest.approx(c.op_csb)
    assert float(rows[2]["msa"]) == pytest.approx(
        (float(rows[0]["msa"]) + float(rows[1]["msa"])) / 2
    )
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["metrics"] == ["sa", "dice", "ctc"]
    assert len(doc["sa_curve"]["thresholds"]) == 10 and set(doc["sa_curve"]["images"]) == {
        "img2",
        "img10",
    }
    assert (out / "sa_vs_iou.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob("*.tmp"))
    # results are not silently replaced
    code, _, err = run(["evaluate", str(root / "pred"), str(root / "gt"), "-o", str(out)], capsys)
    assert code == 2 and "--overwrite" in err


def test_evaluate_single_files_and_metric_selection(folders, capsys):
    root, pairs = folders
    out = root / "one"
    argv = ["evaluate", str(root / "pred" / "img2.tif"), str(root / "gt" / "img2.tif")]
    code, stdout, _ = run([*argv, "--metrics", "ctc", "-o", str(out)], capsys)
    assert code == 0
    doc = json.loads((out / "metrics.json").read_text())
    (row,) = doc["images"]
    assert set(row) == {"image", "seg", "det", "op_csb"}
    assert row["seg"] == pytest.approx(ctc_scores(*pairs["img2"]).seg)
    assert not (out / "sa_vs_iou.png").exists()
    code, _, err = run([*argv, "--metrics", "sa,iou", "-o", str(out)], capsys)
    assert code == 2 and "unknown metrics" in err


def test_evaluate_overlapping_stack(tmp_path, capsys):
    gt = np.zeros((20, 20), np.uint8)
    gt[2:8, 2:8] = 1
    gt[10:16, 10:16] = 2
    masks = np.zeros((3, 20, 20), np.uint8)
    masks[0][gt == 1] = 1
    masks[1][gt == 1] = 1  # duplicate of object 1: an overlapping false positive
    masks[2][9:16, 10:16] = 1
    tifffile.imwrite(tmp_path / "gt.tif", gt)
    # three planes: tifffile flags them as RGB, they must still be read as three masks
    tifffile.imwrite(tmp_path / "masks.tif", masks, photometric="rgb", planarconfig="separate")
    out = tmp_path / "out"
    argv = ["evaluate", str(tmp_path / "masks.tif"), str(tmp_path / "gt.tif"), "--overlapping"]
    code, _, _ = run([*argv, "-o", str(out)], capsys)
    assert code == 0
    (row,) = json.loads((out / "metrics.json").read_text())["images"]
    want = segmentation_accuracy(gt, MaskStack.from_dense(masks))
    assert row["msa"] == pytest.approx(want.msa) and row["n_pred"] == 3
    assert row["sa50"] == pytest.approx(2 / 3)
    code, _, err = run([*argv, "--metrics", "ctc", "-o", str(tmp_path / "o2")], capsys)
    assert code == 2 and "non-overlapping" in err
    tifffile.imwrite(tmp_path / "bad.tif", masks[:, :10], photometric="minisblack")
    code, _, err = run(
        [
            "evaluate",
            str(tmp_path / "bad.tif"),
            str(tmp_path / "gt.tif"),
            "--overlapping",
            "-o",
            str(tmp_path / "o3"),
        ],
        capsys,
    )
    assert code == 2 and "shape" in err


def test_evaluate_bad_input(folders, capsys):
    root, _ = folders
    (root / "gt" / "extra.tif").write_bytes((root / "gt" / "img2.tif").read_bytes())
    code, _, err = run(
        ["evaluate", str(root / "pred"), str(root / "gt"), "-o", str(root / "o")], capsys
    )
    assert code == 2 and "no prediction file for extra" in err
    (root / "gt" / "extra.tif").unlink()
    tifffile.imwrite(root / "gt" / "img2.tif", blobs(0)[:40])
    code, _, err = run(
        ["evaluate", str(root / "pred"), str(root / "gt"), "-o", str(root / "o")], capsys
    )
    assert code == 2 and "shape" in err
    tifffile.imwrite(root / "gt" / "img2.tif", blobs(0).astype(np.float32) + 0.5)
    code, _, err = run(
        ["evaluate", str(root / "pred"), str(root / "gt"), "-o", str(root / "o")], capsys
    )
    assert code == 2 and "whole numbers" in err
    tifffile.imwrite(root / "gt" / "img2.tif", blobs(0).astype(np.int16) - 1)
    code, _, err = run(
        ["evaluate", str(root / "pred"), str(root / "gt"), "-o", str(root / "o")], capsys
    )
    assert code == 2 and "negative" in err
    code, _, err = run(["evaluate", str(root / "pred"), str(root / "gt" / "img10.tif")], capsys)
    assert code == 2 and "two files or two folders" in err
    code, _, err = run(["evaluate", str(root / "nothing"), str(root / "gt")], capsys)
    assert code == 2 and "does not exist" in err


def test_evaluate_interactive_end_to_end_with_vit_test(tmp_path, capsys, monkeypatch):
    pytest.importorskip("samscope.prompting")
    monkeypatch.setenv("SAMSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "img").mkdir()
    (tmp_path / "gt").mkdir()
    labels = blobs(7, shape=(96, 96), n=3)
    rng = np.random.default_rng(0)
    image = (1000 + 800 * (labels > 0) + rng.normal(0, 30, labels.shape)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "img" / "cells.tif", image)
    tifffile.imwrite(tmp_path / "gt" / "cells.tif", labels)
    out = tmp_path / "out"
    argv = [
        "evaluate-interactive",
        str(tmp_path / "img"),
        str(tmp_path / "gt"),
        "--model",
        "vit_test",
    ]
    code, stdout, err = run([*argv, "-n", "2", "-o", str(out)], capsys)
    assert code == 0, err
    assert "iteration" in stdout and "msa" in stdout
    with open(out / "interactive.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["iteration"]) for r in rows] == [0, 1, 2]
    assert all(0.0 <= float(r["msa"]) <= 1.0 for r in rows)
    n_objects = np.unique(labels).size - 1
    prompts = json.loads((out / "prompts.json").read_text())
    assert len(prompts["images"][0]["objects"]) == n_objects
    audit = json.loads((out / "run_vit_test.json").read_text())
    objects = audit["images"][0]["objects"]
    assert len(objects) == n_objects
    assert all(
        o["points"][0] == p["point"]
        for o, p in zip(objects, prompts["images"][0]["objects"], strict=True)
    )
    assert all(len(o["iou"]) == 3 for o in objects)
    # a second model run on the stored prompts, box mode
    code, _, err = run(
        [
            *argv,
            "--mode",
            "box",
            "-n",
            "1",
            "--prompts",
            str(out / "prompts.json"),
            "-o",
            str(tmp_path / "out2"),
        ],
        capsys,
    )
    assert code == 0, err
    audit2 = json.loads((tmp_path / "out2" / "run_vit_test.json").read_text())
    assert audit2["prompts_sha256"] == audit["prompts_sha256"]
    assert audit2["images"][0]["objects"][0]["box"] == prompts["images"][0]["objects"][0]["box"]
