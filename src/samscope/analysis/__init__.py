"""From segmentations to biology: measurements, morphology, culture metrics and reports.

numpy, scipy, scikit-image and matplotlib only (no torch), so it is quick to import and runs
anywhere the results are.

- :func:`measure_objects` / :func:`measure_masks`: per-object measures of label images (2-D and
  3-D) and of overlapping mask stacks (each mask whole), in pixels and µm.
- :func:`dot_rod_summary`, :func:`is_dot`: mitochondria dot/rod morphology by area (1.28 µm²,
  i.e. 200 px at 80 nm, after Jadhav et al. 2026).
- :func:`culture_metrics`, :func:`neighbour_counts`: cell count, mean cell area, confluency,
  neighbours per cell and aspect ratio (the metrics of SAMCell, VandeLoo et al. 2025).
- :func:`mean_ci`, :func:`summarise_by_condition`: per-condition means with 95 % intervals.
- :func:`analyze_results`: what ``samscope analyze`` runs: ``samscope segment``'s outputs →
  per-object, per-image and per-condition CSVs, plots and one HTML report.
- :func:`overlay_rgb` / :func:`write_overlay`: the outlined picture ``samscope segment`` writes.
"""

from __future__ import annotations

from samscope.analysis.batch import (
    AnalysisConfig,
    AnalysisReport,
    ImageAnalysis,
    analyze_image,
    analyze_results,
)
from samscope.analysis.culture import (
    CultureMetrics,
    culture_metrics,
    neighbour_counts,
    neighbour_pairs,
)
from samscope.analysis.measure import measure_masks, measure_objects
from samscope.analysis.mito import DOT_MAX_AREA_UM2, DotRodSummary, dot_rod_summary, is_dot
from samscope.analysis.overlay import label_colours, overlay_rgb, write_overlay
from samscope.analysis.results import Discovery, ResultFiles, find_results, read_conditions
from samscope.analysis.stats import MeanCI, mean_ci, summarise_by_condition
from samscope.analysis.table import Table

__all__ = [
    "DOT_MAX_AREA_UM2",
    "AnalysisConfig",
    "AnalysisReport",
    "CultureMetrics",
    "Discovery",
    "DotRodSummary",
    "ImageAnalysis",
    "MeanCI",
    "ResultFiles",
    "Table",
    "analyze_image",
    "analyze_results",
    "culture_metrics",
    "dot_rod_summary",
    "find_results",
    "is_dot",
    "label_colours",
    "mean_ci",
    "measure_masks",
    "measure_objects",
    "neighbour_counts",
    "neighbour_pairs",
    "overlay_rgb",
    "read_conditions",
    "summarise_by_condition",
    "write_overlay",
]
