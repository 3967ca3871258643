"""Automatic linking (multidim.linking.link_series, laptrack underneath) and lineage helpers."""

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.evaluation.ctc import tra_score
from samscope.multidim import Lineage, Track, make_continuous
from samscope.multidim.linking import LinkerConfig, link_series, object_tables


def disc(shape, cy, cx, r):
    y, x = np.indices(shape)
    return (y - cy) ** 2 + (x - cx) ** 2 <= r * r


def series(shape=(64, 96), n=8):
    """Ground truth: 1 moves right and divides into 2 and 3 at frame 4; 4 sits still but is
    missed in frame 5 (a gap); 5 enters at frame 2. Returns (gt labels, gt lineage, ids per frame)."""
    gt = np.zeros((n, *shape), np.uint16)
    for t in range(n):
        if t < 4:
            gt[t][disc(shape, 30, 12 + 3 * t, 6)] = 1
        else:
            off = 5 + 2 * (t - 4)
            gt[t][disc(shape, 30 - off, 24 + 3 * (t - 4), 5)] = 2
            gt[t][disc(shape, 30 + off, 24 + 3 * (t - 4), 5)] = 3
        gt[t][disc(shape, 50, 80, 6)] = 4
        if t >= 2:
            gt[t][disc(shape, 10, 70 - 2 * t, 5)] = 5
    lineage = Lineage((Track(1, 0, 3), Track(2, 4, n - 1, 1), Track(3, 4, n - 1, 1),
                       Track(4, 0, n - 1), Track(5, 2, n - 1)))  # fmt: skip
    seg = gt.copy()
    seg[5][seg[5] == 4] = 0  # missed once
    rng = np.random.default_rng(1)
    for t in range(n):  # ids per frame, shuffled, as a segmentation gives them
        ids = np.unique(seg[t])[1:]
        lut = np.zeros(10, np.int64)
        lut[ids] = rng.permutation(ids.size) + 1
        seg[t] = lut[seg[t]]
    return gt, lineage, seg


def test_links_objects_through_motion_divisions_gaps_and_entries():
    gt, lineage, seg = series()
    res = link_series(seg, config=LinkerConfig(max_gap=1))
    lin = res.lineage
    assert lin.n_divisions == 1
    (mother, kids), = lin.divisions().items()
    assert lin.get(mother).end == 3 and all(lin.get(k).start == 4 for k in kids)
    # the gap (frame 5) becomes a new track whose parent is the part before it (CTC format)
    still = [t for t in lin.tracks if np.all(res.labels[t.start][gt[t.start] == 4] == t.id)]
    assert [(t.start, t.end) for t in still] == [(0, 4), (6, 7)] and still[1].parent == still[0].id
    score = tra_score(gt, res.labels, gt_tracks=lineage.table(), pred_tracks=lin.table())
    assert score.fn == 1 and score.fp == 0 and score.ns == 0 and score.tra > 0.95


def test_without_divisions_and_gap_closing():
    gt, lineage, seg = series()
    res = link_series(seg, config=LinkerConfig(divisions=False, max_gap=0))
    assert res.lineage.n_divisions == 0
    assert all(t.parent == 0 for t in res.lineage.tracks)


def test_ids_that_are_already_tracks_and_link_iou_off_give_the_same_graph():
    gt, lineage, _ = series()
    a = link_series(gt)
    b = link_series(gt, config=LinkerConfig(link_iou=None))
    assert a.lineage.table().tolist() == b.lineage.table().tolist()
    assert tra_score(gt, a.labels, gt_tracks=lineage.table(), pred_tracks=a.lineage.table()).tra == 1.0


def test_three_d_plus_t_and_empty_frames():
    shape = (4, 32, 32)
    z, y, x = np.indices(shape)
    labels = np.zeros((4, *shape), np.uint16)
    for t in range(4):
        if t != 2:  # an empty frame
            labels[t][((z - 1.5) * 4) ** 2 + (y - 12 - 2 * t) ** 2 + (x - 14) ** 2 <= 36] = 7
    res = link_series(labels, config=LinkerConfig(z_scale=4.0, max_gap=1))
    assert res.labels.shape == labels.shape
    assert [(t.start, t.end) for t in res.lineage.tracks] == [(0, 1), (3, 3)]
    assert res.lineage.tracks[1].parent == res.lineage.tracks[0].id  # the gap closed
    tables = object_tables(labels, z_scale=4.0)
    assert tables[0].centroids[0, 0] == pytest.approx(1.5 * 4.0)


def test_nothing_to_track_and_bad_input():
    empty = link_series(np.zeros((3, 8, 8), np.uint16))
    assert empty.n_tracks == 0 and not empty.labels.any()
    with pytest.raises(InputError, match="at least two frames"):
        link_series(np.zeros((1, 8, 8), np.uint16))
    with pytest.raises(InputError, match=r"\(t, y, x\)"):
        link_series(np.zeros((8, 8), np.uint16))
    with pytest.raises(InputError, match="integers"):
        link_series(np.zeros((2, 8, 8), np.float32))
    with pytest.raises(InputError, match="link_iou"):
        LinkerConfig(link_iou=1.5)


def test_lineage_checks_and_make_continuous():
    with pytest.raises(InputError, match="must end before"):
        Lineage((Track(1, 0, 3), Track(2, 3, 5, 1)))
    with pytest.raises(InputError, match="not a track"):
        Lineage((Track(2, 0, 3, 9),))
    with pytest.raises(InputError, match="twice"):
        Lineage((Track(1, 0, 3), Track(1, 4, 5)))
    labels = np.zeros((5, 1, 3), np.uint16)
    labels[[0, 1, 3, 4], 0, 0] = 1
    labels[4, 0, 2] = 2
    fixed = make_continuous(labels, Lineage((Track(1, 0, 4), Track(2, 4, 4))))
    assert fixed.lineage.table().tolist() == [[1, 0, 1, 0], [2, 4, 4, 0], [3, 3, 4, 1]]
    assert fixed.labels[3, 0, 0] == 3 and labels[3, 0, 0] == 1  # input untouched
