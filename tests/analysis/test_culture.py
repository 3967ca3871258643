"""Culture metrics equal independent computations; neighbours by the stated definition."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from samscope.analysis import culture_metrics, neighbour_counts, neighbour_pairs
from samscope.errors import InputError


def cells(seed=0, shape=(64, 80), n=25):
    """Random rectangles and discs, some touching, some a pixel apart, some far."""
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint16)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    ids = rng.permutation(np.arange(3, 3 + 2 * n, 2))[:n]  # non-consecutive ids
    for k in ids:
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        r = rng.uniform(2, 7)
        lab[((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) & (lab == 0)] = k
    return lab


def brute_force_pairs(lab, distance):
    ids = [int(i) for i in np.unique(lab) if i]
    pts = {i: np.argwhere(lab == i) for i in ids}
    out = []
    for a_i, a in enumerate(ids):
        for b in ids[a_i + 1:]:
            if cdist(pts[a], pts[b]).min() <= distance + 1e-9:
                out.append([a, b])
    return out


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("distance", [1.0, 1.5, 2.0, 3.0])
def test_neighbours_match_the_definition(seed, distance):
    lab = cells(seed)
    assert neighbour_pairs(lab, distance_px=distance).tolist() == brute_force_pairs(lab, distance)


def test_neighbour_distance_one_means_sharing_an_edge():
    lab = np.zeros((6, 9), np.uint8)
    lab[1:3, 1:3] = 1
    lab[1:3, 3:5] = 2  # shares an edge with 1
    lab[3:5, 5:7] = 3  # touches 2 only at a corner
    lab[1:3, 8] = 4  # one background column from 2... and 3 px away
    assert neighbour_pairs(lab, distance_px=1).tolist() == [[1, 2]]
    assert neighbour_pairs(lab, distance_px=1.5).tolist() == [[1, 2], [2, 3]]
    ids, counts = neighbour_counts(lab, distance_px=1.5)
    assert ids.tolist() == [1, 2, 3, 4] and counts.tolist() == [1, 2, 1, 0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_culture_metrics_equal_independent_values(seed):
    lab = cells(seed)
    ids = [i for i in np.unique(lab) if i]
    areas = [int((lab == i).sum()) for i in ids]
    m = culture_metrics(lab, pixel_size_nm=500)
    assert m.n_cells == len(ids)
    assert m.mean_area_px == pytest.approx(np.mean(areas), abs=0)
    assert m.mean_area_um2 == pytest.approx(np.mean(areas) * 0.25)
    assert m.confluency == np.count_nonzero(lab) / lab.size
    pairs = brute_force_pairs(lab, 2.0)
    per_cell = {i: sum(i in p for p in pairs) for i in ids}
    assert m.mean_neighbours == pytest.approx(np.mean(list(per_cell.values())))
    interior = [i for i in ids if not (
        np.argwhere(lab == i).min(0).min() == 0
        or (np.argwhere(lab == i) == np.array(lab.shape) - 1).any())]
    assert m.mean_neighbours_interior == pytest.approx(np.mean([per_cell[i] for i in interior]))
    assert m.neighbour_distance_px == 2.0


def test_empty_image_and_3d():
    m = culture_metrics(np.zeros((10, 10), np.uint16))
    assert m.n_cells == 0 and m.confluency == 0 and np.isnan(m.mean_area_px)
    vol = np.zeros((6, 8, 8), np.uint16)
    vol[1:3, 1:4, 1:4] = 1
    vol[3:5, 1:4, 1:4] = 2
    m3 = culture_metrics(vol)
    assert m3.n_cells == 2 and m3.mean_area_px == 18 and m3.mean_neighbours == 1
    assert m3.confluency == 36 / vol.size


def test_bad_distance():
    with pytest.raises(InputError, match="at least 1 pixel"):
        neighbour_pairs(np.zeros((4, 4), np.uint8), distance_px=0.5)
