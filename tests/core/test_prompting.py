import numpy as np
import pytest

from samscope.embeddings import compute_embeddings
from samscope.errors import InputError
from samscope.image import Transform
from samscope.prompting import (
    mask_to_logits,
    segment_from_boxes,
    segment_from_prompts,
)


@pytest.fixture()
def emb(test_model, blobs_image):
    return compute_embeddings(blobs_image, test_model)


def test_point_prompt_shapes(test_model, emb):
    r = segment_from_prompts(test_model, emb, points=[[40, 50]], multimask=True)
    assert r.masks.shape == (3, 180, 240) and r.masks.dtype == bool
    assert r.iou.shape == (3,) and r.logits.shape == (3, 64, 64)
    assert r.best_mask.shape == (180, 240)
    one = segment_from_prompts(test_model, emb, points=[[40, 50]])
    assert one.masks.shape == (1, 180, 240)


def test_negative_point_changes_the_result(test_model, emb):
    a = segment_from_prompts(test_model, emb, points=[[40, 50]])
    b = segment_from_prompts(test_model, emb, points=[[40, 50], [100, 160]], labels=[1, 0])
    assert not np.array_equal(a.logits, b.logits)


def test_box_batch_equals_single_boxes(test_model, emb):
    boxes = np.array([[20, 30, 60, 70], [80, 140, 120, 190], [120, 40, 160, 80]])
    batch = segment_from_boxes(test_model, emb, boxes, batch_size=2)
    assert batch.masks.shape == (3, 180, 240)
    for i, box in enumerate(boxes):
        single = segment_from_prompts(test_model, emb, box=box)
        np.testing.assert_allclose(batch.logits[i], single.logits[0], atol=1e-4)
        assert (batch.masks[i] == single.masks[0]).mean() > 0.999


def test_box_plus_points_and_mask_prompts(test_model, emb):
    base = segment_from_prompts(test_model, emb, box=[20, 30, 60, 70])
    refined = segment_from_prompts(test_model, emb, box=[20, 30, 60, 70], points=[[40, 50]])
    again = segment_from_prompts(
        test_model, emb, points=[[40, 50]], mask_logits=base.logits[0], previous=base
    )
    rough = np.zeros((180, 240), bool)
    rough[25:55, 35:65] = True
    from_mask = segment_from_prompts(test_model, emb, mask=rough)
    for r in (refined, again, from_mask):
        assert r.masks.shape == (1, 180, 240)
    assert not np.array_equal(base.logits, refined.logits)


def test_mask_to_logits_is_confident_inside():
    t = Transform((100, 80), 256)
    m = np.zeros((100, 80), bool)
    m[20:60, 10:50] = True
    lg = mask_to_logits(m, t, 64)
    assert lg.shape == (64, 64)
    assert lg[int(40 * 0.64 * 2.56 / 2.56)][int(30 * 0.64)] > 5 and lg[5, 60] < -5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"points": [[500, 5]]}, "outside"),
        ({"points": [[5, 5]], "labels": [2]}, "labels"),
        ({"points": [[5, 5], [6, 6]], "labels": [1]}, "labels"),
        ({"box": [10, 10, 10, 40]}, "zero"),
        ({"box": [500, 500, 600, 600]}, "outside"),
        ({}, "at least one prompt"),
        ({"mask": np.zeros((3, 3), bool)}, "shape"),
    ],
)
def test_bad_prompts(test_model, emb, kwargs, match):
    with pytest.raises(InputError, match=match):
        segment_from_prompts(test_model, emb, **kwargs)


def test_embeddings_of_another_model_are_refused(test_model, emb):
    import copy

    other = copy.copy(test_model)
    other._weights_hash = "0" * 32
    with pytest.raises(InputError, match="computed with"):
        segment_from_prompts(other, emb, points=[[5, 5]])


def test_tiled_box_routes_to_the_tile_that_holds_the_object(test_model, blobs_image):
    tiled = compute_embeddings(blobs_image, test_model, tile_shape=(96, 128), halo=24)
    box = np.array([80, 110, 112, 150])  # crosses the seams at y=96 and x=128
    r = segment_from_prompts(test_model, tiled, box=box)
    y0, x0, y1, x1 = r.windows[0]
    assert y0 <= box[0] and x0 <= box[1] and y1 >= box[2] and x1 >= box[3]
    # the same as prompting an untiled embedding of that window directly
    crop = blobs_image[y0:y1, x0:x1]
    direct = segment_from_prompts(
        test_model, compute_embeddings(crop, test_model), box=box - [y0, x0, y0, x0]
    )
    np.testing.assert_allclose(r.logits, direct.logits, atol=1e-4)
    assert np.array_equal(r.masks[0, y0:y1, x0:x1], direct.masks[0])
    assert not r.masks[0][:y0].any() and not r.masks[0][:, :x0].any()


def test_tiled_object_larger_than_a_tile_is_embedded_on_demand(test_model, blobs_image):
    tiled = compute_embeddings(blobs_image, test_model, tile_shape=(64, 64), halo=8)
    box = np.array([10, 10, 170, 230])  # bigger than any tile + halo
    boxes = segment_from_boxes(test_model, tiled, box[None])
    assert boxes.masks.shape == (1, 180, 240)
    r = segment_from_prompts(test_model, tiled, points=[[90, 120]])
    y0, x0, y1, x1 = r.windows[0]
    best = r.best_mask
    assert best.any()
    # the mask spilled out of the first tile, so it was decoded again in a window embedded on
    # demand around it (no tile has that extent) ...
    assert (y0, x0, y1, x1) not in [t.outer for t in tiled.tiles]
    assert (y1 - y0) * (x1 - x0) > max(t.outer_shape[0] * t.outer_shape[1] for t in tiled.tiles)
    # ... and the result never touches a cut border of that window
    ys, xs = np.nonzero(best)
    for lo, hi, n, vals in ((y0, y1, 180, ys), (x0, x1, 240, xs)):
        assert lo == 0 or vals.min() > lo
        assert hi == n or vals.max() < hi - 1
