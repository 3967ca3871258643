"""Interactive tracking (multidim.track) with an oracle decoder: motion, divisions, corrections."""

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.multidim import Lineage
from samscope.multidim.track import Tracker, TrackingConfig, track_objects
from samscope.prompting import PromptResult


class Oracle:
    """Stands in for the decoder: the true object under each prompt (largest in a box)."""

    def __init__(self, labels):
        self.labels = labels
        self.calls = []

    def __call__(self, plane, boxes, points, labels, masks, *, multimask=False):
        n = len(boxes) if boxes is not None else len(points)
        self.calls.append((plane, n))
        lab = self.labels[plane]
        out = np.zeros((n, *lab.shape), bool)
        for j in range(n):
            region = np.zeros(lab.shape, bool)
            if points is not None:
                y, x = (int(v) for v in points[j, 0])
                region[y, x] = True
            else:
                y0, x0, y1, x1 = (int(round(v)) for v in boxes[j])
                region[y0:y1, x0:x1] = True
            ids, counts = np.unique(lab[region], return_counts=True)
            counts[ids == 0] = 0
            if counts.max() > 0:
                out[j] = lab == ids[np.argmax(counts)]
        return PromptResult(out, np.full(n, 0.9, np.float32), np.zeros((n, 4, 4)), np.zeros((n, 4)))


def disc(shape, cy, cx, r):
    y, x = np.indices(shape)
    return (y - cy) ** 2 + (x - cx) ** 2 <= r * r


def movie(n_frames=11, shape=(64, 96)):
    """Track 1 moves right 4 px/frame and divides at frame 5 into 2 and 3 (up/down); track 4
    moves left and leaves the image at frame 8."""
    labels = np.zeros((n_frames, *shape), np.uint16)
    for t in range(n_frames):
        cx = 14 + 4 * t
        if t < 5:
            labels[t][disc(shape, 30, cx, 7)] = 1
        else:
            off = 4 + 2 * (t - 5)
            labels[t][disc(shape, 30 - off, cx, 5)] = 2
            labels[t][disc(shape, 30 + off, cx, 5)] = 3
        labels[t][disc(shape, 52, 60 - 7 * t, 6)] = 4
    image = np.where(labels > 0, 200, 10).astype(np.uint8)
    return image, labels


def tracker(image, labels, config=None):
    tr = Tracker(None, image, config=config)
    oracle = Oracle(labels)
    tr._decode = oracle
    return tr, oracle


def test_one_click_follows_moving_objects_through_a_division_and_out_of_the_image():
    image, labels = movie()
    tr, oracle = tracker(image, labels)
    a = tr.add(0, points=[[30, 14]])
    b = tr.add(0, points=[[52, 60]])
    res = tr.run()
    assert (a, b) == (1, 2)
    lin = res.lineage
    # the mother (1) ends at frame 4; two daughters start at 5 and run to the end
    assert lin.get(1).end == 4 and lin.n_divisions == 1
    kids = lin.divisions()[1]
    assert all(lin.get(k).start == 5 and lin.get(k).end == 10 for k in kids)
    # track 2 (the object leaving to the left) is followed until it leaves
    last = max(t for t in range(11) if (labels[t] == 4).sum() >= 10)
    assert lin.get(2).start == 0 and lin.get(2).end == last
    assert tr.info(2).stopped is not None and "px" in tr.info(2).stopped[1]
    # every frame's masks equal the truth, up to the relabelling
    for t in range(11):
        for true_id in np.unique(labels[t])[1:]:
            got = np.unique(res.labels[t][labels[t] == true_id])
            assert got.size == 1 and got[0] > 0
    # batched: one box call per frame for all live tracks (plus point calls at the anchors
    # and one sister probe at the division)
    box_calls = [n for p, n in oracle.calls if p == 1]
    assert box_calls == [2]


def test_corrections_redo_the_track_from_that_frame_only():
    image, labels = movie()
    tr, oracle = tracker(image, labels, TrackingConfig(detect_divisions=False))
    a = tr.add(0, points=[[30, 14]])
    tr.run()
    before = tr.result().labels.copy()
    oracle.calls.clear()
    tr.correct(a, 6, points=[[26 - 2, 14 + 24]])  # the upper daughter on frame 6
    res = tr.run()
    assert min(p for p, _ in oracle.calls) == 6  # nothing before frame 6 is decoded again
    assert np.array_equal(res.labels[:6], before[:6])
    assert (res.labels[7] == a).sum() == (labels[7] == 2).sum()


def test_user_marked_division_and_end():
    image, labels = movie()
    tr, _ = tracker(image, labels, TrackingConfig(detect_divisions=False))
    a = tr.add(0, points=[[30, 14]])
    b = tr.add(0, points=[[52, 60]])
    kids = tr.divide(a, 5, [{"points": [[26, 34]]}, {"points": [[34, 34]]}])
    tr.end(b, 3)
    res = tr.run()
    lin = res.lineage
    assert lin.divisions() == {a: kids}
    assert lin.get(a).end == 4 and lin.get(b).end == 2
    assert tr.info(b).stopped == (3, "ended by the user")
    assert set(np.unique(res.labels[10])) == {0, *kids}


def test_track_objects_one_call_and_lineage_is_valid():
    image, labels = movie()
    tr = Tracker(None, image)
    tr._decode = Oracle(labels)
    tr.add(0, points=[[30, 14]])
    res = tr.run()
    Lineage.from_table(res.lineage.table())  # valid: parents end before children start
    assert res.labels.shape == labels.shape


def test_bad_input_is_refused_clearly():
    image, labels = movie()
    tr, _ = tracker(image, labels)
    with pytest.raises(InputError, match="outside"):
        tr.add(12, points=[[3, 3]])
    with pytest.raises(InputError, match="lies outside the plane"):
        tr.add(0, points=[[300, 3]])
    with pytest.raises(InputError, match="give points"):
        tr.add(0)
    with pytest.raises(InputError, match="no track"):
        tr.correct(7, 0, points=[[3, 3]])
    a = tr.add(2, points=[[30, 22]])
    with pytest.raises(InputError, match="at least two"):
        tr.divide(a, 4, [{"points": [[3, 3]]}])
    with pytest.raises(InputError, match="later frame"):
        tr.end(a, 2)
    with pytest.raises(InputError, match=r"\(t, y, x\)"):
        Tracker(None, np.zeros((4, 5)))
    with pytest.raises(InputError, match="no objects"):
        track_objects(None, image, [])
    with pytest.raises(InputError, match="must be in"):
        TrackingConfig(min_overlap=2)
