"""Checking uploaded files: names made safe, types decided by content, sizes and counts limited.

Nothing an upload says about itself is trusted: the file name is reduced to a plain name (no
folders, no ``..``, no control or shell characters) and the suffix is set from the file's first
bytes (TIFF, PNG or JPEG), so a renamed text file is refused and a PNG called ``.tif`` is read as
a PNG. The folder a browser reports for a dropped folder is kept only as a label (the image's
condition), never as a path.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from samscope.errors import InputError

__all__ = ["Upload", "condition_of", "safe_child", "sanitise_name", "sniff_kind", "unique_stem"]

#: File kinds by their first bytes, with the suffix a file of that kind is stored under.
_MAGIC = (
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
)
_SUFFIX = {"tiff": ".tif", "png": ".png", "jpeg": ".jpg"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 80


@dataclass(frozen=True)
class Upload:
    """One accepted file of an upload.

    Attributes
    ----------
    name : str
        The name as the user gave it (for display only).
    stem : str
        Safe, unique (within the session) stem; the image's key.
    filename : str
        Stored file name (``stem`` + the suffix of its kind).
    kind : {"tiff", "png", "jpeg"}
    condition : str
        The folder it was dropped in (``all`` for loose files).
    size : int
        Bytes.
    """

    name: str
    stem: str
    filename: str
    kind: str
    condition: str
    size: int


def sniff_kind(head: bytes) -> str | None:
    """The image kind from a file's first bytes, or None when it is none samscope serves.

    >>> sniff_kind(b"II*\\x00rest"), sniff_kind(b"\\x89PNG\\r\\n\\x1a\\n"), sniff_kind(b"%PDF")
    ('tiff', 'png', None)
    """
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def sanitise_name(name: str) -> tuple[str, bool]:
    """A safe stem from an uploaded file name, and whether the name says OME-TIFF.

    Only the last path component counts (either slash); the suffix is dropped (the kind comes
    from the content); characters outside ``A-Z a-z 0-9 . _ -`` become ``_``; leading dots and
    ``..`` runs go; at most 80 characters; an empty result is ``image``.

    >>> sanitise_name("../../etc/passwd")
    ('passwd', False)
    >>> sanitise_name("C:\\\\data\\\\cell 01.ome.tif")
    ('cell_01', True)
    >>> sanitise_name("..")
    ('image', False)
    """
    text = _plain_letters(str(name)).replace("\\", "/")
    base = text.rsplit("/", 1)[-1]
    low = base.lower()
    ome = low.endswith((".ome.tif", ".ome.tiff"))
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif", ".png", ".jpeg", ".jpg"):
        if low.endswith(suffix):
            base = base[: -len(suffix)]
            break
    stem = _UNSAFE.sub("_", base)
    stem = re.sub(r"\.{2,}", ".", stem).strip("._-")
    stem = stem[:_MAX_STEM].rstrip("._-")
    return (stem or "image"), ome


def _plain_letters(text: str) -> str:
    """Compatibility forms and accents removed (``é`` → ``e``), other characters kept."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def unique_stem(stem: str, taken: Iterable[str]) -> str:
    """``stem``, or ``stem_2``, ``stem_3`` … the first not in ``taken`` (case-insensitive).

    >>> unique_stem("cell", ["cell", "CELL_2"])
    'cell_3'
    """
    used = {t.lower() for t in taken}
    if stem.lower() not in used:
        return stem
    k = 2
    while f"{stem}_{k}".lower() in used:
        k += 1
    return f"{stem}_{k}"


def stored_name(stem: str, kind: str, ome: bool) -> str:
    """The file name an upload is stored under."""
    return f"{stem}.ome.tif" if kind == "tiff" and ome else f"{stem}{_SUFFIX[kind]}"


def condition_of(relative_path: str | None) -> str:
    """The condition label of a file dropped inside a folder: its parent folder's safe name.

    >>> condition_of("plate1/control/a.tif"), condition_of("a.tif"), condition_of(None)
    ('control', 'all', 'all')
    """
    if not relative_path:
        return "all"
    parts = [p for p in str(relative_path).replace("\\", "/").split("/") if p]
    if len(parts) < 2:
        return "all"
    label = _UNSAFE.sub("_", _plain_letters(parts[-2])).strip("._-")[:_MAX_STEM]
    return label or "all"


def safe_child(folder: Path, name: str) -> Path:
    """``folder / name`` for a plain name, checked to stay inside ``folder``.

    Raises
    ------
    InputError
        For names with folders, ``..``, absolute paths or a result that leaves ``folder``.
    """
    pure = PurePosixPath(name)
    if (not name or pure.is_absolute() or len(pure.parts) != 1 or name in (".", "..")
            or "\\" in name or "\x00" in name):
        raise InputError(f"not a plain file name: {name!r}")
    path = folder / name
    root = folder.resolve()
    if path.resolve().parent != root:
        raise InputError(f"{name!r} would be written outside its folder")
    return path
