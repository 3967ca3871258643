import numpy as np
import pytest

from samscope.errors import InputError
from samscope.multidim import ObjectPrompt, PlaneStack, PropagationConfig, Propagator, propagate
from samscope.prompting import PromptResult


class Oracle:
    """Stands in for the decoder: returns the true object under each prompt (or a ghost)."""

    def __init__(self, labels, ghost_planes=()):
        self.labels = labels
        self.ghost = set(ghost_planes)
        self.calls = []

    def __call__(self, plane, boxes, points, labels, masks, *, multimask=False):
        n = len(boxes) if boxes is not None else len(points)
        self.calls.append((plane, n))
        lab = self.labels[plane]
        out = np.zeros((n, *lab.shape), bool)
        for j in range(n):
            if masks is not None and plane in self.ghost:  # an out-of-focus ghost: the prompt back
                out[j] = masks[j]
                continue
            if points is not None:
                y, x = (int(v) for v in points[j, 0])
                region = np.zeros(lab.shape, bool)
                region[y, x] = True
            else:
                y0, x0, y1, x1 = (int(round(v)) for v in boxes[j])
                region = np.zeros(lab.shape, bool)
                region[y0:y1, x0:x1] = True
            ids, counts = np.unique(lab[region], return_counts=True)
            counts[ids == 0] = 0
            if counts.max() > 0:
                out[j] = lab == ids[np.argmax(counts)]
        k = self.labels.shape[-2] // 4
        return PromptResult(out, np.full(n, 0.9, np.float32), np.zeros((n, k, k)), np.zeros((n, 4)))


def _propagator(volume, config=None, ghost=()):
    image, labels = volume
    prop = Propagator(None, PlaneStack(image, None), config=config)
    oracle = Oracle(labels, ghost)
    prop._decode = oracle
    return prop, oracle


def test_objects_follow_through_z_and_stop_where_they_end(volume):
    image, labels = volume
    prop, oracle = _propagator(volume)
    a = prop.add(ObjectPrompt(3, points=[[14, 18]]))
    b = prop.add(ObjectPrompt(3, box=[23, 35, 42, 54]))
    res = prop.run()
    assert (a, b) == (0, 1)
    assert res.objects[0].planes == (1, 2, 3, 4, 5) and res.objects[1].planes == (2, 3, 4)
    assert 0 in res.objects[0].stopped and 1 in res.objects[1].stopped  # ended on an empty plane
    assert np.array_equal(res.labels(), labels)
    assert np.array_equal(res.mask(1), labels == 2)
    # batched: one decoder call per plane and sweep for both objects, not one per object (the
    # anchors differ in prompt kind, a point and a box, so they are two calls)
    assert sorted(oracle.calls) == [(0, 1), (1, 2), (2, 2), (3, 1), (3, 1), (4, 2), (5, 2), (6, 1)]


def test_a_correction_repropagates_only_the_planes_nearer_to_it(volume):
    prop, oracle = _propagator(volume)
    prop.add(ObjectPrompt(3, points=[[14, 18]]))
    prop.run()
    oracle.calls.clear()
    prop.correct(0, ObjectPrompt(5, box=[10, 14, 19, 23]))
    res = prop.run()
    assert sorted(p for p, _ in oracle.calls) == [5, 6]  # 5 (anchor) and 6; 4 stays with plane 3
    assert res.objects[0].anchors == (3, 5) and res.objects[0].planes == (1, 2, 3, 4, 5)
    assert res.objects[0].masks[4].anchor is False and res.objects[0].masks[5].anchor is True


def test_an_empty_mask_marks_the_object_absent(volume):
    image, labels = volume
    prop, _ = _propagator(volume)
    prop.add([ObjectPrompt(3, points=[[14, 18]]), ObjectPrompt(5, mask=np.zeros(labels.shape[1:], bool))])
    res = prop.run()
    assert res.objects[0].planes == (1, 2, 3, 4)
    assert "absent" in res.objects[0].stopped[5]


def test_faded_ghost_planes_are_not_part_of_the_object(volume):
    image, labels = volume
    img = image.copy()
    ghost = labels.copy()
    for k in (0, 6):  # a dim blur of object 1 where it no longer is
        img[k][labels[3] == 1] = 25
        ghost[k][labels[3] == 1] = 1
    cfg = PropagationConfig(prompt="box+mask", iou_threshold=0.0, max_growth=100)
    prop, _ = _propagator((img, ghost), config=cfg)
    prop.add(ObjectPrompt(3, points=[[14, 18]]))
    res = prop.run()
    assert res.objects[0].planes == (1, 2, 3, 4, 5)
    assert "faded" in res.objects[0].stopped[0] and "faded" in res.objects[0].stopped[6]
    off_cfg = PropagationConfig(iou_threshold=0, max_growth=100, min_contrast=0, min_intensity=0)
    off, _ = _propagator((img, ghost), config=off_cfg)
    off.add(ObjectPrompt(3, points=[[14, 18]]))
    assert off.run().objects[0].planes == tuple(range(7))


def test_a_blurred_mask_is_trimmed_to_the_bright_object():
    """SAM draws the blurred area on a nucleus's last planes: keep the part that is bright."""
    z, y, x = np.indices((7, 48, 64))
    labels = ((((z - 3) / 2.2) ** 2 + ((y - 24) / 12) ** 2 + ((x - 32) / 12) ** 2) <= 1).astype(np.uint16)
    image = np.where(labels > 0, 200, 10).astype(np.uint8)
    img = image.astype(np.float32)
    ghost = labels.copy()
    for k in (1, 5):  # the decoder returns the previous plane's (wider) mask here
        ghost[k] = labels[3]
        img[k][(labels[3] == 1) & (labels[k] == 0)] = 25  # a dim halo around the small true cap
    cfg = PropagationConfig(prompt="box+mask", iou_threshold=0.0, max_growth=100, min_contrast=0)
    prop, _ = _propagator((img, ghost), config=cfg, ghost=(1, 5))
    prop.add(ObjectPrompt(3, points=[[24, 32]]))
    res = prop.run()
    m = res.mask(0)
    for k in (1, 5):
        true = labels[k] == 1
        assert m[k][true].all() and m[k].sum() < 1.5 * true.sum()  # the bright cap, not the halo
    assert np.array_equal(m[3], labels[3] == 1)  # the anchor plane is the decoder's own
    untrimmed, _ = _propagator((img, ghost), config=PropagationConfig(
        prompt="box+mask", iou_threshold=0.0, max_growth=100, min_contrast=0, min_intensity=0), ghost=(1, 5))
    untrimmed.add(ObjectPrompt(3, points=[[24, 32]]))
    assert untrimmed.run().mask(0)[1].sum() > 4 * (labels[1] == 1).sum()  # the decoder's wide mask


def test_forward_only_with_motion(volume):
    image, labels = volume
    moving = np.zeros_like(labels)
    for k in range(7):  # a disc moving 3 px per frame
        moving[k] = np.roll(labels[3] == 1, 3 * k, axis=1)
    cfg = PropagationConfig(directions="forward", motion_smoothing=0.5, prompt="points")
    prop, _ = _propagator((image, moving), config=cfg)
    prop.add(ObjectPrompt(2, points=[[14, 18 + 6]]))
    res = prop.run()
    assert res.objects[0].planes == (2, 3, 4, 5, 6)


@pytest.mark.parametrize(
    ("prompt", "match"),
    [
        (ObjectPrompt(7, points=[[1, 1]]), "outside the stack"),
        (ObjectPrompt(-1, points=[[1, 1]]), "outside the stack"),
        (ObjectPrompt(1, points=[[100, 1]]), "outside the plane"),
        (ObjectPrompt(1, box=[5, 5, 5, 9]), "y1 > y0"),
        (ObjectPrompt(1, points=[[3, 3]], labels=[0]), "negative points alone"),
        (ObjectPrompt(1, mask=np.zeros((3, 3), bool)), "mask has shape"),
    ],
)
def test_bad_prompts_are_refused(volume, prompt, match):
    prop, _ = _propagator(volume)
    with pytest.raises(InputError, match=match):
        prop.add(prompt)
    assert prop.n_objects == 0  # nothing half-added


def test_bad_stacks_and_configs():
    with pytest.raises(InputError, match="2-D image"):
        PlaneStack(np.zeros((20, 30)), None)
    with pytest.raises(InputError, match="2-D image"):
        PlaneStack(np.zeros((20, 30, 3)), None)
    with pytest.raises(InputError, match="empty"):
        PlaneStack(np.zeros((0, 20, 30)), None)
    with pytest.raises(InputError, match="prompt"):
        PropagationConfig(prompt="box+lasso")
    with pytest.raises(InputError, match="directions"):
        PropagationConfig(directions="sideways")
    with pytest.raises(InputError, match="no objects"):
        propagate(None, np.zeros((2, 8, 8)), [])
    with pytest.raises(InputError, match="points, a box or a mask"):
        ObjectPrompt(0)


def test_single_plane_stack(volume):
    image, labels = volume
    prop, _ = _propagator((image[3:4], labels[3:4]))
    prop.add(ObjectPrompt(0, points=[[14, 18]]))
    res = prop.run()
    assert res.labels().shape == (1, 48, 64) and res.objects[0].planes == (0,)


def test_plane_stack_scale_maps_prompts_and_masks():
    st = PlaneStack(np.zeros((2, 100, 60), np.uint8), None, scale=0.5)
    assert st.work_shape == (50, 30) and st.image(0).shape == (50, 30)
    assert np.allclose(st.box_to_work([10, 20, 30, 40]), [5, 10, 15, 20])
    m = np.zeros((100, 60), bool)
    m[20:60, 10:40] = True
    back = st.mask_to_native(st.mask_to_work(m))
    assert (back ^ m).sum() < 0.05 * m.sum()
