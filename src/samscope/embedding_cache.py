"""The on-disk embeddings cache: a zarr group that verifies itself.

Layout (format :data:`FORMAT_VERSION`): group attribute ``samscope_signature`` (what the
embeddings were computed from, see :mod:`samscope.embeddings`), array ``features``
``(planes, tiles, C, g, g)`` float32 with one chunk per piece, and array ``done``
``(planes, tiles)`` uint8 with one chunk per plane — the completeness record, written after the
features it flags. Every chunk carries a crc32c checksum (zarr's ``crc32c`` codec) and missing
feature chunks read as NaN (the fill value; an encoder never outputs NaN), so damaged, truncated
and missing pieces are all told apart from good ones on read. A new cache is built beside its
path and renamed onto it, so no half-made cache ever has the right name.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import CacheMismatchError

__all__ = [
    "FORMAT_VERSION",
    "cache_progress",
    "check_cache_location",
    "differences",
    "new_cache",
    "open_cache",
    "piece_name",
    "read_flags",
    "read_piece",
    "remove_new_cache",
    "stored_signature",
    "verify_cache",
]

log = logging.getLogger(__name__)

#: Bump when the stored layout or preprocessing changes; part of the cache signature.
#: 2: crc32c checksums on every chunk, NaN fill for features, one ``done`` chunk per plane.
FORMAT_VERSION = 2


def differences(stored: dict, wanted: dict) -> list[str]:
    """``"key: cache has …, expected …"`` for every signature entry that differs."""
    keys = sorted(set(stored) | set(wanted))
    skip = {"samscope_version"}
    return [
        f"{k}: cache has {stored.get(k)!r}, expected {wanted.get(k)!r}"
        for k in keys
        if k not in skip and _jsonable(stored.get(k)) != _jsonable(wanted.get(k))
    ]


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value))


def piece_name(plane: int, tile: int) -> str:
    """How messages name one stored embedding (with its chunk's path in the store)."""
    return f"the piece of plane {plane}, tile {tile} (chunk features/c/{plane}/{tile}/0/0/0)"


def read_piece(features: Any, plane: int, tile: int) -> tuple[np.ndarray | None, str | None]:
    """One stored embedding, or None and what is wrong with it (damaged, missing)."""
    try:
        values = np.array(features[plane, tile], dtype=np.float32)
    except Exception as err:  # noqa: BLE001 - crc32c mismatch, truncated or unreadable chunk
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "checksum" in first.lower():
            first = "crc32c checksum mismatch"
        return None, f"damaged ({first[:120]})"
    if not np.isfinite(values).all():
        return None, "missing" if np.isnan(values).all() else "damaged (non-finite values)"
    return values, None


def read_flags(done: Any, plane: int) -> np.ndarray | None:
    """The completeness flags of one plane, or None when that record is damaged."""
    try:
        return np.asarray(done[plane]).astype(bool)
    except Exception:  # noqa: BLE001 - a damaged completeness chunk
        return None


def verify_cache(path: Path, features: Any, done: Any) -> tuple[np.ndarray, list[str]]:
    """Which pieces of an open cache are stored intact; what was found damaged or missing.

    Reads every piece the completeness record flags done. A damaged record of a plane is rebuilt
    from its pieces (an intact, finite chunk was written whole: zarr writes chunks atomically).
    """
    n_planes, n_tiles = done.shape
    valid = np.zeros((n_planes, n_tiles), bool)
    problems: list[str] = []
    for p in range(n_planes):
        flags = read_flags(done, p)
        for t in range(n_tiles):
            if flags is not None and not flags[t]:
                continue
            _, problem = read_piece(features, p, t)
            valid[p, t] = problem is None
            if problem is not None and flags is not None:
                problems.append(f"{piece_name(p, t)} was {problem}")
        if flags is None:
            problems.append(f"the completeness record of plane {p} (chunk done/c/{p}/0) was damaged")
            done[p] = valid[p].astype(np.uint8)
    return valid, problems


def new_cache(path: Path, signature: dict, shape: tuple[int, ...]) -> None:
    """Create an empty cache atomically: built beside ``path``, then renamed onto it."""
    import shutil
    import uuid

    import zarr
    from zarr.codecs import Crc32cCodec, ZstdCodec

    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    _MADE_FOLDERS[path] = made  # removed again (when empty) if this call fails
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:10]}.tmp"
    try:
        group = zarr.open_group(str(tmp), mode="w-", attributes={"samscope_signature": signature})
        group.create_array(
            "features",
            shape=shape,
            chunks=(1, 1) + shape[2:],
            dtype="float32",
            fill_value=float("nan"),  # a missing chunk reads as NaN, never as plausible zeros
            compressors=(ZstdCodec(level=0), Crc32cCodec()),
        )
        group.create_array(
            "done",
            shape=shape[:2],
            chunks=(1, shape[1]),
            dtype="uint8",
            fill_value=0,
            compressors=(Crc32cCodec(),),
        )
        import os

        os.rename(tmp, path)  # fails (nothing lost) if another process created path meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if not path.exists():
            remove_new_cache(path)
        raise


#: Folders :func:`new_cache` had to create for a cache, per cache path (for clean failures).
_MADE_FOLDERS: dict[Path, list[Path]] = {}


def remove_new_cache(path: Path) -> None:
    """Remove a cache this process created, and the folders made for it when they are empty."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    for folder in _MADE_FOLDERS.pop(path, []):  # deepest first
        try:
            folder.rmdir()
        except OSError:
            break


def stored_signature(path: Path) -> dict:
    """The signature of an existing cache (CacheMismatchError: not a samscope cache)."""
    import zarr

    if not path.is_dir():
        raise CacheMismatchError(
            f"{path} exists and is not an embeddings cache (a zarr folder); choose another path"
        )
    try:
        group = zarr.open_group(str(path), mode="r")
        stored = dict(group.attrs.get("samscope_signature", {}))
    except Exception as err:  # noqa: BLE001
        raise CacheMismatchError(
            f"embeddings cache {path} is damaged or not a samscope cache ({err}); "
            "delete it or choose another path"
        ) from err
    if not stored:
        raise CacheMismatchError(
            f"{path} is not a samscope embeddings cache (no samscope signature); "
            "delete it or choose another path"
        )
    return stored


def check_cache_location(path: str | Path) -> bool:
    """Check, before anything is computed, that ``path`` can hold an embeddings cache.

    Returns
    -------
    bool
        Whether a samscope cache is already there.

    Raises
    ------
    CacheMismatchError
        ``path`` exists but is a file or another kind of folder.
    """
    path = Path(path)
    if not path.exists():
        return False
    stored_signature(path)
    return True


def cache_progress(path: str | Path) -> tuple[int, int] | None:
    """``(pieces done, pieces in all)`` of a cache from its completeness record; None if unreadable."""
    import zarr

    try:
        done = zarr.open_group(str(path), mode="r")["done"]
        total = 0
        for p in range(done.shape[0]):
            flags = read_flags(done, p)
            total += int(flags.sum()) if flags is not None else 0
        return total, int(np.prod(done.shape))
    except Exception:  # noqa: BLE001
        return None


def open_cache(path: Path, signature: dict, shape: tuple[int, ...]):
    """Open (verifying it) or create the zarr cache.

    Returns ``(features, done, valid, problems, created)``: the arrays, which pieces are stored
    intact, what was damaged or missing, and whether this call created the cache.
    """
    import zarr

    created = False
    if not path.exists():
        try:
            new_cache(path, signature, shape)
            created = True
        except FileExistsError:  # another process created it meanwhile: open theirs
            pass
        except OSError:
            if not path.exists():
                raise
    stored = stored_signature(path)
    if stored.get("format_version") != FORMAT_VERSION:
        raise CacheMismatchError(
            f"embeddings cache {path} was written by another samscope cache format "
            f"({stored.get('format_version')!r}, this samscope writes {FORMAT_VERSION}, with "
            "checksums); delete it and run again"
        )
    diffs = differences(stored, signature)
    if diffs:
        raise CacheMismatchError(
            f"embeddings cache {path} was made for other data or settings:\n  "
            + "\n  ".join(diffs)
            + "\ndelete it or choose another path"
        )
    try:
        group = zarr.open_group(str(path), mode="r+")
        features = group["features"]
        done = group["done"]
    except Exception as err:  # noqa: BLE001
        raise CacheMismatchError(
            f"embeddings cache {path} is damaged ({type(err).__name__}: {err}); "
            "delete it and run again"
        ) from err
    if tuple(features.shape) != shape or tuple(done.shape) != shape[:2]:
        raise CacheMismatchError(
            f"embeddings cache {path} has features of shape {tuple(features.shape)}, expected {shape}; "
            "delete it or choose another path"
        )
    if created:
        valid, problems = np.zeros(shape[:2], bool), []
    else:
        valid, problems = verify_cache(path, features, done)
    return features, done, valid, problems, created
