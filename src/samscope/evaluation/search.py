"""Grid search over cheap post-processing settings on cached predictions (µSAM: Archit et al. 2025, Methods).

Automatic segmentation separates an expensive prediction (masks and scores from the network)
from a cheap post-processing (thresholds, minimum size). Predict once per validation image, then
call :func:`grid_search` with the cached predictions and a ``postprocess`` function; every grid
point costs only post-processing and one metric evaluation per image.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from samscope.errors import InputError
from samscope.evaluation.ctc import ctc_scores
from samscope.evaluation.metrics import Segmentation, dice_protocol, segmentation_accuracy

__all__ = ["METRICS", "SearchResult", "grid_search"]

T = TypeVar("T")
Metric = Callable[[np.ndarray, Segmentation], float]

#: Named metrics, each ``(ground truth, prediction) -> float``, higher is better.
METRICS: dict[str, Metric] = {
    "msa": lambda gt, pred: segmentation_accuracy(gt, pred).msa,
    "sa50": lambda gt, pred: segmentation_accuracy(gt, pred, thresholds=(0.5,)).sa50,
    "sa75": lambda gt, pred: segmentation_accuracy(gt, pred, thresholds=(0.75,)).sa75,
    "f1": lambda gt, pred: float(segmentation_accuracy(gt, pred, thresholds=(0.5,)).f1[0]),
    "mean_dice": lambda gt, pred: dice_protocol(gt, pred).mean_dice,
    "seg": lambda gt, pred: ctc_scores(gt, pred).seg,
    "det": lambda gt, pred: ctc_scores(gt, pred).det,
    "op_csb": lambda gt, pred: ctc_scores(gt, pred).op_csb,
}


@dataclass(frozen=True, eq=False)
class SearchResult:
    """Outcome of :func:`grid_search`.

    Attributes
    ----------
    metric : str
        Name of the metric maximised.
    best : dict
        The best setting (parameter name → value).
    best_score : float
        Its mean score over the images.
    table : tuple of dict
        One row per grid point, in grid order: the parameters and the mean score under the
        metric's name.
    per_image : numpy.ndarray, shape (n_points, n_images)
        Every score.
    """

    metric: str
    best: dict[str, Any]
    best_score: float
    table: tuple[dict[str, Any], ...]
    per_image: np.ndarray


def grid_search(
    predictions: Sequence[T],
    ground_truth: Sequence[np.ndarray],
    postprocess: Callable[[T, Mapping[str, Any]], Segmentation],
    grid: Mapping[str, Sequence[Any]],
    *,
    metric: str | Metric = "msa",
    progress: bool = False,
) -> SearchResult:
    """Find the post-processing setting that maximises a metric on a validation set.

    Parameters
    ----------
    predictions : sequence
        One cached prediction per image (anything ``postprocess`` understands: a float map, a
        tuple of maps, a list of masks with scores ...). They are never modified.
    ground_truth : sequence of numpy.ndarray
        Label images, one per prediction.
    postprocess : callable
        ``postprocess(prediction, params) -> label image or MaskStack``; ``params`` maps every
        grid name to one value.
    grid : mapping of str to sequence
        Values to try per parameter; all combinations are evaluated (first key varies slowest).
    metric : str or callable
        A name in :data:`METRICS` (``"msa"``, ``"sa50"``, ``"sa75"``, ``"f1"``, ``"mean_dice"``,
        ``"seg"``, ``"det"``, ``"op_csb"``) or ``f(gt, pred) -> float`` (higher is better).
    progress : bool
        Show a tqdm progress bar over grid points.

    Returns
    -------
    SearchResult
        The best setting (mean over images; ties go to the first in grid order) and the table.

    Examples
    --------
    >>> gt = [np.array([[0, 1, 1, 1, 0, 0, 2, 2]])]
    >>> maps = [np.array([[0.1, 0.6, 0.9, 0.6, 0.3, 0.2, 0.8, 0.7]])]
    >>> from scipy import ndimage as ndi
    >>> post = lambda p, prm: ndi.label(p >= prm["threshold"])[0]
    >>> r = grid_search(maps, gt, post, {"threshold": [0.2, 0.5, 0.65]})
    >>> r.best, r.best_score
    ({'threshold': 0.5}, 1.0)
    """
    if len(predictions) != len(ground_truth):
        raise InputError(
            f"{len(predictions)} predictions but {len(ground_truth)} ground-truth images"
        )
    if not predictions:
        raise InputError("grid search needs at least one image")
    if not grid or any(len(v) == 0 for v in grid.values()):
        raise InputError("every grid parameter needs at least one value")
    if isinstance(metric, str):
        if metric not in METRICS:
            raise InputError(f"unknown metric {metric!r}; choose from {sorted(METRICS)}")
        name, fn = metric, METRICS[metric]
    else:
        name, fn = getattr(metric, "__name__", "score"), metric
    names = list(grid)
    points = [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]
    iterator: Any = points
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(points, desc="grid search", unit="setting")
    scores = np.zeros((len(points), len(predictions)))
    for i, params in enumerate(iterator):
        for j, (pred, gt) in enumerate(zip(predictions, ground_truth, strict=True)):
            scores[i, j] = float(fn(gt, postprocess(pred, dict(params))))
    means = scores.mean(axis=1)
    best = int(np.argmax(means))  # first maximum: ties go to the earliest grid point
    table = tuple({**p, name: float(m)} for p, m in zip(points, means, strict=True))
    return SearchResult(name, dict(points[best]), float(means[best]), table, scores)
