"""``samscope analyze`` as a library call: segmentation results → tables, plots and a report.

:func:`analyze_image` turns one image's results into its object table and its per-image row
(pure reading and numpy, so it runs in worker processes); :func:`analyze_results` finds the
results (:mod:`samscope.analysis.results`), analyses every image, and writes the report folder:

- ``objects.csv``: one row per object (image, condition, id, score, every measure of
  :func:`~samscope.analysis.measure_objects`, neighbours, dot/rod type);
- ``images.csv``: one row per image (plane) with its culture metrics and dot/rod summary;
- ``conditions.csv``: per condition and metric, n images, mean, sd, median and 95 % interval;
- ``plots/``: PNG and SVG figures; ``report.html``: one self-contained page;
- ``analysis.json``: settings, counts, notes and skipped images.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from samscope.analysis.culture import NEIGHBOUR_DISTANCE_PX, culture_metrics, neighbour_counts
from samscope.analysis.measure import measure_masks, measure_objects
from samscope.analysis.mito import DOT_MAX_AREA_UM2, dot_rod_summary, is_dot
from samscope.analysis.results import Discovery, ResultFiles, find_results, read_csv_rows
from samscope.analysis.table import Table
from samscope.errors import InputError, SamscopeError

__all__ = ["AnalysisConfig", "AnalysisReport", "ImageAnalysis", "analyze_image",
           "analyze_results"]

#: Per-image metrics summarised per condition (those present).
SUMMARY_METRICS = (
    "n_objects", "mean_area_um2", "mean_area_px", "confluency", "mean_neighbours",
    "mean_neighbours_interior", "mean_aspect_ratio", "mean_solidity", "mean_intensity",
    "n_dot", "n_rod", "dot_count_fraction", "rod_count_fraction", "dot_area_fraction",
    "rod_area_fraction", "mean_dot_area_um2", "mean_rod_area_um2",
)
COUNT_COLUMNS = ("n_objects", "n_dot", "n_rod")
OUTPUT_FILES = ("objects.csv", "images.csv", "conditions.csv", "report.html", "analysis.json")


@dataclass(frozen=True)
class AnalysisConfig:
    """Settings of an analysis (field names are the ``samscope analyze`` flags).

    Parameters
    ----------
    mito : bool or None
        Dot/rod analysis of mitochondria; None: when the segmentation record names a
        mitochondria model (``samscope-mito``).
    dot_max_area_um2 : float
        Largest dot area, µm² (1.28 = 200 px at 80 nm).
    neighbour_distance_px : float
        Two cells within this distance (pixel centres) are neighbours.
    pixel_size_nm : float, optional
        Pixel size for every image, overriding the files' metadata.
    """

    mito: bool | None = None
    dot_max_area_um2: float = DOT_MAX_AREA_UM2
    neighbour_distance_px: float = NEIGHBOUR_DISTANCE_PX
    pixel_size_nm: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.dot_max_area_um2) and self.dot_max_area_um2 > 0):
            raise InputError(f"--dot-max-area must be a positive area in µm², got "
                             f"{self.dot_max_area_um2}")
        if not (math.isfinite(self.neighbour_distance_px) and self.neighbour_distance_px >= 1):
            raise InputError(f"--neighbour-distance must be at least 1 pixel, got "
                             f"{self.neighbour_distance_px}")
        if self.pixel_size_nm is not None and not (
                math.isfinite(self.pixel_size_nm) and self.pixel_size_nm > 0):
            raise InputError(f"--pixel-size must be a positive number of nm, got "
                             f"{self.pixel_size_nm}")


@dataclass(frozen=True)
class ImageAnalysis:
    """The analysis of one result (an image; a stack gives one row per plane).

    Attributes
    ----------
    name, condition : str
    objects : Table
        One row per object.
    rows : list of dict
        Per-image rows (one per plane of a stack).
    thumbnail : ndarray of uint8 (h, w, 3) or None
        The image with outlines, at most 200 px (first plane of a stack).
    notes : tuple of str
    pixel_size_nm : float or None
    """

    name: str
    condition: str
    objects: Table
    rows: list[dict]
    thumbnail: np.ndarray | None
    notes: tuple[str, ...] = ()
    pixel_size_nm: float | None = None


@dataclass(frozen=True)
class AnalysisReport:
    """What :func:`analyze_results` wrote.

    Attributes
    ----------
    output : Path
    files : dict of str to Path
        ``objects``, ``images``, ``conditions``, ``report``, ``record`` and each plot.
    n_images, n_objects : int
    conditions : tuple of str
    skipped : tuple of (str, str)
        ``(name, reason)`` of results not analysed.
    notes : tuple of str
    images : Table
        The per-image table.
    summary : Table
        The per-condition table.
    """

    output: Path
    files: dict[str, Path]
    n_images: int
    n_objects: int
    conditions: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    images: Table = field(repr=False)
    summary: Table = field(repr=False)


# --------------------------------------------------------------------------------------------
# one image


def _pixel_yx(size) -> float | None:
    """The (y, x) pixel size of an ImageData / record value, nm, when square and known."""
    if size is None:
        return None
    vals = np.atleast_1d(np.asarray(size, np.float64))[-2:]
    if not np.isfinite(vals).all() or (vals <= 0).any():
        return None
    return float(np.sqrt(vals[0] * vals[1]))


def _read(path: Path, what: str):
    from samscope.io import read_image

    try:
        return read_image(path)
    except SamscopeError as err:
        raise InputError(f"cannot read the {what} '{path.name}': {err}") from err


def _scores(rows: list[dict[str, str]]) -> dict[tuple[int, int], float]:
    out = {}
    for r in rows:
        try:
            key = (int(r.get("plane") or 0), int(r["id"]))
            out[key] = float(r.get("score") or "nan")
        except (KeyError, ValueError):
            continue
    return out


def analyze_image(files: ResultFiles, config: AnalysisConfig = AnalysisConfig(), *,
                  mito: bool = False, thumbnail: bool = True) -> ImageAnalysis:
    """Measure one image's segmentation (objects, culture metrics, dot/rod summary).

    Parameters
    ----------
    files : ResultFiles
        From :func:`~samscope.analysis.results.find_results`.
    config : AnalysisConfig
    mito : bool
        Add the dot/rod classification and summary.
    thumbnail : bool
        Also make the outlined thumbnail for the report.

    Returns
    -------
    ImageAnalysis

    Raises
    ------
    InputError
        When the labels or the objects table cannot be read.
    """
    from samscope.io import check_labels

    notes: list[str] = []
    lab_img = _read(files.labels, "labels")
    if "C" in lab_img.axes:
        raise InputError(f"'{files.labels.name}' has a channel axis (axes {lab_img.axes}); "
                         "a label image holds one integer id per pixel")
    labels = check_labels(np.asarray(lab_img.data), source=files.labels)
    rows_in = read_csv_rows(files.table) if files.table is not None else []
    record = {}
    if files.record is not None:
        import json

        try:
            record = json.loads(files.record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            notes.append(f"{files.name}: unreadable {files.record.name}, ignored")
    image = None
    img_px = None
    if files.image is not None:
        try:
            im = _read(files.image, "image")
        except InputError as err:
            notes.append(f"{files.name}: {err}; no intensity measures")
        else:
            data = np.asarray(im.data)
            if data.shape == labels.shape or (data.ndim == labels.ndim + 1
                                              and data.shape[:-1] == labels.shape):
                image = data  # the same grid, perhaps with channels last
            else:
                notes.append(f"{files.name}: the image {files.image.name} has shape "
                             f"{data.shape}, the labels {labels.shape}; no intensity measures")
            img_px = _pixel_yx(im.pixel_size)
    px = config.pixel_size_nm
    if px is None:
        px = _pixel_yx(lab_img.pixel_size)
    if px is None and isinstance(record.get("pixel_size_nm"), int | float):
        px = _pixel_yx(record["pixel_size_nm"])
    if px is None:
        px = img_px
    stacked = labels.ndim == 3 and (any("plane" in r for r in rows_in[:1])
                                    or lab_img.axes.startswith("T"))
    scores = _scores(rows_in)
    if labels.ndim == 2 or stacked:
        planes = [labels] if labels.ndim == 2 else list(labels)
        imgs = [image] if labels.ndim == 2 else (list(image) if image is not None
                                                 else [None] * len(planes))
        masks = None
        if files.masks is not None and labels.ndim == 2:
            m = np.asarray(_read(files.masks, "masks").data)
            if m.ndim == 2:
                m = m[None]
            if m.ndim != 3 or m.shape[1:] != labels.shape:
                notes.append(f"{files.name}: {files.masks.name} of shape {m.shape} does not fit "
                             f"the labels {labels.shape}; measured the label image instead")
            else:
                masks = m
        tables, rows = [], []
        for p, (plane, img) in enumerate(zip(planes, imgs, strict=True)):
            t, row = _analyze_plane(plane, img, masks, px, config, mito)
            sc = np.array([scores.get((p if stacked else 0, int(i)), np.nan) for i in t["id"]])
            t = t.with_columns({"score": sc}) if len(t) else t.with_columns(
                {"score": np.zeros(0)})
            if stacked:
                t = t.with_columns({"plane": p}, first=True)
                row = {"plane": p, **row}
            tables.append(t)
            rows.append(row)
        objects = Table.concat(tables)
    else:
        objects = measure_objects(labels, image, pixel_size_nm=_spacing_3d(lab_img, px))
        nb = neighbour_counts(labels, distance_px=config.neighbour_distance_px)
        objects = objects.with_columns({"n_neighbours": _join(objects["id"], *nb)})
        m = culture_metrics(labels, objects=objects,
                            neighbour_distance_px=config.neighbour_distance_px)
        rows = [{"n_objects": len(objects), **m.as_row(),
                 "mean_solidity": nanmean(objects["solidity"]),
                 "mean_intensity": nanmean(objects["mean_intensity"])}]
    if not len(objects):
        notes.append(f"{files.name}: no objects")
    for row in rows:
        row.update({"pixel_size_nm": px if px is not None else math.nan,
                    "units": "µm" if px is not None else "px"})
    mid = 0 if stacked or labels.ndim == 2 else labels.shape[0] // 2  # a volume: its middle
    thumb = _thumbnail(labels if labels.ndim == 2 else labels[mid],
                       None if image is None else (image if labels.ndim == 2 else image[mid])) \
        if thumbnail else None
    return ImageAnalysis(files.name, files.condition, objects, rows, thumb, tuple(notes), px)


def _spacing_3d(lab_img, px: float | None):
    size = lab_img.pixel_size
    if size is not None and len(size) == 3 and np.isfinite(size).all():
        return size
    if px is None:
        return None
    z = size[0] if size is not None and len(size) == 3 else math.nan
    return (z, px, px)


def _join(ids: np.ndarray, nb_ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``counts`` of ``nb_ids`` at ``ids`` (NaN where an id is not among them)."""
    out = np.full(len(ids), np.nan)
    if len(nb_ids):
        k = np.clip(np.searchsorted(nb_ids, ids), 0, len(nb_ids) - 1)
        hit = nb_ids[k] == ids
        out[hit] = counts[k[hit]]
    return out


def nanmean(values) -> float:
    """Mean of the finite values (NaN when there is none)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _analyze_plane(labels: np.ndarray, image: np.ndarray | None, masks: np.ndarray | None,
                   px: float | None, config: AnalysisConfig, mito: bool) -> tuple[Table, dict]:
    by_labels = measure_objects(labels, image, pixel_size_nm=px)
    nb_ids, nb = neighbour_counts(labels, distance_px=config.neighbour_distance_px)
    by_labels = by_labels.with_columns({"n_neighbours": _join(by_labels["id"], nb_ids, nb)})
    culture = culture_metrics(labels, objects=by_labels,
                              neighbour_distance_px=config.neighbour_distance_px)
    if masks is not None:
        objects = measure_masks(masks, image, pixel_size_nm=px)
        objects = objects.with_columns({"n_neighbours": _join(objects["id"], nb_ids, nb)})
    else:
        objects = by_labels
    row: dict = {"n_objects": len(objects), **culture.as_row(),
                 "mean_solidity": nanmean(objects["solidity"]),
                 "mean_intensity": nanmean(objects["mean_intensity"])}
    if masks is not None:  # each mask whole: the mean area of the objects themselves
        row["mean_area_px"] = nanmean(objects["area_px"])
        row["mean_area_um2"] = nanmean(objects["area_um2"]) if px is not None else math.nan
    if mito:
        dots = is_dot(objects, dot_max_area_um2=config.dot_max_area_um2)
        objects = objects.with_columns({"mito_type": np.where(dots, "dot", "rod").astype(object)})
        summary = dot_rod_summary(objects, dot_max_area_um2=config.dot_max_area_um2)
        row.update(summary.as_row())
        if px is None:
            row["dot_area_um2"] = row["rod_area_um2"] = math.nan
            row["mean_dot_area_um2"] = row["mean_rod_area_um2"] = math.nan
    row.pop("n_cells", None)  # = n_objects for a label image; kept once
    return objects, row


def _thumbnail(labels: np.ndarray, image: np.ndarray | None, size: int = 200) -> np.ndarray:
    from samscope.analysis.overlay import overlay_rgb

    f = max(1, int(math.ceil(max(labels.shape) / size)))
    small = labels[::f, ::f]
    if image is None:
        grey = np.zeros(small.shape, np.float32)
    else:
        img = np.asarray(image, np.float32)
        if img.ndim == 3:
            img = img.mean(axis=-1)
        h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
        grey = img[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3)) if f > 1 else img
        grey = np.pad(grey, [(0, small.shape[0] - grey.shape[0]),
                             (0, small.shape[1] - grey.shape[1])], mode="edge")
    return overlay_rgb(grey, small, tint=0.2)


# --------------------------------------------------------------------------------------------
# a results folder


def _decide_mito(config: AnalysisConfig, discovery: Discovery) -> bool:
    if config.mito is not None:
        return bool(config.mito)
    import json

    for f in discovery.items:
        if f.record is None:
            continue
        try:
            model = str(json.loads(f.record.read_text(encoding="utf-8")).get("model", ""))
        except (OSError, ValueError, AttributeError):
            continue
        if "mito" in model.lower():
            return True
    return False


def check_report_output(output: Path, overwrite: bool, inputs: Sequence[Path]) -> None:
    """InputError unless the report folder ``output`` can be written (before anything is read)."""
    if output.exists() and not output.is_dir():
        raise InputError(f"report folder '{output}' exists and is not a folder")
    targets = [output / f for f in OUTPUT_FILES]
    if not overwrite:
        existing = [t.name for t in targets if t.exists()]
        if existing:
            raise InputError(f"'{output}' already holds a report ({', '.join(existing)}); "
                             "pass --overwrite to replace it, or choose another folder")
    keys = {os.path.normcase(os.path.abspath(p)) for p in inputs}
    for t in targets:
        if os.path.normcase(os.path.abspath(t)) in keys:
            raise InputError(f"the report would overwrite the input '{t}'; choose another "
                             "report folder (-o)")


def analyze_results(
    results: str | os.PathLike,
    output: str | os.PathLike,
    *,
    conditions: str | os.PathLike | Sequence[tuple[str, str]] | None = None,
    images: str | os.PathLike | None = None,
    config: AnalysisConfig = AnalysisConfig(),
    overwrite: bool = False,
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> AnalysisReport:
    """Analyse every complete segmentation result under ``results`` and write the report.

    Parameters
    ----------
    results : path
        Folder written by ``samscope segment -o`` (searched recursively), or one zarr /
        OME-Zarr label image (``samscope segment BIG -o OUT.zarr``), measured chunk by chunk
        (:mod:`samscope.analysis.zarr_labels`).
    output : path
        Report folder (created).
    conditions : path or sequence of (image, condition), optional
        Conditions CSV; default: sub-folder names.
    images : path, optional
        Folder of the original images, for intensities (default: the segmentation record's
        input path, else beside the labels).
    config : AnalysisConfig
    overwrite : bool
        Replace a report already in ``output``.
    workers : int
        Processes analysing images in parallel (1 = in this process).
    progress : callable (done, total), optional

    Returns
    -------
    AnalysisReport

    Raises
    ------
    InputError
        For a results folder without complete results, a conditions file naming unknown
        images, an existing report without ``overwrite``, or no image that could be analysed.
    """
    from samscope.analysis.zarr_labels import analyze_zarr_labels, is_zarr_store

    if is_zarr_store(results):  # one label image of any size, measured chunk by chunk
        return analyze_zarr_labels(results, output, conditions=conditions, images=images,
                                   config=config, overwrite=overwrite, progress=progress)
    output = Path(output)
    inputs = [Path(conditions)] if isinstance(conditions, str | os.PathLike) else []
    check_report_output(output, overwrite, inputs)
    discovery = find_results(results, images=images, conditions=conditions, exclude=output)
    mito = _decide_mito(config, discovery)
    done: list[ImageAnalysis] = []
    skipped = list(discovery.skipped)
    total = len(discovery.items)
    for i, item in enumerate(_run(discovery.items, config, mito, workers)):
        if isinstance(item[1], str):
            skipped.append(item)
        else:
            done.append(item[1])
        if progress is not None:
            progress(i + 1, total)
    if not done:
        reasons = "; ".join(f"{n}: {r}" for n, r in skipped[:3])
        raise InputError(f"no image could be analysed ({reasons})")
    notes = list(discovery.notes)
    for a in done:
        notes.extend(a.notes)
    no_px = [a.name for a in done if a.pixel_size_nm is None]
    if no_px:
        notes.insert(0, f"{len(no_px)} of {len(done)} image(s) have no pixel size "
                        f"({', '.join(no_px[:3])}{' …' if len(no_px) > 3 else ''}): their "
                        "sizes are in pixels (give --pixel-size NM)"
                        + ("; dots are ≤ 200 px (the 80 nm scale assumed)" if mito else ""))
    from samscope.analysis.report import write_report

    return write_report(output, done, discovery, config, mito, skipped, notes)


def _one(args) -> tuple[str, ImageAnalysis | str]:
    item, config, mito = args
    try:
        return item.name, analyze_image(item, config, mito=mito)
    except (SamscopeError, OSError) as err:
        return item.name, str(err)


def _run(items: Sequence[ResultFiles], config: AnalysisConfig, mito: bool, workers: int):
    jobs = [(item, config, mito) for item in items]
    if workers <= 1 or len(items) < 2:
        yield from map(_one, jobs)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=int(workers)) as pool:
        yield from pool.map(_one, jobs, chunksize=max(1, len(jobs) // (4 * workers)))


def config_dict(config: AnalysisConfig) -> dict:
    """The settings as a plain dict (for the report's record)."""
    return asdict(config)


#: Former private names kept for modules of other owners that still import them.
_check_output = check_report_output  # former private name, still imported by analysis/zarr_labels (another owner)
_nanmean = nanmean  # former private name, still imported by analysis/zarr_labels (another owner)
