"""Prompting on embeddings made at a scale: prompts in the image's grid, masks back in it."""

import numpy as np
import pytest

from samscope.embeddings import compute_embeddings, load_embeddings
from samscope.errors import CacheMismatchError, InputError
from samscope.instance.scale import interactive_scale, resize_plane
from samscope.prompt_inputs import box_to_working, points_to_working, result_to_native
from samscope.prompting import (
    segment_from_boxes,
    segment_from_prompts,
    segment_objects,
)

SCALE = 0.5


@pytest.fixture()
def scaled(test_model, blobs_image):
    return compute_embeddings(blobs_image, test_model, scale=SCALE)


@pytest.fixture()
def by_hand(test_model, blobs_image):
    """The same resized image embedded at its own size: what the scaled path must reproduce."""
    return compute_embeddings(resize_plane(blobs_image, SCALE), test_model)


def test_scaled_embeddings_know_both_grids(scaled, blobs_image):
    h, w = blobs_image.shape
    assert scaled.plane_shape == (h, w)
    assert scaled.image_shape == (round(h * SCALE), round(w * SCALE))
    assert scaled.scale == SCALE and scaled.signature["scale"] == SCALE
    assert scaled.signature["native_shape"] == [h, w]


def test_point_prompt_equals_prompting_the_resized_image(test_model, scaled, by_hand, blobs_image):
    point = np.array([[100.0, 160.0]])
    got = segment_from_prompts(test_model, scaled, points=point, multimask=True)
    assert got.masks.shape == (3, *blobs_image.shape)
    ref = segment_from_prompts(
        test_model, by_hand, points=points_to_working(point, SCALE, by_hand.image_shape),
        multimask=True,
    )  # fmt: skip
    np.testing.assert_allclose(got.logits, ref.logits, atol=1e-4)
    np.testing.assert_allclose(got.iou, ref.iou, atol=1e-5)
    back = result_to_native(ref, blobs_image.shape)
    assert (got.masks == back.masks).all()


def test_boxes_and_objects_come_back_in_the_native_grid(test_model, scaled, by_hand, blobs_image):
    boxes = np.array([[20, 30, 60, 70], [80, 140, 120, 190]], float)
    got = segment_from_boxes(test_model, scaled, boxes)
    assert got.masks.shape == (2, *blobs_image.shape)
    work = np.array([box_to_working(b, SCALE, by_hand.image_shape) for b in boxes])
    ref = segment_from_boxes(test_model, by_hand, work)
    np.testing.assert_allclose(got.logits, ref.logits, atol=1e-4)
    masks = np.zeros((2, *blobs_image.shape), bool)
    masks[0, 25:55, 35:65] = True
    masks[1, 85:115, 145:185] = True
    objs = segment_objects(test_model, scaled, boxes=boxes, masks=masks)
    assert objs.masks.shape == (2, *blobs_image.shape)
    # a mask is resized around its own extent: nothing leaks far outside its (scaled) window
    for m, w in zip(objs.masks, objs.windows, strict=True):
        if m.any():
            ys = np.flatnonzero(m.any(axis=1))
            assert ys[-1] <= (w[2] + 2) / SCALE


def test_prompts_are_checked_in_the_native_grid(test_model, scaled, blobs_image):
    h, w = blobs_image.shape
    # inside the native image but outside the resized one: accepted
    segment_from_prompts(test_model, scaled, points=[[h - 1, w - 1]])
    with pytest.raises(InputError, match="outside"):
        segment_from_prompts(test_model, scaled, points=[[h + 3, 5]])
    with pytest.raises(InputError, match="mask has shape"):
        segment_from_prompts(test_model, scaled, mask=np.ones((h // 2, w // 2), bool))
    with pytest.raises(InputError, match="masks must have shape"):
        segment_objects(test_model, scaled, boxes=[[0, 0, 9, 9]], masks=np.ones((1, 4, 4), bool))


def test_tiny_box_stays_a_box_after_shrinking():
    assert tuple(box_to_working(np.array([10, 10, 11, 11.0]), 0.1, (20, 20))) == (1, 1, 2, 2)
    assert tuple(box_to_working(np.array([0, 0, 200, 200.0]), 0.1, (20, 20))) == (0, 0, 20, 20)


def test_scaled_cache_round_trip(test_model, blobs_image, tmp_path):
    cache = tmp_path / "emb.zarr"
    made = compute_embeddings(blobs_image, test_model, scale=SCALE, cache=cache)
    loaded = load_embeddings(cache)
    assert loaded.scale == SCALE and loaded.plane_shape == blobs_image.shape
    np.testing.assert_allclose(np.asarray(loaded.get(0)), np.asarray(made.get(0)))
    with pytest.raises(CacheMismatchError):
        compute_embeddings(blobs_image, test_model, cache=cache)  # native: another signature


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "2"])
def test_bad_scale(test_model, blobs_image, bad):
    with pytest.raises(InputError, match="scale"):
        compute_embeddings(blobs_image, test_model, scale=bad)


def test_interactive_scale_follows_the_diameter(test_model, blobs_image):
    # vit_test has no working diameter: never rescaled
    assert interactive_scale(blobs_image, test_model, diameter=90.0)[0] == 1.0
