"""Batch runs from files to tables, shared by every front-end (CLI, napari, web app, Dask).

A run is one call with a typed request:

- :func:`segment_batch` (:class:`SegmentRequest`): a model and an automatic mode over files,
  folders, globs and zarr stores → label images (with pixel size), overlapping masks, overlays,
  per-image records and per-object tables (``samscope segment``);
- :func:`baseline_batch` (:class:`BaselineRequest`): a classical baseline (``samscope baseline``);
- :func:`interactive_batch` (:class:`InteractiveRequest`): the interactive-segmentation protocol
  over image/ground-truth pairs (``samscope evaluate-interactive``).

They share the steps: :func:`collect_inputs` (each image with its folder below the entry that
named it), :func:`plan_outputs` (names; clashes, outputs that would overwrite an input, and
unwritable locations are errors before a model is loaded), :func:`planes_of` (which planes a
mode sees), resume (an image whose outputs exist is skipped unless ``overwrite``), atomic writes
(an image's outputs are written when all its planes are done, the table last), progress callbacks
(:class:`ProgressEvent`) and cancellation (a :class:`threading.Event` or a callable, checked
between images and planes). Results are :class:`BatchResult` of :class:`ImageRecord`.

Importing this package loads numpy and the small modules it needs; models load on first use.
"""

from __future__ import annotations

from samscope.pipeline.baseline import BaselineRequest, baseline_batch
from samscope.pipeline.engine import BatchResult, ImageRecord, PlaneOutput
from samscope.pipeline.inputs import InputFile, collect_inputs, output_stem
from samscope.pipeline.interactive import InteractiveRequest, InteractiveResult, interactive_batch
from samscope.pipeline.outputs import OutputPaths, Plan, check_locations, plan_outputs
from samscope.pipeline.planes import planes_of
from samscope.pipeline.progress import ProgressEvent, is_cancelled
from samscope.pipeline.segmentation import SegmentRequest, segment_batch

__all__ = [
    "BaselineRequest",
    "BatchResult",
    "ImageRecord",
    "InputFile",
    "InteractiveRequest",
    "InteractiveResult",
    "OutputPaths",
    "Plan",
    "PlaneOutput",
    "ProgressEvent",
    "SegmentRequest",
    "baseline_batch",
    "check_locations",
    "collect_inputs",
    "interactive_batch",
    "is_cancelled",
    "output_stem",
    "plan_outputs",
    "planes_of",
    "segment_batch",
]
