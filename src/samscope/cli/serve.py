"""``samscope serve``: the drag-and-drop web app in a browser (``samscope.web``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    host: Annotated[
        str,
        typer.Option(help="Address to bind; anything but localhost is reachable from other "
                          "machines and needs the printed access token."),
    ] = "127.0.0.1",
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Folder for sessions and the database (default: "
                                    "$SAMSCOPE_WEB_DIR, else ~/.samscope/web)."),
    ] = None,
    model: Annotated[str, typer.Option(help="Default model of new jobs.")] = (
        "samscope-generalist"),
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated models the page offers (registered names).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="Torch device (cpu, cuda, …).")] = None,
    threads: Annotated[
        int | None, typer.Option(help="Torch CPU threads (default: torch's).")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(help="Access token to require (default: random when --host is not "
                          "localhost, none on localhost)."),
    ] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload, MiB.")] = 2048.0,
    max_file_mb: Annotated[float, typer.Option(help="Largest file, MiB.")] = 1024.0,
    max_files: Annotated[int, typer.Option(help="Most files per upload.")] = 500,
) -> None:
    """Start the web app: drop images in a browser, watch them segment, read and download the
    results.

    Binds to localhost by default (only this machine can reach it). With another --host, for
    a lab workstation shared by a group, it prints a warning and the access token that every
    request must carry (the printed address includes it). Sessions, uploads and results live
    under --data; a restart resumes unfinished jobs.

    Examples:

        samscope serve

        samscope serve --port 8080 --threads 4

        samscope serve --host 0.0.0.0 --device cuda
    """
    from samscope.web.config import ServerConfig, default_data_dir
    from samscope.web.server import serve as run

    config = ServerConfig(
        data_dir=data if data is not None else default_data_dir(), host=host, port=port,
        token=token, model=model,
        models=tuple(m.strip() for m in (models or "").split(",") if m.strip()),
        device=device, threads=threads, max_upload_mb=max_upload_mb,
        max_file_mb=max_file_mb, max_files=max_files,
    )

    from samscope.models.registry import get_card

    for name in config.models:  # a registered name, checked before anything starts
        get_card(name)

    from samscope.cli import _interrupt

    def finished() -> str | None:
        if not config.database.is_file():
            return None
        from samscope.web.store import Store

        counts = Store(config.database).counts()
        left = counts["queued"] + counts["processing"]
        return (f"the web app's images: {counts['done']} done, {counts['failed']} failed, "
                f"{left} unfinished (samscope serve --data {config.data_dir} resumes them)")

    _interrupt.report(finished)

    def echo(line: str, warn: bool) -> None:
        typer.secho(line, err=warn, fg=typer.colors.YELLOW if warn else None)

    run(config, echo=echo)


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the application."""
    app.command("serve")(serve)
