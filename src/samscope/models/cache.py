"""samscope's model cache: where weights files live, and downloading one into it.

The cache is ``$SAMSCOPE_CACHE_DIR`` (read on every call), else the per-user cache of ``pooch``;
weights live in its ``models`` folder. Messages for a missing file or a failed download name the
URLs, the cache path and the ``samscope models import`` command for machines without internet.
"""

from __future__ import annotations

import os
from pathlib import Path

from samscope.errors import CheckpointError, ModelNotFoundError
from samscope.models.builtin_cards import RemoteFile


def cache_dir() -> Path:
    """samscope's cache: ``$SAMSCOPE_CACHE_DIR`` if set, else the per-user cache of ``pooch``.

    The environment variable is read on every call. Model files live in ``cache_dir() / "models"``.
    """
    env = os.environ.get("SAMSCOPE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("samscope"))


def models_dir() -> Path:
    """Where model files are cached (``cache_dir() / "models"``)."""
    return cache_dir() / "models"


def cached_path(file: RemoteFile) -> Path:
    """Where ``file`` lives in the cache (whether or not it is there)."""
    return models_dir() / file.filename


def import_command(name: str) -> str:
    """The command that puts a manually downloaded file of model ``name`` in place."""
    return f"samscope models import FILE --name {name}"


def _what(name: str, file: RemoteFile) -> str:
    return f"the instance decoder of model {name!r}" if file.role == "decoder" else f"model {name!r}"


def _urls(file: RemoteFile) -> str:
    return " or ".join(file.urls) if file.urls else "(no download location)"


def missing_message(name: str, file: RemoteFile) -> str:
    """The error for a file of model ``name`` that is not in the cache."""
    return (
        f"{_what(name, file)} is not in the cache ({cached_path(file)}). "
        f"Download it with `samscope models fetch {name}` (or load_model(..., download=True)) "
        f"from {_urls(file)}; offline, download that URL on another machine, then run "
        f"`{import_command(name)}`."
    )


def download_failed_message(name: str, file: RemoteFile, errors: list[str]) -> str:
    """The error for a download of a file of model ``name`` that failed with ``errors``."""
    return (
        f"could not download {_what(name, file)} from {_urls(file)} into {cached_path(file)} "
        f"({'; '.join(errors)}). Offline: download that URL on another machine, then run "
        f"`{import_command(name)}`."
    )


def download(name: str, file: RemoteFile, *, progress: bool = True) -> Path:
    """Download ``file`` of model ``name`` into the cache, trying its URLs in order.

    A file already cached with the right hash is not downloaded again (``pooch``).

    Raises
    ------
    ModelNotFoundError
        If every URL fails (no network, URL gone), naming the URLs and the import command.
    CheckpointError
        If the downloaded file does not have the published hash.
    """
    import pooch

    if not file.urls:
        raise ModelNotFoundError(download_failed_message(name, file, ["no URL"]))
    errors = []
    for url in file.urls:
        try:
            path = pooch.retrieve(
                url,
                known_hash=file.known_hash,
                fname=file.filename,
                path=models_dir(),
                progressbar=progress,
            )
            return Path(path)
        except ValueError as err:
            if "hash" not in str(err).lower():  # e.g. an unsupported URL scheme
                errors.append(f"{type(err).__name__}: {err}")
                continue
            raise CheckpointError(  # pooch: the downloaded file does not have the known hash
                f"the file downloaded from {url} for {name!r} does not have the published hash "
                f"{file.known_hash}: {err}"
            ) from err
        except Exception as err:  # requests' errors are OSErrors; anything else is as fatal
            errors.append(f"{type(err).__name__}: {err}")
    raise ModelNotFoundError(download_failed_message(name, file, errors))
