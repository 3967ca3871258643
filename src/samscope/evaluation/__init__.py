"""Evaluation: instance-segmentation metrics, CTC measures, the interactive protocol, grid search.

The metrics are pure numpy/scipy functions over label images or :class:`MaskStack` s of
overlapping masks (ground truth first). Nothing heavy is imported here: plotting loads
matplotlib on use, and the model adapter loads samscope's prompting on use.
"""

from __future__ import annotations

from samscope.evaluation.ctc import (
    CTCScores,
    TrackingScores,
    ctc_scores,
    tra_score,
)
from samscope.evaluation.interactive import (
    ImagePrompts,
    InteractiveResult,
    PromptSpec,
    Segmenter,
    SegmenterOutput,
    derive_prompts,
    load_prompts,
    model_segmenter,
    run_interactive,
    save_prompts,
)
from samscope.evaluation.metrics import (
    DEFAULT_THRESHOLDS,
    DiceEvaluation,
    MaskStack,
    Matching,
    SegmentationAccuracy,
    dice_protocol,
    match_instances,
    mean_segmentation_accuracy,
    segmentation_accuracy,
)
from samscope.evaluation.search import SearchResult, grid_search

__all__ = [
    "DEFAULT_THRESHOLDS",
    "CTCScores",
    "DiceEvaluation",
    "ImagePrompts",
    "InteractiveResult",
    "MaskStack",
    "Matching",
    "PromptSpec",
    "SearchResult",
    "SegmentationAccuracy",
    "Segmenter",
    "SegmenterOutput",
    "TrackingScores",
    "ctc_scores",
    "derive_prompts",
    "dice_protocol",
    "grid_search",
    "load_prompts",
    "match_instances",
    "mean_segmentation_accuracy",
    "model_segmenter",
    "run_interactive",
    "save_prompts",
    "segmentation_accuracy",
    "tra_score",
]
