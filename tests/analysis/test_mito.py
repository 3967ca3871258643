"""Dot/rod rule in µm², its pixel fallback, and a simulated three-condition experiment."""

import numpy as np
import pytest

from samscope.analysis import (
    DOT_MAX_AREA_UM2,
    AnalysisConfig,
    Table,
    analyze_results,
    dot_rod_summary,
    is_dot,
    measure_masks,
    measure_objects,
)
from samscope.analysis.table import read_csv_rows
from samscope.errors import InputError


def test_threshold_is_200_px_at_80_nm_and_holds_at_any_pixel_size():
    assert DOT_MAX_AREA_UM2 == pytest.approx(1.28)
    lab80 = np.zeros((40, 40), np.uint16)
    lab80[2:22, 2:12] = 1  # 200 px at 80 nm: a dot (area <= threshold)
    lab80[25:35, 2:23] = 2  # 210 px: a rod
    t80 = measure_objects(lab80, pixel_size_nm=80)
    assert is_dot(t80).tolist() == [True, False]
    # the same objects imaged at 40 nm (4× the pixels) keep their class
    lab40 = np.kron(lab80, np.ones((2, 2), np.uint16))
    t40 = measure_objects(lab40, pixel_size_nm=40)
    assert t40["area_px"].tolist() == [800, 840] and is_dot(t40).tolist() == [True, False]
    # without a pixel size the rule is applied in pixels, at the 80 nm scale
    assert is_dot(measure_objects(lab80)).tolist() == [True, False]
    assert is_dot(measure_objects(lab40)).tolist() == [False, False]
    # the threshold is an option
    assert is_dot(t80, dot_max_area_um2=2.0).tolist() == [True, True]


def test_summary_counts_areas_and_proportions():
    t = Table({"area_px": [100, 300, 150, 500], "area_um2": [0.64, 1.92, 0.96, 3.2]})
    s = dot_rod_summary(t)
    assert (s.n_dot, s.n_rod, s.n) == (2, 2, 4)
    assert s.dot_count_fraction == 0.5 and s.rod_count_fraction == 0.5
    assert s.dot_area_fraction == pytest.approx(250 / 1050)
    assert s.dot_area_um2 == pytest.approx(1.6) and s.rod_area_px == 800
    assert s.physical and s.as_row()["mean_rod_area_um2"] == pytest.approx(2.56)
    empty = dot_rod_summary(Table({"area_px": np.zeros(0), "area_um2": np.zeros(0)}))
    assert empty.n == 0 and np.isnan(empty.dot_count_fraction)
    with pytest.raises(InputError, match="positive"):
        dot_rod_summary(t, dot_max_area_um2=0)


def _simulate(length, n, seed):
    from samscope.simulate import mitochondria

    return mitochondria(n, (128, 128), rng=seed, length_nm=length, width_nm=(300, 600),
                        tiling="seamless", bend_deg=30)


def test_three_condition_experiment_reproduces_truth_and_ordering(tmp_path, result_writer):
    """Conditions differing in fragmentation (short vs long tubes); the ground-truth masks
    stand in for the segmentation, so the report must equal the truth exactly."""
    design = {"Normal": (300, 8000), "Hypoxia": (300, 4000), "Hypoxia-ADM": (300, 6000)}
    results = tmp_path / "seg"
    truth, samples = {}, {}
    for k, (cond, length) in enumerate(design.items()):
        for i, s in enumerate(_simulate(length, 3, 50 + k)):
            samples[(cond, i)] = s
            name = f"img{i}"
            result_writer(results / cond, name, s.labels, masks=s.masks, image=s.image,
                          image_dir=tmp_path / "images" / cond, model="samscope-mito")
            areas = s.masks.reshape(len(s.masks), -1).sum(1)  # independent: pixel counts
            areas = areas[areas > 0]
            dots = areas <= 200
            truth[(cond, name)] = (dots.mean(), areas[dots].sum() / areas.sum(), len(areas))
    report = analyze_results(results, tmp_path / "report")  # mito on: the record's model
    rows = {(r["condition"], r["image"].split("/")[-1]): r
            for r in read_csv_rows(tmp_path / "report" / "images.csv")}
    assert len(rows) == 9
    for key, (count_frac, area_frac, n) in truth.items():
        assert int(rows[key]["n_objects"]) == n
        assert float(rows[key]["dot_count_fraction"]) == pytest.approx(count_frac, abs=1e-9)
        assert float(rows[key]["dot_area_fraction"]) == pytest.approx(area_frac, abs=1e-9)
        assert float(rows[key]["rod_count_fraction"]) == pytest.approx(1 - count_frac)
    means = {(r["condition"], r["metric"]): float(r["mean"])
             for r in read_csv_rows(tmp_path / "report" / "conditions.csv")
             if r["metric"] in ("dot_count_fraction", "dot_area_fraction")}
    for metric in ("dot_count_fraction", "dot_area_fraction"):
        assert means[("Hypoxia", metric)] > means[("Hypoxia-ADM", metric)] > means[
            ("Normal", metric)]
    assert report.conditions == ("Hypoxia", "Hypoxia-ADM", "Normal")  # folder names, sorted
    assert (tmp_path / "report" / "plots" / "dot_rod.svg").exists()
    objects = read_csv_rows(tmp_path / "report" / "objects.csv")
    assert {o["mito_type"] for o in objects} == {"dot", "rod"}
    # the objects are the masks, measured whole (overlaps counted for each object)
    whole = measure_masks(samples[("Normal", 0)].masks, pixel_size_nm=80)
    got = [o for o in objects if o["image"] == "Normal/img0"]
    assert [int(o["area_px"]) for o in got] == whole["area_px"].tolist()


def test_mito_analysis_is_off_for_other_models_unless_asked(tmp_path, result_writer):
    lab = np.zeros((32, 32), np.uint16)
    lab[4:10, 4:10] = 1
    result_writer(tmp_path / "seg", "a", lab, model="samscope-lm")
    analyze_results(tmp_path / "seg", tmp_path / "r1")
    assert "n_dot" not in read_csv_rows(tmp_path / "r1" / "images.csv")[0]
    analyze_results(tmp_path / "seg", tmp_path / "r2", config=AnalysisConfig(mito=True))
    assert read_csv_rows(tmp_path / "r2" / "images.csv")[0]["n_dot"] == "1"
