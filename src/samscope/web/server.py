"""Running the app: :func:`serve` (uvicorn) and the lines ``samscope serve`` prints."""

from __future__ import annotations

from collections.abc import Callable

from samscope.web.config import ServerConfig, is_loopback

__all__ = ["address_lines", "serve"]


def _url(config: ServerConfig) -> str:
    host = config.host
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    if ":" in shown:
        shown = f"[{shown}]"
    url = f"http://{shown}:{config.port}/"
    return url + (f"?token={config.token}" if config.token else "")


def address_lines(config: ServerConfig) -> list[tuple[str, bool]]:
    """What to tell the user on start: ``(line, is_warning)`` pairs."""
    lines = [(f"samscope web app: {_url(config)}", False),
             (f"data: {config.data_dir}", False)]
    if not is_loopback(config.host):
        lines.insert(0, (f"warning: serving on {config.host}, reachable from other machines; "
                         "every request must carry the access token below (anyone with it can "
                         "use this server and see what is uploaded)", True))
        lines.append((f"access token: {config.token}", True))
    return lines


def serve(config: ServerConfig, *, echo: Callable[[str, bool], None] | None = None,
          log_level: str = "warning") -> None:
    """Serve ``config`` until Ctrl-C (the worker stops and requeues its image).

    Parameters
    ----------
    config : ServerConfig
        A token is generated when it binds off loopback without one.
    echo : callable (line, is_warning), optional
        Where the address lines go (default: print).
    log_level : str
        uvicorn's log level.
    """
    try:
        import uvicorn
    except ImportError as err:  # pragma: no cover - depends on the installation
        from samscope.errors import InputError

        raise InputError("samscope serve needs the web extra: pip install 'samscope[web]'") \
            from err
    from samscope.web.app import create_app

    config = config.with_token()
    app = create_app(config)
    for line, warn in address_lines(config):
        (echo or (lambda text, _w: print(text)))(line, warn)
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level,
                timeout_graceful_shutdown=10)


class ThreadedServer:
    """The app served by uvicorn in a background thread (tests, benchmarks, notebooks).

    Parameters
    ----------
    config : ServerConfig
        Its ``port`` 0 picks a free port (:attr:`url` has the one chosen).

    Examples
    --------
    >>> with ThreadedServer(ServerConfig(data_dir="d", port=0)) as server:  # doctest: +SKIP
    ...     print(server.url)
    """

    def __init__(self, config: ServerConfig, **app_kwargs) -> None:
        self.config = config.with_token()
        self.app_kwargs = app_kwargs
        self._server = None
        self._thread = None
        self.port = config.port

    @property
    def url(self) -> str:
        host = "127.0.0.1" if is_loopback(self.config.host) else self.config.host
        return f"http://{host}:{self.port}"

    def __enter__(self) -> ThreadedServer:
        import socket
        import threading
        import time

        import uvicorn

        from samscope.web.app import create_app

        if not self.port:
            with socket.socket() as s:
                s.bind((self.config.host, 0))
                self.port = s.getsockname()[1]
        app = create_app(self.config, **self.app_kwargs)
        cfg = uvicorn.Config(app, host=self.config.host, port=self.port, log_level="warning",
                             lifespan="on")
        self._server = uvicorn.Server(cfg)
        self._thread = threading.Thread(target=self._server.run, daemon=True,
                                        name="samscope-web-server")
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(30)
