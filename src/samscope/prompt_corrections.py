"""Corrective clicks: one object's mask refined click by click, the rule every front-end shares.

A user prompts an object (a point or a box), looks at the mask and clicks where it is wrong. Each
correction is decoded from all the object's prompts so far plus the previous low-resolution
logits (SAM's iterative prompting), and then merged with the previous mask:

``local`` (the default)
    the new mask is taken only within :data:`~samscope.prompt_inputs.LOCAL_RADIUS` working
    diameters of the new clicks, the previous mask is kept elsewhere (FocalClick's local
    refinement, Chen et al., CVPR 2022: :func:`samscope.prompt_inputs.local_update`). The decoder
    re-predicts the whole object from the accumulated prompts, and a click placed a pixel or two
    from the boundary of a good mask also moves the boundary far from the click; on the
    generalist's tuning planes this rule made the first correction raise mSA instead of lowering
    it (eval/clicks_tune_*).
``replace``
    the decoder's new mask as it is (SAM, µSAM).
``progressive``
    only the connected parts of what changed that hold a new click (FocalClick's progressive
    merge: :func:`progressive_merge`).
``local-first``
    ``local`` at an object's first correction, ``replace`` at later ones.

:func:`refine` is the one data path: the napari annotator, ``samscope prompt --sequential`` and
the interactive benchmark (:func:`samscope.evaluation.interactive.model_segmenter`) call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage as ndi

from samscope.errors import InputError

__all__ = [
    "DEFAULT_MERGE",
    "MERGES",
    "MULTIMASK",
    "ObjectState",
    "continues",
    "progressive_merge",
    "refine",
    "segment_clicks",
]

#: What a correction does to the mask (see the module docstring).
MERGES = ("replace", "progressive", "local", "local-first")
#: The default of :func:`refine` (chosen on the tuning split: eval/clicks_tune_local vs _replace).
DEFAULT_MERGE = "local"
#: When the decoder's three candidates are decoded and the best predicted IoU kept.
MULTIMASK = ("never", "single-point", "always")


@dataclass(frozen=True, eq=False)
class ObjectState:
    """One object's prompts and mask after a (corrective) click.

    Attributes
    ----------
    points : numpy.ndarray, (n, 2) float64
        Every click so far ``(y, x)``, in order.
    labels : numpy.ndarray, (n,) int64
        1 positive, 0 negative.
    box : numpy.ndarray, (4,) or None
        The box prompt, if any.
    mask : numpy.ndarray of bool, (H, W)
        The object's mask after the merge (what the user sees).
    score : float
        The decoder's predicted IoU of its mask.
    result : samscope.prompting.PromptResult
        The decoder's output with the chosen candidate only (its logits are fed back at the
        next correction).
    corrections : int
        Corrections made since the object's first prompt.
    """

    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None
    mask: np.ndarray
    score: float
    result: Any
    corrections: int = 0

    @property
    def logits(self) -> np.ndarray:
        """The chosen candidate's low-resolution logits, (L, L)."""
        return np.asarray(self.result.logits[0])


def continues(previous: ObjectState | None, points: np.ndarray, labels: np.ndarray,
              box: np.ndarray | None) -> bool:
    """Whether the prompts are a correction of ``previous``: same box, its clicks followed by more."""
    if previous is None:
        return False
    k = previous.points.shape[0]
    same_box = (previous.box is None and box is None) or (
        previous.box is not None and box is not None
        and np.array_equal(np.asarray(previous.box, np.float64), np.asarray(box, np.float64))
    )
    return (
        same_box
        and points.shape[0] > k
        and np.array_equal(points[:k], previous.points)
        and np.array_equal(labels[:k], previous.labels)
    )


def refine(
    model: Any,
    embeddings: Any,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    box: np.ndarray | None = None,
    previous: ObjectState | None = None,
    *,
    merge: str = DEFAULT_MERGE,
    multimask: str = "single-point",
    feed_logits: bool = True,
    radius: float | None = None,
    plane: int = 0,
) -> ObjectState:
    """Segment one object from its prompts, as a correction of ``previous`` when they extend it.

    Parameters
    ----------
    model : samscope.models.sam.SamscopeModel
    embeddings : samscope.embeddings.ImageEmbeddings
        Of the image (any scale or tiling :func:`samscope.prompting.segment_from_prompts` takes).
    points : numpy.ndarray, (n, 2), optional
        All the object's clicks ``(y, x)`` so far, in order; ``labels`` 1 positive (default), 0
        negative.
    box : numpy.ndarray, (4,), optional
        ``(y0, x0, y1, x1)``, ends exclusive.
    previous : ObjectState, optional
        The state the last call returned. When ``points`` are its clicks followed by new ones
        (same box), this call is a correction: the previous logits are fed to the decoder (with
        ``feed_logits``) and the new mask merged by ``merge``; otherwise the object is decoded
        afresh (a removed click, another box).
    merge : {"local", "replace", "progressive", "local-first"}
        What a correction does to the mask (module docstring).
    multimask : {"single-point", "never", "always"}
        When to decode three candidates and keep the one with the best predicted IoU: for a
        lone point (SAM's advice for an ambiguous prompt), never, or on every call.
    feed_logits : bool
        Feed the previous logits back at a correction.
    radius : float, optional
        Of the local update, in working diameters (default
        :data:`~samscope.prompt_inputs.LOCAL_RADIUS`).
    plane : int
        Slice or frame of a stack.

    Returns
    -------
    ObjectState

    Raises
    ------
    InputError
        An unknown ``merge`` or ``multimask``, and whatever ``segment_from_prompts`` rejects.
    """
    if merge not in MERGES:
        raise InputError(f"merge must be one of {MERGES}, got {merge!r}")
    if multimask not in MULTIMASK:
        raise InputError(f"multimask must be one of {MULTIMASK}, got {multimask!r}")
    from samscope.prompting import segment_from_prompts

    pts = np.zeros((0, 2)) if points is None else np.asarray(points, np.float64).reshape(-1, 2)
    lab = (np.ones(len(pts), np.int64) if labels is None
           else np.asarray(labels, np.int64).reshape(-1))
    if lab.shape[0] != pts.shape[0]:
        raise InputError(f"{pts.shape[0]} point(s) but {lab.shape[0]} label(s)")
    bx = None if box is None else np.asarray(box, np.float64).reshape(4)
    correction = continues(previous, pts, lab, bx)
    extra = {}
    if correction and feed_logits:
        extra = {"mask_logits": previous.logits, "previous": previous.result}
    wants = multimask == "always" or (multimask == "single-point" and bx is None and len(pts) == 1)
    result = segment_from_prompts(
        model, embeddings, points=pts if len(pts) else None, labels=lab if len(pts) else None,
        box=bx, multimask=wants, plane=plane, **extra,
    )
    best = int(np.argmax(np.asarray(result.iou)))
    if len(result.iou) > 1:
        result = _select(result, best)
    mask = np.asarray(result.masks[0], bool)
    if correction and merge == "local-first":
        merge = "local" if previous.corrections == 0 else "replace"
    if correction and merge != "replace":
        new = slice(previous.points.shape[0], None)
        if merge == "progressive":
            mask = progressive_merge(previous.mask, mask, pts[new], lab[new])
        else:
            from samscope.prompt_inputs import LOCAL_RADIUS, local_radius, local_update

            r = local_radius(model, embeddings, LOCAL_RADIUS if radius is None else radius)
            if r is not None:
                mask = local_update(previous.mask, mask, pts[new], r)
    done = previous.corrections + 1 if correction else 0
    return ObjectState(pts, lab, bx, mask, float(np.asarray(result.iou)[0]), result, done)


def segment_clicks(
    model: Any,
    embeddings: Any,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    box: np.ndarray | None = None,
    **kwargs: Any,
) -> ObjectState:
    """Replay a sequence of clicks on one object: the first prompts, each later one corrects.

    The first prompt is the box (with no point) or the first point (with the box if given);
    every later click is one :func:`refine` correction, as if a user had clicked them one by one
    in the annotator. ``kwargs`` go to :func:`refine`.
    """
    pts = np.zeros((0, 2)) if points is None else np.asarray(points, np.float64).reshape(-1, 2)
    lab = (np.ones(len(pts), np.int64) if labels is None
           else np.asarray(labels, np.int64).reshape(-1))
    if lab.shape[0] != pts.shape[0]:
        raise InputError(f"{pts.shape[0]} point(s) but {lab.shape[0]} label(s)")
    if len(pts) == 0 and box is None:
        raise InputError("give at least one prompt: points or a box")
    first = 0 if box is not None else 1
    state = refine(model, embeddings, pts[:first], lab[:first], box, **kwargs)
    for k in range(first + 1, len(pts) + 1):
        state = refine(model, embeddings, pts[:k], lab[:k], box, state, **kwargs)
    return state


def _select(result: Any, k: int) -> Any:
    """The prompt result with only candidate ``k`` (masks, scores, logits, window)."""
    from dataclasses import replace

    return replace(
        result,
        masks=result.masks[k : k + 1],
        iou=result.iou[k : k + 1],
        logits=result.logits[k : k + 1],
        windows=result.windows[k : k + 1],
    )


def progressive_merge(
    previous: np.ndarray, new: np.ndarray, points: np.ndarray, labels: np.ndarray
) -> np.ndarray:
    """The previous mask changed only where the new clicks are (FocalClick's progressive merge).

    Parameters
    ----------
    previous, new : numpy.ndarray of bool, (H, W)
        The object's mask before the clicks and the decoder's mask after them.
    points : numpy.ndarray, (n, 2)
        The new clicks ``(y, x)``; ``labels`` 1 positive, 0 negative.

    Returns
    -------
    numpy.ndarray of bool
        ``previous`` plus the 8-connected component of ``new & ~previous`` under each positive
        click, minus the component of ``previous & ~new`` under each negative click; ``new``
        when no click lies in what changed.

    Examples
    --------
    >>> prev = np.zeros((5, 9), bool); prev[1:4, 1:4] = True
    >>> new = np.zeros((5, 9), bool); new[1:4, 2:5] = True; new[1:4, 6:8] = True
    >>> int(progressive_merge(prev, new, np.array([[2, 4]]), np.array([1])).sum())  # col 4 added only
    12
    """
    previous, new = np.asarray(previous, bool), np.asarray(new, bool)
    out = previous.copy()
    touched = False
    eight = np.ones((3, 3), bool)
    for region, value in ((new & ~previous, 1), (previous & ~new, 0)):
        clicks = [tuple(int(round(c)) for c in pt) for pt, lab in zip(points, labels, strict=True) if lab == value]
        clicks = [c for c in clicks if 0 <= c[0] < region.shape[0] and 0 <= c[1] < region.shape[1] and region[c]]
        if not clicks:
            continue
        comp, _ = ndi.label(region, structure=eight)
        part = np.isin(comp, [comp[c] for c in clicks])
        out = out | part if value == 1 else out & ~part
        touched = True
    return out if touched else new
