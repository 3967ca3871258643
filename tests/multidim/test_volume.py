"""Volumes with the tiny random-weight test model: shapes, ids through z, bad input."""

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.multidim import ObjectPrompt, PlaneStack, PropagationConfig, propagate, segment_volume


@pytest.fixture()
def small(volume):
    image, labels = volume
    return image[2:5], labels[2:5]  # 3 planes of 48 × 64


def test_propagation_with_a_model_is_batched_and_memory_bounded(test_model, small, monkeypatch):
    import samscope.prompting as prompting

    image, _ = small
    calls = []
    real = prompting.segment_objects

    def counting(*args, **kw):
        calls.append(len(kw["boxes"]) if kw.get("boxes") is not None else len(kw["points"]))
        return real(*args, **kw)

    monkeypatch.setattr(prompting, "segment_objects", counting)
    stack = PlaneStack(image, test_model, keep=1)
    cfg = PropagationConfig(iou_threshold=0, min_contrast=0, min_area=0, max_growth=1e9)
    res = propagate(test_model, stack, [ObjectPrompt(1, box=[5, 9, 24, 28]), ObjectPrompt(1, box=[23, 35, 42, 54])], config=cfg)
    lab = res.labels()
    assert lab.shape == (3, 48, 64) and lab.dtype == np.uint16
    assert calls == [2, 2, 2]  # anchors, up, down: both objects in every call
    assert len(stack._lazy) == 1  # embeddings computed lazily, one plane kept


def test_segment_volume_methods(test_model, small):
    image, _ = small
    for method in ("link", "per-plane", "watershed"):
        res = segment_volume(image, test_model, method=method)
        assert res.labels.shape == (3, 48, 64) and res.method == method
    one = segment_volume(image[:1], test_model)  # a single-plane volume
    assert one.labels.shape == (1, 48, 64)
    empty = segment_volume(np.zeros((2, 32, 32), np.uint8), test_model, method="watershed")
    assert empty.labels.max() == 0
    with pytest.raises(InputError, match="2-D image"):
        segment_volume(image[0], test_model)
    with pytest.raises(InputError, match="method"):
        segment_volume(image, test_model, method="magic")
    with pytest.raises(InputError, match="working diameter"):
        segment_volume(image, test_model, diameter=20)
