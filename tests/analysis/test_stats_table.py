"""Per-condition statistics and the CSV tables (they load in pandas without options)."""

import math

import numpy as np
import pytest

from samscope.analysis import Table, mean_ci, summarise_by_condition
from samscope.errors import InputError


def test_mean_ci_is_students_t_interval():
    v = [1.0, 2.0, 3.0, 7.0, np.nan]  # NaN left out
    r = mean_ci(v)
    sd = np.std([1, 2, 3, 7], ddof=1)
    half = 3.182446305284263 * sd / 2  # t(0.975, 3)
    assert r.n == 4 and r.mean == 3.25 and r.median == 2.5
    assert r.ci_low == pytest.approx(3.25 - half) and r.ci_high == pytest.approx(3.25 + half)
    one = mean_ci([5.0])
    assert one.n == 1 and one.mean == 5 and math.isnan(one.ci_low)
    assert mean_ci([]).n == 0 and math.isnan(mean_ci([]).mean)


def test_summary_by_condition_keeps_order_and_totals():
    images = Table({
        "condition": np.array(["b", "a", "b", "a", "a"], object),
        "n_objects": [10, 3, 14, 5, 4],
        "confluency": [0.5, 0.1, 0.7, np.nan, 0.3],
    })
    s = summarise_by_condition(images, ["n_objects", "confluency", "absent"],
                               conditions=["a", "b"], totals=["n_objects"])
    rows = s.rows()
    assert [(r["condition"], r["metric"]) for r in rows] == [
        ("a", "n_objects"), ("a", "confluency"), ("b", "n_objects"), ("b", "confluency")]
    assert rows[0]["mean"] == 4 and rows[0]["total"] == 12 and rows[0]["n_images"] == 3
    assert rows[1]["n_images"] == 2 and rows[1]["mean"] == pytest.approx(0.2)
    assert math.isnan(rows[1]["total"])


def test_table_csv_loads_in_pandas_without_options(tmp_path):
    pd = pytest.importorskip("pandas")
    t = Table({"image": np.array(["a,b", "c"], object), "n": [1, 2],
               "x": [0.1, np.nan], "edge": [True, False]})
    t.write_csv(tmp_path / "t.csv")
    df = pd.read_csv(tmp_path / "t.csv")
    assert list(df.columns) == ["image", "n", "x", "edge"]
    assert df["image"].tolist() == ["a,b", "c"]
    assert df["n"].dtype.kind == "i" and df["edge"].dtype == bool
    assert df["x"].iloc[0] == 0.1 and math.isnan(df["x"].iloc[1])
    assert pd.DataFrame(t.columns).shape == (2, 4)


def test_table_concat_fills_missing_columns():
    a = Table({"id": [1, 2], "score": [0.5, 0.6]})
    b = Table({"id": [3], "mito_type": np.array(["dot"], object)})
    c = Table.concat([a, b])
    assert c["id"].tolist() == [1, 2, 3]
    assert np.isnan(c["score"][2]) and c["mito_type"].tolist() == ["", "", "dot"]
    assert c.with_columns({"image": "x"}, first=True).names[0] == "image"
    with pytest.raises(InputError, match="differ in length"):
        Table({"a": [1, 2], "b": [1]})
