"""Tracking formats: the Cell Tracking Challenge's folders and napari's Tracks CSV.

CTC result folder (``write_ctc``)
    ``mask000.tif … maskNNN.tif`` (one label image per frame, 2-D or 3-D, uint16, ids = track
    ids; three digits, four past 1,000 frames) and ``res_track.txt``: one line ``L B E P`` per
    track (label, first frame, last frame, parent label or 0).
CTC ground truth (``read_ctc``)
    A folder with ``man_track000.tif …`` and ``man_track.txt`` (the ``TRA`` folder), or the
    sequence's ``XX_GT`` folder holding ``TRA/`` (and ``SEG/``, which is not read here), or a
    result folder (``mask*.tif`` + ``res_track.txt``).
napari Tracks CSV (``write_napari_tracks``)
    Columns ``track_id, t, [z,] y, x, parent_track_id``: the first columns are the ``data`` of
    napari's Tracks layer (one row per object and frame, the centroid), ``parent_track_id`` gives
    its ``graph`` (``{track_id: [parent_track_id]}`` for rows with a parent).
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np

from samscope.errors import InputError
from samscope.io._atomic import atomic_target

__all__ = [
    "read_ctc",
    "read_napari_tracks",
    "read_track_table",
    "write_ctc",
    "write_napari_tracks",
    "write_track_table",
]


def write_track_table(path: str | os.PathLike, lineage, *, overwrite: bool = False) -> Path:
    """Write ``L B E P`` rows (``res_track.txt`` / ``man_track.txt``) atomically."""
    path = Path(path)
    table = lineage.table() if hasattr(lineage, "table") else np.asarray(lineage).reshape(-1, 4)
    with atomic_target(path, overwrite=overwrite) as tmp:
        tmp.write_text("".join(" ".join(str(int(v)) for v in row) + "\n" for row in table))
    return path


def read_track_table(path: str | os.PathLike):
    """Read ``L B E P`` rows into a :class:`~samscope.multidim.Lineage`.

    Raises
    ------
    InputError
        A missing file, a line that is not four whole numbers, an invalid lineage.
    """
    from samscope.multidim.lineage import Lineage

    path = Path(path)
    if not path.is_file():
        raise InputError(f"track table '{path}' does not exist")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 4 or not all(re.fullmatch(r"\d+", p) for p in parts):
            raise InputError(f"'{path}' line {n}: expected four whole numbers 'L B E P', got {line!r}")
        rows.append([int(p) for p in parts])
    return Lineage.from_table(np.array(rows, np.int64).reshape(-1, 4))


def write_ctc(output: str | os.PathLike, tracked, *, overwrite: bool = False) -> list[Path]:
    """Write a tracking result in the Cell Tracking Challenge's result format.

    Parameters
    ----------
    output : path
        The result folder (created); ``mask*.tif`` and ``res_track.txt`` go there.
    tracked : samscope.multidim.TrackedSeries
        Labels ``(T, Y, X)`` or ``(T, Z, Y, X)`` with track ids, and the lineage.
    overwrite : bool
        Replace an existing result (its ``mask*.tif`` beyond the new frame count are removed).

    Returns
    -------
    list of Path
        The mask files and the track table (written last).

    Raises
    ------
    InputError
        An existing result without ``overwrite``, more than 65,535 track ids (the challenge's
        format is 16-bit).
    """
    import tifffile

    out = Path(output)
    labels = np.asarray(tracked.labels)
    if labels.size and int(labels.max()) > 65535:
        raise InputError("the CTC format holds at most 65,535 track ids (16-bit masks)")
    table = out / "res_track.txt"
    old = sorted(out.glob("mask*.tif")) if out.is_dir() else []
    if (table.exists() or old) and not overwrite:
        raise InputError(f"'{out}' already holds a tracking result; pass --overwrite to replace it")
    out.mkdir(parents=True, exist_ok=True)
    digits = 3 if len(labels) <= 1000 else 4
    files = []
    for t in range(len(labels)):
        path = out / f"mask{t:0{digits}d}.tif"
        with atomic_target(path, overwrite=True) as tmp:
            tifffile.imwrite(tmp, labels[t].astype(np.uint16), compression="zlib")
        files.append(path)
    for p in old:
        if p not in files:
            p.unlink()
    files.append(write_track_table(table, tracked.lineage, overwrite=True))
    return files


def _frames(folder: Path, prefix: str) -> list[Path]:
    pat = re.compile(rf"{prefix}(\d+)\.tiff?$")
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := pat.match(p.name)))
    if found and [i for i, _ in found] != list(range(found[0][0], found[0][0] + len(found))):
        raise InputError(f"the {prefix}*.tif files in '{folder}' are not numbered consecutively")
    return [p for _, p in found]


def read_ctc(folder: str | os.PathLike):
    """Read a CTC ground-truth ``TRA`` folder, a sequence's ``XX_GT`` folder or a result folder.

    Returns
    -------
    samscope.multidim.TrackedSeries
        Labels ``(T, ...)`` (frame 0 is the first file's number; CTC numbers from 0) and the
        lineage from ``man_track.txt`` / ``res_track.txt``.

    Raises
    ------
    InputError
        No masks or no track table, frames of different shapes, a lineage that does not fit.
    """
    import tifffile

    from samscope.multidim.lineage import TrackedSeries

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"'{folder}' is not a folder (a CTC folder holds mask*.tif or man_track*.tif)")
    if (folder / "TRA").is_dir():
        folder = folder / "TRA"
    prefix, table = "man_track", "man_track.txt"
    files = _frames(folder, prefix)
    if not files:
        prefix, table = "mask", "res_track.txt"
        files = _frames(folder, prefix)
    if not files:
        raise InputError(f"'{folder}' holds neither man_track*.tif (ground truth) nor mask*.tif (a result)")
    if not (folder / table).is_file():
        raise InputError(f"'{folder}' has {prefix}*.tif but no {table}")
    frames = [np.asarray(tifffile.imread(p)) for p in files]
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        raise InputError(f"the frames in '{folder}' have different shapes {sorted(shapes)}")
    labels = np.stack(frames)
    lineage = read_track_table(folder / table)
    _check_fits(labels, lineage, folder / table)
    return TrackedSeries(labels, lineage)


def _check_fits(labels: np.ndarray, lineage, where: Path) -> None:
    span = {t.id: (t.start, t.end) for t in lineage.tracks}
    for t in range(len(labels)):
        for i in np.unique(labels[t]).tolist():
            if i and not span.get(int(i), (1, 0))[0] <= t <= span.get(int(i), (1, 0))[1]:
                raise InputError(f"'{where}': label {i} in frame {t} is not covered by its rows")


def write_napari_tracks(path: str | os.PathLike, tracked, *, overwrite: bool = False) -> Path:
    """Write the napari Tracks CSV (module docstring) atomically."""
    from samscope.multidim.lineage import track_points

    path = Path(path)
    data = track_points(np.asarray(tracked.labels))
    parent = {t.id: t.parent for t in tracked.lineage.tracks}
    spatial = ["z", "y", "x"][-(data.shape[1] - 2):] if data.size else (
        ["z", "y", "x"] if np.asarray(tracked.labels).ndim == 4 else ["y", "x"])  # fmt: skip
    with atomic_target(path, overwrite=overwrite) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["track_id", "t", *spatial, "parent_track_id"])
        for row in data:
            tid = int(row[0])
            w.writerow([tid, int(row[1]), *(f"{v:.2f}" for v in row[2:]), parent.get(tid, 0)])
    return path


def read_napari_tracks(path: str | os.PathLike) -> tuple[np.ndarray, dict[int, list[int]]]:
    """Read the napari Tracks CSV: ``(data, graph)`` as napari's Tracks layer takes them."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"'{path}' does not exist")
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0][:2] != ["track_id", "t"] or rows[0][-1] != "parent_track_id":
        raise InputError(f"'{path}' is not a tracks CSV (header track_id, t, …, parent_track_id)")
    body = np.array([[float(v) for v in r] for r in rows[1:]], np.float64).reshape(-1, len(rows[0]))
    graph = {int(r[0]): [int(r[-1])] for r in body if r[-1]}
    return body[:, :-1], graph
