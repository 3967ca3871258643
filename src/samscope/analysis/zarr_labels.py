"""``samscope analyze`` of one zarr / OME-Zarr label image (a blockwise output), chunk by chunk.

A label image too large for memory — ``samscope segment BIG -o OUT.zarr`` writes one — is
measured region by region (:func:`~samscope.analysis.chunked.measure_objects_chunked`) and
reported like a results folder with one image: ``objects.csv``, ``images.csv`` (count, mean
area, confluency, neighbours, aspect ratio, intensity; dot/rod summary with ``--mito``),
``conditions.csv``, plots and ``report.html``. Intensities come from ``--images`` (the image
file, or a folder holding it), else from the input the blockwise run recorded. Solidity is not
measured chunk by chunk (NaN).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError, SamscopeError

__all__ = ["analyze_zarr_labels", "is_zarr_store"]


def is_zarr_store(path: Any) -> bool:
    """A folder with zarr metadata (an array, a group, an OME-Zarr image)."""
    p = Path(path)
    return p.is_dir() and any((p / m).exists() for m in (".zgroup", ".zarray", "zarr.json"))


def _recorded(path: Path) -> dict:
    """The blockwise run's settings in the store (empty for other zarr stores)."""
    for name in (".zattrs", "zarr.json"):
        f = path / name
        if f.is_file():
            try:
                doc = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            attrs = doc.get("attributes", doc)
            return (attrs.get("samscope_blockwise") or {}) if isinstance(attrs, dict) else {}
    return {}


def _find_image(images: Path | None, recorded: dict) -> tuple[Path | None, list[str]]:
    inp = ((recorded.get("settings") or {}).get("input") or {}).get("path")
    notes: list[str] = []
    if images is not None:
        if images.is_file() or is_zarr_store(images):
            return images, notes
        if images.is_dir() and inp:
            cand = images / Path(inp).name
            if cand.exists():
                return cand, notes
        notes.append(f"no image found under '{images}'; no intensity measures")
        return None, notes
    if inp and Path(inp).exists():
        return Path(inp), notes
    if inp:
        notes.append(f"the segmented image '{inp}' is not there any more; no intensity "
                     "measures (give --images)")
    return None, notes


def _open_image(path: Path, shape: tuple[int, ...], recorded: dict, notes: list[str]):
    from samscope.io import read_image

    inp = (recorded.get("settings") or {}).get("input") or {}
    same = inp.get("path") is not None and Path(inp["path"]).resolve() == path.resolve()
    how = {"key": inp.get("key"), "channel": inp.get("channel")} if same else {}
    try:
        im = read_image(path, lazy=True, **how)
    except (SamscopeError, TypeError) as err:
        notes.append(f"cannot read the image '{path.name}': {err}; no intensity measures")
        return None, None
    data = im.data
    ishape = tuple(int(s) for s in data.shape)
    if ishape == shape or (len(ishape) == len(shape) + 1 and ishape[:-1] == shape):
        return data, im.pixel_size
    notes.append(f"the image {path.name} has shape {ishape}, the labels {shape}; no intensity "
                 "measures")
    return None, None


def _spacing(size: Any, ndim: int) -> tuple[float, ...] | None:
    if size is None:
        return None
    vals = tuple(float(v) for v in np.atleast_1d(np.asarray(size, np.float64)))
    if len(vals) != ndim or not all(math.isfinite(v) and v > 0 for v in vals[-2:]):
        return None
    return vals


def _thumbnail(labels: Any, image: Any, size: int = 200) -> np.ndarray:
    """Outlined overview at most ``size`` px, from strided reads (never the whole image)."""
    from samscope.analysis.overlay import overlay_rgb

    shape = tuple(int(s) for s in labels.shape)
    lead = (shape[0] // 2,) if len(shape) == 3 else ()
    f = max(1, int(math.ceil(max(shape[-2:]) / size)))
    sl = lead + (slice(None, None, f), slice(None, None, f))
    small = np.asarray(labels[sl])
    grey = np.zeros(small.shape, np.float32)
    if image is not None:
        img = np.asarray(image[sl], np.float32)
        grey = img.mean(axis=-1) if img.ndim == 3 else img
    return overlay_rgb(grey, small, tint=0.2)


def analyze_zarr_labels(
    results: str | os.PathLike,
    output: str | os.PathLike,
    *,
    conditions: str | os.PathLike | Sequence[tuple[str, str]] | None = None,
    images: str | os.PathLike | None = None,
    config: Any = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
):
    """Analyse one zarr label image region by region and write the report folder.

    Parameters
    ----------
    results : path
        A zarr array or OME-Zarr image of labels (``samscope segment … -o OUT.zarr``).
    output : path
        Report folder (created).
    conditions : path or sequence of (image, condition), optional
        As for :func:`~samscope.analysis.analyze_results` (default condition ``all``).
    images : path, optional
        The intensity image, or a folder holding it (default: the recorded input).
    config : AnalysisConfig, optional
    overwrite : bool
    progress : callable (done, total), optional
        Called after each region.

    Returns
    -------
    AnalysisReport

    Raises
    ------
    InputError
        A store that is not a 2-D or 3-D integer label image, a blockwise output that is not
        complete, an existing report without ``overwrite``.
    """
    from samscope.analysis.batch import (
        AnalysisConfig,
        ImageAnalysis,
        _check_output,
        _nanmean,
    )
    from samscope.analysis.chunked import measure_with_foreground
    from samscope.analysis.mito import dot_rod_summary, is_dot
    from samscope.analysis.report import write_report
    from samscope.analysis.results import (
        DEFAULT_CONDITION,
        Discovery,
        ResultFiles,
        _assign,
        strip_image_suffix,
    )
    from samscope.io import read_image

    config = config or AnalysisConfig()
    results, output = Path(results), Path(output)
    inputs = [Path(conditions)] if isinstance(conditions, str | os.PathLike) else []
    _check_output(output, overwrite, inputs)
    recorded = _recorded(results)
    if recorded and not recorded.get("complete"):
        raise InputError(f"'{results}' is an unfinished blockwise segmentation; run the same "
                         "samscope segment command again to finish it first")
    try:
        lab_img = read_image(results, lazy=True)
    except SamscopeError as err:
        raise InputError(f"cannot read the labels '{results}': {err}") from err
    labels = lab_img.data
    shape = tuple(int(s) for s in labels.shape)
    if lab_img.axes not in ("YX", "ZYX") or np.dtype(labels.dtype).kind not in "iub":
        raise InputError(f"'{results.name}' is not a label image (axes {lab_img.axes}, dtype "
                         f"{labels.dtype}); give a 2-D or 3-D zarr of integer object ids")
    notes: list[str] = []
    img_path, more = _find_image(None if images is None else Path(images), recorded)
    notes.extend(more)
    image, img_px = _open_image(img_path, shape, recorded, notes) if img_path else (None, None)
    nd = len(shape)
    spacing = (None if config.pixel_size_nm is None else (float(config.pixel_size_nm),) * nd)
    spacing = spacing or _spacing(lab_img.pixel_size, nd) or _spacing(img_px, nd)
    if spacing is not None and nd == 3 and not math.isfinite(spacing[0]):
        spacing = (math.nan, *spacing[1:])
    objects, foreground = measure_with_foreground(
        labels, image, pixel_size_nm=spacing,
        neighbour_distance_px=config.neighbour_distance_px, progress=progress)
    model = str(((recorded.get("settings") or {}).get("segmenter") or {}).get("model", ""))
    mito = bool(config.mito) if config.mito is not None else "mito" in model.lower()
    area_key = "area_px" if nd == 2 else "volume_vox"
    um_key = "area_um2" if nd == 2 else "volume_um3"
    interior = ~np.asarray(objects["touches_border"], bool)
    counts = np.asarray(objects["n_neighbours"], np.float64)
    px_yx = None if spacing is None else float(np.sqrt(spacing[-2] * spacing[-1]))
    row: dict = {
        "n_objects": len(objects), "mean_area_px": _nanmean(objects[area_key]),
        "mean_area_um2": _nanmean(objects[um_key]) if spacing is not None else math.nan,
        "confluency": foreground / float(np.prod(shape)),
        "mean_neighbours": _nanmean(counts), "mean_neighbours_interior": _nanmean(counts[interior]),
        "mean_aspect_ratio": _nanmean(objects["aspect_ratio"]),
        "mean_solidity": math.nan, "mean_intensity": _nanmean(objects["mean_intensity"]),
    }
    if mito and nd == 2:
        dots = is_dot(objects, dot_max_area_um2=config.dot_max_area_um2)
        objects = objects.with_columns({"mito_type": np.where(dots, "dot", "rod").astype(object)})
        row.update(dot_rod_summary(objects, dot_max_area_um2=config.dot_max_area_um2).as_row())
    row.update({"pixel_size_nm": px_yx if px_yx is not None else math.nan,
                "units": "µm" if px_yx is not None else "px"})
    name = strip_image_suffix(results.name.removesuffix(".zarr")) or results.name
    item = ResultFiles(name=name, labels=results, table=None, masks=None, record=None,
                       image=img_path, condition=DEFAULT_CONDITION)
    found, order, more = _assign([item], conditions)
    notes.extend(more)
    if not len(objects):
        notes.append(f"{name}: no objects")
    if px_yx is None:
        notes.insert(0, f"{name} has no pixel size: its sizes are in pixels (give --pixel-size NM)")
    notes.append(f"{name}: measured chunk by chunk ({'×'.join(map(str, shape))} "
                 "labels); solidity is not measured for zarr labels")
    analysis = ImageAnalysis(name, found[0].condition, objects, [row],
                             _thumbnail(labels, image), tuple(), px_yx)
    discovery = Discovery(tuple(found), (), tuple(order), tuple(notes))
    return write_report(output, [analysis], discovery, config, mito, [], notes)
