"""File hashes of model weights: ``"<algorithm>:<hex>"`` strings, and copying while hashing.

A published hash is written ``"xxh128:<hex>"`` (also ``sha256``, ``md5``, any :mod:`hashlib`
name; no prefix means ``sha256``, as in ``pooch``). Files are read in 1 MiB chunks.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: Bytes read at a time.
CHUNK = 1 << 20


def split_hash(known_hash: str) -> tuple[str, str]:
    """``"xxh128:ABC"`` → ``("xxh128", "abc")`` (no prefix: ``sha256``)."""
    algorithm, _, digest = known_hash.rpartition(":")
    return (algorithm or "sha256").lower(), digest.lower()


def hasher(algorithm: str):
    """A fresh hash object of ``algorithm`` (``xxh*`` from :mod:`xxhash`, else :mod:`hashlib`)."""
    if algorithm.startswith("xxh"):
        import xxhash

        try:
            return getattr(xxhash, algorithm)()
        except AttributeError:
            raise ValueError(f"unknown xxhash algorithm {algorithm!r}") from None
    return hashlib.new(algorithm)


def file_hash(path: str | Path, algorithm: str = "xxh128") -> str:
    """Hash of a file, read in chunks, as ``"<algorithm>:<hex>"``."""
    h = hasher(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return f"{algorithm}:{h.hexdigest()}"


def hash_matches(path: Path, known_hash: str) -> tuple[bool, str]:
    """Whether ``path`` has ``known_hash``, and its actual ``"<algorithm>:<hex>"``."""
    algorithm, digest = split_hash(known_hash)
    actual = file_hash(path, algorithm)
    return actual.split(":", 1)[1] == digest, actual


@contextmanager
def hashed_copy(file: str | Path, folder: Path, algorithms: Iterable[str]) -> Iterator[tuple[Path, dict]]:
    """Copy ``file`` to a temporary file in ``folder``, hashing it on the way.

    Yields the temporary file and ``{algorithm: hex digest}``; the caller moves the file to its
    place (:func:`os.replace`, atomic on one file system) once it knows where it belongs. A copy
    still there when the block ends (not moved, or an error) is removed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    hashers = {a: hasher(a) for a in algorithms}
    fd, tmp_name = tempfile.mkstemp(prefix=".import-", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, open(file, "rb") as src:
            while chunk := src.read(CHUNK):
                for h in hashers.values():
                    h.update(chunk)
                out.write(chunk)
        yield tmp, {a: h.hexdigest() for a, h in hashers.items()}
    finally:
        tmp.unlink(missing_ok=True)
