"""Concept mode: every object of a text phrase ("nucleus"), with SAM3's detector.

``segment(image, model, mode="concept", config=ConceptConfig(text="nucleus"))`` (CLI:
``samscope segment IMG --model sam3 --mode concept -s text=nucleus``) returns
:class:`~samscope.instance.instances.Instances` like every other mode: SAM3's queries whose score
(query probability × the concept's presence probability) passes ``score_threshold``, each mask
(probability above ``mask_threshold``, resized to the image) kept when it has ``min_size``
pixels; overlapping masks are kept as they are (``masks``) and the label image shows the
higher-scoring object where they overlap. Needs a model with concept prompts
(:class:`samscope.models.sam3.ConceptModel`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.instance.instances import CroppedMasks, Instances

__all__ = ["ConceptConfig", "segment_concept"]


@dataclass(frozen=True)
class ConceptConfig:
    """Thresholds of the concept mode.

    Attributes
    ----------
    text : str
        The concept, a short noun phrase ("nucleus", "mitochondrion").
    score_threshold : float
        Keep queries whose score passes this (SAM3's post-processing default in transformers is
        0.3, Meta's demo uses 0.5).
    mask_threshold : float
        Mask probability above which a pixel belongs to the object.
    min_size : int
        Drop objects with fewer pixels (at the image's resolution).
    use_presence : bool
        Multiply each query's score by the concept's presence probability (as SAM3 does).
    """

    text: str = ""
    score_threshold: float = 0.5
    mask_threshold: float = 0.5
    min_size: int = 0
    use_presence: bool = True

    def __post_init__(self) -> None:
        for name in ("score_threshold", "mask_threshold"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise InputError(f"{name} must be in [0, 1], got {v}")
        if self.min_size < 0:
            raise InputError(f"min_size must be >= 0, got {self.min_size}")


def _concept_model(model: Any) -> Any:
    got = getattr(model, "concept_model", None)
    if got is None:
        name = getattr(getattr(model, "card", None), "name", None) or type(model).__name__
        raise InputError(
            f"model {name!r} has no concept (text) prompts, so it cannot run mode 'concept'; "
            "SAM3 can (samscope models import FOLDER sam3, then --model sam3)"
        )
    return got


def segment_concept(
    model: Any, image: Any, text: str | None = None, *, config: ConceptConfig | None = None
) -> Instances:
    """Every object of the concept ``text`` in a 2-D image.

    Parameters
    ----------
    model : ConceptModel
        A model with concept prompts (SAM3).
    image : ndarray
        ``(y, x)`` or RGB ``(y, x, 3)``.
    text : str, optional
        The concept; overrides ``config.text``.
    config : ConceptConfig, optional

    Returns
    -------
    Instances
        ``mode="concept"``, ``masks`` (may overlap) and ``scores``; empty for a constant image or
        when nothing passes the thresholds.

    Raises
    ------
    InputError
        No text, a model without concept prompts, an image that is not 2-D.
    """
    cfg = config or ConceptConfig()
    text = cfg.text if text is None else text
    if not isinstance(text, str) or not text.strip():
        raise InputError("the concept mode needs a text: the objects to find, e.g. -s text=nucleus")
    concept = _concept_model(model)
    arr = np.asarray(getattr(image, "data", image))
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (3, 4))):
        raise InputError(f"the concept mode takes one 2-D image (y, x) or RGB (y, x, 3); got shape {arr.shape}")
    shape = arr.shape[:2]
    if arr.size == 0 or not np.isfinite(arr).all() or arr.min() == arr.max():
        return Instances.empty(shape, mode="concept", overlapping=True)
    det = concept.detect(arr, text, use_presence=cfg.use_presence)
    return instances_from_detections(det, shape, cfg)


def instances_from_detections(det: Any, shape: tuple[int, int], config: ConceptConfig) -> Instances:
    """Threshold SAM3's queries and masks into :class:`Instances` of an image of ``shape``.

    Pure numpy apart from the mask resize (scikit-image).
    """
    from skimage.transform import resize

    keep = np.flatnonzero(np.asarray(det.scores) > config.score_threshold)
    keep = keep[np.argsort(-np.asarray(det.scores)[keep], kind="stable")]
    masks, scores = [], []
    for q in keep:
        prob = 1.0 / (1.0 + np.exp(-np.asarray(det.mask_logits[q], np.float32)))
        m = resize(prob, shape, order=1, anti_aliasing=False) > config.mask_threshold
        if int(m.sum()) < max(config.min_size, 1):
            continue
        masks.append(m)
        scores.append(float(det.scores[q]))
    if not masks:
        return Instances.empty(shape, mode="concept", overlapping=True)
    return Instances.from_masks(CroppedMasks.from_dense(np.stack(masks)), np.asarray(scores, np.float32),
                                mode="concept")  # fmt: skip
