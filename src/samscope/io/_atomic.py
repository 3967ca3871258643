"""Atomic output: write to a hidden temporary path beside the target, then ``os.replace``."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from samscope.errors import InputError


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


@contextmanager
def atomic_target(path: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success move it onto ``path``.

    The temporary file or folder is removed when the body or the final move fails, so a failed
    write leaves neither a partial ``path`` nor a temporary file behind.

    Raises
    ------
    InputError
        When ``path`` exists and ``overwrite`` is False, or its folder does not exist.
    """
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise InputError(f"refusing to overwrite existing '{path}'; pass overwrite=True")
    if not path.parent.is_dir():
        raise InputError(f"cannot write '{path}': folder '{path.parent}' does not exist")
    token = uuid.uuid4().hex[:10]
    tmp = path.parent / f".{path.name}.{token}.tmp"
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            # os.replace cannot replace a non-empty folder: move the old one aside first.
            old = path.parent / f".{path.name}.{token}.old"
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)
                raise
            _remove(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise
