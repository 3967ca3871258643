"""Entry point of the ``samscope`` command.

Each command group lives in its own module under :mod:`samscope.cli` and exposes
``register(app)``; heavy imports (torch, transformers) happen inside the commands, so
``samscope --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

from samscope.errors import SamscopeError

#: Modules that contribute commands, in the order they appear in ``--help``.
COMMAND_MODULES = (
    "samscope.cli.core",  # info, embed, prompt
    "samscope.cli.segment",  # segment
    "samscope.cli.baseline",  # baseline (classical, no model)
    "samscope.cli.models",  # models list|info|fetch|import
    "samscope.cli.simulate",  # simulate mitochondria|nuclei|cells
    "samscope.cli.evaluate",  # evaluate, evaluate-interactive
    "samscope.cli.train",
)


def build_app() -> typer.Typer:
    """Assemble the Typer application from every command module."""
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
        except ModuleNotFoundError as err:  # a command module not written yet
            if err.name == name:
                continue
            raise
        module.register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Run the command line; library errors become one clear line and exit code 2."""
    app = build_app()
    try:
        app(args=argv, standalone_mode=False)
    except SamscopeError as err:
        typer.secho(f"error: {err}", err=True, fg=typer.colors.RED)
        sys.exit(2)
    except typer.Exit as err:
        sys.exit(err.exit_code)
    except typer.Abort:
        sys.exit(130)
    except Exception as err:  # click usage errors carry their own exit code
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
