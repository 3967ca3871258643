"""``samscope analyze`` end to end: reports, conditions, and clear messages for bad input."""

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from samscope.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from conftest import write_result  # noqa: E402


def call(args, capsys):
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def rows(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def labels_with(n, shape=(48, 56), seed=0):
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint16)
    for k in range(1, n + 1):
        y, x = rng.integers(0, shape[0] - 8), rng.integers(0, shape[1] - 8)
        lab[y:y + rng.integers(3, 8), x:x + rng.integers(3, 8)] = k
    return lab


@pytest.fixture()
def results(tmp_path):
    seg = tmp_path / "seg"
    for c, cond in enumerate(("treated", "control")):
        for i in range(2):
            lab = labels_with(4 + 2 * i + c, seed=10 * c + i)
            img = np.random.default_rng(i).random(lab.shape) * 100 + (lab > 0) * 50
            write_result(seg / cond, f"img{i}", lab, image=img, image_dir=tmp_path / "raw" / cond)
    return seg


def test_report_from_subfolders(results, tmp_path, capsys):
    out = tmp_path / "report"
    code, text, err = call(["analyze", str(results), "-o", str(out)], capsys)
    assert code == 0, err
    assert "4 image(s)" in text and "2 condition(s) (control, treated)" in text
    for name in ("objects.csv", "images.csv", "conditions.csv", "report.html", "analysis.json",
                 "plots/metrics.png", "plots/metrics.svg", "plots/areas.svg"):
        assert (out / name).is_file(), name
    imgs = rows(out / "images.csv")
    assert [r["image"] for r in imgs] == ["control/img0", "control/img1", "treated/img0",
                                          "treated/img1"]
    from samscope.io import read_labels

    for r in imgs:
        lab = read_labels(results / f"{r['image']}_labels.tif")
        ids = [i for i in np.unique(lab) if i]
        assert int(r["n_objects"]) == len(ids)
        assert float(r["confluency"]) == pytest.approx(np.count_nonzero(lab) / lab.size)
        assert float(r["mean_area_um2"]) == pytest.approx(np.count_nonzero(lab) / len(ids)
                                                          * 0.08**2)
        assert r["units"] == "µm" and float(r["pixel_size_nm"]) == 80
        assert float(r["mean_intensity"]) > 50  # the raw image was found through the record
    objs = rows(out / "objects.csv")
    assert len(objs) == sum(int(r["n_objects"]) for r in imgs)
    assert {"image", "condition", "id", "score", "area_um2", "n_neighbours", "solidity"} <= set(
        objs[0])
    summary = rows(out / "conditions.csv")
    n_obj = [r for r in summary if r["metric"] == "n_objects"]
    expected = [(c, str(sum(int(r["n_objects"]) for r in imgs if r["condition"] == c)))
                for c in ("control", "treated")]
    assert [(r["condition"], r["total"]) for r in n_obj] == expected
    try:
        import pandas as pd
    except ImportError:  # pandas is not a dependency; the check runs where it is installed
        pd = None
    if pd is not None:
        for name in ("objects.csv", "images.csv", "conditions.csv"):
            df = pd.read_csv(out / name)  # no options
            assert len(df) == len(rows(out / name)) and df.columns[0] != "Unnamed: 0"
        assert pd.read_csv(out / "objects.csv")["touches_border"].dtype == bool
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 2 + 4  # plots and one thumbnail per image
    assert "src='plots/" not in page and "src='http" not in page  # self-contained
    assert "dot / rod" not in page  # not a mitochondria model


def test_conditions_file_and_its_errors(results, tmp_path, capsys):
    cond = tmp_path / "conditions.csv"
    cond.write_text("file,Condition\ncontrol/img0.tif,A\ncontrol/img1,A\ntreated/img0,B\n")
    out = tmp_path / "r"
    code, text, err = call(["analyze", str(results), "-o", str(out), "-c", str(cond)], capsys)
    assert code == 0, err
    assert "unassigned" in err and "treated/img1" in err  # the image the file does not list
    assert [r["condition"] for r in rows(out / "images.csv")] == ["A", "A", "B", "unassigned"]
    bad = tmp_path / "bad.csv"
    bad.write_text("image,condition\nimg0.tif,A\nnope.tif,B\n")
    code, _, err = call(["analyze", str(results), "-o", str(tmp_path / "r2"), "-c", str(bad)],
                        capsys)
    assert code == 2 and "nope.tif" in err and "not in the results" in err
    ambiguous = tmp_path / "ambiguous.csv"
    ambiguous.write_text("image,condition\nimg0.tif,A\n")
    code, _, err = call(["analyze", str(results), "-o", str(tmp_path / "r3"), "-c",
                         str(ambiguous)], capsys)
    assert code == 2 and "several folders" in err  # img0 is in both sub-folders
    header = tmp_path / "header.csv"
    header.write_text("a,b\nx,y\n")
    code, _, err = call(["analyze", str(results), "-o", str(tmp_path / "r4"), "-c",
                         str(header)], capsys)
    assert code == 2 and "image column" in err
    assert not (tmp_path / "r2").exists() or not (tmp_path / "r2" / "report.html").exists()


def test_missing_pieces_no_pixel_size_and_empty_images(tmp_path, capsys):
    seg = tmp_path / "seg"
    write_result(seg, "good", labels_with(3), pixel_size_nm=None, record=False)
    write_result(seg, "empty", np.zeros((40, 40), np.uint16), pixel_size_nm=None, record=False)
    write_result(seg, "unfinished", labels_with(2), table=False, record=False)
    (seg / "broken_labels.tif").write_bytes(b"not a tiff")
    out = tmp_path / "r"
    code, text, err = call(["analyze", str(seg), "-o", str(out), "--mito"], capsys)
    assert code == 0, err
    assert "skipped broken" in err and "cannot read the labels" in err
    (line,) = [ln for ln in err.splitlines() if "no *_objects.csv" in ln]
    assert "unfinished" in line and "labels alone" in line
    assert "no pixel size" in err and "in pixels" in err and "200 px" in err
    assert "empty: no objects" in err
    imgs = {r["image"]: r for r in rows(out / "images.csv")}
    assert set(imgs) == {"empty", "good", "unfinished"}
    assert imgs["empty"]["n_objects"] == "0" and imgs["empty"]["mean_area_px"] == ""
    assert imgs["good"]["units"] == "px" and imgs["good"]["mean_area_um2"] == ""
    # a pixel size on the command line gives µm again
    code, _, err = call(["analyze", str(seg), "-o", str(out), "--pixel-size", "100",
                         "--overwrite"], capsys)
    assert code == 0 and "no pixel size" not in err
    assert {r["units"] for r in rows(out / "images.csv")} == {"µm"}


@pytest.mark.parametrize("case", ["missing", "file", "no_labels", "all_broken"])
def test_bad_results_folders(tmp_path, capsys, case):
    target = tmp_path / "seg"
    if case == "file":
        target.write_text("x")
    elif case == "no_labels":
        target.mkdir()
        (target / "a.tif").write_bytes(b"")
    elif case == "all_broken":
        target.mkdir()
        (target / "a_labels.tif").write_bytes(b"")
        (target / "a_objects.csv").write_text("id\n")
    code, _, err = call(["analyze", str(target), "-o", str(tmp_path / "r")], capsys)
    assert code == 2
    assert {"missing": "does not exist", "file": "not a folder", "no_labels": "no *_labels.tif",
            "all_broken": "no image could be analysed"}[case] in err
    assert "Traceback" not in err


def test_existing_report_and_inputs_are_never_overwritten(results, tmp_path, capsys):
    out = tmp_path / "r"
    assert call(["analyze", str(results), "-o", str(out)], capsys)[0] == 0
    before = (out / "report.html").read_bytes()
    code, _, err = call(["analyze", str(results), "-o", str(out)], capsys)
    assert code == 2 and "--overwrite" in err and (out / "report.html").read_bytes() == before
    own = tmp_path / "o2"
    own.mkdir()
    (own / "conditions.csv").write_text("image,condition\nimg0,x\n")
    code, _, err = call(["analyze", str(results), "-o", str(own), "-c",
                         str(own / "conditions.csv"), "--overwrite"], capsys)
    assert code == 2 and "overwrite the input" in err
    code, _, err = call(["analyze", str(results), "-o", str(tmp_path / "r5"),
                         "--neighbour-distance", "0.5"], capsys)
    assert code == 2 and "at least 1 pixel" in err


def test_stacks_give_one_row_per_plane_and_images_are_found_by_name(tmp_path, capsys):
    seg = tmp_path / "seg"
    seg.mkdir()
    from samscope.io import write_image, write_labels

    stack = np.stack([labels_with(2, seed=1), labels_with(3, seed=2)])
    write_labels(seg / "s_labels.tif", stack, axes="TYX", overwrite=True)
    (seg / "s_objects.csv").write_text(
        "plane,id,area,score\n" + "".join(f"{p},{i},1,0.9\n" for p in (0, 1)
                                          for i in range(1, 3 + p)))
    raw = tmp_path / "raw" / "deep"
    raw.mkdir(parents=True)
    write_image(raw / "s.tif", np.ones(stack.shape, np.float32) * 7, axes="TYX")
    out = tmp_path / "r"
    code, _, err = call(["analyze", str(seg), "-o", str(out), "--images",
                         str(tmp_path / "raw")], capsys)
    assert code == 0, err
    imgs = rows(out / "images.csv")
    assert [(r["plane"], r["n_objects"]) for r in imgs] == [("0", "2"), ("1", "3")]
    assert float(imgs[0]["mean_intensity"]) == 7
    objs = rows(out / "objects.csv")
    assert [o["plane"] for o in objs] == ["0", "0", "1", "1", "1"]
    assert objs[0]["score"] == "0.9"


def test_segment_then_analyze_keeps_the_physical_scale(tmp_path, capsys):
    """Labels and masks written by samscope segment carry the input's pixel size, and analyze
    measures in µm from them (the tiny test model; the objects themselves do not matter)."""
    import tifffile

    from samscope.io import read_image

    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.default_rng(0)
    img = rng.random((64, 64)).astype(np.float32)
    img[10:30, 10:30] += 3
    img[40:60, 35:55] += 3
    tifffile.imwrite(raw / "cells.tif", img, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
                     metadata={"unit": "um"})
    seg = tmp_path / "seg"
    code, _, err = call(["segment", str(raw), "-o", str(seg), "--model", "vit_test", "--mode",
                         "apg", "-s", "foreground_thresh=0", "-s", "min_size=0"], capsys)
    assert code == 0, err
    assert read_image(seg / "cells_labels.tif").pixel_size == pytest.approx((250.0, 250.0))
    if (seg / "cells_masks.tif").exists():
        # one mask per object (a single mask reads back as a 2-D image)
        assert read_image(seg / "cells_masks.tif").pixel_size[-2:] == pytest.approx((250, 250))
    out = tmp_path / "report"
    code, _, err = call(["analyze", str(seg), "-o", str(out)], capsys)
    assert code == 0, err
    (row,) = rows(out / "images.csv")
    assert float(row["pixel_size_nm"]) == pytest.approx(250) and row["units"] == "µm"
    objs = rows(out / "objects.csv")
    if objs:
        assert float(objs[0]["area_um2"]) == pytest.approx(int(objs[0]["area_px"]) * 0.0625)


def test_volumes_are_measured_in_3d(tmp_path, capsys):
    from samscope.io import write_labels

    seg = tmp_path / "seg"
    seg.mkdir()
    vol = np.zeros((8, 20, 20), np.uint16)
    vol[1:4, 2:8, 2:8] = 1
    vol[4:7, 2:8, 2:8] = 2
    write_labels(seg / "v_labels.tif", vol, pixel_size=(500, 100, 100))
    (seg / "v_objects.csv").write_text("id,area,score\n1,108,1\n2,108,1\n")
    out = tmp_path / "r"
    code, _, err = call(["analyze", str(seg), "-o", str(out)], capsys)
    assert code == 0, err
    (row,) = rows(out / "images.csv")
    assert row["n_objects"] == "2" and float(row["mean_area_px"]) == 108
    assert float(row["mean_area_um2"]) == pytest.approx(108 * 0.5 * 0.1 * 0.1)  # µm³ here
    assert float(row["mean_neighbours"]) == 1
    objs = rows(out / "objects.csv")
    assert objs[0]["volume_vox"] == "108" and float(objs[0]["surface_area_um2"]) > 0
