"""Tracking evaluation of whole series: TRA, DET and SEG of a result against ground truth.

Either side is a Cell Tracking Challenge folder (a result ``mask*.tif`` + ``res_track.txt``; the
ground truth's ``XX_GT`` folder with ``TRA/`` and optionally ``SEG/``, or the ``TRA`` folder
itself) or a label-series file whose ids are tracks (``(T, Y, X)`` or ``(T, Z, Y, X)``) with an
optional ``L B E P`` track table (without one, tracks are read from the labels, with no
divisions). The measures are :func:`samscope.evaluation.ctc.tra_score` and
:func:`~samscope.evaluation.ctc.ctc_scores` (cross-checked against ``py-ctcmetrics``). SEG uses the
``SEG/man_seg*.tif`` frames of a CTC ground truth when there are any (the challenge's SEG
reference, often a few frames), else the ground-truth label series itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samscope.errors import InputError

__all__ = ["TRACKING_GROUPS", "SeriesScores", "evaluate_series", "is_ctc_folder", "read_tracked"]

TRACKING_GROUPS = ("tra", "det", "seg")


@dataclass(frozen=True)
class SeriesScores:
    """Measures of one tracked series (NaN where not requested)."""

    tra: float
    det: float
    seg: float
    n_frames: int
    n_gt_tracks: int
    n_pred_tracks: int
    n_gt_divisions: int
    n_pred_divisions: int
    seg_reference: str
    tra_counts: dict

    def row(self) -> dict:
        """A flat row for tables (counts as ``aogm_*`` columns)."""
        out = {k: getattr(self, k) for k in ("tra", "det", "seg", "n_frames", "n_gt_tracks",
                                              "n_pred_tracks", "n_gt_divisions", "n_pred_divisions")}  # fmt: skip
        out.update({f"aogm_{k}": v for k, v in self.tra_counts.items()})
        return out


def is_ctc_folder(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a CTC result, ``TRA`` or ``XX_GT`` folder."""
    p = Path(path)
    return p.is_dir() and any(
        (p / name).exists() for name in ("res_track.txt", "man_track.txt", "TRA")
    )


def read_tracked(path: str | os.PathLike, *, tracks: str | os.PathLike | None = None):
    """A :class:`~samscope.multidim.TrackedSeries` from a CTC folder or a label-series file.

    Parameters
    ----------
    path : path
        CTC folder, or a label-series file / folder of label frames (ids are tracks).
    tracks : path, optional
        ``L B E P`` table for a label series.
    """
    from samscope.io.tracks import read_ctc, read_track_table
    from samscope.multidim.lineage import Lineage, TrackedSeries
    from samscope.pipeline.tracking import read_series

    path = Path(path)
    if is_ctc_folder(path):
        if tracks is not None:
            raise InputError(f"'{path}' is a CTC folder with its own track table; drop the tracks file")
        return read_ctc(path)
    labels, _ = read_series(path, labels=True)
    lineage = read_track_table(tracks) if tracks is not None else Lineage.from_labels(labels)
    return TrackedSeries(labels, lineage)


def _seg_frames(gt_path: Path) -> dict[int, np.ndarray]:
    import tifffile

    seg = gt_path / "SEG"
    if not seg.is_dir():
        return {}
    out = {}
    for p in sorted(seg.iterdir()):
        m = re.fullmatch(r"man_seg(\d+)\.tiff?", p.name)
        if m:
            out[int(m.group(1))] = np.asarray(tifffile.imread(p))
    return out


def evaluate_series(
    prediction: str | os.PathLike,
    ground_truth: str | os.PathLike,
    *,
    groups: tuple[str, ...] = TRACKING_GROUPS,
    pred_tracks: str | os.PathLike | None = None,
    gt_tracks: str | os.PathLike | None = None,
) -> SeriesScores:
    """TRA, DET and SEG of a tracked series (module docstring).

    Raises
    ------
    InputError
        Series of different lengths or frame shapes, unreadable inputs, track tables that do
        not fit their labels.
    """
    from samscope.evaluation.ctc import ctc_scores, tra_score

    pred = read_tracked(prediction, tracks=pred_tracks)
    gt = read_tracked(ground_truth, tracks=gt_tracks)
    if pred.labels.shape != gt.labels.shape:
        raise InputError(
            f"the prediction has frames of shape {pred.labels.shape} but the ground truth "
            f"{gt.labels.shape} (frames × …); they must match"
        )
    nan = float("nan")
    tra = det = seg = nan
    counts: dict = {}
    if "tra" in groups:
        s = tra_score(gt.labels, pred.labels, gt_tracks=gt.lineage.table(),
                      pred_tracks=pred.lineage.table())  # fmt: skip
        tra = s.tra
        counts = {k: getattr(s, k) for k in ("ns", "fn", "fp", "ed", "ea", "ec")}
    if "det" in groups:
        det = ctc_scores(list(gt.labels), list(pred.labels)).det
    reference = "labels"
    if "seg" in groups:
        frames = _seg_frames(Path(ground_truth)) if Path(ground_truth).is_dir() else {}
        if frames:
            keys = sorted(t for t in frames if t < len(pred.labels))
            if any(frames[t].shape != pred.labels[t].shape for t in keys):
                raise InputError("the SEG reference frames do not have the frames' shape")
            seg = ctc_scores([frames[t] for t in keys], [pred.labels[t] for t in keys]).seg
            reference = f"SEG ({len(keys)} frames)"
        else:
            seg = ctc_scores(list(gt.labels), list(pred.labels)).seg
    return SeriesScores(
        tra, det, seg, int(len(gt.labels)), len(gt.lineage), len(pred.lineage),
        gt.lineage.n_divisions, pred.lineage.n_divisions, reference, counts,
    )  # fmt: skip
