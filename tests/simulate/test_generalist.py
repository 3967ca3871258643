"""The generalist corpus: layouts, renderers, acquisition randomisation, domains and suites."""

from __future__ import annotations

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.simulate.appearance import AppearanceConfig, randomise_appearance
from samscope.simulate.dataset import simulate
from samscope.simulate.generalist import DOMAINS, SUITES, GeneralistConfig, simulate_one, suite
from samscope.simulate.layouts import keep_largest_parts, tessellation
from samscope.simulate.render import MODALITIES, inner_border_distance, render


def _median_diameter(labels: np.ndarray) -> float:
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    return float(np.median(np.sqrt(4 * areas / np.pi)))


def test_tessellation_fills_space_with_cells_of_the_requested_size():
    rng = np.random.default_rng(0)
    lab = tessellation((256, 256), rng, diameter=30.0, coverage=1.0, irregularity=0.2)
    assert lab.dtype == np.int32
    assert (lab > 0).mean() > 0.97  # confluent: (almost) no background
    assert 24 < _median_diameter(lab) < 36
    # every cell is one connected piece
    from scipy import ndimage as ndi

    for i in range(1, int(lab.max()) + 1):
        assert ndi.label(lab == i)[1] == 1


def test_tessellation_coverage_gap_and_elongation():
    rng = np.random.default_rng(1)
    lab = tessellation((256, 256), rng, diameter=24.0, coverage=0.4, gap_px=2.0, elongation=2.0)
    cover = (lab > 0).mean()
    assert 0.2 < cover < 0.6
    from skimage.measure import regionprops

    props = [p for p in regionprops(lab) if p.area > 100]
    ratio = np.median([p.axis_major_length / max(p.axis_minor_length, 1) for p in props])
    assert ratio > 1.4  # stretched cells
    # a gap separates neighbours: no two labels touch horizontally
    a, b = lab[:, :-1], lab[:, 1:]
    assert not np.any((a > 0) & (b > 0) & (a != b))


def test_keep_largest_parts():
    lab = np.zeros((10, 10), np.int32)
    lab[1:4, 1:4] = 1
    lab[7, 7] = 1
    out = keep_largest_parts(lab)
    assert out[7, 7] == 0 and out[2, 2] == 1 and lab[7, 7] == 1  # input untouched


def test_inner_border_distance_separates_touching_objects():
    lab = np.zeros((9, 12), np.int32)
    lab[1:8, 1:6] = 1
    lab[1:8, 6:11] = 2
    d = inner_border_distance(lab)
    assert d[4, 5] == 1 and d[4, 6] == 1  # both sides of the contact are border
    assert d[4, 3] > d[4, 5]
    assert d[0, 0] == 0


@pytest.mark.parametrize("modality", MODALITIES)
def test_every_modality_shows_the_objects(modality):
    rng = np.random.default_rng(3)
    lab = tessellation((128, 128), np.random.default_rng(4), diameter=28.0, coverage=0.5)
    img = render(lab, rng, modality=modality, diameter=28.0)
    assert img.shape == lab.shape and img.dtype == np.float32 and np.isfinite(img).all()
    # objects and background differ in mean or in texture (edges for DIC)
    fg, bg = img[lab > 0], img[lab == 0]
    gy, gx = np.gradient(img)
    edge = np.hypot(gy, gx)
    from skimage.segmentation import find_boundaries

    border = find_boundaries(lab)
    separated = abs(fg.mean() - bg.mean()) > 0.05 * img.std() or edge[border].mean() > 1.2 * edge[~border].mean()
    assert separated


def test_render_rejects_unknown_modality():
    with pytest.raises(InputError, match="unknown modality"):
        render(np.zeros((8, 8), np.int32), np.random.default_rng(0), modality="xray", diameter=5)


@pytest.mark.parametrize("dtype", ["uint8", "uint12", "uint16", "float32"])
def test_appearance_file_types(dtype):
    rng = np.random.default_rng(5)
    base = np.zeros((64, 64), np.float32)
    base[16:48, 16:48] = 1.0
    out, drawn = randomise_appearance(base, rng, AppearanceConfig(dtypes=(dtype,), invert_prob=0.0))
    assert drawn["dtype"] == dtype
    expected = {"uint8": np.uint8, "uint12": np.uint16, "uint16": np.uint16, "float32": np.float32}
    assert out.dtype == expected[dtype]
    if dtype == "uint12":
        assert out.max() <= 4095
    inside, outside = out[24:40, 24:40].astype(float).mean(), out[:8].astype(float).mean()
    assert inside != outside


def test_appearance_inversion_flips_polarity():
    base = np.zeros((64, 64), np.float32)
    base[16:48, 16:48] = 1.0
    cfg = AppearanceConfig(invert_prob=1.0, dtypes=("float32",), gamma_prob=0.0, resample_prob=0.0)
    out, drawn = randomise_appearance(base, np.random.default_rng(0), cfg)
    assert drawn["inverted"] and out[24:40, 24:40].mean() < out[:8].mean()


def test_appearance_config_validation():
    with pytest.raises(InputError, match="dtypes"):
        AppearanceConfig(dtypes=("uint7",))
    with pytest.raises(InputError, match="jpeg_prob"):
        AppearanceConfig(jpeg_prob=2.0)


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_domain_gives_labelled_objects_at_the_working_scale(domain):
    cfg = GeneralistConfig(domains=(domain,), diameter_px=(26.0, 30.0), coverage=(0.3, 0.4))
    s = simulate_one((192, 192), cfg, seed=11, index=0)
    assert s.params["domain"] == domain
    assert s.labels.shape == (192, 192) and s.n_objects >= 3
    assert s.image.shape == (192, 192)
    assert np.array_equal(s.foreground, s.labels > 0)
    # the median size is near the drawn diameter (rods and spread cells deviate most)
    assert 12 < _median_diameter(np.asarray(s.labels)) < 50


def test_samples_are_reproducible_and_depend_on_the_index():
    a = simulate("generalist", 2, (96, 96), rng=3)
    b = simulate("generalist", 2, (96, 96), rng=3)
    assert np.array_equal(a[0].image, b[0].image) and np.array_equal(a[1].labels, b[1].labels)
    assert not np.array_equal(a[0].labels, a[1].labels)


def test_config_validation():
    with pytest.raises(InputError, match="domains"):
        GeneralistConfig(domains=("plants",))
    with pytest.raises(InputError, match="domain_weights"):
        GeneralistConfig(domain_weights=(1.0,))
    with pytest.raises(InputError, match="looks"):
        GeneralistConfig(looks=("xray",))
    assert GeneralistConfig(domains=("nuclei", "bacteria")).domain_weights == (1.0, 1.0)


def test_native_only_when_asked():
    cfg = GeneralistConfig(domains=("nuclei",), looks=("dic",))
    looks = {simulate_one((96, 96), cfg, seed=2, index=i).params["look"] for i in range(4)}
    assert looks == {"dic"}


def test_suites_cover_the_sizes_they_name():
    assert set(SUITES) >= {"nuclei_8_16", "nuclei_16_40", "nuclei_40_150", "phase_cells", "bacteria", "cytoplasm"}
    small = suite("nuclei_8_16", 1, seed=401)[0]
    assert 6 < _median_diameter(np.asarray(small.labels)) < 20
    with pytest.raises(InputError, match="unknown suite"):
        suite("nope", 1, seed=0)
