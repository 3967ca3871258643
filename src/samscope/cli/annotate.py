"""``samscope annotate``: open napari with an image and the matching annotator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def annotate(
    image: Annotated[Path, typer.Argument(help="Image file, zarr store, or a folder of images.")],
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Registered model name or checkpoint file "
                     "(default: samscope-generalist)."),
    ] = None,
    mode: Annotated[
        str,
        typer.Option("--mode", help="auto (from the axes; a folder: series), 2d, 3d, track, series."),
    ] = "auto",
) -> None:
    """Annotate an image interactively in napari (needs the gui extra).

    YX / RGB images open the 2-D annotator, ZYX volumes the 3-D annotator, TYX time-lapses
    the tracking annotator and a folder the image-series annotator; --mode forces one.

    Examples:

        samscope annotate examples/nuclei.tif

        samscope annotate volume.tif --mode 3d --model samscope-lm

        samscope annotate images/ --mode series
    """
    from samscope.errors import InputError

    try:
        import qtpy  # noqa: F401

        import napari  # noqa: F401
    except ImportError as err:
        raise InputError(
            f"the annotators need napari and a Qt binding ({err}); install them with "
            'pip install "samscope[gui]"'
        ) from None
    from samscope.napari.launch import open_annotator

    open_annotator(image, model=model, mode=mode)
    import napari

    napari.run()


def register(app: typer.Typer) -> None:
    """Add ``annotate`` to the application."""
    app.command("annotate")(annotate)
