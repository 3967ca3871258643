"""``samscope track``, ``samscope evaluate --metrics tra,det,seg`` and ``simulate --frames``,
cross-checked against py-ctcmetrics."""

import contextlib
import io
import shutil

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


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    main(["simulate", "nuclei", "-n", "1", "--frames", "8", "--shape", "128", "--seed", "4",
          "-o", str(root / "sim"), "-s", "density=3,3.5"])  # fmt: skip
    return root / "sim"


def _gt_folder(sim, where):
    tra = where / "01_GT" / "TRA"
    tra.mkdir(parents=True)
    (where / "01_GT" / "SEG").mkdir()
    for t, f in enumerate(tifffile.imread(sim / "labels" / "000000.tif")):
        tifffile.imwrite(tra / f"man_track{t:03d}.tif", f.astype(np.uint16))
        if t % 3 == 0:  # a sparse SEG reference, as the challenge's
            tifffile.imwrite(where / "01_GT" / "SEG" / f"man_seg{t:03d}.tif", f.astype(np.uint16))
    shutil.copy(sim / "tracks" / "000000.txt", tra / "man_track.txt")
    return where / "01_GT"


def test_track_existing_labels_and_evaluate_against_py_ctcmetrics(sim, tmp_path, capsys):
    labels = tifffile.imread(sim / "labels" / "000000.tif")
    seg = labels.copy()
    seg[3][seg[3] == np.unique(seg[3])[1]] = 0  # one object missed in one frame
    seg[5, 2:12, 2:12] = seg.max() + 1  # a spurious one
    tifffile.imwrite(tmp_path / "seg.tif", seg)
    out = tmp_path / "01_RES"
    code, stdout, err = _run(["track", str(sim / "images" / "000000.tif"), "--labels",
                              str(tmp_path / "seg.tif"), "-o", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    assert "tracks" in stdout and (out / "res_track.txt").exists() and (out / "tracks.csv").exists()
    assert len(list(out.glob("mask*.tif"))) == 8
    gt = _gt_folder(sim, tmp_path)
    code, stdout, err = _run(["evaluate", str(out), str(gt), "-o", str(tmp_path / "ev")], capsys)
    assert code == 0, err
    import csv

    row = next(csv.DictReader(open(tmp_path / "ev" / "tracking.csv")))
    ours = {k: float(row[k]) for k in ("tra", "det", "seg")}
    assert ours["tra"] < 1.0
    evaluate = pytest.importorskip("ctc_metrics.scripts.evaluate")
    with contextlib.redirect_stdout(io.StringIO()):
        ref = evaluate.evaluate_sequence(str(out), str(gt), metrics=["DET", "SEG", "TRA"], threads=1)
    for k in ("tra", "det", "seg"):
        assert ours[k] == pytest.approx(ref[k.upper()], abs=1e-9)
    # the same series given as label files with track tables
    code, stdout, err = _run(["evaluate", str(out / "mask000.tif"), str(gt), "-o", str(tmp_path / "x")], capsys)
    assert code == 2  # a single frame is not a series
    code, _, err = _run(["evaluate", str(sim / "labels" / "000000.tif"), str(sim / "labels" / "000000.tif"),
                         "--metrics", "tra", "--gt-tracks", str(sim / "tracks" / "000000.txt"),
                         "--pred-tracks", str(sim / "tracks" / "000000.txt"), "-o", str(tmp_path / "ev2")],
                        capsys)  # fmt: skip
    assert code == 0, err
    row = next(csv.DictReader(open(tmp_path / "ev2" / "tracking.csv")))
    assert float(row["tra"]) == 1.0


def test_track_with_a_model(tmp_path, capsys):
    y, x = np.indices((48, 48))
    movie = np.stack([np.where((y - 20) ** 2 + (x - 12 - 4 * t) ** 2 < 64, 200, 10) for t in range(3)])
    tifffile.imwrite(tmp_path / "movie.tif", movie.astype(np.uint8), imagej=True, metadata={"axes": "TYX"})
    out = tmp_path / "res"
    code, stdout, err = _run(["track", str(tmp_path / "movie.tif"), "--model", "vit_test",
                              "--mode", "ais", "-o", str(out)], capsys)  # fmt: skip
    assert code == 0, err
    assert (out / "res_track.txt").exists() and (out / "tracking.json").exists()


def test_bad_series_are_refused_clearly(sim, tmp_path, capsys):
    one = tmp_path / "one.tif"
    tifffile.imwrite(one, np.zeros((32, 32), np.uint16))
    code, _, err = _run(["track", str(one), "-o", str(tmp_path / "r1")], capsys)
    assert code == 2 and "time series" in err
    folder = tmp_path / "frames"
    folder.mkdir()
    tifffile.imwrite(folder / "t000.tif", np.zeros((32, 32), np.uint16))
    tifffile.imwrite(folder / "t001.tif", np.zeros((32, 40), np.uint16))
    code, _, err = _run(["track", str(folder), "-o", str(tmp_path / "r2")], capsys)
    assert code == 2 and "different shapes" in err
    tifffile.imwrite(tmp_path / "short.tif", np.zeros((2, 128, 128), np.uint16))
    code, _, err = _run(["track", str(sim / "images" / "000000.tif"), "--labels",
                         str(tmp_path / "short.tif"), "-o", str(tmp_path / "r3")], capsys)  # fmt: skip
    assert code == 2 and "shape" in err
    single = tmp_path / "single.tif"
    tifffile.imwrite(single, np.zeros((1, 2, 32, 32), np.uint16), imagej=True, metadata={"axes": "TZYX"})
    code, _, err = _run(["track", str(single), "--axes", "TZYX", "-o", str(tmp_path / "r4")], capsys)
    assert code == 2
    # an empty frame and labels with gaps in their ids track fine
    seg = tifffile.imread(sim / "labels" / "000000.tif").astype(np.uint32) * 7
    seg[2] = 0
    tifffile.imwrite(tmp_path / "gappy.tif", seg)
    code, _, err = _run(["track", str(sim / "images" / "000000.tif"), "--labels",
                         str(tmp_path / "gappy.tif"), "-o", str(tmp_path / "r5")], capsys)  # fmt: skip
    assert code == 0, err
    code, _, err = _run(["track", str(sim / "images" / "000000.tif"), "--labels",
                         str(tmp_path / "gappy.tif"), "-o", str(tmp_path / "r5")], capsys)  # fmt: skip
    assert code == 2 and "--overwrite" in err
