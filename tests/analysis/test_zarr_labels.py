"""samscope analyze of a zarr label image (a blockwise output), chunk by chunk."""

from __future__ import annotations

import numpy as np
import pytest

from samscope.analysis import measure_objects
from samscope.errors import InputError

pytest.importorskip("zarr")


@pytest.fixture()
def blockwise_store(tmp_path):
    import tifffile

    from samscope.blockwise import BlockwiseRequest, ThresholdSegmenter, segment_blockwise
    from samscope.simulate import nuclei

    [s] = nuclei(1, (300, 340), rng=5)
    img = np.clip(s.image, 0, 65535).astype(np.uint16)
    src = tmp_path / "slide.tif"
    tifffile.imwrite(src, img, metadata={"axes": "YX"}, resolution=(1e4 / 0.2, 1e4 / 0.2),
                     resolutionunit="CENTIMETER")  # 0.2 µm pixels
    out = tmp_path / "slide.zarr"
    segment_blockwise(BlockwiseRequest(src, out, block_size=128, halo=32),
                      segmenter=ThresholdSegmenter(33400.0, min_size=20))
    return src, out, img


def test_analyze_blockwise_store_equals_in_memory(blockwise_store, tmp_path):
    import zarr

    from samscope.analysis import analyze_results
    from samscope.analysis.table import read_csv_rows

    src, out, img = blockwise_store
    labels = zarr.open_group(str(out), mode="r")["0"][...]
    assert labels.max() > 10
    report = analyze_results(out, tmp_path / "report")
    ref = measure_objects(labels, img, pixel_size_nm=200)
    rows = read_csv_rows(report.files["objects"])
    assert report.n_objects == len(ref) == len(rows)
    for col in ("area_um2", "centroid_x_um", "perimeter_px", "mean_intensity", "major_axis_um"):
        got = np.array([float(r[col]) for r in rows])
        np.testing.assert_allclose(got, np.asarray(ref[col], np.float64), rtol=1e-6,
                                   err_msg=col)
    assert [int(r["bbox_y1"]) for r in rows] == ref["bbox_y1"].tolist()
    images = read_csv_rows(report.files["images"])
    assert float(images[0]["confluency"]) == pytest.approx(np.count_nonzero(labels) / labels.size)
    assert float(images[0]["pixel_size_nm"]) == pytest.approx(200)
    assert report.files["report"].is_file()
    # the recorded image gone: a note, no intensities, still a report
    src.rename(src.with_name("moved.tif"))
    again = analyze_results(out, tmp_path / "report2")
    assert any("not there" in n for n in again.notes)
    # --images as the file itself
    third = analyze_results(out, tmp_path / "report3", images=src.with_name("moved.tif"))
    assert third.n_objects == len(ref)


def test_analyze_zarr_refuses_unfinished_and_non_labels(blockwise_store, tmp_path):
    import json

    import zarr

    from samscope.analysis import analyze_results

    _, out, _ = blockwise_store
    attrs = json.loads((out / ".zattrs").read_text())
    attrs["samscope_blockwise"]["complete"] = False
    (out / ".zattrs").write_text(json.dumps(attrs))
    with pytest.raises(InputError, match="unfinished"):
        analyze_results(out, tmp_path / "r")
    floats = zarr.create_array(str(tmp_path / "f.zarr"), shape=(8, 8), dtype="f4",
                               zarr_format=2)
    floats[...] = 0.5
    with pytest.raises(InputError, match="not a label image"):
        analyze_results(tmp_path / "f.zarr", tmp_path / "r")
    assert not (tmp_path / "r" / "objects.csv").exists()


def test_cli_analyze_zarr(blockwise_store, tmp_path, capsys):
    from samscope.cli.main import main

    _, out, _ = blockwise_store
    code = 0
    try:
        main(["analyze", str(out), "-o", str(tmp_path / "rep")])
    except SystemExit as exc:
        code = exc.code or 0
    text = capsys.readouterr().out
    assert code == 0, text
    assert "1 image(s)" in text and (tmp_path / "rep" / "report.html").is_file()
