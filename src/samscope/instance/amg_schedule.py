"""AMG's foreground-aware schedule: decode the points on foreground first, skip covered ones.

A denser grid of which only the points on foreground are decoded, in order of decreasing
foreground evidence, in small batches; before each batch, points inside a mask already accepted
are skipped (see :mod:`samscope.instance.amg`, ``AMGConfig.schedule = "foreground"``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from samscope.errors import InputError
from samscope.instance.amg_candidates import evaluate_candidate, unpack_logits

__all__ = [
    "EVIDENCE_THRESHOLD",
    "EVIDENCE_WINDOW",
    "decode_uncovered",
    "foreground_evidence",
    "foreground_schedule",
]


#: Window of the maximum filter on the foreground evidence, as a fraction of the point spacing:
#: a point near a bright object (on its rim) counts as foreground.
EVIDENCE_WINDOW = 0.25
#: Automatic cut-off on the smoothed, normalised image (a ``skimage.filters.threshold_*`` name).
#: With the oracle decoder of ``benchmarks/bench_amg.py`` on HeLa frames 14 and 17 (64² candidate
#: points): "otsu" decodes ≈250 prompts (mSA 0.82–0.85; the 32² grid: 1024 prompts, 0.69–0.75),
#: "li" ≈370 (0.87–0.89), "triangle" ≈620 (0.97); on the simulated nuclei all reach 1.0.
EVIDENCE_THRESHOLD = "otsu"


def foreground_evidence(model, emb, transform, pts, region, config, spacing: float):
    """Foreground evidence at each point ``(y, x)`` and the cut-off above which it is foreground."""
    from scipy import ndimage as ndi

    source = config.foreground
    if source == "auto":
        source = "head" if model.instance_head is not None else "image"
    h, w = transform.original_shape
    if source == "head":
        if model.instance_head is None:
            raise InputError(f"model {model.name!r} has no instance head; use foreground='image'")
        with torch.inference_mode():
            fg = model.instance_head(emb.to(model.device))[0, 0].float().cpu().numpy()
        scale = transform.target_size / max(h, w)
        size = max(1, int(EVIDENCE_WINDOW * spacing * scale)) | 1
        fg = ndi.maximum_filter(fg, size=size)
        xy = transform.points_to_input(pts)
        xi = np.clip(xy[:, 0].astype(np.int64), 0, fg.shape[1] - 1)
        yi = np.clip(xy[:, 1].astype(np.int64), 0, fg.shape[0] - 1)
        cut = config.foreground_thresh
        return fg[yi, xi], model.card.automatic.foreground_thresh if cut is None else cut
    if region is None:
        raise InputError("the foreground schedule without an instance head needs the image: pass image=")
    from skimage import filters

    from samscope.image import normalize_percentile

    grey = np.asarray(region, dtype=np.float32)
    if grey.ndim == 3:
        grey = grey.mean(axis=-1)
    smooth = ndi.gaussian_filter(normalize_percentile(grey), max(1.0, spacing / 8))
    if config.foreground_thresh is not None:
        cut = config.foreground_thresh
    elif smooth.max() > smooth.min():
        cut = float(getattr(filters, f"threshold_{EVIDENCE_THRESHOLD}")(smooth))
    else:
        cut = np.inf  # constant: no foreground
    evidence = ndi.maximum_filter(smooth, size=max(1, int(EVIDENCE_WINDOW * spacing)) | 1)
    iy = np.clip(pts[:, 0].astype(np.int64), 0, h - 1)
    ix = np.clip(pts[:, 1].astype(np.int64), 0, w - 1)
    return evidence[iy, ix], cut


def foreground_schedule(
    model, emb, transform, pts, region, cands, config, *, crop, origin, valid, thresholds, decode,
    min_iou=None,
) -> int:
    """Decode foreground points by decreasing evidence, skipping covered ones; returns prompts decoded.

    ``decode(points_xy)`` returns ``(logits of the kept rows, iou of all, rows)``
    (:func:`samscope.instance.amg._decode_batch`); ``min_iou`` is passed to ``cands.add``.
    """
    h, w = transform.original_shape
    spacing = min(h, w) / math.sqrt(len(pts)) if len(pts) else 1.0
    evidence, cut = foreground_evidence(model, emb, transform, pts, region, config, spacing)
    order = np.argsort(-evidence, kind="stable")
    order = order[evidence[order] > cut]
    return decode_uncovered(
        model, transform, pts, order, cands, batch_size=config.foreground_batch, crop=crop,
        origin=origin, valid=valid, thresholds=thresholds, decode=decode, min_iou=min_iou,
    )  # fmt: skip


def decode_uncovered(
    model, transform, pts, order, cands, *, batch_size, crop, origin, valid, thresholds, decode,
    min_iou=None,
) -> int:
    """Decode ``pts[order]`` in batches, skipping points inside a mask already accepted.

    A mask is accepted when it is a decoded point's best candidate with predicted IoU above
    ``thresholds[0]`` and stability at least ``thresholds[1]``; before each batch, the next
    points that fall inside an accepted mask are skipped (not decoded). Returns prompts decoded.
    """
    h, w = transform.original_shape
    pix = np.stack(
        [np.clip(pts[:, 0].astype(np.int64), 0, h - 1), np.clip(pts[:, 1].astype(np.int64), 0, w - 1)],
        axis=1,
    )
    covered = np.zeros((h, w), bool)
    ay, ax = transform.interpolation_matrices(model.arch.low_res_size)
    iou_t, stab_t = thresholds
    decoded, pos = 0, 0
    while pos < len(order):
        batch: list[int] = []
        while pos < len(order) and len(batch) < batch_size:
            i = int(order[pos])
            pos += 1
            if not covered[pix[i, 0], pix[i, 1]]:
                batch.append(i)
        if not batch:
            break
        points = pts[batch]
        logits, iou, rows = decode(transform.points_to_input(points))
        decoded += len(batch)
        k = iou.shape[1]
        sel = torch.as_tensor(np.asarray(rows, np.int64))
        keep = cands.add(logits, iou[sel], points[rows] + origin, crop, valid, min_iou=min_iou)
        if len(keep) == 0:
            continue
        first = len(cands.levels) - len(keep)
        ious, boxes = cands.iou[-1], cands.low_boxes[-1]
        best: dict[int, tuple] = {}  # prompt -> (IoU, mask, box) of its best accepted candidate
        for j in np.flatnonzero(ious > iou_t):
            prompt = int(keep[j]) // k
            if prompt in best and best[prompt][0] >= ious[j]:
                continue
            r0, c0, r1, c1 = (int(v) for v in boxes[j])
            node_logits = unpack_logits(
                cands.levels[first + j], cands.band[first + j], cands.values[first + j],
                (r1 - r0, c1 - c0), cands.offset,
            )  # fmt: skip
            box, m, stab = evaluate_candidate(node_logits, (r0, c0), ay, ax, cands.offset)
            if m.size and stab >= stab_t:
                best[prompt] = (float(ious[j]), m, box)
        for _, m, (y0, x0, y1, x1) in best.values():
            covered[y0:y1, x0:x1] |= m
    return decoded
