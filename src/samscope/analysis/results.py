"""Finding what ``samscope segment`` wrote, the original images, and each image's condition.

``samscope segment`` writes, for an image ``NAME.tif``, ``NAME_labels.tif`` (label image),
``NAME_objects.csv`` (per-object table, written last: its presence marks the image done),
``NAME_masks.tif`` (overlapping masks, modes that make them), ``NAME_overlay.png`` and
``NAME_segmentation.json`` (the record: input path, model, mode, pixel size). A results
folder may hold sub-folders (``samscope segment data/**/*.tif -o out`` keeps the folder
structure); an image is named by its path below the results folder without suffix
(``Hypoxia/cell03``).

Conditions come from a CSV file mapping image names to conditions (columns ``image`` and
``condition``; an image may be named with or without its folder and suffix), or else from
the sub-folder each image sits in (images directly in the results folder: condition ``all``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from samscope.analysis.table import read_csv_rows
from samscope.errors import InputError

__all__ = ["Discovery", "ResultFiles", "find_results", "read_conditions"]

#: Suffixes of samscope segment's outputs for one image.
LABELS_SUFFIX = "_labels.tif"
TABLE_SUFFIX = "_objects.csv"
MASKS_SUFFIX = "_masks.tif"
RECORD_SUFFIX = "_segmentation.json"
#: Image suffixes (longest first), stripped to get an image's name.
IMAGE_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".png", ".jpg",
                  ".jpeg", ".zarr", ".npy", ".bmp")
#: Condition of images directly in the results folder, when conditions come from folders.
DEFAULT_CONDITION = "all"
#: Condition of images a conditions file does not list.
UNASSIGNED = "unassigned"
_IMAGE_COLUMNS = ("image", "file", "filename", "file_name", "name", "path")
_CONDITION_COLUMNS = ("condition", "group", "treatment")


@dataclass(frozen=True)
class ResultFiles:
    """The segmentation outputs of one image.

    Attributes
    ----------
    name : str
        Path below the results folder without suffix, ``/``-separated (``Hypoxia/cell03``).
    labels : Path
    table, masks, record, image : Path or None
        Objects table, overlapping masks, segmentation record and original image, where
        found (``samscope segment`` writes the table last; ``samscope baseline`` none).
    condition : str
    """

    name: str
    labels: Path
    table: Path | None
    masks: Path | None
    record: Path | None
    image: Path | None
    condition: str

    @property
    def stem(self) -> str:
        """The image's file name without suffix."""
        return self.name.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Discovery:
    """What :func:`find_results` found.

    Attributes
    ----------
    items : tuple of ResultFiles
        Complete results, in natural order of their names.
    skipped : tuple of (str, str)
        ``(name, reason)`` of results left out.
    conditions : tuple of str
        The conditions in report order.
    notes : tuple of str
        Things the user should know (images not found, unassigned images …).
    """

    items: tuple[ResultFiles, ...]
    skipped: tuple[tuple[str, str], ...]
    conditions: tuple[str, ...]
    notes: tuple[str, ...]


def strip_image_suffix(name: str) -> str:
    """``cell03.ome.tif`` → ``cell03`` (any one image suffix, case-insensitive)."""
    low = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if low.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _natural(text: str) -> list:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def read_conditions(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Read a conditions CSV: ``(image, condition)`` pairs in file order.

    The header must name an image column (``image``, ``file``, ``filename``, ``name`` or
    ``path``) and a condition column (``condition``, ``group`` or ``treatment``), in any
    case; other columns are ignored.

    Raises
    ------
    InputError
        For a missing file, unknown header, empty cells or an image given twice with two
        conditions.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"conditions file '{path}' does not exist")
    rows = read_csv_rows(path)
    header = {k.strip().lower(): k for k in (rows[0].keys() if rows else [])}
    if not rows:
        raise InputError(f"conditions file '{path}' has a header but no rows")
    image_col = next((header[c] for c in _IMAGE_COLUMNS if c in header), None)
    cond_col = next((header[c] for c in _CONDITION_COLUMNS if c in header), None)
    if image_col is None or cond_col is None:
        raise InputError(
            f"conditions file '{path}' needs a header with an image column "
            f"({', '.join(_IMAGE_COLUMNS)}) and a condition column "
            f"({', '.join(_CONDITION_COLUMNS)}); found: {', '.join(rows[0].keys())}"
        )
    pairs: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for i, row in enumerate(rows, start=2):
        image = (row.get(image_col) or "").strip()
        cond = (row.get(cond_col) or "").strip()
        if not image and not cond:
            continue
        if not image or not cond:
            raise InputError(f"conditions file '{path}', line {i}: empty "
                             f"{'image' if not image else 'condition'} cell")
        key = _condition_key(image)
        if key in seen and seen[key] != cond:
            raise InputError(f"conditions file '{path}': image {image!r} is given two "
                             f"conditions ({seen[key]!r} and {cond!r})")
        seen[key] = cond
        pairs.append((image, cond))
    return pairs


def _condition_key(text: str) -> str:
    """Normalise an image reference: forward slashes, no ``./``, no image or output suffix."""
    t = text.replace("\\", "/").strip()
    while t.startswith("./"):
        t = t[2:]
    for suffix in (LABELS_SUFFIX, TABLE_SUFFIX, MASKS_SUFFIX):
        if t.lower().endswith(suffix):
            t = t[: -len(suffix)]
            break
    return strip_image_suffix(t)


def _index_images(folder: Path, skip: Path | None) -> dict[str, list[Path]]:
    """Image files under ``folder`` by their name without suffix (segment outputs excluded)."""
    out: dict[str, list[Path]] = {}
    for root, dirs, files in os.walk(folder):
        root_p = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (skip is None or (root_p / d).resolve() != skip)
                         and not d.lower().endswith(".zarr"))
        names = list(files) + [d for d in os.listdir(root) if d.lower().endswith(".zarr")]
        for f in names:
            low = f.lower()
            if f.startswith(".") or strip_image_suffix(f) == f:
                continue
            if low.endswith((LABELS_SUFFIX, MASKS_SUFFIX, "_overlay.png")):
                continue
            p = root_p / f
            rel = p.relative_to(folder).as_posix()
            out.setdefault(strip_image_suffix(rel), []).append(p)
    return out


def _record(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _find_image(name: str, folder: Path, record: dict, index: dict[str, list[Path]] | None,
                results: Path) -> tuple[Path | None, str | None]:
    """The original image of result ``name`` (and a note when it is ambiguous)."""
    stem = name.rsplit("/", 1)[-1]
    if index is not None:
        exact = index.get(name, [])
        if exact:
            return exact[0], None
        by_stem = [p for k, ps in index.items() if k.rsplit("/", 1)[-1] == stem for p in ps]
        if len(by_stem) == 1:
            return by_stem[0], None
        if len(by_stem) > 1:
            return None, (f"{name}: {len(by_stem)} images named {stem!r} under --images and "
                          "none at the same relative path; no intensities")
    source = record.get("input")
    if isinstance(source, str) and source:
        for candidate in (Path(source), results / source):
            if candidate.exists():
                return candidate, None
    for suffix in IMAGE_SUFFIXES:  # segment without -o writes beside the image
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.exists():
                return candidate, None
    return None, None


def find_results(
    results: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    conditions: str | os.PathLike | Sequence[tuple[str, str]] | None = None,
    exclude: str | os.PathLike | None = None,
) -> Discovery:
    """Find the complete segmentation results under a folder, their images and conditions.

    Parameters
    ----------
    results : path
        Folder that ``samscope segment -o`` wrote (searched recursively).
    images : path, optional
        Folder of the original images (searched recursively; matched by relative path, else
        by file name). Default: the record's input path, else beside the labels file.
    conditions : path or sequence of (image, condition), optional
        A conditions CSV (:func:`read_conditions`) or its pairs. Default: sub-folder names.
    exclude : path, optional
        A folder inside ``results`` not to search (the report folder).

    Returns
    -------
    Discovery

    Raises
    ------
    InputError
        When ``results`` is not a folder or holds no labels file, or when the conditions name
        images that are not in the results.
    """
    root = Path(results)
    if not root.exists():
        raise InputError(f"results folder '{root}' does not exist")
    if not root.is_dir():
        raise InputError(f"'{root}' is not a folder; give the folder that samscope segment "
                         "wrote (-o)")
    skip = Path(exclude).resolve() if exclude is not None else None
    labels_files = []
    for dirpath, dirs, files in os.walk(root):
        d = Path(dirpath)
        dirs[:] = [x for x in dirs if not x.startswith(".")
                   and (skip is None or (d / x).resolve() != skip)]
        labels_files += [d / f for f in files
                         if f.endswith(LABELS_SUFFIX) and not f.startswith(".")]
    if not labels_files:
        raise InputError(f"no *{LABELS_SUFFIX} files under '{root}': is it a folder that "
                         "samscope segment wrote?")
    labels_files.sort(key=lambda p: _natural(p.relative_to(root).as_posix()))
    index = None
    if images is not None:
        img_root = Path(images)
        if not img_root.is_dir():
            raise InputError(f"--images '{img_root}' is not a folder")
        index = _index_images(img_root, skip)
    found, skipped, notes, no_table = [], [], [], []
    for lab in labels_files:
        rel = lab.relative_to(root).as_posix()
        name = rel[: -len(LABELS_SUFFIX)]
        base = lab.name[: -len(LABELS_SUFFIX)]
        table = lab.parent / f"{base}{TABLE_SUFFIX}"
        if not table.is_file():
            no_table.append(name)
        masks = lab.parent / f"{base}{MASKS_SUFFIX}"
        record_path = lab.parent / f"{base}{RECORD_SUFFIX}"
        record = _record(record_path) if record_path.is_file() else {}
        image, note = _find_image(name, lab.parent, record, index, root)
        if note:
            notes.append(note)
        folder = name.rsplit("/", 1)[0] if "/" in name else DEFAULT_CONDITION
        found.append(ResultFiles(name, lab, table if table.is_file() else None,
                                 masks if masks.is_file() else None,
                                 record_path if record_path.is_file() else None, image,
                                 folder))
    if no_table:
        notes.append(f"{len(no_table)} image(s) have no *{TABLE_SUFFIX} "
                     f"({', '.join(no_table[:3])}{' …' if len(no_table) > 3 else ''}): measured "
                     "from the labels alone (samscope baseline writes no table; after samscope "
                     "segment it means the run did not finish: run it again to complete it)")
    found, order, more = assign_conditions(found, conditions)
    notes += more
    missing = [f.name for f in found if f.image is None]
    if missing:
        notes.append(f"{len(missing)} of {len(found)} image(s) not found "
                     f"({', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}): "
                     "no intensity measures for them (give --images FOLDER)")
    return Discovery(tuple(found), tuple(skipped), tuple(order), tuple(notes))


def assign_conditions(
    found: list[ResultFiles], conditions
) -> tuple[list[ResultFiles], list[str], list[str]]:
    """Give each result its condition (from its folder, or the ``conditions`` table).

    Returns the results (with their condition), the conditions in order, and notes (images the
    table does not name, reported as unassigned). Names the table lists but the results lack, or
    names found in several folders, are an InputError.
    """
    from dataclasses import replace

    if conditions is None:
        order = sorted({f.condition for f in found}, key=_natural)
        return found, order, []
    pairs = read_conditions(conditions) if isinstance(conditions, str | os.PathLike) \
        else list(conditions)
    by_name = {f.name: i for i, f in enumerate(found)}
    by_stem: dict[str, list[int]] = {}
    for i, f in enumerate(found):
        by_stem.setdefault(f.stem, []).append(i)
    assigned: dict[int, str] = {}
    unknown, ambiguous = [], []
    order: list[str] = []
    for image, cond in pairs:
        key = _condition_key(image)
        if key in by_name:
            hits = [by_name[key]]
        else:
            hits = by_stem.get(key.rsplit("/", 1)[-1], []) if "/" not in key else []
        if not hits:
            unknown.append(image)
            continue
        if len(hits) > 1:
            ambiguous.append(f"{image} ({', '.join(found[i].name for i in hits)})")
            continue
        assigned[hits[0]] = cond
        if cond not in order:
            order.append(cond)
    if unknown:
        some = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
        raise InputError(f"the conditions file names {len(unknown)} image(s) that are not in "
                         f"the results: {some} (names are matched without folder and suffix, "
                         f"e.g. {found[0].stem!r} or {found[0].name!r})")
    if ambiguous:
        raise InputError("the conditions file names image(s) found in several folders; give "
                         f"them with their folder: {'; '.join(ambiguous[:3])}")
    notes = []
    rest = [i for i in range(len(found)) if i not in assigned]
    if rest:
        notes.append(f"{len(rest)} image(s) are not in the conditions file "
                     f"({', '.join(found[i].name for i in rest[:3])}"
                     f"{' …' if len(rest) > 3 else ''}): reported as {UNASSIGNED!r}")
        order.append(UNASSIGNED)
    out = [replace(f, condition=assigned.get(i, UNASSIGNED)) for i, f in enumerate(found)]
    return out, order, notes


#: Former private names kept for modules of other owners that still import them.
_assign = assign_conditions  # former private name, still imported by analysis/zarr_labels (another owner)
