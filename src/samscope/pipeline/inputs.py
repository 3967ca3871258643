"""Inputs of a batch run: files, folders, globs and zarr stores, each with its place under ``-o``.

Every image keeps the path it has below the entry that named it (a folder, or the fixed part of a
glob pattern), so ``samscope segment data/**/*.tif -o out`` writes ``out/a/img_labels.tif`` and
``out/b/img_labels.tif`` for ``data/a/img.tif`` and ``data/b/img.tif``; a file named on its own
sits directly under ``-o``. Two inputs that would still share an output name (``a/img.tif`` and
``b/img.tif`` given as files or as two folders, or ``img.png`` and ``img.tif`` in one folder) are
an error before anything is computed (:func:`samscope.pipeline.outputs.plan_outputs`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

__all__ = ["InputFile", "collect_inputs", "output_stem"]

#: Image suffixes stripped from a file name to make its output stem (longest first).
IMAGE_SUFFIXES = (
    ".ome.tiff",
    ".ome.tif",
    ".ome.zarr",
    ".tiff",
    ".tif",
    ".png",
    ".jpg",
    ".jpeg",
    ".zarr",
    ".npy",
    ".bmp",
)


@dataclass(frozen=True)
class InputFile:
    """One image of a batch and where its outputs go relative to the output folder.

    Attributes
    ----------
    path : pathlib.Path
        The image file or zarr store, as found.
    relative : pathlib.PurePath
        Its folder below the entry that named it (``.`` for a file given on its own or a
        file directly in a given folder); outputs go to ``OUTPUT / relative``.
    named : bool
        Given by its own name (not found in a folder or by a pattern).
    """

    path: Path
    relative: PurePath = PurePath(".")
    named: bool = False

    @property
    def stem(self) -> str:
        """The file name without its image suffix (``a.ome.tif`` → ``a``)."""
        return output_stem(self.path)


def output_stem(path: str | os.PathLike) -> str:
    """The name of ``path`` without its image suffix.

    >>> output_stem("cells/a.ome.tif"), output_stem("b.TIF"), output_stem("plate.zarr")
    ('a', 'b', 'plate')
    """
    name = Path(path).name
    lower = name.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _glob_root(pattern: str) -> Path:
    """The leading folders of a glob pattern that hold no wildcard (``data/*/x.tif`` → ``data``)."""
    parts = PurePath(pattern).parts
    fixed: list[str] = []
    for part in parts[:-1]:
        if any(c in part for c in "*?["):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _relative_folder(path: Path, root: Path) -> PurePath:
    try:
        rel = path.parent.resolve().relative_to(root.resolve())
    except ValueError:  # pragma: no cover - a glob with '..' after a wildcard
        return PurePath(".")
    return PurePath(rel)


def collect_inputs(entries: str | os.PathLike | Sequence[str | os.PathLike]) -> list[InputFile]:
    """Expand files, folders, glob patterns and zarr stores into the images of a batch.

    Parameters
    ----------
    entries : path or sequence of paths
        What :func:`samscope.io.list_images` takes.

    Returns
    -------
    list of InputFile
        In the order given, duplicates (the same file reached twice) dropped.

    Raises
    ------
    InputError
        For a missing path, a folder or pattern without images, or an unknown format.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "a").mkdir(); (d / "a" / "img.tif").touch(); (d / "top.png").touch()
    >>> [(f.path.name, str(f.relative)) for f in collect_inputs([str(d / "**" / "*.*")])]
    [('img.tif', 'a'), ('top.png', '.')]
    """
    from samscope.io import list_images

    items = [entries] if isinstance(entries, str | os.PathLike) else list(entries)
    out: list[InputFile] = []
    seen: set[Path] = set()
    for entry in items:
        text, path = str(entry), Path(entry)
        folder = path.is_dir() and path.suffix.lower() != ".zarr"
        if path.exists():
            root = path if folder else path.parent
        else:
            root = _glob_root(text)
        named = path.exists() and not folder
        for found in list_images([entry]):
            key = found.resolve()
            if key in seen:
                continue
            seen.add(key)
            out.append(InputFile(found, _relative_folder(found, root), named))
    return out
