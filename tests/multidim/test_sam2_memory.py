"""SAM2 video-memory propagator: the same masks as Sam2VideoModel's own propagation, stop rules,
directions, corrections, batching of many objects, clear errors."""

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

from sam2_tiny import tiny_video_model, two_nuclei  # noqa: E402

from samscope.errors import InputError  # noqa: E402
from samscope.multidim import ObjectPrompt, propagate  # noqa: E402
from samscope.multidim.sam2_memory import (  # noqa: E402
    MemoryConfig,
    MemoryPropagator,
    propagate_with,
    video_model_of,
)

OPEN = MemoryConfig(min_object_score=-float("inf"), min_area=0, max_growth=None)


@pytest.fixture(scope="module")
def video():
    return tiny_video_model(size=64)


@pytest.fixture(scope="module")
def stack():
    return two_nuclei()


def _reference(video, prop, prompts, plane):
    """Masks from Sam2VideoModel.forward + propagate_in_video_iterator (both ways), as transformers runs it."""
    session = prop._session()
    for i, (xy, labels) in enumerate(prompts):
        idx = session.obj_id_to_idx(i)
        session.add_point_inputs(idx, plane, {
            "point_coords": torch.tensor(xy, dtype=torch.float32).view(1, 1, -1, 2),
            "point_labels": torch.tensor(labels, dtype=torch.int32).view(1, 1, -1),
        })  # fmt: skip
    session.obj_with_new_inputs = list(range(len(prompts)))
    ref = {}
    with torch.inference_mode():
        video(session, frame_idx=plane)
        for reverse in (False, True):
            for out in video.propagate_in_video_iterator(session, start_frame_idx=plane, reverse=reverse):
                for i in range(len(prompts)):
                    ref[(i, out.frame_idx)] = out.pred_masks[i, 0].numpy()
    return ref


def test_same_logits_as_transformers_propagation_both_directions_two_objects(video, stack):
    prop = MemoryPropagator(video, stack, config=OPEN, keep_logits=True)
    prop.add(ObjectPrompt(2, points=[[10, 10]]))
    prop.add(ObjectPrompt(2, box=[16, 16, 29, 29]))
    result = prop.run()
    s = 64 / 32  # the model's input side over the plane's
    ref = _reference(video, prop, [([[10 * s, 10 * s]], [1]), ([[16 * s, 16 * s], [29 * s, 29 * s]], [2, 3])], 2)
    assert sorted(ref) == sorted(prop.logits)  # every plane of both objects, both directions
    for key, logits in ref.items():
        np.testing.assert_allclose(prop.logits[key], logits, atol=1e-5)
    for obj in result.objects:
        assert obj.anchors == (2,)
        assert obj.masks[2].anchor and not obj.masks[0].anchor and not obj.masks[4].anchor
    labels = result.labels()
    assert labels.shape == stack.shape
    # the masks are the logits above 0, upsampled to the plane
    up = torch.nn.functional.interpolate(torch.from_numpy(ref[(0, 4)])[None, None], size=(32, 32),
                                         mode="bilinear", align_corners=False)[0, 0].numpy() > 0  # fmt: skip
    np.testing.assert_array_equal(result.mask(0)[4], up)


def test_stop_rules_directions_and_absent_anchor(video, stack):
    # SAM2's object score below the threshold: the anchor is kept, nothing is propagated
    r = MemoryPropagator(video, stack, config=MemoryConfig(min_object_score=1e6, min_area=0))
    r.add(ObjectPrompt(2, points=[[10, 10]]))
    obj = r.run().objects[0]
    assert obj.planes == (2,) and set(obj.stopped) == {1, 3}
    assert "object score" in obj.stopped[3]
    # forward only, at most one plane
    cfg = MemoryConfig(min_object_score=-float("inf"), min_area=0, max_growth=None, directions="forward",
                       max_planes=1)  # fmt: skip
    r = MemoryPropagator(video, stack, config=cfg)
    r.add(ObjectPrompt(2, points=[[10, 10]]))
    assert set(r.run().objects[0].masks) == {2, 3}
    # an empty mask on plane 4 says the object is absent there: the sweep up stops before it
    r = MemoryPropagator(video, stack, config=OPEN)
    r.add([ObjectPrompt(1, points=[[10, 10]]), ObjectPrompt(4, mask=np.zeros((32, 32), bool))])
    obj = r.run().objects[0]
    assert set(obj.masks) - {4} == {0, 1, 2, 3} and obj.masks[4].area == 0
    assert obj.stopped[4].startswith("absent")


def test_correction_reruns_only_that_object(video, stack):
    prop = MemoryPropagator(video, stack, config=OPEN, keep_logits=True)
    a = prop.add(ObjectPrompt(2, points=[[10, 10]]))
    b = prop.add(ObjectPrompt(2, points=[[22, 22]]))
    prop.run()
    kept = {k: v.copy() for k, v in prop.logits.items() if k[0] == b}
    prop.correct(a, ObjectPrompt(3, box=[4, 4, 17, 17]))
    second = prop.run()
    assert second.objects[a].anchors == (2, 3) and second.objects[a].masks[3].anchor
    for k, v in kept.items():
        np.testing.assert_array_equal(prop.logits[k], v)  # b untouched
    assert prop.timings["planes"] > 0


def test_dispatch_and_errors(video, stack):
    result = propagate(video, stack, [ObjectPrompt(2, points=[[10, 10]])], propagator="sam2-memory")
    assert result.labels().shape == stack.shape and result.objects[0].anchors == (2,)
    with pytest.raises(InputError, match="unknown propagator"):
        propagate(video, stack, [ObjectPrompt(2, points=[[10, 10]])], propagator="magic")
    with pytest.raises(InputError, match="no SAM2 video memory"):
        video_model_of(object())
    from types import SimpleNamespace

    assert video_model_of(SimpleNamespace(sam=video)) is video
    assert video_model_of(SimpleNamespace(video_model=lambda: video)) is video
    with pytest.raises(InputError, match="no objects"):
        propagate_with("sam2-memory", video, stack, [])
    with pytest.raises(InputError, match="outside"):
        MemoryPropagator(video, stack).add(ObjectPrompt(9, points=[[1, 1]]))
    with pytest.raises(InputError, match="min_object_score"):
        MemoryConfig(min_object_score=float("nan"))
