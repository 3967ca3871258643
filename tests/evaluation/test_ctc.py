"""CTC SEG, DET, OP_CSB and TRA: hand-computed cases and a cross-check against py-ctcmetrics."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from samscope.errors import InputError
from samscope.evaluation.ctc import (
    ctc_scores,
    det_score,
    op_csb_score,
    seg_score,
    tra_score,
    tracks_from_labels,
)
from samscope.evaluation.metrics import MaskStack

HELA = Path(__file__).resolve().parents[3] / "shared" / "data" / "hela" / "masks.tif"


# ------------------------------------------------------------------------------------------
# hand-computed
# ------------------------------------------------------------------------------------------


def test_seg_det_hand_case():
    gt = np.array([[1, 1, 1, 1, 0, 2, 2, 2, 2, 0, 3, 3]])
    pred = np.array([[7, 7, 7, 0, 0, 9, 9, 9, 9, 9, 0, 4]])
    # 1: 3/4 covered -> J = 3/4; 2: fully covered -> J = 4/5; 3: half covered -> no match (needs > 1/2)
    s = ctc_scores(gt, pred)
    assert s.seg == pytest.approx((0.75 + 0.8 + 0) / 3)
    c = s.counts
    assert (c.n_reference, c.n_computed, c.fn, c.fp, c.ns) == (3, 3, 1, 1, 0)
    assert s.aogm_d == 10 * 1 + 1 * 1 and s.aogm_d0 == 30
    assert s.det == pytest.approx(1 - 11 / 30)
    assert s.op_csb == pytest.approx((s.seg + s.det) / 2)
    assert seg_score(gt, pred) == s.seg and det_score(gt, pred) == s.det
    assert op_csb_score(gt, pred) == s.op_csb


def test_det_split_operation():
    gt = np.array([[1, 1, 1, 1, 2, 2, 2, 2]])
    pred = np.full_like(gt, 5)  # one object covering both references entirely
    s = ctc_scores(gt, pred)
    assert (s.counts.ns, s.counts.fn, s.counts.fp) == (1, 0, 0)
    assert s.det == pytest.approx(1 - 5 / 20)
    assert s.seg == pytest.approx(0.5)


def test_det_saturates_at_zero_and_empty_conventions():
    gt = np.zeros((3, 3), np.uint8)
    gt[1, 1] = 1
    pred = np.arange(9, dtype=np.uint8).reshape(3, 3) + 1  # 9 one-pixel objects
    s = ctc_scores(gt, pred)  # 1 is matched by its pixel: TP; 8 FP -> AOGM-D 8 < 10
    assert s.det == pytest.approx(1 - 8 / 10) and s.seg == 1.0
    many = np.zeros((4, 4), np.uint16)
    many[:] = np.arange(16).reshape(4, 4) + 1
    gt4 = np.zeros((4, 4), np.uint8)
    gt4[0, 0] = 1
    assert ctc_scores(gt4, np.where(gt4 > 0, 0, many)).det == 0.0  # FN + 15 FP > AOGM-D0
    z = np.zeros((3, 3), np.uint8)
    assert (ctc_scores(z, z).seg, ctc_scores(z, z).det) == (1.0, 1.0)
    assert (ctc_scores(z, gt).seg, ctc_scores(z, gt).det) == (0.0, 0.0)
    assert (ctc_scores(gt, z).seg, ctc_scores(gt, z).det) == (0.0, 0.0)


def test_frames_are_pooled():
    a = np.array([[1, 1, 0, 0]])
    b = np.array([[1, 1, 2, 2]])
    s = ctc_scores([a, b], [a, np.array([[3, 3, 0, 0]])])
    assert s.counts.n_reference == 3 and s.counts.fn == 1
    assert s.seg == pytest.approx(2 / 3)
    assert s.det == pytest.approx(1 - 10 / 30)
    with pytest.raises(InputError, match="frames"):
        ctc_scores([a, b], [a])


def test_overlapping_predictions_are_rejected():
    gt = np.array([[1, 1, 1, 1]])
    m = np.ones((2, 1, 4), bool)
    with pytest.raises(InputError, match="non-overlapping"):
        ctc_scores(gt, MaskStack.from_dense(m))
    # an overlapping *reference* stack is fine
    assert ctc_scores(MaskStack.from_dense(m), gt).counts.ns == 1


def test_tra_perfect_and_id_switch():
    f0 = np.array([[1, 1, 0, 2, 2]])
    f1 = np.array([[1, 1, 0, 2, 2]])
    gt = np.stack([f0, f1])
    assert tra_score(gt, gt).tra == 1.0
    swapped = np.stack([f0, np.array([[2, 2, 0, 1, 1]])])
    s = tra_score(gt, swapped)
    assert (s.ns, s.fn, s.fp, s.ed, s.ea, s.ec) == (0, 0, 0, 2, 2, 0)
    assert (s.n_vertices, s.n_edges) == (4, 2)
    assert s.aogm == 2 * 1 + 2 * 1.5 and s.aogm0 == 40 + 3
    assert s.tra == pytest.approx(1 - 5 / 43)


def test_tra_division_semantics():
    # A (label 1) in frames 0-1 divides into 2 and 3 in frame 2
    gt = np.array([[[1, 1, 1, 1]], [[1, 1, 1, 1]], [[2, 2, 3, 3]]])
    gt_tracks = np.array([[1, 0, 1, 0], [2, 2, 2, 1], [3, 2, 2, 1]])
    assert tra_score(gt, gt, gt_tracks=gt_tracks, pred_tracks=gt_tracks).tra == 1.0
    # prediction: the children have no parent -> both parent links missing
    s = tra_score(gt, gt, gt_tracks=gt_tracks)
    assert (s.ed, s.ea, s.ec) == (0, 2, 0)
    # prediction: label 1 continues as one child (a track link where a parent link belongs)
    pred = np.array([[[1, 1, 1, 1]], [[1, 1, 1, 1]], [[1, 1, 3, 3]]])
    s = tra_score(gt, pred, gt_tracks=gt_tracks)
    assert (s.ed, s.ea, s.ec) == (0, 1, 1)
    assert s.aogm == 1.5 + 1
    assert s.aogm0 == 10 * 4 + 1.5 * 3


def test_tra_bad_track_tables():
    gt = np.array([[[1, 1]], [[1, 1]]])
    with pytest.raises(InputError, match="not covered"):
        tra_score(gt, gt, gt_tracks=np.array([[1, 0, 0, 0]]))
    with pytest.raises(InputError, match="parent"):
        tra_score(gt, gt, gt_tracks=np.array([[1, 0, 1, 7]]))
    with pytest.raises(InputError, match="shape"):
        tra_score(gt, gt, gt_tracks=np.array([1, 0, 1, 0]))


def test_tracks_from_labels():
    frames = [np.array([[0, 4]]), np.array([[2, 4]]), np.array([[2, 0]])]
    assert tracks_from_labels(frames).tolist() == [[2, 1, 2, 0], [4, 0, 1, 0]]


# ------------------------------------------------------------------------------------------
# cross-check against py-ctcmetrics on the HeLa reference masks
# ------------------------------------------------------------------------------------------


def _write_sequence(root: Path, gt_frames, gt_tracks, res_frames, res_tracks) -> tuple[Path, Path]:
    res, gt = root / "01_RES", root / "01_GT"
    (gt / "TRA").mkdir(parents=True)
    (gt / "SEG").mkdir()
    res.mkdir()
    for t, (g, r) in enumerate(zip(gt_frames, res_frames, strict=True)):
        tifffile.imwrite(gt / "TRA" / f"man_track{t:03d}.tif", g.astype(np.uint16))
        tifffile.imwrite(gt / "SEG" / f"man_seg{t:03d}.tif", g.astype(np.uint16))
        tifffile.imwrite(res / f"mask{t:03d}.tif", r.astype(np.uint16))
    for path, tracks in (
        (gt / "TRA" / "man_track.txt", gt_tracks),
        (res / "res_track.txt", res_tracks),
    ):
        path.write_text("".join(" ".join(str(int(v)) for v in row) + "\n" for row in tracks))
    return res, gt


def _reference(root, gt_frames, gt_tracks, res_frames, res_tracks) -> dict:
    evaluate = pytest.importorskip("ctc_metrics.scripts.evaluate")
    res, gt = _write_sequence(root, gt_frames, gt_tracks, res_frames, res_tracks)
    with contextlib.redirect_stdout(io.StringIO()):
        out = evaluate.evaluate_sequence(
            str(res), str(gt), metrics=["DET", "SEG", "TRA"], threads=1
        )
    assert out.get("Valid", 1) != 0
    return out


def _tracks(frames, parents=None):
    tracks = tracks_from_labels(frames)
    for row in tracks:
        row[3] = (parents or {}).get(int(row[0]), 0)
    return tracks


def _hela_frame(t: int) -> np.ndarray:
    return tifffile.imread(HELA, key=t).astype(np.int64)


def _relabel(labels: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    lut = np.arange(labels.max() + 1 + max(mapping.values(), default=0))
    for a, b in mapping.items():
        lut[a] = b
    return lut[labels]


def _split(labels: np.ndarray, label: int, new: int) -> np.ndarray:
    """Cut an object into a left and a right half; the right half gets ``new``."""
    out = labels.copy()
    ys, xs = np.nonzero(labels == label)
    mid = np.median(xs)
    out[ys[xs > mid], xs[xs > mid]] = new
    return out


@pytest.mark.skipif(not HELA.exists(), reason="HeLa data not present")
@pytest.mark.parametrize(
    "case", ["eroded", "dilated", "merged", "split", "dropped_and_fp", "mixed"]
)
def test_seg_det_match_py_ctcmetrics(tmp_path, case):
    frames = [_hela_frame(t) for t in (0, 7)]
    preds = []
    rng = np.random.default_rng(0)
    for f in frames:
        ids = np.unique(f)[1:]
        if case == "eroded":
            p = ndi.grey_erosion(f, size=(7, 7)) * (
                ndi.minimum_filter(f, 7) == ndi.maximum_filter(f, 7)
            )
        elif case == "dilated":
            p = ndi.grey_dilation(f, size=(9, 9))
        elif case == "merged":
            p = _relabel(f, {int(a): int(b) for a, b in zip(ids[0:40:2], ids[1:40:2], strict=True)})
        elif case == "split":
            p = f
            for k, i in enumerate(ids[:30]):
                p = _split(p, int(i), int(f.max()) + 1 + k)
        elif case == "dropped_and_fp":
            p = np.where(np.isin(f, rng.choice(ids, 20, replace=False)), 0, f)
            for _ in range(15):
                y, x = rng.integers(10, 680), rng.integers(10, 1080)
                p[y : y + 6, x : x + 6] = p.max() + 1
        else:  # everything at once, with ids shuffled
            p = ndi.grey_erosion(f, size=(3, 3)) * (
                ndi.minimum_filter(f, 3) == ndi.maximum_filter(f, 3)
            )
            p = np.where(np.isin(p, ids[:10]), 0, p)
            p = _relabel(p, {int(ids[10]): int(ids[11]), int(ids[12]): int(ids[13])})
            p = _split(p, int(ids[20]), int(p.max()) + 1)
            p = _split(p, int(ids[21]), int(p.max()) + 1)
            p[5:30, 5:40] = p.max() + 1
            perm = np.concatenate([[0], rng.permutation(np.arange(1, p.max() + 1))])
            p = perm[p]
        # CTC result labels are track ids: keep them unique across frames for a valid result
        p = np.where(p > 0, p + 1000 * len(preds), 0)
        preds.append(p)
    gt_frames = [f + np.where(f > 0, 1000 * t, 0) for t, f in enumerate(frames)]
    ref = _reference(tmp_path, gt_frames, _tracks(gt_frames), preds, _tracks(preds))
    ours = ctc_scores(gt_frames, preds)
    assert ours.seg == pytest.approx(ref["SEG"], abs=1e-12)
    assert ours.det == pytest.approx(ref["DET"], abs=1e-12)
    assert ours.op_csb == pytest.approx(ref["OP_CSB"], abs=1e-12)
    assert ours.counts.ns == ref["AOGM_NS"]
    assert ours.counts.fn == ref["AOGM_FN"]
    assert ours.counts.fp == ref["AOGM_FP"]
    if case != "eroded":
        assert ours.det < 1.0


@pytest.mark.skipif(not HELA.exists(), reason="HeLa data not present")
def test_tra_matches_py_ctcmetrics(tmp_path):
    base = _hela_frame(0)[:350, :550]  # a quarter of the frame keeps the test quick
    ids = np.unique(base)[1:]
    a, d, e = int(ids[3]), int(ids[8]), int(ids[12])
    n_frames = 6
    gt_frames, pred_frames = [], []
    child1, child2 = 500, 501
    for t in range(n_frames):
        g = np.roll(base, t, axis=1)
        if t >= 3:  # a divides at frame 3
            g = _split(g, a, child2)
            g[g == a] = child1
        if t >= 4:  # d leaves after frame 3
            g[g == d] = 0
        if t < 2:  # e appears at frame 2
            g[g == e] = 0
        gt_frames.append(g)
        p = g.copy()
        if t >= 3:  # missed division: the children stay one object, continuing a's label
            p[(p == child1) | (p == child2)] = a
        if t >= 4:  # identity switch between two tracks
            p = _relabel(p, {int(ids[1]): int(ids[2]), int(ids[2]): int(ids[1])})
        if t == 2:  # one object missed in one frame (a remnant keeps the track continuous)
            remnant = p == int(ids[5])
            p[remnant & ~ndi.binary_erosion(remnant, iterations=6)] = 0
        if t == 1:  # a spurious detection
            p[300:310, 20:30] = 900
        if t >= 2:  # a track broken into parent -> child without a division
            p[p == int(ids[6])] = 800
        p = np.where(p > 0, ndi.grey_erosion(p, size=(3, 3)), 0)  # slightly eroded everywhere
        pred_frames.append(p)
    gt_tracks = _tracks(gt_frames, {child1: a, child2: a})
    pred_tracks = _tracks(pred_frames, {800: int(ids[6])})
    ref = _reference(tmp_path, gt_frames, gt_tracks, pred_frames, pred_tracks)
    ours = tra_score(gt_frames, pred_frames, gt_tracks=gt_tracks, pred_tracks=pred_tracks)
    for key in ("NS", "FN", "FP", "ED", "EA", "EC"):
        assert getattr(ours, key.lower()) == ref[f"AOGM_{key}"], key
    assert ours.aogm == pytest.approx(ref["AOGM"])
    assert ours.aogm0 == pytest.approx(ref["AOGM_0"])
    assert ours.tra == pytest.approx(ref["TRA"], abs=1e-12)
    assert min(ours.ns, ours.fn, ours.fp, ours.ed, ours.ea, ours.ec) > 0  # every operation occurs
    seg = ctc_scores(gt_frames, pred_frames)
    assert seg.det == pytest.approx(ref["DET"], abs=1e-12)
    assert seg.seg == pytest.approx(ref["SEG"], abs=1e-12)
