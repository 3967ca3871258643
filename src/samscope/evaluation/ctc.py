"""Cell Tracking Challenge measures: SEG, DET, OP_CSB (as SAMCell reports them: VandeLoo et al., PLOS One 2025) and TRA.

Definitions (Ulman et al., Nat. Methods 2017; Matula et al., PLoS One 2015):

* **Detection test.** A reference object R is matched by the computed object S that covers more
  than half of it, ``|R ∩ S| > 0.5 |R|`` (in non-overlapping label images there is at most one
  such S per R; one S may match several R).
* **SEG** = mean over reference objects of ``J(R, S) = |R ∩ S| / |R ∪ S|`` with S its match,
  0 for an unmatched reference. Pooled over all reference objects of all frames.
* **AOGM-D** = ``w_NS·NS + w_FN·FN + w_FP·FP``: FN = unmatched references, FP = computed objects
  matching no reference, NS = splits needed, ``k − 1`` for a computed object matching ``k ≥ 2``
  references. Weights NS 5, FN 10, FP 1. **AOGM-D0** = ``w_FN · #references`` (build the
  reference from nothing). **DET** = ``1 − min(AOGM-D, AOGM-D0) / AOGM-D0``.
* **OP_CSB** = (SEG + DET) / 2.
* **TRA** adds the edges of the lineage graph: track links join a track's label in consecutive
  frames, parent links join a parent's last frame to its child's first. The computed graph is
  reduced to its uniquely matched vertices (a computed object matching exactly one reference)
  and mapped onto the reference; ED = computed edges without a reference counterpart (weight 1),
  EA = reference edges without a computed counterpart (1.5), EC = edges whose semantics (track vs
  parent link) differ (1). ``AOGM = AOGM-D + ED + 1.5·EA + EC``, ``AOGM0 = 10·#vertices +
  1.5·#edges``, TRA = ``1 − min(AOGM, AOGM0) / AOGM0``. Edges at split or unmatched vertices are
  not transferred, as in the challenge's evaluation software and ``py-ctcmetrics``.

When there is no reference object at all, SEG, DET and TRA are 1.0 if nothing was computed either
(AOGM = 0) and 0.0 otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from samscope.errors import InputError
from samscope.evaluation.metrics import MaskStack, Overlap, Segmentation, overlap_table

__all__ = [
    "AOGMWeights",
    "CTCScores",
    "DetectionCounts",
    "TrackingScores",
    "ctc_scores",
    "det_score",
    "op_csb_score",
    "seg_score",
    "tra_score",
    "tracks_from_labels",
]


@dataclass(frozen=True)
class AOGMWeights:
    """Weights of the graph operations (the Cell Tracking Challenge's values)."""

    ns: float = 5.0  # split a vertex
    fn: float = 10.0  # add a missing vertex
    fp: float = 1.0  # delete a spurious vertex
    ed: float = 1.0  # delete a redundant edge
    ea: float = 1.5  # add a missing edge
    ec: float = 1.0  # change an edge's semantics


@dataclass(frozen=True)
class DetectionCounts:
    """Vertex operations of the detection test, summed over frames.

    Attributes
    ----------
    n_reference, n_computed : int
        Objects on each side.
    fn, fp, ns : int
        Missing references, spurious computed objects, split operations.
    jaccard_sum : float
        Sum of the Jaccard indices of matched references (numerator of SEG).
    """

    n_reference: int
    n_computed: int
    fn: int
    fp: int
    ns: int
    jaccard_sum: float

    def __add__(self, other: DetectionCounts) -> DetectionCounts:
        return DetectionCounts(
            self.n_reference + other.n_reference,
            self.n_computed + other.n_computed,
            self.fn + other.fn,
            self.fp + other.fp,
            self.ns + other.ns,
            self.jaccard_sum + other.jaccard_sum,
        )


@dataclass(frozen=True)
class CTCScores:
    """SEG, DET and OP_CSB with the counts behind them."""

    seg: float
    det: float
    aogm_d: float
    aogm_d0: float
    counts: DetectionCounts

    @property
    def op_csb(self) -> float:
        """(SEG + DET) / 2."""
        return 0.5 * (self.seg + self.det)


@dataclass(frozen=True)
class TrackingScores:
    """TRA with its graph operations.

    Attributes
    ----------
    tra : float
        ``1 − min(AOGM, AOGM0) / AOGM0``.
    aogm, aogm0 : float
        Weighted operations to fix the computed graph / to build the reference from nothing.
    ns, fn, fp, ed, ea, ec : int
        Operation counts.
    n_vertices, n_edges : int
        Size of the reference graph.
    """

    tra: float
    aogm: float
    aogm0: float
    ns: int
    fn: int
    fp: int
    ed: int
    ea: int
    ec: int
    n_vertices: int
    n_edges: int


def _normalised(cost: float, empty_cost: float) -> float:
    if empty_cost == 0:
        return 1.0 if cost == 0 else 0.0
    return 1.0 - min(cost, empty_cost) / empty_cost


def _detection(table: Overlap) -> tuple[np.ndarray, np.ndarray]:
    """Matched (reference index, computed index) pairs of the detection test."""
    hit = 2 * table.intersection > table.gt_sizes[table.gt_index]
    ref, comp = table.gt_index[hit], table.pred_index[hit]
    if np.unique(ref).size != ref.size:
        raise InputError(
            "a reference object is covered more than half by two computed objects; "
            "the CTC measures need non-overlapping computed objects"
        )
    return ref, comp


def _counts(table: Overlap) -> tuple[DetectionCounts, np.ndarray, np.ndarray]:
    ref, comp = _detection(table)
    k = np.bincount(comp, minlength=table.n_pred)
    iou = table.iou()[2 * table.intersection > table.gt_sizes[table.gt_index]]
    counts = DetectionCounts(
        n_reference=table.n_gt,
        n_computed=table.n_pred,
        fn=table.n_gt - ref.size,
        fp=int(np.count_nonzero(k == 0)),
        ns=int(np.maximum(k - 1, 0).sum()),
        jaccard_sum=float(iou.sum()),
    )
    return counts, ref, comp


def _frames(seg: Segmentation | Sequence[Segmentation]) -> list[Segmentation]:
    if isinstance(seg, np.ndarray | MaskStack):
        return [seg]
    frames = list(seg)
    if not frames:
        raise InputError("no frames given")
    return frames


def ctc_scores(
    gt: Segmentation | Sequence[Segmentation],
    pred: Segmentation | Sequence[Segmentation],
    *,
    weights: AOGMWeights = AOGMWeights(),
) -> CTCScores:
    """SEG, DET and OP_CSB of a prediction.

    Parameters
    ----------
    gt, pred : numpy.ndarray or MaskStack, or sequences of them
        One label image (2-D or a 3-D volume), or a list of frames that are pooled as the
        challenge does (SEG over all reference objects, AOGM summed). Shapes must agree frame by
        frame.
    weights : AOGMWeights
        Graph-operation weights; the challenge's by default.

    Returns
    -------
    CTCScores
        ``.seg``, ``.det``, ``.op_csb``, ``.aogm_d``, ``.aogm_d0`` and the counts.

    Examples
    --------
    >>> gt = np.array([[1, 1, 0, 2, 2]])
    >>> pred = np.array([[3, 3, 3, 3, 0]])   # covers 1 fully, half of 2 (not > half)
    >>> s = ctc_scores(gt, pred)
    >>> round(s.seg, 4), s.det                # SEG = (2/4 + 0) / 2; AOGM-D = 10 (one FN)
    (0.25, 0.5)
    """
    gt_frames, pred_frames = _frames(gt), _frames(pred)
    if len(gt_frames) != len(pred_frames):
        raise InputError(
            f"{len(gt_frames)} ground-truth frames but {len(pred_frames)} predicted frames"
        )
    total = DetectionCounts(0, 0, 0, 0, 0, 0.0)
    for g, p in zip(gt_frames, pred_frames, strict=True):
        total = total + _counts(overlap_table(g, p))[0]
    aogm_d = weights.ns * total.ns + weights.fn * total.fn + weights.fp * total.fp
    aogm_d0 = weights.fn * total.n_reference
    if total.n_reference:
        seg = total.jaccard_sum / total.n_reference
    else:
        seg = 1.0 if total.n_computed == 0 else 0.0
    return CTCScores(seg, _normalised(aogm_d, aogm_d0), aogm_d, aogm_d0, total)


def seg_score(
    gt: Segmentation | Sequence[Segmentation], pred: Segmentation | Sequence[Segmentation]
) -> float:
    """CTC SEG. See :func:`ctc_scores`."""
    return ctc_scores(gt, pred).seg


def det_score(
    gt: Segmentation | Sequence[Segmentation], pred: Segmentation | Sequence[Segmentation]
) -> float:
    """CTC DET (normalised AOGM-D). See :func:`ctc_scores`."""
    return ctc_scores(gt, pred).det


def op_csb_score(
    gt: Segmentation | Sequence[Segmentation], pred: Segmentation | Sequence[Segmentation]
) -> float:
    """CTC OP_CSB = (SEG + DET) / 2. See :func:`ctc_scores`."""
    return ctc_scores(gt, pred).op_csb


# --------------------------------------------------------------------------------------------
# tracking
# --------------------------------------------------------------------------------------------


def tracks_from_labels(frames: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Track table of a label sequence without divisions.

    Parameters
    ----------
    frames : numpy.ndarray, shape (t, ...), or sequence of label images
        Labels are track ids, consistent over time.

    Returns
    -------
    numpy.ndarray, shape (n, 4), int64
        Rows ``(L, B, E, P)``: label, first frame, last frame, parent (always 0), as in the
        challenge's ``res_track.txt``.
    """
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for t, frame in enumerate(frames):
        for label in np.unique(np.asarray(frame)).tolist():
            if label:
                first.setdefault(label, t)
                last[label] = t
    rows = [(label, first[label], last[label], 0) for label in sorted(first)]
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def _check_tracks(tracks: np.ndarray, ids: list[np.ndarray], name: str) -> np.ndarray:
    tracks = np.asarray(tracks)
    if tracks.size == 0:
        tracks = tracks.reshape(0, 4)
    if tracks.ndim != 2 or tracks.shape[1] != 4:
        raise InputError(f"{name} track table must have shape (n, 4) (L B E P), got {tracks.shape}")
    tracks = tracks.astype(np.int64)
    if np.unique(tracks[:, 0]).size != len(tracks):
        raise InputError(f"{name} track table lists a label twice")
    span = {int(L): (int(B), int(E)) for L, B, E, _ in tracks}
    for t, labels in enumerate(ids):
        for label in labels.tolist():
            b, e = span.get(label, (1, 0))
            if not b <= t <= e:
                raise InputError(
                    f"{name}: label {label} in frame {t} is not covered by the track table"
                )
    for L, B, _, P in tracks:
        if P and (P not in span or span[int(P)][1] >= B):
            raise InputError(f"{name}: track {L} has parent {P}, which must end before frame {B}")
    return tracks


def _edges(ids: list[np.ndarray], offsets: np.ndarray, tracks: np.ndarray, name: str):
    """Edges (source vertex, target vertex, semantic 0 = track link / 1 = parent link)."""
    src, dst, sem = [], [], []
    for t in range(len(ids) - 1):
        common = np.intersect1d(ids[t], ids[t + 1])
        src.append(offsets[t] + np.searchsorted(ids[t], common))
        dst.append(offsets[t + 1] + np.searchsorted(ids[t + 1], common))
        sem.append(np.zeros(common.size, np.int64))
    ends = {int(L): int(E) for L, _, E, _ in tracks}
    for L, B, _, P in tracks:
        if not P:
            continue
        e = ends[int(P)]
        if P not in ids[e] or L not in ids[B]:
            raise InputError(
                f"{name}: parent link {P}→{L} needs label {P} in frame {e} and {L} in frame {B}"
            )
        src.append(np.array([offsets[e] + np.searchsorted(ids[e], P)]))
        dst.append(np.array([offsets[B] + np.searchsorted(ids[B], L)]))
        sem.append(np.ones(1, np.int64))
    cat = (
        (lambda a: np.concatenate(a).astype(np.int64)) if src else (lambda a: np.zeros(0, np.int64))
    )
    return cat(src), cat(dst), cat(sem)


def tra_score(
    gt: np.ndarray | Sequence[np.ndarray],
    pred: np.ndarray | Sequence[np.ndarray],
    *,
    gt_tracks: np.ndarray | None = None,
    pred_tracks: np.ndarray | None = None,
    weights: AOGMWeights = AOGMWeights(),
) -> TrackingScores:
    """CTC TRA: normalised AOGM of the whole lineage graph.

    Parameters
    ----------
    gt, pred : numpy.ndarray, shape (t, ...), or sequences of label images
        Frames whose labels are track ids (the same id in consecutive frames = one track).
    gt_tracks, pred_tracks : numpy.ndarray, shape (n, 4), optional
        ``(L, B, E, P)`` rows as in ``man_track.txt`` / ``res_track.txt``. Without a table the
        tracks are read from the labels, with no divisions (:func:`tracks_from_labels`).
        A label must appear only in frames its row covers; unlike the challenge's validator a
        gap inside a track is accepted (no edge crosses it).
    weights : AOGMWeights
        Graph-operation weights.

    Returns
    -------
    TrackingScores
    """
    gt_frames, pred_frames = list(gt), list(pred)
    if len(gt_frames) != len(pred_frames) or not gt_frames:
        raise InputError(
            f"{len(gt_frames)} ground-truth frames but {len(pred_frames)} predicted frames"
        )
    gt_ids, pred_ids, match_r, match_c = [], [], [], []
    for g, p in zip(gt_frames, pred_frames, strict=True):
        table = overlap_table(g, p)
        ref, comp = _detection(table)
        gt_ids.append(table.gt_ids)
        pred_ids.append(table.pred_ids)
        match_r.append(ref)
        match_c.append(comp)
    r_off = np.concatenate([[0], np.cumsum([i.size for i in gt_ids])])
    c_off = np.concatenate([[0], np.cumsum([i.size for i in pred_ids])])
    n_ref, n_comp = int(r_off[-1]), int(c_off[-1])
    R = np.concatenate([r + r_off[t] for t, r in enumerate(match_r)]).astype(np.int64)
    C = np.concatenate([c + c_off[t] for t, c in enumerate(match_c)]).astype(np.int64)
    k = np.bincount(C, minlength=n_comp)
    fn = n_ref - R.size
    fp = int(np.count_nonzero(k == 0))
    ns = int(np.maximum(k - 1, 0).sum())
    comp_to_ref = np.full(n_comp, -1, np.int64)
    unique = k[C] == 1
    comp_to_ref[C[unique]] = R[unique]

    if gt_tracks is None:
        gt_tracks = tracks_from_labels(gt_frames)
    if pred_tracks is None:
        pred_tracks = tracks_from_labels(pred_frames)
    gt_tracks = _check_tracks(gt_tracks, gt_ids, "ground truth")
    pred_tracks = _check_tracks(pred_tracks, pred_ids, "prediction")
    rs, rd, rsem = _edges(gt_ids, r_off, gt_tracks, "ground truth")
    cs, cd, csem = _edges(pred_ids, c_off, pred_tracks, "prediction")
    # keep computed edges between uniquely matched vertices, mapped onto the reference
    ms, md = comp_to_ref[cs], comp_to_ref[cd]
    ok = (ms >= 0) & (md >= 0)
    ckey = ms[ok] * max(n_ref, 1) + md[ok]
    csem = csem[ok]
    rkey = rs * max(n_ref, 1) + rd
    in_ref = np.isin(ckey, rkey)
    in_comp = np.isin(rkey, ckey)
    ed = int(np.count_nonzero(~in_ref))
    ea = int(np.count_nonzero(~in_comp))
    # semantics of the edges present in both graphs (keys are unique on both sides)
    r_order = np.argsort(rkey)
    pos = r_order[np.searchsorted(rkey, ckey[in_ref], sorter=r_order)]
    ec = int(np.count_nonzero(rsem[pos] != csem[in_ref]))
    n_edges = int(rkey.size)
    aogm = (
        weights.ns * ns
        + weights.fn * fn
        + weights.fp * fp
        + weights.ed * ed
        + weights.ea * ea
        + weights.ec * ec
    )
    aogm0 = weights.fn * n_ref + weights.ea * n_edges
    return TrackingScores(
        _normalised(aogm, aogm0), aogm, aogm0, ns, fn, fp, ed, ea, ec, n_ref, n_edges
    )
