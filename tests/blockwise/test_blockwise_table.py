"""The blockwise object table: streamed in chunks, in the same format as ``write_csv``."""

import csv

import numpy as np

from samscope.blockwise.run import _stream_csv
from samscope.evaluation.report import write_csv


def test_streamed_table_equals_write_csv(tmp_path):
    rng = np.random.default_rng(3)
    n = 45
    area = np.concatenate([[0], rng.integers(1, 500, n)])
    area[7] = 0  # an object with no pixels left: no centroid, like write_csv's NaN → empty cell
    centroid = rng.uniform(0, 4096, (2, n + 1))
    centroid[:, 7] = np.nan
    lo, hi = rng.integers(0, 100, (2, n + 1)), rng.integers(100, 200, (2, n + 1))
    columns = ["id", "area", "centroid_y", "centroid_x", "bbox_y0", "bbox_x0", "bbox_y1", "bbox_x1"]
    rows = [
        {"id": i, "area": int(area[i]), "centroid_y": float(centroid[0, i]),
         "centroid_x": float(centroid[1, i]), "bbox_y0": int(lo[0, i]), "bbox_x0": int(lo[1, i]),
         "bbox_y1": int(hi[0, i]), "bbox_x1": int(hi[1, i])}
        for i in range(1, n + 1)
    ]
    expected = write_csv(tmp_path / "dicts.csv", rows, columns=columns).read_text()
    got = _stream_csv(tmp_path / "streamed.csv", columns, area, centroid, lo, hi, chunk=8)
    assert got.read_text() == expected  # chunks of 8 rows over 45 objects: every boundary case
    with open(got, newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == n and table[6]["centroid_y"] == "" and table[0]["id"] == "1"
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_streamed_table_without_objects(tmp_path):
    empty = np.zeros(1, np.int64)
    path = _stream_csv(tmp_path / "t.csv", ["id", "area"], empty, np.zeros((0, 1)),
                       np.zeros((0, 1), np.int64), np.zeros((0, 1), np.int64))
    assert path.read_text() == "id,area\n"
