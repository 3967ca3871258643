"""Automatic segmentation of a batch of images with a model: :func:`segment_batch`.

One call does what ``samscope segment`` does::

    from samscope.pipeline import SegmentRequest, segment_batch
    result = segment_batch(SegmentRequest(["data/"], output="out", mode="apg"))

For each image ``IMAGE`` it writes ``IMAGE_labels.tif`` (with the pixel size; a label stack for
stacks and time series, segmented plane by plane), ``IMAGE_masks.tif`` (overlapping modes, 2-D
images), ``IMAGE_overlay.png`` (2-D images), ``IMAGE_segmentation.json`` (the per-image record:
model, mode, settings, pixel size, the object diameter and rescale factor used, object counts)
and, last, ``IMAGE_objects.csv`` (one row per object), whose presence marks the image done:
images whose labels and table exist are skipped unless ``overwrite``, so a re-run resumes.
Every file is written atomically. Names, clashes and output locations are checked before the
model is loaded (:mod:`samscope.pipeline.outputs`).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.io import ImageData
from samscope.models.registry import DEFAULT_MODEL
from samscope.pipeline.engine import BatchResult, ImageRecord, PlaneOutput, run_images
from samscope.pipeline.inputs import InputFile, collect_inputs
from samscope.pipeline.outputs import OutputPaths, check_locations, plan_outputs
from samscope.pipeline.planes import label_axes, label_pixel_size, pixel_size_nm
from samscope.pipeline.progress import Cancel, Progress, ProgressEvent

__all__ = ["TABLE_COLUMNS", "SegmentRequest", "segment_batch"]

#: Columns of ``IMAGE_objects.csv`` (stacks have a ``plane`` column first).
TABLE_COLUMNS = (
    "id",
    "area",
    "centroid_y",
    "centroid_x",
    "bbox_y0",
    "bbox_x0",
    "bbox_y1",
    "bbox_x1",
    "score",
)
_OVERLAPPING = ("amg", "apg", "foreground")


@dataclass(frozen=True)
class SegmentRequest:
    """What to segment, with which model and mode, and where the outputs go.

    Parameters
    ----------
    inputs : sequence of str or Path
        Image files, folders, glob patterns and zarr stores (``samscope.io.list_images``).
    output : Path, optional
        Output folder; each input keeps its folder below the entry that named it. None: beside
        each image.
    model : str, Path or SamscopeModel
        Registered name, checkpoint file, or an already loaded model.
    checkpoint : Path, optional
        Weights for a registered ``model``'s architecture.
    device : str, optional
    mode : str
        ``auto`` (the card's default), ``amg``, ``ais``, ``apg``, ``distance`` or ``foreground``.
    settings : mapping, optional
        Fields of the mode's config (``min_size=50``); strings are converted to the field's type.
    tile_shape, halo : (int, int), optional
    pixel_size_nm : float, optional
        In-plane pixel size; default: the file's.
    diameter : float, optional
        Object diameter in pixels of the input (None: the model's automatic estimate, where it
        has one).
    diameter_um : float, optional
        Object diameter in micrometres, converted with each image's pixel size.
    axes : str, optional
        Axes of the images (``YX``, ``ZYX``, ``TYX`` …) when the files do not say.
    overlay : bool
        Write ``IMAGE_overlay.png`` for 2-D images.
    overwrite : bool
        Redo images whose outputs exist.
    per_plane : bool
        Volumes (``Z`` first): keep each plane's own ids instead of linking objects through z
        into 3-D objects (:func:`samscope.multidim.link_stack`).
    precision : {"fp32", "bf16", "int8"}, optional
        Arithmetic of the model's encoder and decoder (:mod:`samscope.models.sam`); None: the
        device's default (fp32 on the CPU).
    """

    inputs: Sequence[str | os.PathLike]
    output: Path | None = None
    model: Any = DEFAULT_MODEL
    checkpoint: Path | None = None
    device: str | None = None
    mode: str = "auto"
    settings: Mapping[str, Any] | None = None
    tile_shape: tuple[int, int] | None = None
    halo: tuple[int, int] | None = None
    pixel_size_nm: float | None = None
    diameter: float | None = None
    diameter_um: float | None = None
    axes: str | None = None
    overlay: bool = True
    overwrite: bool = False
    per_plane: bool = False
    precision: str | None = None

    def __post_init__(self) -> None:
        if self.precision is not None:  # the name now; int8 off the CPU when the model loads
            from samscope.models.sam import check_precision

            check_precision(self.precision)
        entries = [self.inputs] if isinstance(self.inputs, str | os.PathLike) else self.inputs
        object.__setattr__(self, "inputs", tuple(entries))
        if self.output is not None:
            object.__setattr__(self, "output", Path(self.output))
        if self.diameter is not None and self.diameter_um is not None:
            raise InputError("give the object diameter in pixels or in µm, not both")
        for name in ("diameter", "diameter_um", "pixel_size_nm"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InputError(f"{name.replace('_', '-')} must be a positive number, got {value}")


@dataclass
class _Run:
    """The resolved parts of a request: model, mode, config, per-image diameters."""

    request: SegmentRequest
    net: Any = None
    mode: str = ""
    config: Any = None
    diameters: dict[Path, float | None] = field(default_factory=dict)
    tile_progress: bool = False


def segment_batch(
    request: SegmentRequest,
    *,
    progress: Progress = None,
    cancel: Cancel = None,
    tile_progress: bool = False,
) -> BatchResult:
    """Segment every image of ``request`` and write its outputs.

    Parameters
    ----------
    request : SegmentRequest
    progress : callable, optional
        Called with a :class:`~samscope.pipeline.ProgressEvent` at each step (``skipped`` for
        each image already done, then ``start``, and per image ``image``, ``plane``, ``done``).
    cancel : threading.Event or callable, optional
        Checked before each image and each plane; when set, the run stops (the image in
        progress is not written) and the result has ``cancelled=True``.
    tile_progress : bool
        Progress bars for embeddings and tiles of 2-D images (the CLI's).

    Returns
    -------
    BatchResult

    Raises
    ------
    InputError
        Before anything is computed: no images, clashing output names, an output that is an
        input, an output location that cannot be written, a diameter in µm for an image without
        a pixel size, unknown settings; then any error of the mode.
    """
    inputs = collect_inputs(request.inputs)
    plan = plan_outputs(inputs, request.output)
    todo, skipped = _split_done(plan.items, request.overwrite)
    writes = ("labels", "table", "masks", "overlay", "record") if request.overlay else (
        "labels", "table", "masks", "record")
    check_locations(getattr(outs, w) for _, outs in todo for w in writes)
    run = _Run(request, tile_progress=tile_progress)
    run.diameters = _diameters(request, [item for item, _ in todo])
    _segment_kwargs(request.diameter if request.diameter_um is None else 1.0)  # fails early
    run.net, run.mode, run.config = resolve_model(request)
    records = [_skipped(item, outs) for item, outs in skipped]
    if progress is not None:
        for i, r in enumerate(records):
            progress(ProgressEvent(stage="skipped", index=i, path=r.input, record=r))
    done, cancelled = run_images(
        todo,
        read=lambda path: _read(path, request.axes),
        segment_plane=lambda plane, image, stacked: _segment_plane(run, plane, image, stacked),
        write=lambda *args: _write(run, *args),
        pixel_size=lambda image: pixel_size_nm(image, request.pixel_size_nm),
        progress=progress,
        cancel=cancel,
    )
    order = {item.path: i for i, (item, _) in enumerate(plan.items)}
    records = sorted([*records, *done], key=lambda r: order[r.input])
    return BatchResult(
        records=tuple(records),
        method=f"{getattr(run.net, 'name', request.model)} ({run.mode})",
        dropped=tuple(i.path for i in plan.dropped),
        cancelled=cancelled,
    )


def _split_done(items, overwrite: bool):
    todo, skipped = [], []
    for item, outs in items:
        done = outs.labels.exists() and outs.table.exists()
        (skipped if done and not overwrite else todo).append((item, outs))
    return todo, skipped


def _skipped(item: InputFile, outs: OutputPaths) -> ImageRecord:
    return ImageRecord(input=item.path, outputs=outs, status="skipped")


def _read(path: Path, axes: str | None) -> ImageData:
    from samscope.io import read_image

    return read_image(path, axes=axes)


def _diameters(request: SegmentRequest, inputs: Sequence[InputFile]) -> dict[Path, float | None]:
    """The diameter in pixels for each image (µm converted with its pixel size), checked now."""
    if request.diameter_um is None:
        return {item.path: request.diameter for item in inputs}
    from samscope.io import read_image

    out: dict[Path, float | None] = {}
    for item in inputs:
        px = request.pixel_size_nm
        if px is None:
            px = pixel_size_nm(read_image(item.path, axes=request.axes, lazy=True))
        if px is None:
            raise InputError(
                f"'{item.path}' has no pixel size, so a diameter in µm cannot be converted to "
                "pixels; give --pixel-size NM or the diameter in pixels (--diameter)"
            )
        out[item.path] = request.diameter_um * 1000.0 / px
    return out


def _segment_kwargs(diameter: float | None) -> dict[str, Any]:
    """``diameter=`` for :func:`samscope.instance.segment` when given (and supported)."""
    if diameter is None:
        return {}
    from samscope.instance.segment import segment

    if "diameter" not in inspect.signature(segment).parameters:
        raise InputError("this samscope version cannot segment at a given object diameter")
    return {"diameter": float(diameter)}


def resolve_model(request: SegmentRequest) -> tuple[Any, str, Any]:
    """The loaded model, the mode and its settings (resolved against the card) of ``request``."""
    from samscope.instance.segment import choose_mode, config_class
    from samscope.settings import build_settings

    net = request.model
    if isinstance(net, str | os.PathLike):
        from samscope.models.registry import load_model

        net = load_model(net, checkpoint=request.checkpoint, device=request.device,
                         precision=request.precision)  # fmt: skip
    elif request.precision is not None and hasattr(net, "with_precision"):
        net = net.with_precision(request.precision)
    mode = choose_mode(net, request.mode)
    wants_size = request.diameter is not None or request.diameter_um is not None
    card = getattr(net, "card", None)
    if wants_size and mode != "foreground" and not getattr(card, "working_diameter", None):
        raise InputError(
            f"model {getattr(card, 'name', net)!r} works at one scale (its card has no working "
            "diameter), so --diameter/--diameter-um cannot be applied; use a scale-aware model "
            "such as samscope-generalist"
        )
    config = None
    if request.settings:
        config = build_settings(config_class(mode), request.settings, what=f"mode {mode!r}")
    return net, mode, config


def _segment_plane(run: _Run, plane: np.ndarray, image: ImageData, stacked: bool) -> PlaneOutput:
    from samscope.instance.instances import object_table
    from samscope.instance.segment import segment

    result = segment(
        plane,
        run.net,
        mode=run.mode,
        tile_shape=run.request.tile_shape,
        halo=run.request.halo,
        pixel_size_nm=pixel_size_nm(image, run.request.pixel_size_nm),
        config=run.config,
        progress=run.tile_progress and not stacked,
        **_segment_kwargs(run.diameters.get(image.path, run.request.diameter)),
    )
    masks = None
    if not stacked and result.masks is not None and result.n:
        masks = result.masks.dense().astype(np.uint8)
    diameter = getattr(result, "diameter", None)
    return PlaneOutput(
        labels=result.labels,
        rows=object_table(result),
        masks=masks,
        diameter=None if diameter is None else float(diameter),
        scale=float(getattr(result, "scale", 1.0) or 1.0),
    )


def _write(
    run: _Run,
    item: InputFile,
    outs: OutputPaths,
    image: ImageData,
    planes: Sequence[np.ndarray],
    results: Sequence[PlaneOutput],
    stacked: bool,
) -> tuple[Path, ...]:
    from samscope.evaluation.report import write_csv, write_json
    from samscope.io import write_image, write_labels
    from samscope.labels import stack_labels

    request = run.request
    labels = stack_labels([r.labels for r in results], stacked=stacked)
    id_maps = None
    if stacked and not request.per_plane and image.axes.startswith("Z"):  # objects whole in 3-D
        from samscope.multidim import link_stack

        labels, id_maps = link_stack(labels, image.data)
    pixel = label_pixel_size(image, request.pixel_size_nm)
    outs.labels.parent.mkdir(parents=True, exist_ok=True)
    written = [
        write_labels(outs.labels, labels, axes=label_axes(image, labels.ndim),
                     pixel_size=pixel if label_axes(image, labels.ndim) else None,
                     overwrite=True)
    ]  # fmt: skip
    masks = results[0].masks if not stacked else None
    if masks is not None:
        mask_pixel = None if pixel is None else (math.nan, *pixel[-2:])
        written.append(write_image(outs.masks, masks, axes="ZYX", pixel_size=mask_pixel,
                                   overwrite=True))  # fmt: skip
    if request.overlay and not stacked:
        from samscope.analysis import write_overlay

        written.append(write_overlay(outs.overlay, planes[0], labels, masks=masks, overwrite=True))
    rows = [{"plane": p, **row} if stacked else row for p, r in enumerate(results) for row in r.rows]
    if id_maps is not None:  # the 3-D id of each plane's object (faded planes left out)
        rows = [{**row, "id": id_maps[row["plane"]][row["id"]]} for row in rows
                if row["id"] in id_maps[row["plane"]]]  # fmt: skip
    written.append(write_json(outs.record, _record(run, item, outs, image, results, stacked)))
    columns = (["plane"] if stacked else []) + list(TABLE_COLUMNS)
    written.append(write_csv(outs.table, rows, columns=columns))  # last: marks the image done
    return tuple(written)


def _record(run: _Run, item, outs, image, results, stacked) -> dict[str, Any]:
    from samscope.instance.segment import config_class
    from samscope.instance.settings import resolve_settings
    from samscope.pipeline.engine import median_or_none

    given = dataclasses.asdict(run.config) if run.config is not None else {}
    config = run.config if run.config is not None else config_class(run.mode)()
    effective = dataclasses.asdict(resolve_settings(config, getattr(run.net, "card", None)))
    doc: dict[str, Any] = {
        "input": str(item.path),
        "labels": outs.labels.name,
        "table": outs.table.name,
        "model": getattr(run.net, "name", str(run.request.model)),
        "mode": run.mode,
        "settings": {k: v for k, v in given.items() if v is not None},
        "effective_settings": effective,
        "axes": image.axes,
        "pixel_size_nm": pixel_size_nm(image, run.request.pixel_size_nm),
        "diameter_px": median_or_none([r.diameter for r in results]),
        "scale": median_or_none([r.scale for r in results]),
        "n_objects": sum(len(r.rows) for r in results),
    }
    if getattr(run.net, "precision", "fp32") != "fp32":
        doc["precision"] = run.net.precision
    if stacked:
        doc["planes"] = [
            {"plane": p, "n_objects": len(r.rows), "diameter_px": r.diameter, "scale": r.scale}
            for p, r in enumerate(results)
        ]
    return doc
