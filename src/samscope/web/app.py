"""The web application: :func:`create_app` assembles the store, the worker, the routes and the
access rules into one ASGI app (Starlette).

Serve it with ``samscope serve`` (uvicorn) or mount it in any ASGI server; tests drive it with
``starlette.testclient.TestClient``. Nothing starts before the app's lifespan begins: the worker
thread starts (and requeues what a stopped server left unfinished) when the server starts, and
stops, putting the image in progress back in the queue, when it stops.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from samscope.web.config import ServerConfig, is_loopback
from samscope.web.edits import Editor
from samscope.web.store import Store
from samscope.web.views import PngCache
from samscope.web.worker import ModelPool, Worker

__all__ = ["Services", "create_app", "static_dir"]

log = logging.getLogger(__name__)


def static_dir() -> Path:
    """The page's files (``index.html``, ``app.js``, ``app.css``), shipped as package data."""
    return Path(str(resources.files("samscope") / "data" / "web"))


@dataclass
class Services:
    """What the routes share: settings, database, models, worker, editor, rendered PNGs."""

    config: ServerConfig
    store: Store
    pool: ModelPool
    worker: Worker
    editor: Editor
    pngs: PngCache


def create_app(config: ServerConfig, *, allowed_hosts: Iterable[str] = (),
               start_worker: bool = True):
    """The ASGI app for ``config``.

    Parameters
    ----------
    config : ServerConfig
        With its token already decided (:meth:`ServerConfig.with_token`).
    allowed_hosts : iterable of str
        Host names served besides loopback ones when bound to loopback (``testserver``).
    start_worker : bool
        Start the background worker with the app (tests of the queue alone turn it off).

    Returns
    -------
    ASGI application
        A :class:`samscope.web.security.Guard` around the Starlette app; the Starlette app is
        its ``app`` attribute and the :class:`Services` are ``app.app.state.services``.
    """
    try:
        from starlette.applications import Starlette
        from starlette.staticfiles import StaticFiles
    except ImportError as err:  # pragma: no cover - depends on the installation
        from samscope.errors import InputError

        raise InputError("the web app needs its extra: pip install 'samscope[web]'") from err
    from samscope.web.routes import error_handlers, routes
    from samscope.web.security import Guard

    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.sessions_dir.mkdir(parents=True, exist_ok=True)
    store = Store(config.database)
    pool = ModelPool(config.device)
    services = Services(config, store, pool, Worker(store, config, pool), Editor(), PngCache())

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if config.threads:
            import torch

            torch.set_num_threads(int(config.threads))
        if start_worker:
            n = services.worker.start()
            if n:
                log.info("resuming %d unfinished image(s)", n)
        try:
            yield
        finally:
            if start_worker:
                services.worker.stop()

    from starlette.routing import Mount

    app = Starlette(
        routes=[*routes(), Mount("/static", app=StaticFiles(directory=static_dir()),
                                 name="static")],
        exception_handlers=error_handlers(),
        lifespan=lifespan,
    )
    app.state.services = services
    return Guard(app, token=config.token, loopback_only=is_loopback(config.host),
                 allowed_hosts=allowed_hosts)
