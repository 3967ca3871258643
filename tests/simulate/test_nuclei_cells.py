"""The fluorescent-nuclei and label-free (phase-contrast) simulators."""

import dataclasses

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import regionprops

from samscope.errors import InputError
from samscope.simulate import CellsConfig, NucleiConfig, cells, nuclei, stream


@pytest.fixture(scope="module")
def hela_like():
    """Four default 512² nuclei images."""
    return nuclei(4, rng=0)


def _interior_props(labels):
    """Region properties of objects that do not touch the image border."""
    h, w = labels.shape
    out = []
    for p in regionprops(labels):
        y0, x0, y1, x1 = p.bbox
        if y0 > 0 and x0 > 0 and y1 < h and x1 < w:
            out.append(p)
    return out


def _check_instances(s):
    assert s.image.dtype == np.float32 and s.image.ndim == 2
    assert s.labels.dtype == np.uint16 and s.labels.shape == s.image.shape
    assert s.masks is None
    assert (s.foreground == (s.labels > 0)).all()
    ids = np.unique(s.labels)
    assert (ids == np.arange(ids.size)).all()  # sequential, 0 = background
    assert s.params["n_objects"] == ids.size - 1 == s.n_objects


def test_nuclei_types_and_labels(hela_like):
    for s in hela_like:
        _check_instances(s)
        assert s.params["kind"] == "nuclei"
        assert len(s.params["objects"]["kind"]) == s.n_objects


def test_nuclei_look_like_hela(hela_like):
    """Sizes, density, offset and noise in the ranges measured on the HeLa frames."""
    areas, per_area, fg = [], [], []
    for s in hela_like:
        props = _interior_props(s.labels)
        areas += [p.area for p in props if s.params["objects"]["kind"][p.label - 1] == "interphase"]
        per_area.append(s.n_objects / s.labels.size * 1e4)
        fg.append(s.foreground.mean())
        # camera offset near 33,000 and a dark background: background pixels sit just above it
        far = ndi.distance_transform_edt(~s.foreground) > 10
        bg = np.median(s.image[far])
        assert 32_950 <= s.params["offset"] <= 33_050
        assert s.params["offset"] < bg < s.params["offset"] + 200
        # nuclei are bright: their mean is well above the background noise
        noise = np.std(np.diff(s.image[far].reshape(-1)[:5000])) / np.sqrt(2)
        inside = np.array([s.image[s.labels == i].mean() for i in range(1, s.n_objects + 1)])
        assert np.median(inside) - bg > 10 * noise
    med = np.median(areas)
    assert 450 < med < 750  # HeLa: 600 px (IQR 505-707)
    assert 1.0 < np.mean(per_area) < 3.5  # HeLa: 1.6-2.5 per 10^4 px²
    assert 0.05 < np.mean(fg) < 0.2  # HeLa: 0.09-0.16


def test_nuclei_touch_when_clustered():
    s = nuclei(1, (256, 256), rng=2, cluster_fraction=1.0, density=(3, 3))[0]
    lab = s.labels
    # pixels whose right or lower neighbour belongs to another object
    right = (lab[:, :-1] > 0) & (lab[:, 1:] > 0) & (lab[:, :-1] != lab[:, 1:])
    down = (lab[:-1] > 0) & (lab[1:] > 0) & (lab[:-1] != lab[1:])
    assert right.sum() + down.sum() > 20


def test_dividing_and_apoptotic_looks():
    div = nuclei(1, (256, 256), rng=3, dividing_fraction=1.0, apoptotic_fraction=0.0)[0]
    kinds = set(div.params["objects"]["kind"])
    assert kinds == {"mitosis"}
    apo = nuclei(1, (256, 256), rng=3, apoptotic_fraction=1.0, dividing_fraction=0.0)[0]
    assert set(apo.params["objects"]["kind"]) == {"apoptotic"}
    normal = nuclei(1, (256, 256), rng=3, dividing_fraction=0.0, apoptotic_fraction=0.0)[0]
    # mitoses: small, elongated, brighter than interphase nuclei
    dprops = _interior_props(div.labels)
    nprops = _interior_props(normal.labels)
    assert np.median([p.area for p in dprops]) < 0.5 * np.median([p.area for p in nprops])
    assert np.median([p.eccentricity for p in dprops]) > 0.75
    b_div = np.median(div.params["objects"]["brightness"]) / div.params["brightness"]
    b_norm = np.median(normal.params["objects"]["brightness"]) / normal.params["brightness"]
    assert b_div > 1.8 * b_norm


def test_nuclei_deterministic_and_streamable():
    a = nuclei(2, (96, 128), rng=9)
    b = list(zip(range(2), stream("nuclei", seed=9, shape=(96, 128)), strict=False))
    for x, (_, y) in zip(a, b, strict=True):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.labels, y.labels)
    assert not np.array_equal(a[0].image, a[1].image)


@pytest.mark.parametrize("look", ["phase", "bacteria"])
def test_label_free_dark_bodies_bright_halos(look):
    s = cells(1, (256, 256), rng=4, look=look)[0]
    _check_instances(s)
    assert s.params["look"] == look and s.n_objects >= 5
    fg = s.foreground
    dist_out = ndi.distance_transform_edt(~fg)
    halo = (dist_out >= 1) & (dist_out <= 3)
    far = dist_out > 12
    bodies = ndi.binary_erosion(fg, iterations=2)
    if look == "phase":  # phase-bright rounded cells are the exception: leave them out
        rounded = [i + 1 for i, k in enumerate(s.params["objects"]["kind"]) if k == "rounded"]
        bodies &= ~np.isin(s.labels, rounded)
    bg = np.median(s.image[far])
    assert np.median(s.image[bodies]) < bg < np.median(s.image[halo])


def test_mixed_look_draws_both():
    looks = {s.params["look"] for s in cells(6, (64, 64), rng=1)}
    assert looks == {"phase", "bacteria"}


def test_bacteria_are_rods():
    s = cells(1, (256, 256), rng=5, look="bacteria", rod_length_px=(24, 30), rod_width_px=(6, 8))[0]
    props = [p for p in _interior_props(s.labels) if p.area > 100]
    elong = np.median([p.axis_major_length / p.axis_minor_length for p in props])
    assert elong > 2.5


@pytest.mark.parametrize(
    ("fn", "bad"),
    [
        (nuclei, {"density": (0, 2)}),
        (nuclei, {"diameter_px": (30, 20)}),
        (nuclei, {"diameter_px": (-5, 20)}),
        (nuclei, {"aspect": (0.5, 1.5)}),
        (nuclei, {"brightness": (0, 100)}),
        (nuclei, {"dividing_fraction": 1.5}),
        (nuclei, {"dividing_fraction": 0.7, "apoptotic_fraction": 0.5}),
        (cells, {"look": "fluorescence"}),
        (cells, {"rod_width_px": (6, 20), "rod_length_px": (10, 30)}),
        (cells, {"cell_density": (-1, 2)}),
        (cells, {"contrast": (0.2, 2.0)}),
    ],
)
def test_bad_parameters(fn, bad):
    with pytest.raises(InputError):
        fn(1, (64, 64), rng=0, **bad)


def test_configs_are_frozen_and_validated():
    with pytest.raises(InputError):
        NucleiConfig(min_area_px=0)
    with pytest.raises(InputError):
        CellsConfig(max_overlap=0.9)
    with pytest.raises(dataclasses.FrozenInstanceError):
        NucleiConfig().density = (1, 2)
