"""Interactive 3-D + t tracking (multidim.track3d) with an oracle decoder in time and in z."""

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.multidim.propagate import Propagator
from samscope.multidim.track3d import VolumeTracker
from samscope.prompting import PromptResult


def ball_series(n_t=6, n_z=5, shape=(48, 64)):
    """Nucleus 1 moves right 3 px per time point and up one plane at t = 3; nucleus 2 sits still.
    Voxel (z, 0, 0) of time point t holds t + 1, so the oracle can tell the time point."""
    labels = np.zeros((n_t, n_z, *shape), np.uint16)
    y, x = np.indices(shape)
    for t in range(n_t):
        zc = 1 if t < 3 else 2
        for z in range(n_z):
            r1 = 9 - 3 * abs(z - zc)
            if r1 > 0:
                labels[t, z][(y - 20) ** 2 + (x - 12 - 3 * t) ** 2 <= r1 * r1] = 1
            r2 = 8 - 3 * abs(z - 3)
            if r2 > 0:
                labels[t, z][(y - 34) ** 2 + (x - 50) ** 2 <= r2 * r2] = 2
    image = np.where(labels > 0, 200, 10).astype(np.uint8)
    image[:, :, 0, 0] = np.arange(1, n_t + 1)[:, None]
    return image, labels


def oracle_decode(lab, boxes, points):
    """The true object under each prompt: under the point, else the largest in the box."""
    n = len(boxes) if boxes is not None else len(points)
    out = np.zeros((n, *lab.shape), bool)
    for j in range(n):
        region = np.zeros(lab.shape, bool)
        if points is not None:
            yy, xx = (int(v) for v in points[j, 0])
            region[yy, xx] = True
        if boxes is not None and (points is None or not lab[region].any()):
            y0, x0, y1, x1 = (int(round(v)) for v in boxes[j])
            region[y0:y1, x0:x1] = True
        ids, counts = np.unique(lab[region], return_counts=True)
        counts[ids == 0] = 0
        if counts.max() > 0:
            out[j] = lab == ids[np.argmax(counts)]
    return PromptResult(out, np.full(n, 0.9, np.float32), np.zeros((n, 4, 4)), np.zeros((n, 4)))


@pytest.fixture
def oracle(monkeypatch):
    """Patch both the tracker's and the z propagator's decoders with the reference labels."""
    state = {}

    def prop_decode(self, plane, boxes, points, labels, masks, *, multimask=False):
        t = int(self.stack.data[plane, 0, 0]) - 1
        return oracle_decode(state["labels"][t, plane], boxes, points)

    monkeypatch.setattr(Propagator, "_decode", prop_decode)

    def make(image, labels, **kw):
        state["labels"] = labels
        tr = VolumeTracker(None, image, **kw)
        tr._decode = lambda t, plane, boxes, points, lab, masks: oracle_decode(labels[t, plane], boxes, points)
        return tr

    return make


def test_one_click_follows_a_nucleus_through_time_and_z(oracle):
    image, labels = ball_series()
    tr = oracle(image, labels)
    a = tr.add(0, 1, points=[[20, 12]])
    b = tr.add(0, 3, points=[[34, 50]])
    res = tr.run()
    assert res.labels.shape == labels.shape
    for t in range(len(labels)):
        for tid, ref in ((a, 1), (b, 2)):
            m, got = labels[t] == ref, res.labels[t] == tid
            assert (m & got).sum() / (m | got).sum() > 0.95, (t, tid)
    assert res.lineage.n_divisions == 0 and len(res.lineage) == 2
    assert tr.info(a).frames == tuple(range(len(labels)))


def test_a_track_started_later_and_a_nucleus_that_leaves(oracle):
    image, labels = ball_series(n_t=8)
    labels[6:][labels[6:] == 1] = 0  # nucleus 1 is gone from t = 6
    image = np.where(labels > 0, 200, 10).astype(np.uint8)
    image[:, :, 0, 0] = np.arange(1, 9)[:, None]
    tr = oracle(image, labels)
    a = tr.add(2, 1, points=[[20, 18]])
    res = tr.run()
    assert tr.info(a).frames == (2, 3, 4, 5)
    assert tr.info(a).stopped[0] == 6
    assert not res.labels[:2].any()


def test_two_touching_fragments_are_not_a_division(oracle):
    """A mask that falls into two pieces with no gap (a textured nucleus) goes on as one track."""
    image, labels = ball_series()
    tr = oracle(image, labels)
    a = tr.add(0, 1, points=[[20, 12]])
    crack = tr._decode

    def cracked(t, plane, boxes, points, lab, masks):
        res = crack(t, plane, boxes, points, lab, masks)
        if boxes is not None and t == 2:  # a one-pixel crack through nucleus 1
            for m in res.masks:
                if m.any():
                    xs = np.flatnonzero(m.any(axis=0))
                    m[:, (xs[0] + xs[-1]) // 2] = False
        return res

    tr._decode = cracked
    res = tr.run()
    assert res.lineage.n_divisions == 0
    assert tr.info(a).frames == tuple(range(len(labels)))


def test_bad_input(oracle):
    image, labels = ball_series()
    with pytest.raises(InputError, match="t, z, y, x"):
        VolumeTracker(None, image[0])
    tr = oracle(image, labels)
    with pytest.raises(InputError, match="time point 9"):
        tr.add(9, 0, points=[[3, 3]])
    with pytest.raises(InputError, match="outside"):
        tr.add(0, 1, points=[[300, 3]])
    with pytest.raises(InputError, match="no tracks"):
        tr.run()
