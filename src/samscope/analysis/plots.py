"""Figures of an analysis: per-condition box/strip plots, dot/rod bars, area histograms.

matplotlib's object interface on an Agg canvas (no pyplot state, no backend switch), imported
on first use. Every figure is returned as PNG and SVG bytes; :func:`save` writes both.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from samscope.analysis.stats import mean_ci
from samscope.analysis.table import Table

__all__ = ["area_histograms", "dot_rod_bars", "metric_boxes", "save"]

#: Metric → axis label.
LABELS = {
    "n_objects": "objects per image",
    "mean_area_um2": "mean object area (µm²)",
    "mean_area_px": "mean object area (px²)",
    "confluency": "confluency (fraction covered)",
    "mean_neighbours": "neighbours per object",
    "mean_aspect_ratio": "mean aspect ratio",
    "mean_solidity": "mean solidity",
    "mean_intensity": "mean object intensity",
    "dot_count_fraction": "dots / all mitochondria",
    "dot_area_fraction": "dot area / all area",
    "mean_dot_area_um2": "mean dot area (µm²)",
    "mean_rod_area_um2": "mean rod area (µm²)",
}
_DOT, _ROD = "#1f77b4", "#ff7f0e"  # the case study's Fig. 5 colours: dots blue, rods orange


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _render(fig) -> dict[str, bytes]:
    out = {}
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
        out[fmt] = buf.getvalue()
    return out


def save(figure: dict[str, bytes], path_stem: Path) -> list[Path]:
    """Write a rendered figure as ``STEM.png`` and ``STEM.svg`` (atomically)."""
    from samscope.evaluation.report import atomic_write_bytes

    return [atomic_write_bytes(path_stem.with_suffix(f".{fmt}"), data)
            for fmt, data in figure.items()]


def _values(images: Table, metric: str, conditions: Sequence[str]) -> list[np.ndarray]:
    cond = np.asarray(images["condition"]).astype(str)
    v = np.asarray(images[metric], np.float64)
    return [v[(cond == c) & np.isfinite(v)] for c in conditions]


def metric_boxes(images: Table, metrics: Sequence[str], conditions: Sequence[str]
                 ) -> dict[str, bytes] | None:
    """One panel per metric: a box per condition with every image as a dot (jittered)."""
    metrics = [m for m in metrics if m in images and np.isfinite(
        np.asarray(images[m], np.float64)).any()]
    if not metrics:
        return None
    ncols = min(3, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    width = max(3.2, 0.9 * len(conditions) + 1.6)
    fig = _figure(width * ncols, 3.0 * nrows)
    rng = np.random.default_rng(0)
    for k, m in enumerate(metrics):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        data = _values(images, m, conditions)
        pos = np.arange(1, len(conditions) + 1)
        shown = [d if d.size else np.array([np.nan]) for d in data]
        ax.boxplot(shown, positions=pos, widths=0.55, showfliers=False,
                   medianprops={"color": "black"})
        for p, d in zip(pos, data, strict=True):
            ax.plot(p + rng.uniform(-0.15, 0.15, d.size), d, "o", ms=3.5, alpha=0.6,
                    color=_DOT)
        ax.set_xticks(pos, list(conditions), rotation=30 if len(conditions) > 3 else 0,
                      ha="right" if len(conditions) > 3 else "center")
        ax.set_ylabel(LABELS.get(m, m))
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _render(fig)


def dot_rod_bars(images: Table, conditions: Sequence[str]) -> dict[str, bytes] | None:
    """Three panels in the manner of the case study's Fig. 5: (a) counts of dots and rods per
    condition (summed over its images), (b) proportion of the counts and (c) proportion of the
    area of each type, per image then averaged per condition (bars stack to 1; error bars are
    95 % intervals of the dot proportion)."""
    if "n_dot" not in images:
        return None
    fig = _figure(11.0, 3.6)
    x = np.arange(len(conditions))
    ax = fig.add_subplot(1, 3, 1)
    dots = [float(np.nansum(v)) for v in _values(images, "n_dot", conditions)]
    rods = [float(np.nansum(v)) for v in _values(images, "n_rod", conditions)]
    ax.bar(x - 0.2, dots, 0.4, color=_DOT, label="dot")
    ax.bar(x + 0.2, rods, 0.4, color=_ROD, label="rod")
    ax.set_title("(a) counts of each type", fontsize="medium")
    ax.set_ylabel("mitochondria")
    ax.legend(fontsize="small")
    for k, (metric, title) in enumerate((("dot_count_fraction", "(b) proportion of counts"),
                                         ("dot_area_fraction", "(c) proportion of area"))):
        ax2 = fig.add_subplot(1, 3, k + 2)
        stats = [mean_ci(v) for v in _values(images, metric, conditions)]
        mean = np.array([s.mean for s in stats])
        lo = np.array([s.mean - s.ci_low if math.isfinite(s.ci_low) else 0 for s in stats])
        hi = np.array([s.ci_high - s.mean if math.isfinite(s.ci_high) else 0 for s in stats])
        ax2.bar(x, mean, 0.6, color=_DOT, label="dot")
        ax2.bar(x, 1 - mean, 0.6, bottom=mean, color=_ROD, label="rod")
        ax2.errorbar(x, mean, yerr=[lo, hi], fmt="none", ecolor="black", capsize=3)
        ax2.set_ylim(0, 1)
        ax2.set_title(title, fontsize="medium")
        ax2.set_ylabel("proportion per image (mean)")
    for a in fig.axes:
        a.set_xticks(x, list(conditions), rotation=30 if len(conditions) > 3 else 0,
                     ha="right" if len(conditions) > 3 else "center")
        a.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _render(fig)


def area_histograms(objects: Table, conditions: Sequence[str], *,
                    threshold_um2: float | None = None) -> dict[str, bytes] | None:
    """Distribution of object areas per condition (density, log-spaced bins), in µm² when
    every object has a physical size, else in px² (the dot/rod threshold drawn if given)."""
    if not len(objects):
        return None
    flat = "area_px" in objects and np.isfinite(np.asarray(objects["area_px"], float)).any()
    px_key, um_key = ("area_px", "area_um2") if flat else ("volume_vox", "volume_um3")
    if px_key not in objects:
        return None
    um = np.asarray(objects[um_key], np.float64)
    physical = bool(np.isfinite(um).all())
    area = um if physical else np.asarray(objects[px_key], np.float64)
    ok = np.isfinite(area) & (area > 0)
    if not ok.any():
        return None
    lo, hi = float(area[ok].min()), float(area[ok].max())
    bins = np.geomspace(lo, hi * 1.0001 if hi > lo else lo * 2, 40)
    fig = _figure(6.0, 3.8)
    ax = fig.add_subplot()
    cond = np.asarray(objects["condition"]).astype(str)
    for c in conditions:
        a = area[ok & (cond == c)]
        if a.size:
            ax.hist(a, bins=bins, density=True, histtype="step", linewidth=1.5,
                    label=f"{c} (n={a.size})")
    if threshold_um2 is not None and flat:
        t = threshold_um2 if physical else threshold_um2 / 0.08**2
        ax.axvline(t, color="black", linestyle="--", linewidth=1, label="dot / rod")
    ax.set_xscale("log")
    what, unit = ("area", "µm²" if physical else "px²") if flat else (
        "volume", "µm³" if physical else "voxels")
    ax.set_xlabel(f"object {what} ({unit})")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _render(fig)
