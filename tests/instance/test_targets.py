"""Training targets and their decoders (samscope.instance.targets)."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.segmentation import watershed

from samscope.errors import InputError
from samscope.evaluation.metrics import mean_segmentation_accuracy
from samscope.instance.ais import AISConfig
from samscope.instance.targets import (
    distance_map_target,
    instance_distance_targets,
    instance_seeds,
    watershed_from_distance_map,
    watershed_from_instance_distances,
)

DATA = Path(__file__).parent / "data"


def _fixture_labels() -> np.ndarray:
    spec = importlib.util.spec_from_file_location(
        "make_targets_fixture", DATA / "make_targets_fixture.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fixture_labels()


def separated_discs(shape=(256, 256), step=40, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    lab = np.zeros(shape, np.int32)
    k = 1
    for cy in range(step // 2, shape[0], step):
        for cx in range(step // 2, shape[1], step):
            r = rng.integers(6, step // 2 - 3)
            lab[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = k
            k += 1
    return lab


def touching_cells(shape=(256, 256), n=80, radius=14, seed=0) -> np.ndarray:
    """Voronoi-like touching convex cells (a watershed of random points)."""
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, shape[0], (n, 2)) % np.array(shape)
    markers = np.zeros(shape, np.int32)
    markers[pts[:, 0], pts[:, 1]] = np.arange(1, n + 1)
    d = ndi.distance_transform_edt(markers == 0)
    lab = watershed(d, markers, mask=d < radius)
    return lab.astype(np.int32)


# -- instance distance targets ----------------------------------------------------------------


def test_square_by_hand():
    lab = np.zeros((7, 7), np.int32)
    lab[1:6, 1:6] = 4
    t = instance_distance_targets(lab)
    assert t.shape == (3, 7, 7) and t.dtype == np.float32
    fg, cd, bd = t
    assert fg.sum() == 25 and fg[0, 0] == 0
    # background: distance channels 1 (torch_em's fill value)
    assert cd[0, 0] == 1 and bd[0, 0] == 1
    # centre (3, 3): both distances 0; corner farthest from the centre: 1
    assert cd[3, 3] == 0 and bd[3, 3] == 0
    np.testing.assert_allclose(cd[1, 1], 1, atol=1e-6)
    np.testing.assert_allclose(cd[1, 3], 2 / np.hypot(2, 2), atol=1e-6)
    # inner boundary ring (EDT 0): boundary distance 1; the ring inside it (EDT 1 of max 2): 0.5
    np.testing.assert_allclose(bd[1, 1:6], 1, atol=1e-6)
    np.testing.assert_allclose(bd[2, 2:5], 0.5, atol=1e-6)


def test_crescent_centre_moves_inside_and_one_pixel_object():
    yy, xx = np.mgrid[:40, :40]
    r2 = (yy - 20) ** 2 + (xx - 20) ** 2
    crescent = (r2 < 12**2) & (r2 >= 7**2) & (xx < 28)  # a C: its centroid lies in the hole
    lab = crescent.astype(np.int32)
    lab[2, 38] = 2
    t = instance_distance_targets(lab)
    centroid = np.round(np.argwhere(crescent).mean(axis=0)).astype(int)
    assert not crescent[tuple(centroid)]  # the centroid is outside: the centre is moved
    zero = np.argwhere((t[1] == 0) & crescent)
    assert len(zero) == 1 and crescent[tuple(zero[0])]
    assert t[1, 2, 38] == 0 and t[2, 2, 38] == 0 and t[0, 2, 38] == 1


def test_split_components_and_min_size():
    lab = np.zeros((20, 40), np.int32)
    lab[2:9, 2:9] = 1
    lab[2:9, 20:27] = 1  # the same id in a second piece
    lab[15, 30:33] = 2  # 3 pixels
    split = instance_distance_targets(lab)
    assert np.count_nonzero(split[1] == 0) == 3  # two centres + the small object's centre
    joined = instance_distance_targets(lab, split_components=False)
    assert np.count_nonzero((joined[1] == 0) & (lab == 1)) == 1
    filtered = instance_distance_targets(lab, min_size=5)
    assert filtered[0, 15, 31] == 0 and filtered[1, 15, 31] == 1 and filtered[2, 15, 31] == 1
    assert filtered[0].sum() == 98


def test_equals_torch_em_per_object_distance_transform():
    """Fixture from torch_em's PerObjectDistanceTransform (data/make_targets_fixture.py)."""
    ref = np.load(DATA / "torch_em_targets.npz")
    lab = _fixture_labels()
    np.testing.assert_array_equal(lab, ref["labels"])
    for min_size in (0, 5):
        ours = instance_distance_targets(lab, min_size=min_size)
        np.testing.assert_allclose(ours, ref[f"min_size_{min_size}"], atol=1e-5)


def test_targets_input_checks_and_inputs_untouched():
    lab = touching_cells((64, 64), n=10)
    before = lab.copy()
    instance_distance_targets(lab)
    distance_map_target(lab)
    np.testing.assert_array_equal(lab, before)
    with pytest.raises(InputError, match="integers"):
        instance_distance_targets(lab.astype(float))
    with pytest.raises(InputError, match="2-D"):
        instance_distance_targets(lab[None])
    with pytest.raises(InputError, match="non-negative"):
        distance_map_target(-lab)
    empty = instance_distance_targets(np.zeros((5, 6), np.uint16))
    assert empty[0].sum() == 0 and (empty[1:] == 1).all()


def test_targets_scale_2000_objects_on_2048():
    lab = touching_cells((2048, 2048), n=2000, radius=18, seed=3)
    assert lab.max() == 2000
    t0 = time.perf_counter()
    t = instance_distance_targets(lab)
    d = distance_map_target(lab)
    elapsed = time.perf_counter() - t0
    assert t.shape == (3, 2048, 2048) and d.shape == (2048, 2048)
    # a guard against per-object passes over the whole image (minutes for 2000 objects), not a
    # speed figure: about 1 s on a quiet 2-core machine, so the bound leaves room for a loaded one
    assert elapsed < 60, f"targets took {elapsed:.1f} s (about 1 s expected)"


# -- distance map target ----------------------------------------------------------------------


def test_distance_map_by_hand():
    lab = np.zeros((7, 9), np.int32)
    lab[1:6, 1:4] = 1  # 5 x 3: max EDT 2
    lab[1:6, 4:8] = 2  # touches 1
    d = distance_map_target(lab)
    assert d.dtype == np.float32 and d[0, 0] == 0
    np.testing.assert_allclose(d[3, 1:4], [0.5, 1.0, 0.5])
    # the border between touching cells is low on both sides
    assert d[3, 3] == 0.5 and d[3, 4] == 0.5
    assert d[lab > 0].min() > 0 and d.max() == 1
    # the image edge is not a border: a band along the top edge peaks at the edge row
    band = np.zeros((6, 6), np.int32)
    band[:3] = 1
    db = distance_map_target(band)
    np.testing.assert_allclose(db[:3, 2], [1.0, 2 / 3, 1 / 3])


# -- decoders and round trips ------------------------------------------------------------------


@pytest.mark.parametrize("make", [separated_discs, touching_cells])
def test_round_trip_instance_distances(make):
    gt = make()
    maps = instance_distance_targets(gt)
    exact = watershed_from_instance_distances(
        maps, config=AISConfig(foreground_smoothing=0.0, distance_smoothing=0.0)
    )
    assert exact.max() == gt.max()
    assert mean_segmentation_accuracy(gt, exact) == pytest.approx(1.0)
    smoothed = watershed_from_instance_distances(maps)  # µSAM's default smoothing
    assert smoothed.max() == gt.max()
    assert mean_segmentation_accuracy(gt, smoothed) > 0.95


@pytest.mark.parametrize("make", [separated_discs, touching_cells])
def test_round_trip_distance_map(make):
    gt = make()
    dist = distance_map_target(gt)
    full = watershed_from_distance_map(dist, fill_thresh=0.0)
    assert full.max() == gt.max()
    assert mean_segmentation_accuracy(gt, full) > 0.98
    # SAMCell's default fill threshold 0.09 trims the outermost 9 % of each cell's radius
    default = watershed_from_distance_map(dist)
    assert default.max() == gt.max()
    assert mean_segmentation_accuracy(gt, default) > 0.8


def test_decoders_on_empty_maps():
    background = np.zeros((3, 20, 30), np.float32)  # no foreground
    no_seeds = np.ones((3, 20, 30), np.float32)  # foreground, but distances never below 0.5
    for maps in (background, no_seeds):
        out = watershed_from_instance_distances(maps)
        assert out.shape == (20, 30) and out.max() == 0
    assert watershed_from_distance_map(np.zeros((20, 30))).max() == 0
    assert watershed_from_distance_map(np.full((20, 30), 0.3)).max() == 0


def test_min_size_and_seeds():
    gt = separated_discs()
    sizes = np.bincount(gt.ravel())[1:]
    cut = int(np.median(sizes))
    out = watershed_from_instance_distances(
        instance_distance_targets(gt),
        config=AISConfig(foreground_smoothing=0, distance_smoothing=0, min_size=cut),
    )
    assert out.max() == int((sizes >= cut).sum())
    seeds, fg, surface = instance_seeds(instance_distance_targets(gt), distance_smoothing=0)
    assert seeds.max() == gt.max() and fg.dtype == bool and surface.dtype == np.float32


@pytest.mark.parametrize(
    "kwargs",
    [
        {"peak_thresh": 1.5},
        {"fill_thresh": -0.1},
        {"peak_thresh": 0.2, "fill_thresh": 0.3},
        {"min_size": -1},
    ],
)
def test_distance_decoder_rejects_bad_thresholds(kwargs):
    with pytest.raises(InputError):
        watershed_from_distance_map(np.zeros((4, 4)), **kwargs)


def test_bad_maps():
    with pytest.raises(InputError, match=r"\(3, H, W\)"):
        watershed_from_instance_distances(np.zeros((2, 5, 5)))
    bad = np.zeros((3, 5, 5))
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        watershed_from_instance_distances(bad)


def test_targets_module_imports_no_torch():
    code = "import sys, samscope.instance.targets; print('torch' in sys.modules)"
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
