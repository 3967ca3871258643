"""The interactive protocol with deterministic fake segmenters, hand-checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.evaluation.interactive import (
    ImagePrompts,
    PromptSpec,
    SegmenterOutput,
    corrective_points,
    derive_prompts,
    interior_point,
    load_prompts,
    run_interactive,
    save_prompts,
    save_run,
    summarise,
)

HELA = Path(__file__).resolve().parents[3] / "shared" / "data" / "hela" / "masks.tif"


def two_objects() -> np.ndarray:
    labels = np.zeros((40, 60), np.uint16)
    labels[10:20, 10:30] = 3  # 10 x 20
    labels[25:35, 35:45] = 70  # 10 x 10, non-consecutive id
    return labels


class ShiftSegmenter:
    """The prompted object shifted right by max(0, 6 - 3 * #negative points) columns.

    The object is the one under the first positive point, or under the box centre.
    Logits are a 4x4 array holding the call number.
    """

    def __init__(self, labels: np.ndarray, *, bare: bool = False):
        self.labels = labels
        self.calls: list[PromptSpec] = []
        self.bare = bare

    def __call__(self, spec: PromptSpec):
        self.calls.append(spec)
        if spec.box is not None:
            y0, x0, y1, x1 = spec.box
            obj = self.labels[int((y0 + y1) // 2), int((x0 + x1) // 2)]
        else:
            y, x = spec.points[np.flatnonzero(spec.labels == 1)[0]].astype(int)
            obj = self.labels[y, x]
        shift = max(0, 6 - 3 * int(np.count_nonzero(spec.labels == 0)))
        mask = np.roll(self.labels == obj, shift, axis=1)
        if self.bare:
            return mask
        return SegmenterOutput(mask, np.full((4, 4), len(self.calls), np.float32))


def test_interior_point_rules():
    m = np.zeros((12, 12), bool)
    m[2:4, 5:7] = True  # 2x2: every pixel at distance 1 -> first in raster order
    assert interior_point(m).tolist() == [2.0, 5.0]
    ring = np.zeros((21, 21), bool)
    yy, xx = np.mgrid[:21, :21]
    r = np.hypot(yy - 10, xx - 10)
    ring[(r >= 5) & (r <= 9)] = True
    y, x = interior_point(ring).astype(int)
    assert ring[y, x] and 6 <= np.hypot(y - 10, x - 10) <= 8  # inside the ring, not its centre
    border = np.zeros((10, 10), bool)
    border[:, :4] = True  # touches the image border, which counts as boundary: 2 px deep at most
    assert interior_point(border).tolist() == [1.0, 1.0]  # (without the rule: (0, 0), 4 px)
    with pytest.raises(InputError):
        interior_point(np.zeros((3, 3), bool))


def test_derive_prompts_points_and_boxes():
    p = derive_prompts(two_objects(), name="img")
    assert p.name == "img" and p.shape == (40, 60)
    assert p.ids.tolist() == [3, 70]
    assert p.points.tolist() == [[14.0, 14.0], [29.0, 39.0]]
    assert p.boxes.tolist() == [[10, 10, 20, 30], [25, 35, 35, 45]]


def test_corrective_points_largest_component():
    gt = np.zeros((10, 20), bool)
    gt[2:8, 2:18] = True
    pred = gt.copy()
    pred[2:8, 2:4] = False  # FN component of 12 px
    pred[2:8, 14:18] = False  # FN component of 24 px: the larger one wins
    pred[0:2, 5:8] = True  # FP of 6 px
    pos, neg = corrective_points(gt, pred)
    # 6 x 4 component at rows 2..7, cols 14..17: distance 2 first at row 3, col 15
    assert pos.tolist() == [3.0, 15.0]
    assert neg.tolist() == [0.0, 5.0]  # 2 x 3 strip: all at distance 1 -> first pixel
    tie = gt.copy()
    tie[2:8, 2:4] = False
    tie[2:8, 16:18] = False  # two equal FN components -> the first in raster order
    assert corrective_points(gt, tie)[0].tolist() == [2.0, 2.0]
    assert corrective_points(gt, gt) == (None, None)


def test_corrective_points_largest_rule_keeps_one_point():
    gt = np.zeros((10, 20), bool)
    gt[2:8, 2:18] = True
    pred = gt.copy()
    pred[2:8, 14:18] = False  # FN of 24 px
    pred[0:2, 5:8] = True  # FP of 6 px
    pos, neg = corrective_points(gt, pred, rule="largest")
    assert pos.tolist() == [3.0, 15.0] and neg is None
    pred[0:2, 0:20] = True  # FP of 40 px now beats the FN
    pos, neg = corrective_points(gt, pred, rule="largest")
    assert pos is None and neg.tolist() == [0.0, 0.0]
    with pytest.raises(InputError):
        corrective_points(gt, pred, rule="all")


def test_largest_correction_adds_one_point_per_iteration():
    labels = two_objects()
    seg = ShiftSegmenter(labels)
    r = run_interactive(seg, labels, mode="point", n_iterations=2, correction="largest")
    # shift 6: FN and FP strips are equal (6 columns) -> the positive point wins the tie
    assert r.point_labels[0].tolist() == [1, 1, 1]
    assert r.point_iteration[0].tolist() == [0, 1, 2]
    with pytest.raises(InputError):
        run_interactive(seg, labels, correction="some")


def test_point_protocol_hand_checked():
    labels = two_objects()
    seg = ShiftSegmenter(labels)
    r = run_interactive(seg, labels, mode="point", n_iterations=3)
    assert r.model_calls == 6 == len(seg.calls)  # 3 per object, then perfect: no calls
    # object 3: first point, then (FN, FP) centres at shift 6, then at shift 3
    assert r.points[0].tolist() == [[14, 14], [12, 12], [12, 32], [11, 11], [11, 31]]
    assert r.point_labels[0].tolist() == [1, 1, 0, 1, 0]
    assert r.point_iteration[0].tolist() == [0, 1, 1, 2, 2]
    assert r.points[1].tolist() == [[29, 39], [27, 37], [27, 47], [26, 36], [26, 46]]
    np.testing.assert_allclose(r.iou[0], [14 / 26, 17 / 23, 1, 1])
    np.testing.assert_allclose(r.iou[1], [4 / 16, 7 / 13, 1, 1])
    # iteration 0: one match at t = 0.5 only (TP 1, FP 1, FN 1)
    np.testing.assert_allclose(r.sa50, [1 / 3, 1, 1, 1])
    np.testing.assert_allclose(r.msa, [1 / 30, (1 + 4 / 3) / 10, 1, 1])
    np.testing.assert_allclose(r.sa75, [0, 0, 1, 1])
    # the segmenter saw exactly the accumulated prompts, no logits by default
    assert seg.calls[1].points.tolist() == [[14, 14], [12, 12], [12, 32]]
    assert all(c.mask_logits is None and c.box is None for c in seg.calls)


def test_box_protocol_and_logit_feedback():
    labels = two_objects()
    seg = ShiftSegmenter(labels)
    r = run_interactive(seg, labels, mode="box", n_iterations=2, feed_logits=True)
    assert r.boxes.tolist() == [[10, 10, 20, 30], [25, 35, 35, 45]]
    assert seg.calls[0].points.shape == (0, 2) and seg.calls[0].box.tolist() == [10, 10, 20, 30]
    assert seg.calls[1].points.tolist() == [[12, 12], [12, 32]]
    assert seg.calls[1].labels.tolist() == [1, 0]
    assert seg.calls[1].box.tolist() == [10, 10, 20, 30]
    # logits of call n are fed to call n + 1 of the same object, never across objects
    assert seg.calls[0].mask_logits is None
    assert seg.calls[1].mask_logits[0, 0] == 1 and seg.calls[2].mask_logits[0, 0] == 2
    assert seg.calls[3].mask_logits is None
    np.testing.assert_allclose(r.iou[0], [14 / 26, 17 / 23, 1])
    np.testing.assert_allclose(r.sa50, [1 / 3, 1, 1])


def test_bare_mask_segmenter_and_empty_masks():
    labels = two_objects()
    r = run_interactive(ShiftSegmenter(labels, bare=True), labels, n_iterations=1)
    np.testing.assert_allclose(r.iou[:, 1], [17 / 23, 7 / 13])

    def nothing(spec):
        return np.zeros(labels.shape, bool)

    r = run_interactive(nothing, labels, n_iterations=2)
    assert (r.msa == 0).all() and (r.iou == 0).all()
    # only positive corrections (the false-positive region is empty)
    assert r.point_labels[0].tolist() == [1, 1, 1]
    assert r.points[0].tolist() == [[14, 14], [14, 14], [14, 14]]


def test_summary_and_files(tmp_path):
    labels = two_objects()
    prompts = derive_prompts(labels, name="a")
    path = save_prompts(tmp_path / "prompts.json", [prompts])
    (back,) = load_prompts(path)
    assert back.name == "a" and back.shape == prompts.shape
    for field in ("ids", "points", "boxes"):
        np.testing.assert_array_equal(getattr(back, field), getattr(prompts, field))
    results = [
        run_interactive(ShiftSegmenter(labels), labels, back, n_iterations=2),
        run_interactive(lambda s: labels > 0, labels, back, n_iterations=2),  # merges both
    ]
    rows = summarise(results)
    assert [row["iteration"] for row in rows] == [0, 1, 2]
    # the merged mask (300 px) has IoU 2/3 with object 3 and 1/3 with object 70: one TP,
    # one FP (the duplicate), one FN at t <= 0.65
    assert rows[0]["sa50"] == pytest.approx((1 / 3 + 1 / 3) / 2)
    assert rows[2]["msa"] == pytest.approx((1 + 4 / 30) / 2)
    assert rows[2]["mean_object_iou"] == pytest.approx((1 + (2 / 3 + 1 / 3) / 2) / 2)
    run = save_run(tmp_path / "run.json", results, model="fake", prompts_sha256="abc")
    doc = json.loads(run.read_text())
    assert doc["model"] == "fake" and doc["n_iterations"] == 2
    obj = doc["images"][0]["objects"][0]
    assert obj["id"] == 3 and obj["points"][1] == [12.0, 12.0] and obj["labels"][:3] == [1, 1, 0]
    assert not list(tmp_path.glob("*.tmp"))


def test_prompts_must_belong_to_the_ground_truth(tmp_path):
    labels = two_objects()
    prompts = derive_prompts(labels)
    seg = ShiftSegmenter(labels)
    other = labels.copy()
    other[other == 70] = 71
    with pytest.raises(InputError, match="other annotations"):
        run_interactive(seg, other, prompts)
    with pytest.raises(InputError, match="shape"):
        run_interactive(seg, labels[:30], prompts)
    moved = ImagePrompts(
        "x", prompts.shape, prompts.ids, prompts.points[::-1].copy(), prompts.boxes
    )
    with pytest.raises(InputError, match="do not lie"):
        run_interactive(seg, labels, moved)
    with pytest.raises(InputError, match="2-D"):
        run_interactive(seg, labels[None])
    with pytest.raises(InputError, match="mode"):
        run_interactive(seg, labels, mode="scribble")
    with pytest.raises(InputError, match="shape"):
        run_interactive(lambda s: np.zeros((3, 3), bool), labels)
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(InputError, match="not a samscope prompts file"):
        load_prompts(tmp_path / "bad.json")


@pytest.mark.skipif(not HELA.exists(), reason="HeLa data not present")
def test_hela_oracle_and_eroding_segmenter():
    import tifffile
    from scipy import ndimage as ndi

    labels = tifffile.imread(HELA, key=14)[:256, :256]
    prompts = derive_prompts(labels)
    ys, xs = prompts.points.astype(int).T
    assert np.array_equal(labels[ys, xs], prompts.ids)  # every first point is on its object

    def oracle(spec):
        y, x = spec.points[0].astype(int)
        return labels == labels[y, x]

    r = run_interactive(oracle, labels, prompts, n_iterations=8)
    assert r.model_calls == prompts.ids.size and (r.msa == 1).all()

    def eroding(spec):  # erodes less with every positive correction
        y, x = spec.points[0].astype(int)
        obj = labels == labels[y, x]
        n = 4 - int(np.count_nonzero(spec.labels == 1))
        return ndi.binary_erosion(obj, iterations=n) if n > 0 else obj

    r = run_interactive(eroding, labels, prompts, n_iterations=4)
    assert np.all(np.diff(r.iou, axis=1) >= 0)  # every correction helps this model
    assert r.msa[-1] == 1.0 and r.msa[0] < 0.5
    assert all((lab == 1).all() for lab in r.point_labels)  # nothing to take away


def test_model_segmenter_multimask_rule():
    from samscope.evaluation.interactive import _wants_multimask, model_segmenter

    one = PromptSpec(np.array([[3.0, 4.0]]), np.array([1]), None, None)
    two = PromptSpec(np.array([[3.0, 4.0], [5.0, 6.0]]), np.array([1, 0]), None, None)
    box = PromptSpec(np.zeros((0, 2)), np.zeros(0, np.int64), np.array([0.0, 0, 5, 5]), None)
    assert [_wants_multimask("single-point", s) for s in (one, two, box)] == [True, False, False]
    assert not _wants_multimask("never", one) and _wants_multimask("always", box)
    with pytest.raises(InputError):
        model_segmenter(None, None, multimask="sometimes")


def test_progressive_merge_changes_only_the_clicked_region():
    from samscope.evaluation.interactive import progressive_merge

    prev = np.zeros((10, 20), bool)
    prev[2:8, 2:10] = True
    new = np.zeros((10, 20), bool)
    new[2:8, 4:12] = True  # grows right (cols 10-11), shrinks left (cols 2-3)
    new[0:2, 15:18] = True  # a far-away blob the click did not ask for
    pos = progressive_merge(prev, new, np.array([[5.0, 11.0]]), np.array([1]))
    want = prev.copy()
    want[2:8, 10:12] = True  # only the part under the click; the left edge and the blob unchanged
    assert (pos == want).all()
    neg = progressive_merge(prev, new, np.array([[4.0, 2.0]]), np.array([0]))
    want = prev.copy()
    want[2:8, 2:4] = False
    assert (neg == want).all()
    # a click in nothing that changed: the decoder's new mask is taken whole
    assert (progressive_merge(prev, new, np.array([[5.0, 6.0]]), np.array([1])) == new).all()


def test_model_segmenter_continues_only_the_same_object():
    from samscope.evaluation.interactive import _continues

    a = PromptSpec(np.array([[3.0, 4.0]]), np.array([1]), None, None)
    b = PromptSpec(np.array([[3.0, 4.0], [5.0, 6.0]]), np.array([1, 0]), None, None)
    c = PromptSpec(np.array([[9.0, 9.0], [5.0, 6.0]]), np.array([1, 0]), None, None)
    assert _continues(a, b) and not _continues(a, c) and not _continues(b, a)
