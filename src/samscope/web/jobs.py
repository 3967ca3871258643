"""Turning an upload into a job: limits, content checks, safe names, files into the session.

:func:`accept_files` stores the files of one upload (already parsed, still in temporary files)
under their safe names and returns the accepted :class:`~samscope.web.uploads.Upload` records
and the rejected files with their reasons; :func:`parse_settings` checks the job's options.
A rejected file is never written into the session folder.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from samscope.errors import InputError, SamscopeError
from samscope.web.config import ServerConfig
from samscope.web.sessions import SessionFiles
from samscope.web.uploads import (
    Upload,
    condition_of,
    sanitise_name,
    sniff_kind,
    stored_name,
    unique_stem,
)

__all__ = ["IncomingFile", "JobOptions", "accept_files", "parse_options"]

#: Modes a job may name (``auto``: the model card's default).
JOB_MODES = ("auto", "amg", "ais", "apg", "distance", "foreground")

_session_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


def session_lock(sid: str) -> threading.Lock:
    """One lock per session: uploads to the same session pick their names one at a time."""
    with _guard:
        return _session_locks.setdefault(sid, threading.Lock())


@dataclass(frozen=True)
class IncomingFile:
    """A file of an upload: the name the browser sent, its folder path, and its data."""

    name: str
    relative_path: str | None
    file: BinaryIO
    size: int


@dataclass(frozen=True)
class JobOptions:
    """The options of a job (model, mode, object diameter in px or None for automatic)."""

    model: str
    mode: str
    diameter: float | None
    settings: dict[str, Any]


def parse_options(config: ServerConfig, model: str | None, mode: str | None,
                  diameter: str | None, settings: str | None) -> JobOptions:
    """Check a job's form fields.

    Raises
    ------
    InputError
        A model the server does not offer (no file paths: only registered names it lists), an
        unknown mode, a diameter that is not a positive number, settings that are not a JSON
        object.
    """
    model = (model or config.model).strip()
    if model not in config.models:
        raise InputError(f"model {model!r} is not offered by this server; choose one of: "
                         f"{', '.join(config.models)}")
    mode = (mode or "auto").strip().lower()
    if mode not in JOB_MODES:
        raise InputError(f"unknown mode {mode!r}; modes are: {', '.join(JOB_MODES)}")
    value: float | None = None
    text = (diameter or "").strip().lower()
    if text not in ("", "auto", "automatic"):
        try:
            value = float(text)
        except ValueError:
            raise InputError(f"object size must be a number of pixels or 'auto', got "
                             f"{diameter!r}") from None
        if not (math.isfinite(value) and 1 <= value <= 10000):
            raise InputError(f"object size must be 1–10000 pixels, got {diameter!r}")
    parsed: dict[str, Any] = {}
    if settings and settings.strip():
        try:
            parsed = json.loads(settings)
        except ValueError as err:
            raise InputError(f"settings must be a JSON object: {err}") from None
        if not isinstance(parsed, dict) or not all(isinstance(k, str) for k in parsed):
            raise InputError("settings must be a JSON object of field names to values")
    return JobOptions(model, mode, value, parsed)


def accept_files(files: SessionFiles, incoming: Sequence[IncomingFile], taken: Sequence[str],
                 config: ServerConfig) -> tuple[list[Upload], list[dict[str, str]]]:
    """Store the acceptable files of an upload; returns (accepted, rejected with reasons).

    Checks, in order: the file's size (``max_file_mb``), its kind by content (TIFF, PNG,
    JPEG), then that samscope can read it as an image. The stored name is the sanitised stem,
    made unique in the session, with the suffix of the file's kind.
    """
    from samscope.io import atomic_target, read_image

    accepted: list[Upload] = []
    rejected: list[dict[str, str]] = []
    used = list(taken)
    for item in incoming:
        shown = (item.name or "").replace("\\", "/").rsplit("/", 1)[-1] or "(no name)"
        if item.size > config.max_file_bytes:
            rejected.append({"name": shown, "reason": f"larger than this server's limit of "
                                                      f"{config.max_file_mb:g} MiB per file"})
            continue
        item.file.seek(0)
        kind = sniff_kind(item.file.read(16))
        if kind is None:
            rejected.append({"name": shown, "reason": "not a TIFF, PNG or JPEG image (checked by "
                                                      "its content)"})
            continue
        stem, ome = sanitise_name(item.name)
        stem = unique_stem(stem, used)
        filename = stored_name(stem, kind, ome)
        target = files.upload(stem, filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        item.file.seek(0)
        with atomic_target(target, overwrite=False) as tmp, open(tmp, "wb") as out:
            shutil.copyfileobj(item.file, out, 1 << 20)
        try:
            read_image(target, lazy=True)
        except (SamscopeError, OSError, ValueError) as err:
            shutil.rmtree(target.parent, ignore_errors=True)
            rejected.append({"name": shown, "reason": f"cannot be read as an image: "
                                                      f"{_short(err, target)}"})
            continue
        used.append(stem)
        accepted.append(Upload(shown, stem, filename, kind, condition_of(item.relative_path),
                               item.size))
    return accepted, rejected


def _short(err: Exception, path) -> str:
    """The error's message without the server's folders (only the stored file name)."""
    text = str(err).replace(str(path), path.name).replace(str(path.parent), "")
    return text.split("\n", 1)[0][:300]


def check_count(n: int, config: ServerConfig) -> None:
    """Raise InputError when an upload has no files or more than ``max_files``."""
    if n == 0:
        raise InputError("no files in the upload (send them as form field 'files')")
    if n > config.max_files:
        raise InputError(f"{n} files in one upload; this server takes at most "
                         f"{config.max_files}")
