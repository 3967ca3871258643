"""Writing an analysis: the three tables, the plots, the HTML page and the record."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from samscope.analysis.stats import summarise_by_condition
from samscope.analysis.table import Table

__all__ = ["write_report"]

#: Metrics shown as box/strip plots (those present).
PLOT_METRICS = ("n_objects", "mean_area_um2", "mean_area_px", "confluency", "mean_neighbours",
                "mean_aspect_ratio", "dot_count_fraction", "dot_area_fraction")


def _images_table(done) -> Table:
    rows = []
    for a in done:
        for r in a.rows:
            rows.append({"image": a.name, "condition": a.condition, **r})
    return Table.from_rows(rows)


def _objects_table(done) -> Table:
    parts = [a.objects.with_columns({"image": a.name, "condition": a.condition}, first=True)
             for a in done]
    return Table.concat(parts)


def write_report(output: Path, done: Sequence, discovery, config, mito: bool,
                 skipped: Sequence[tuple[str, str]], notes: Sequence[str]):
    """Write every output of :func:`samscope.analysis.analyze_results` into ``output``."""
    from samscope.analysis import plots
    from samscope.analysis.batch import COUNT_COLUMNS, SUMMARY_METRICS, AnalysisReport, config_dict
    from samscope.analysis.html import render_html
    from samscope.evaluation.report import atomic_write_text, write_json

    output.mkdir(parents=True, exist_ok=True)
    order = [c for c in discovery.conditions if any(a.condition == c for a in done)]
    images = _images_table(done)
    objects = _objects_table(done)
    px_all = bool(np.isfinite(np.asarray(images["pixel_size_nm"], np.float64)).all())
    metrics = [m for m in SUMMARY_METRICS
               if m in images and not (m == "mean_area_px" and px_all)
               and not (m.endswith("_um2") and not px_all)]
    summary = summarise_by_condition(images, metrics, conditions=order, totals=COUNT_COLUMNS)
    files = {
        "objects": objects.write_csv(output / "objects.csv"),
        "images": images.write_csv(output / "images.csv"),
        "conditions": summary.write_csv(output / "conditions.csv"),
    }
    figures = {}
    plot_metrics = [m for m in PLOT_METRICS if m in metrics]
    for name, fig in (
        ("metrics", plots.metric_boxes(images, plot_metrics, order)),
        ("dot_rod", plots.dot_rod_bars(images, order) if mito else None),
        ("areas", plots.area_histograms(objects, order, threshold_um2=config.dot_max_area_um2
                                        if mito else None)),
    ):
        if fig is None:
            continue
        figures[name] = fig
        for path in plots.save(fig, output / "plots" / name):
            files[f"{name}_{path.suffix[1:]}"] = path
    settings = config_dict(config)
    settings["mito"] = mito
    html = render_html(
        results=str(discovery.items[0].labels.parent if len(discovery.items) == 1 else
                    _common_root(discovery)),
        settings=settings, conditions=order, images=images, summary=summary,
        metrics=metrics, figures=figures, thumbnails=[(a.name, a.condition, a.thumbnail)
                                                      for a in done],
        notes=list(notes), skipped=list(skipped), n_objects=len(objects),
    )
    files["report"] = atomic_write_text(output / "report.html", html)
    record = {
        "settings": settings,
        "n_images": len(done),
        "n_objects": len(objects),
        "conditions": order,
        "notes": list(notes),
        "skipped": [{"image": n, "reason": r} for n, r in skipped],
        "files": {k: p.name if p.parent == output else str(p.relative_to(output))
                  for k, p in files.items()},
    }
    files["record"] = write_json(output / "analysis.json", record)
    return AnalysisReport(output=output, files=files, n_images=len(done),
                          n_objects=len(objects), conditions=tuple(order),
                          skipped=tuple(skipped), notes=tuple(notes), images=images,
                          summary=summary)


def _common_root(discovery) -> str:
    import os

    try:
        return os.path.commonpath([str(f.labels.parent) for f in discovery.items])
    except ValueError:
        return ""


def fmt(value, digits: int = 3) -> str:
    """A number for the HTML tables (integers plain, floats to ``digits`` significant)."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        v = float(value)
        if not math.isfinite(v):
            return "–"
        if v == int(v) and abs(v) < 1e9:
            return str(int(v))
        if abs(v) >= 1000:
            return f"{v:.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.{digits}g}"
    return str(value)
