"""The interactive-segmentation protocol (µSAM: Archit et al., Nature Methods 2025, Methods), independent of the model.

Prompts are derived from the ground truth, saved once, and replayed for every model:

* **First prompt** (``mode="point"``): one positive point at the object's *interior centre*,
  the pixel farthest from the object's boundary (maximum of the Euclidean distance transform;
  the image border counts as boundary; ties go to the lowest flat index, i.e. the first pixel in
  raster order). µSAM uses an "eccentricity centre"; the distance-transform maximum is the
  deterministic rule that is always inside the object, also for rings and crescents.
  (``mode="box"``): the object's bounding box ``(y0, x0, y1, x1)``, ends exclusive.
* **Corrections**, ``n_iterations`` times: one positive point in the *false-negative* region
  (ground truth not predicted) and one negative point in the *false-positive* region (predicted,
  not ground truth), each at the interior centre of the region's largest face-connected
  component (ties: the component whose first pixel comes first in raster order); with
  ``correction="largest"`` only the point in the larger of the two components (the next click in
  the largest error region, as in click-based evaluations since Xu et al. 2016). A region that
  is empty contributes no point; when both are empty the mask is kept and the model not called.
  Points accumulate; in box mode the box stays. The previous low-resolution logits are fed back
  only with ``feed_logits=True`` (µSAM's evaluation default is without).
* **Scores**: after each iteration the masks of all objects of an image form a stack of
  (possibly overlapping) predictions, matched one-to-one to the ground truth: mSA, SA50, SA75
  per iteration, plus each object's IoU with its own ground truth.

The model is any :data:`Segmenter`: a callable from a :class:`PromptSpec` to a mask (or a
:class:`SegmenterOutput` with logits). :func:`model_segmenter` adapts a samscope model.

Because the corrective points depend on each model's masks, the prompts file stores the first
prompts and the rules; :func:`save_run` stores the points every model actually received.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from samscope.errors import InputError
from samscope.evaluation.interactive_prompts import (
    CORRECTIONS,
    MODES,
    RULES,
    ImagePrompts,
    PromptSpec,
    Segmenter,
    SegmenterOutput,
    check_ground_truth,
    check_prompts,
    corrective_points,
    derive_prompts,
    interior_point,
    load_prompts,
    prompts_digest,
    save_prompts,
)
from samscope.evaluation.metrics import MaskStack, SegmentationAccuracy, segmentation_accuracy
from samscope.evaluation.report import write_json
from samscope.prompt_corrections import MERGES, MULTIMASK, continues, progressive_merge

__all__ = [
    "ImagePrompts",
    "InteractiveResult",
    "PromptSpec",
    "Segmenter",
    "SegmenterOutput",
    "corrective_points",
    "derive_prompts",
    "interior_point",
    "load_prompts",
    "model_segmenter",
    "progressive_merge",
    "prompts_digest",
    "run_interactive",
    "save_prompts",
    "save_run",
    "summarise",
]

RUN_FORMAT = "samscope-interactive-run"


@dataclass(frozen=True, eq=False)
class InteractiveResult:
    """The protocol's outcome on one image.

    Attributes
    ----------
    name : str
        Image name.
    mode : str
        ``"point"`` or ``"box"``.
    ids : numpy.ndarray, shape (n,)
        Ground-truth objects, in prompt order.
    accuracy : tuple of SegmentationAccuracy, length k + 1
        Whole-image matching after the first prompt (index 0) and after each correction.
    iou : numpy.ndarray, shape (n, k + 1), float64
        Each object's mask against its own ground truth, per iteration.
    points : tuple of numpy.ndarray, length n, each (m, 2)
        Every point each object received, in order.
    point_labels : tuple of numpy.ndarray, length n, each (m,)
        1 positive, 0 negative.
    point_iteration : tuple of numpy.ndarray, length n, each (m,)
        Iteration at which each point was added (0 = first prompt).
    boxes : numpy.ndarray, shape (n, 4) or (0, 4)
        The boxes used (box mode).
    model_calls : int
        Segmenter calls made.
    """

    name: str
    mode: str
    ids: np.ndarray
    accuracy: tuple[SegmentationAccuracy, ...]
    iou: np.ndarray
    points: tuple[np.ndarray, ...]
    point_labels: tuple[np.ndarray, ...]
    point_iteration: tuple[np.ndarray, ...]
    boxes: np.ndarray
    model_calls: int

    @property
    def msa(self) -> np.ndarray:
        """mSA per iteration, shape (k + 1,)."""
        return np.array([a.msa for a in self.accuracy])

    @property
    def sa50(self) -> np.ndarray:
        """SA at IoU 0.5 per iteration, shape (k + 1,)."""
        return np.array([a.sa50 for a in self.accuracy])

    @property
    def sa75(self) -> np.ndarray:
        """SA at IoU 0.75 per iteration, shape (k + 1,)."""
        return np.array([a.sa75 for a in self.accuracy])


def _call(segmenter: Segmenter, spec: PromptSpec, shape: tuple[int, ...]) -> SegmenterOutput:
    out = segmenter(spec)
    if not isinstance(out, SegmenterOutput):
        out = SegmenterOutput(np.asarray(out))
    mask = np.asarray(out.mask)
    if mask.shape != shape:
        raise InputError(f"the segmenter returned a mask of shape {mask.shape}, expected {shape}")
    return SegmenterOutput(mask.astype(bool, copy=False), out.logits)


def run_interactive(
    segmenter: Segmenter,
    labels: np.ndarray,
    prompts: ImagePrompts | None = None,
    *,
    mode: str = "point",
    n_iterations: int = 8,
    feed_logits: bool = False,
    correction: str = "both",
    progress: bool = False,
) -> InteractiveResult:
    """Run the interactive protocol on one image.

    Parameters
    ----------
    segmenter : Segmenter
        The model: :class:`PromptSpec` → mask of shape ``labels.shape`` (or
        :class:`SegmenterOutput`).
    labels : numpy.ndarray, shape (y, x), integer
        Ground-truth instance labels.
    prompts : ImagePrompts, optional
        First prompts (e.g. from :func:`load_prompts`); derived from ``labels`` if omitted.
        They must belong to these labels (same shape, ids, points on their objects).
    mode : {"point", "box"}
        First prompt: the interior point or the bounding box.
    n_iterations : int
        Correction rounds after the first prompt (µSAM: 8).
    feed_logits : bool
        Pass each object's previous logits back to the segmenter.
    correction : {"both", "largest"}
        Points per correction: one in each error region (µSAM), or one in the larger region
        (:func:`~samscope.evaluation.interactive_prompts.corrective_points`).
    progress : bool
        Show a tqdm progress bar over the objects.

    Returns
    -------
    InteractiveResult
        Scores for iterations ``0..n_iterations`` and every point used.
    """
    labels = check_ground_truth(labels)
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    if n_iterations < 0:
        raise InputError("n_iterations must be >= 0")
    if correction not in CORRECTIONS:
        raise InputError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    if prompts is None:
        prompts = derive_prompts(labels)
    check_prompts(labels, prompts)
    shape = tuple(labels.shape)
    n = prompts.ids.size
    masks: list[list[np.ndarray]] = [[] for _ in range(n_iterations + 1)]
    iou = np.zeros((n, n_iterations + 1))
    all_points, all_labels, all_iters = [], [], []
    calls = 0
    objects: Any = prompts.ids
    if progress:
        from tqdm.auto import tqdm

        objects = tqdm(prompts.ids, desc=prompts.name or "objects", unit="object", leave=False)
    for k, obj in enumerate(objects):
        box = prompts.boxes[k].astype(np.float64) if mode == "box" else None
        sl = tuple(
            slice(int(a), int(b))
            for a, b in zip(prompts.boxes[k][:2], prompts.boxes[k][2:], strict=True)
        )
        gt_crop = labels[sl] == obj
        gt_size = int(np.count_nonzero(gt_crop))
        if mode == "point":
            pts, lab, its = [prompts.points[k]], [1], [0]
        else:
            pts, lab, its = [], [], []
        logits = None
        mask = None
        for it in range(n_iterations + 1):
            if it > 0:
                pos, neg = _corrections(labels, obj, mask, sl, correction)
                if pos is None and neg is None:
                    masks[it].append(masks[it - 1][-1])
                    iou[k, it] = iou[k, it - 1]
                    continue
                for point, value in ((pos, 1), (neg, 0)):
                    if point is not None:
                        pts.append(point)
                        lab.append(value)
                        its.append(it)
            spec = PromptSpec(
                np.array(pts, dtype=np.float64).reshape(-1, 2),
                np.array(lab, dtype=np.int64),
                box,
                logits if feed_logits else None,
            )
            out = _call(segmenter, spec, shape)
            calls += 1
            mask, logits = out.mask, out.logits
            flat = np.flatnonzero(mask)
            masks[it].append(flat)
            inter = int(np.count_nonzero(mask[sl] & gt_crop))
            iou[k, it] = inter / (gt_size + flat.size - inter)
        all_points.append(np.array(pts, dtype=np.float64).reshape(-1, 2))
        all_labels.append(np.array(lab, dtype=np.int64))
        all_iters.append(np.array(its, dtype=np.int64))
    accuracy = tuple(
        segmentation_accuracy(labels, MaskStack.from_flat_indices(m, shape, ids=prompts.ids))
        for m in masks
    )
    return InteractiveResult(
        prompts.name,
        mode,
        prompts.ids.copy(),
        accuracy,
        iou,
        tuple(all_points),
        tuple(all_labels),
        tuple(all_iters),
        prompts.boxes.copy() if mode == "box" else np.zeros((0, 4), np.int64),
        calls,
    )


def _corrections(labels, obj, mask, gt_box, rule="both"):
    """Corrective points on the crop that holds both the object and the current mask."""
    if mask.any():
        (mbox,) = ndi.find_objects(mask.astype(np.uint8))
        y0, x0 = min(gt_box[0].start, mbox[0].start), min(gt_box[1].start, mbox[1].start)
        y1, x1 = max(gt_box[0].stop, mbox[0].stop), max(gt_box[1].stop, mbox[1].stop)
    else:
        (y0, y1), (x0, x1) = (gt_box[0].start, gt_box[0].stop), (gt_box[1].start, gt_box[1].stop)
    pos, neg = corrective_points(labels[y0:y1, x0:x1] == obj, mask[y0:y1, x0:x1], rule=rule)
    shift = np.array([y0, x0], dtype=np.float64)
    return (None if pos is None else pos + shift), (None if neg is None else neg + shift)


def summarise(results: Sequence[InteractiveResult]) -> list[dict[str, Any]]:
    """One row per iteration: means over images of mSA, SA50, SA75 and the objects' IoU.

    Images are averaged with equal weight, as µSAM reports them.
    """
    if not results:
        return []
    k = len(results[0].accuracy)
    rows = []
    for it in range(k):
        rows.append(
            {
                "iteration": it,
                "msa": float(np.mean([r.msa[it] for r in results])),
                "sa50": float(np.mean([r.sa50[it] for r in results])),
                "sa75": float(np.mean([r.sa75[it] for r in results])),
                "mean_object_iou": float(
                    np.mean([r.iou[:, it].mean() if r.iou.size else 1.0 for r in results])
                ),
                "n_objects": int(sum(r.ids.size for r in results)),
            }
        )
    return rows


def save_run(
    path: str | os.PathLike,
    results: Sequence[InteractiveResult],
    *,
    model: str,
    prompts_sha256: str = "",
    feed_logits: bool = False,
    correction: str = "both",
) -> Path:
    """Store what every object received and scored, for auditing (JSON, atomic)."""
    doc = {
        "format": RUN_FORMAT,
        "version": 1,
        "model": model,
        "mode": results[0].mode if results else None,
        "n_iterations": len(results[0].accuracy) - 1 if results else 0,
        "feed_logits": feed_logits,
        "correction": correction,
        "prompts_sha256": prompts_sha256,
        "rules": RULES,
        "summary": summarise(results),
        "images": [
            {
                "name": r.name,
                "msa": r.msa,
                "sa50": r.sa50,
                "objects": [
                    {
                        "id": int(i),
                        "box": r.boxes[k].tolist() if r.boxes.size else None,
                        "points": r.points[k],
                        "labels": r.point_labels[k],
                        "iteration": r.point_iteration[k],
                        "iou": r.iou[k],
                    }
                    for k, i in enumerate(r.ids)
                ],
            }
            for r in results
        ],
    }
    return write_json(path, doc)


# --------------------------------------------------------------------------------------------
# the adapter to samscope models
# --------------------------------------------------------------------------------------------


def model_segmenter(
    model: Any, embeddings: Any, *, multimask: str = "never", merge: str = "replace",
    radius: float | None = None,
) -> Segmenter:
    """A :data:`Segmenter` over a loaded samscope model and one image's embeddings.

    Parameters
    ----------
    model : samscope.models.sam.SamscopeModel
        From :func:`samscope.models.registry.load_model`.
    embeddings : samscope.embeddings.ImageEmbeddings
        From :func:`samscope.embeddings.compute_embeddings` for the image being evaluated.
    multimask : {"never", "single-point", "always"}
        When to decode SAM's three candidates and keep the one with the highest predicted IoU
        (the model's own choice, no ground truth): never (single-mask output, as µSAM's
        evaluation), for a prompt of one point only (SAM's advice for ambiguous prompts), or on
        every call.
    merge : {"replace", "progressive", "local", "local-first"}
        What a correction does to the object's mask (the rule of
        :func:`samscope.prompt_corrections.refine`, which the annotators use with ``local``;
        ``replace`` by default here, as µSAM's protocol): ``replace`` it with the decoder's new mask,
        or (``progressive``, FocalClick's progressive merge: Chen et al., CVPR 2022) change it
        only where the user clicked: the connected part of the pixels the new mask adds that
        holds a new positive click is added, the part it removes that holds a new negative click
        is removed, and the rest of the previous mask is kept (the new mask whole when no click
        falls in what changed); ``local`` (FocalClick's local refinement): take the new mask
        only within ``radius`` working diameters of the new clicks and keep the previous mask
        elsewhere (:func:`samscope.prompt_inputs.local_update`; ``replace`` for a model without
        a working diameter); ``local-first``: local at the first correction, replace later.
    radius : float, optional
        Of the local update, in working diameters (default
        :data:`samscope.prompt_inputs.LOCAL_RADIUS`).

    Returns
    -------
    Segmenter
        Calls :func:`samscope.prompting.segment_from_prompts` and returns the mask with its
        low-resolution logits.
    """
    if multimask not in MULTIMASK:
        raise InputError(f"multimask must be one of {MULTIMASK}, got {multimask!r}")
    if merge not in MERGES:
        raise InputError(f"merge must be one of {MERGES}, got {merge!r}")
    from samscope.prompt_corrections import refine

    last: dict[str, Any] = {}  # the previous call's state: the object being corrected

    def segment(spec: PromptSpec) -> SegmenterOutput:
        previous = last.get("state")
        fed = spec.mask_logits is not None and previous is not None and spec.mask_logits is last.get("logits")
        state = refine(
            model, embeddings, spec.points, spec.labels, spec.box, previous,
            merge=merge, multimask=multimask, feed_logits=fed, radius=radius,
        )
        logits = state.logits
        last.update(state=state, logits=logits)
        return SegmenterOutput(state.mask, logits)

    return segment


def _wants_multimask(rule: str, spec: PromptSpec) -> bool:
    """Whether :func:`~samscope.prompt_corrections.refine` decodes three candidates for ``spec``."""
    if rule == "always":
        return True
    return rule == "single-point" and spec.box is None and spec.points.shape[0] == 1


def _continues(before: PromptSpec, now: PromptSpec) -> bool:
    """Whether ``now`` is a correction of ``before`` (same box, its points followed by more)."""
    return continues(before, now.points, now.labels, now.box)
