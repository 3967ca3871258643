"""Entry point of the ``samscope`` command.

Each command group lives in its own module under :mod:`samscope.cli` and exposes
``register(app)``; heavy imports (torch, transformers) happen inside the commands, so
``samscope --help`` stays fast.

Exit statuses: 0 done; 2 a clear error about the input or the options (one line, no
traceback); 1 the system refused (a file that cannot be written, no memory left; one line) or
samscope is installed incompletely; 130 interrupted by Ctrl-C (SIGINT) and 143 by SIGTERM, each
with one line saying what had finished and that running the same command again resumes.
Anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import importlib
import signal
import sys

import typer

from samscope.cli import _interrupt
from samscope.errors import SamscopeError

#: Modules that contribute commands, in the order they appear in ``--help``.
COMMAND_MODULES = (
    "samscope.cli.core",  # info, embed, prompt
    "samscope.cli.segment",  # segment
    "samscope.cli.track",  # track (segment every frame, link into tracks with divisions)
    "samscope.cli.baseline",  # baseline (classical, no model)
    "samscope.cli.analyze",  # analyze (tables, plots, report from segment's outputs)
    "samscope.cli.models",  # models list|info|fetch|import
    "samscope.cli.simulate",  # simulate mitochondria|nuclei|cells
    "samscope.cli.evaluate",  # evaluate, evaluate-interactive
    "samscope.cli.train",
    "samscope.cli.serve",  # serve (the web app)
    "samscope.cli.annotate",  # annotate (napari annotators; gui extra)
)

#: Exit status of a run interrupted by each signal (128 + the signal number, as shells report).
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives (a BaseException: ``except Exception``
    in library code never swallows it, just like KeyboardInterrupt)."""


class CommandModuleError(RuntimeError):
    """A command module of samscope cannot be imported (a broken or partial installation)."""


def build_app() -> typer.Typer:
    """Assemble the Typer application from every command module.

    Raises
    ------
    CommandModuleError
        If one of :data:`COMMAND_MODULES` cannot be imported: a missing command is never
        silently left out of ``samscope``.
    """
    app = typer.Typer(
        name="samscope",
        help=(
            "Segment Anything for the microscope.\n\n"
            "Examples:\n\n"
            "  samscope info\n\n"
            "  samscope embed cells.tif -o cells.zarr\n\n"
            "  samscope prompt cells.tif --points 120,80 -o mask.tif"
        ),
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except Exception as err:  # noqa: BLE001 - any failure means commands are missing
            raise CommandModuleError(
                f"samscope's command module {name} cannot be imported "
                f"({type(err).__name__}: {err}); its commands are unavailable. samscope is "
                "installed incompletely or a dependency is missing: reinstall it "
                "(pip install --force-reinstall samscope)"
            ) from err
        module.register(app)
    return app


def _click_exceptions() -> tuple[type, ...]:
    """click's usage-error class, and the copy of click that typer (≥ 0.17) carries inside."""
    types: list[type] = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            types.append(importlib.import_module(module).ClickException)
        except (ImportError, AttributeError):
            pass
    return tuple(types)


def _on_sigterm(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    raise Terminated()


def _install_signal_handlers():
    """SIGTERM raises :class:`Terminated` (unless the caller had it ignored or handled).

    Returns the previous handler (restored when :func:`main` returns), or None when nothing
    was installed.
    """
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            return signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (e.g. called from a worker): keep the default
        pass
    return None


def _restore_signal_handlers(previous) -> None:
    if previous is not None:
        try:
            signal.signal(signal.SIGTERM, previous)
        except ValueError:  # pragma: no cover - not the main thread
            pass


def _interrupted(how: str, code: int) -> None:
    sys.stdout.flush()
    typer.secho(
        f"\ninterrupted ({how}): {_interrupt.summary()}; nothing partial is taken as finished — "
        "run the same command again to resume",
        err=True,
        fg=typer.colors.YELLOW,
    )
    sys.exit(code)


def _os_error_line(err: OSError) -> str:
    what = err.strerror or str(err) or type(err).__name__
    where = f": {err.filename}" if err.filename else ""
    if err.filename2:
        where += f" → {err.filename2}"
    return f"{what}{where}"


def main(argv: list[str] | None = None) -> None:
    """Run the command line; errors become one clear line and an exit status (module docstring)."""
    _interrupt.clear()
    previous = _install_signal_handlers()
    try:
        _run(argv)
    finally:  # called in-process (tests, scripts): leave the caller's SIGTERM handling as it was
        _restore_signal_handlers(previous)


def _run(argv: list[str] | None) -> None:
    try:
        try:
            app = build_app()
        except CommandModuleError as err:
            typer.secho(f"error: {err}", err=True, fg=typer.colors.RED)
            sys.exit(1)
        code = app(args=argv, standalone_mode=False)
    except SamscopeError as err:
        typer.secho(f"error: {err}", err=True, fg=typer.colors.RED)
        sys.exit(2)
    except typer.Exit as err:
        sys.exit(err.exit_code)
    except typer.Abort:
        _interrupted("Ctrl-C", EXIT_SIGINT)
    except KeyboardInterrupt:
        _interrupted("Ctrl-C", EXIT_SIGINT)
    except Terminated:
        _interrupted("SIGTERM", EXIT_SIGTERM)
    except MemoryError:
        typer.secho(
            "error: out of memory; try a smaller --tile-shape, fewer images at once, or a machine "
            "with more memory",
            err=True,
            fg=typer.colors.RED,
        )
        sys.exit(1)
    except OSError as err:  # the system refused: permissions, a full disk, a read-only folder
        typer.secho(f"error: {_os_error_line(err)}", err=True, fg=typer.colors.RED)
        sys.exit(1)
    except Exception as err:  # click usage errors carry their own exit code
        if isinstance(err, _click_exceptions()):
            err.show()
            sys.exit(err.exit_code)
        raise
    # typer turns Ctrl-C into a returned 130 and returns the status of typer.Exit(n)
    if code == EXIT_SIGINT:
        _interrupted("Ctrl-C", EXIT_SIGINT)
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
