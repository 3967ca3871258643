"""One intensity range for every block: embeddings, the block segmenter, the estimate."""

from __future__ import annotations

import numpy as np
import pytest

from samscope.errors import InputError


@pytest.fixture(scope="module")
def nuclei_image():
    from samscope.simulate import nuclei

    [s] = nuclei(1, (128, 160), rng=7)
    return np.clip(s.image, 0, 65535).astype(np.uint16)


def test_embeddings_take_a_value_range(nuclei_image):
    from samscope.embeddings import compute_embeddings
    from samscope.image import intensity_range, to_rgb
    from samscope.models.registry import load_model

    model = load_model("samscope-generalist", device="cpu")  # compact: one tile is quick
    a = nuclei_image[:64, :64].astype(np.float32)
    lo, hi = 33000.0, 36000.0
    ea = compute_embeddings(a, model, value_range=(lo, hi)).features
    eb = compute_embeddings(2 * a + 100, model, value_range=(2 * lo + 100, 2 * hi + 100))
    plain = compute_embeddings(a, model)
    tol = 1e-4 * float(np.abs(plain.features).max())  # random weights: tiny features

    np.testing.assert_allclose(ea, eb.features, atol=tol)
    assert eb.signature["value_range"] == [2 * lo + 100, 2 * hi + 100]
    assert "value_range" not in plain.signature
    own = intensity_range(to_rgb(a), low=model.card.normalisation.low_percentile,
                          high=model.card.normalisation.high_percentile)
    np.testing.assert_allclose(compute_embeddings(a, model, value_range=own).features,
                               plain.features, atol=tol)
    assert np.abs(ea - plain.features).max() > 100 * tol


@pytest.mark.parametrize("diameter", [None, 56.0])
def test_segmenter_with_the_block_own_range_equals_segment(nuclei_image, diameter):
    """The segmenter's own path (embeddings with a range) is segment()'s, at scale 1 and resized."""
    from samscope.blockwise.segmenter import ModelSegmenter
    from samscope.image import intensity_range, to_rgb
    from samscope.instance.scale import resize_plane, scale_for

    plain = ModelSegmenter(model="samscope-generalist", device="cpu", diameter=diameter or 28.0)
    net, _, _ = plain.loaded()
    scale = scale_for(plain.diameter, net.card.working_diameter)
    work = nuclei_image if scale == 1.0 else resize_plane(nuclei_image, scale)
    norm = net.card.normalisation
    # what prepare_input takes the percentiles of (the grey plane as RGB)
    own = intensity_range(to_rgb(work), low=norm.low_percentile, high=norm.high_percentile)
    from dataclasses import replace

    ranged = replace(plain, value_range=own)
    expected = plain.segment(nuclei_image, "YX")
    got = ranged.segment(nuclei_image, "YX")
    assert expected.max() > (3 if diameter is None else 0)
    assert np.array_equal(got, expected)
    assert ranged.signature()["value_range"] == [float(v) for v in own]
    assert "value_range" not in plain.signature()
    # a range twice as wide changes what the model sees
    wide = replace(plain, value_range=(own[0], own[1] + (own[1] - own[0])))
    assert not np.array_equal(wide.segment(nuclei_image, "YX"), expected)


def test_estimate_value_range_over_all_blocks_is_the_image_range(tmp_path, nuclei_image):
    import tifffile

    from samscope.blockwise import BlockGrid
    from samscope.blockwise.estimate import estimate_value_range
    from samscope.blockwise.source import ImageSource
    from samscope.image import intensity_range
    from samscope.models.registry import load_model

    path = tmp_path / "img.tif"
    tifffile.imwrite(path, nuclei_image)
    model = load_model("samscope-generalist", device="cpu")
    grid = BlockGrid(nuclei_image.shape, (64, 80), (16, 16))
    got = estimate_value_range(ImageSource(str(path)), model, grid, samples=len(grid))
    norm = model.card.normalisation
    want = intensity_range(np.concatenate([nuclei_image[b.core_slices].ravel() for b in grid]),
                           low=norm.low_percentile, high=norm.high_percentile)
    assert got == pytest.approx(want)
    flat = np.full((64, 64), 7, np.uint16)
    tifffile.imwrite(tmp_path / "flat.tif", flat)
    assert estimate_value_range(ImageSource(str(tmp_path / "flat.tif")), model,
                                BlockGrid(flat.shape, (32, 32), (8, 8))) is None


def test_blockwise_run_records_the_range_and_checks_it(tmp_path, nuclei_image):
    import tifffile
    import zarr

    from samscope.blockwise import BlockwiseRequest, segment_blockwise

    path = tmp_path / "img.tif"
    tifffile.imwrite(path, nuclei_image[:64])
    out = tmp_path / "o.zarr"
    segment_blockwise(BlockwiseRequest(path, out, model="samscope-generalist",
                                       block_size=(64, 80), halo=16, diameter=28.0,
                                       normalise="image"))
    seg = dict(zarr.open_group(str(out), mode="r").attrs)["samscope_blockwise"]["settings"][
        "segmenter"]
    lo, hi = seg["value_range"]
    default = segment_blockwise(BlockwiseRequest(path, tmp_path / "d.zarr",
                                                 model="samscope-generalist", diameter=28.0,
                                                 block_size=(64, 80), halo=16))
    assert "value_range" not in dict(zarr.open_group(str(default.output), mode="r").attrs)[
        "samscope_blockwise"]["settings"]["segmenter"]  # per block by default
    assert nuclei_image[:64].min() <= lo < hi <= nuclei_image[:64].max()
    given = segment_blockwise(BlockwiseRequest(path, tmp_path / "g.zarr",
                                               model="samscope-generalist", diameter=28.0,
                                               block_size=(64, 80), halo=16,
                                               value_range=(lo, hi)))
    assert np.array_equal(zarr.open_group(str(out), mode="r")["0"][...],
                          zarr.open_group(str(given.output), mode="r")["0"][...])
    for kwargs, words in (({"normalise": "tile"}, "'image' or 'block'"),
                          ({"value_range": (5, 1)}, "low < high"),
                          ({"value_range": ("a", 5)}, "two numbers")):
        with pytest.raises(InputError, match=words):
            segment_blockwise(BlockwiseRequest(path, tmp_path / "bad.zarr",
                                               model="samscope-generalist", block_size=(64, 80),
                                               halo=16, **kwargs))
        assert not (tmp_path / "bad.zarr").exists()
