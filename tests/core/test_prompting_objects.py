"""segment_objects: many objects, each with a box and/or points and a mask prompt, batched."""

import numpy as np
import pytest

from samscope.embeddings import compute_embeddings
from samscope.errors import InputError
from samscope.prompting import segment_from_prompts, segment_objects


@pytest.fixture()
def emb(test_model, blobs_image):
    return compute_embeddings(blobs_image, test_model)


def test_batched_objects_equal_one_at_a_time(test_model, emb):
    boxes = np.array([[20, 30, 60, 70], [80, 140, 120, 190]], float)
    masks = np.zeros((2, 180, 240), bool)
    masks[0, 25:55, 35:65] = True
    masks[1, 85:115, 145:185] = True
    points = np.array([[[40, 50], [0, 0]], [[100, 160], [90, 150]]], float)
    labels = np.array([[1, -1], [1, 0]])
    batch = segment_objects(
        test_model, emb, boxes=boxes, points=points, labels=labels, masks=masks, batch_size=1
    )
    assert batch.masks.shape == (2, 180, 240) and batch.iou.shape == (2,)
    one = segment_from_prompts(test_model, emb, box=boxes[1], points=points[1], labels=labels[1], mask=masks[1])
    np.testing.assert_allclose(batch.logits[1], one.logits[0], atol=1e-4)
    pad = segment_from_prompts(test_model, emb, box=boxes[0], points=points[0, :1], mask=masks[0])
    assert (batch.masks[0] == pad.masks[0]).mean() > 0.99  # -1 rows: SAM's "not a point" padding
    only_points = segment_objects(test_model, emb, points=points[:, :1])
    assert only_points.masks.shape == (2, 180, 240)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "boxes or points"),
        ({"boxes": np.zeros((2, 3))}, r"\(N, 4\)"),
        ({"boxes": [[0, 0, 10, 10]], "points": np.zeros((2, 1, 2))}, "N=1"),
        ({"points": [[[500, 1]]]}, "outside"),
        ({"points": [[[5, 1]]], "labels": [[2]]}, "-1"),
        ({"points": [[[5, 1]]], "labels": [[-1]]}, "at least one point"),
        ({"boxes": [[0, 0, 10, 10]], "masks": np.zeros((1, 5, 5), bool)}, "masks must have shape"),
    ],
)
def test_bad_batches(test_model, emb, kwargs, match):
    with pytest.raises(InputError, match=match):
        segment_objects(test_model, emb, **kwargs)
