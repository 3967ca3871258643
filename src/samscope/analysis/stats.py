"""Per-condition summaries: mean, spread and 95 % interval of per-image values.

The unit of replication is the image: each image contributes one value per metric (its mean
cell area, its dot proportion …), and a condition's interval is Student's t interval of the
mean of those values, ``mean ± t(0.975, n − 1) · sd / √n`` (sd with n − 1). Images where a
metric is undefined (NaN, e.g. the mean area of an image without objects) are left out of
that metric's n.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from samscope.analysis.table import Table

__all__ = ["MeanCI", "mean_ci", "summarise_by_condition"]


@dataclass(frozen=True)
class MeanCI:
    """Mean of a sample with its 95 % t interval.

    Attributes
    ----------
    n : int
        Finite values.
    mean, sd, median, ci_low, ci_high : float
        NaN without values; the interval is NaN for fewer than two.
    """

    n: int
    mean: float
    sd: float
    median: float
    ci_low: float
    ci_high: float


def mean_ci(values: Sequence[float] | np.ndarray, *, level: float = 0.95) -> MeanCI:
    """Mean, sd, median and the ``level`` Student-t interval of the finite ``values``.

    Examples
    --------
    >>> r = mean_ci([1.0, 2.0, 3.0])
    >>> r.mean, round(r.ci_low, 3), round(r.ci_high, 3)
    (2.0, -0.484, 4.484)
    """
    from scipy.special import stdtrit  # Student t quantile; lighter than scipy.stats

    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n == 0:
        return MeanCI(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if n == 1:
        return MeanCI(1, mean, math.nan, mean, math.nan, math.nan)
    sd = float(v.std(ddof=1))
    half = float(stdtrit(n - 1, 0.5 + level / 2)) * sd / math.sqrt(n)
    return MeanCI(n, mean, sd, float(np.median(v)), mean - half, mean + half)


def summarise_by_condition(
    images: Table, metrics: Sequence[str], *, conditions: Sequence[str] | None = None,
    totals: Sequence[str] = (),
) -> Table:
    """One row per condition and metric: n images, mean, sd, median, 95 % interval.

    Parameters
    ----------
    images : Table
        Per-image values with a ``condition`` column.
    metrics : sequence of str
        Columns to summarise (those absent from ``images`` are skipped).
    conditions : sequence of str, optional
        Order of the conditions (default: first appearance).
    totals : sequence of str
        Count columns whose sum over the condition's images is also given (``total``).

    Returns
    -------
    Table
        Columns ``condition, metric, n_images, mean, sd, median, ci95_low, ci95_high, total``.
    """
    cond = np.asarray(images["condition"]).astype(str)
    order = list(conditions) if conditions is not None else list(dict.fromkeys(cond.tolist()))
    rows = []
    for c in order:
        sel = cond == c
        for m in metrics:
            if m not in images:
                continue
            values = np.asarray(images[m], np.float64)[sel]
            r = mean_ci(values)
            rows.append({
                "condition": c, "metric": m, "n_images": r.n, "mean": r.mean, "sd": r.sd,
                "median": r.median, "ci95_low": r.ci_low, "ci95_high": r.ci_high,
                "total": float(np.nansum(values)) if m in totals else math.nan,
            })
    cols = ["condition", "metric", "n_images", "mean", "sd", "median", "ci95_low", "ci95_high",
            "total"]
    if not rows:
        return Table({k: np.zeros(0) for k in cols})
    return Table.from_rows(rows, columns=cols)
