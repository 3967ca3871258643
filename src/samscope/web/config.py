"""Settings of the web app (:class:`ServerConfig`) and the loopback rule that decides the token."""

from __future__ import annotations

import ipaddress
import math
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from samscope.errors import InputError

__all__ = ["ServerConfig", "default_data_dir", "is_loopback"]

#: Host names that mean this machine only.
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """True when ``host`` binds or names this machine only (``127.0.0.1``, ``::1``, ``localhost``).

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    h = host.strip().strip("[]").lower()
    if h in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def default_data_dir() -> Path:
    """Where ``samscope serve`` keeps its sessions: ``$SAMSCOPE_WEB_DIR``, else
    ``~/.samscope/web``."""
    env = os.environ.get("SAMSCOPE_WEB_DIR")
    return Path(env) if env else Path.home() / ".samscope" / "web"


@dataclass(frozen=True)
class ServerConfig:
    """How the web app runs (field names are the ``samscope serve`` flags).

    Parameters
    ----------
    data_dir : Path
        Folder for the database and the session folders (created).
    host : str
        Address the server binds to; anything but loopback requires the token.
    port : int
    token : str or None
        Access token every request must carry (``?token=``, ``Authorization: Bearer`` or the
        cookie the page sets). None: generated when ``host`` is not loopback, else not needed.
    model : str
        Default model of new jobs.
    models : tuple of str
        Models the page offers (and the only ones a job may name); empty: the default only.
    device : str, optional
        Torch device for the worker (default: the library's choice).
    threads : int, optional
        Torch CPU threads of the server (default: torch's).
    max_upload_mb : float
        Largest request body (all files of one upload together), MiB.
    max_file_mb : float
        Largest single file, MiB.
    max_files : int
        Most files in one upload.
    max_pixels : int
        Largest image (all planes together) a job accepts, in pixels.
    """

    data_dir: Path = field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    model: str = "samscope-generalist"
    models: tuple[str, ...] = ()
    device: str | None = None
    threads: int | None = None
    max_upload_mb: float = 2048.0
    max_file_mb: float = 1024.0
    max_files: int = 500
    max_pixels: int = 400_000_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if not 0 <= int(self.port) <= 65535:
            raise InputError(f"--port must be 0-65535, got {self.port}")
        for name in ("max_upload_mb", "max_file_mb"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"--{name.replace('_', '-')} must be a positive number, "
                                 f"got {value}")
        for name in ("max_files", "max_pixels"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1")
        if self.threads is not None and int(self.threads) < 1:
            raise InputError(f"--threads must be at least 1, got {self.threads}")
        if self.token is not None and len(self.token) < 8:
            raise InputError("--token must be at least 8 characters")
        models = tuple(dict.fromkeys((self.model, *self.models)))
        object.__setattr__(self, "models", models)

    @property
    def needs_token(self) -> bool:
        """Every request must carry the token (bound off loopback, or a token was given)."""
        return self.token is not None

    def with_token(self) -> ServerConfig:
        """This config with a random token when it binds off loopback and has none."""
        if self.token is None and not is_loopback(self.host):
            return replace(self, token=secrets.token_urlsafe(24))
        return self

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def database(self) -> Path:
        return self.data_dir / "samscope-web.sqlite"

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "sessions"
