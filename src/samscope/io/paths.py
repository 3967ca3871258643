"""Output locations checked before any model runs: never an input, always writable.

The one place for these checks: the CLI commands and the library batch runner
(:func:`samscope.pipeline.outputs.check_locations`) call them before they load a model or compute
anything, so a bad ``-o`` costs nothing and leaves nothing behind:

- :func:`check_not_input` — an output is never one of the command's inputs (the same file by
  path, symlink or hard link), nor inside an input folder (a zarr image), nor a folder holding
  an input, whatever ``--overwrite`` says;
- :func:`check_output_file` — an existing output needs ``--overwrite``, a folder in its place is
  refused, and its folder must exist or be creatable and be writable;
- :func:`check_output_dir` — the same for an output folder (a file in its place is refused).

Writability is *probed* (a hidden temporary file or folder is created and removed in the nearest
existing folder), so read-only file systems, ACLs and permission bits all count, for any user.
Nothing is created: folders are made only when there is something to write.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from samscope.errors import InputError

__all__ = [
    "check_not_input",
    "check_output_dir",
    "check_output_file",
    "nearest_existing",
    "same_path",
    "unwritable_reason",
]


def _key(path: Path) -> Path:
    return Path(os.path.abspath(path)).resolve()


def same_path(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file or folder (symlinks and hard links included)."""
    a, b = Path(a), Path(b)
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return _key(a) == _key(b)


def _inside(child: Path, parent: Path) -> bool:
    try:
        _key(child).relative_to(_key(parent))
    except ValueError:
        return False
    return True


def check_not_input(
    output: str | os.PathLike,
    inputs: Iterable[str | os.PathLike | None],
    what: str = "output",
    *,
    around: bool = True,
) -> None:
    """Refuse an output that would write over, into or (``around``) replace a folder holding an input.

    Raises
    ------
    InputError
        Naming the output and the input it clashes with.
    """
    output = Path(output)
    for item in inputs:
        if item is None:
            continue
        item = Path(item)
        if same_path(output, item):
            raise InputError(
                f"{what} {output} is the input {item}: samscope never writes over one of its "
                "inputs (whatever --overwrite says); choose another output"
            )
        if item.is_dir() and _inside(output, item):
            raise InputError(
                f"{what} {output} lies inside the input {item}: samscope never writes into an "
                "input; choose an output outside it"
            )
        if around and item.exists() and _inside(item, output):
            raise InputError(
                f"{what} {output} holds the input {item}: replacing it would destroy the input; "
                "choose another output"
            )


def nearest_existing(path: str | os.PathLike) -> Path:
    """``path`` if it exists, else its nearest existing parent (absolute)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def unwritable_reason(folder: Path) -> str | None:
    """Why this process cannot create files in ``folder`` (None: it can).

    Probed: a hidden temporary file is created and removed at once, so permission bits, ACLs
    and read-only file systems all count, for any user.
    """
    try:
        fd, name = tempfile.mkstemp(prefix=".samscope-probe-", dir=folder)
    except OSError as err:
        return err.strerror or type(err).__name__
    os.close(fd)
    os.unlink(name)
    return None


def _probe(folder: Path, target: Path, what: str) -> None:
    """InputError when ``folder`` cannot be written (see :func:`unwritable_reason`)."""
    reason = unwritable_reason(folder)
    if reason is not None:
        raise InputError(
            f"cannot write {what} {target}: folder {folder} is not writable ({reason}); "
            "choose another output location"
        )


def _check_parent(path: Path, what: str) -> None:
    parent = Path(os.path.abspath(path)).parent
    base = nearest_existing(parent)
    if not base.is_dir():
        raise InputError(
            f"cannot write {what} {path}: {base} is a file, not a folder; choose another output"
        )
    _probe(base, path, what)


def check_output_file(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    overwrite: bool = False,
    what: str = "output",
) -> Path:
    """Check that ``path`` can be written as a file (nothing is created).

    Parameters
    ----------
    path : path
        The output file.
    inputs : paths
        The command's inputs; ``path`` may be none of them (:func:`check_not_input`).
    overwrite : bool
        Whether an existing file may be replaced.
    what : str
        How messages name the output (``"output"``, ``"mask"``, …).

    Returns
    -------
    Path

    Raises
    ------
    InputError
        An input, an existing file without ``overwrite``, a folder, or an unwritable location.
    """
    path = Path(path)
    check_not_input(path, inputs, what)
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder; give a file name")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise InputError(f"{what} {path} exists; pass --overwrite to replace it")
    _check_parent(path, what)
    return path


def check_output_dir(
    path: str | os.PathLike,
    *,
    inputs: Iterable[str | os.PathLike | None] = (),
    what: str = "output folder",
) -> Path:
    """Check that ``path`` is, or can be created as, a writable folder (nothing is created).

    Raises
    ------
    InputError
        A file in its place (or in the place of one of its parents), an input, or a location
        that cannot be written.
    """
    path = Path(path)
    check_not_input(path, inputs, what, around=False)  # a folder of outputs may hold inputs
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path} exists and is not a folder")
    base = nearest_existing(path)
    if not base.is_dir():
        raise InputError(f"cannot create {what} {path}: {base} is a file, not a folder")
    _probe(base, path, what)
    return path
