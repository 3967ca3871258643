"""``samscope baseline``: classical segmentation (Otsu components, Otsu + watershed) of images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def baseline(
    method: Annotated[str, typer.Argument(help="otsu_watershed or otsu_components.")],
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Output folder, or a .tif file for one input."),
    ],
    smoothing: Annotated[
        float, typer.Option("--smoothing", help="Gaussian sigma in pixels before Otsu (0: none).")
    ] = 1.0,
    min_size: Annotated[
        int, typer.Option("--min-size", help="Smallest object (and hole) kept, in pixels.")
    ] = 10,
    axes: Annotated[
        str | None, typer.Option("--axes", help="Axes of the images, e.g. YX, ZYX, TYX.")
    ] = None,
    channel: Annotated[
        int | None, typer.Option("--channel", help="Channel to segment in multichannel images.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Redo images whose outputs exist.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar or per-image lines.")
    ] = False,
) -> None:
    """Segment images with a classical baseline (no model), for comparison with the models.

    otsu_components labels the connected components of the Otsu foreground (touching objects
    merge); otsu_watershed splits them by a watershed of the distance transform. Objects must
    be brighter than the background. For each image IMAGE.tif it writes
    OUTDIR/IMAGE_labels.tif (uint16, uint32 past 65,535 objects, with the pixel size; a label
    stack for stacks and time series, segmented plane by plane; images found below a folder or
    glob keep their sub-folders), or the -o file itself when it ends in .tif and there
    is one input. Images whose labels exist are skipped (an existing -o file is an error);
    --overwrite redoes them. Colour (RGB) images are averaged to grey.

    Examples:

        samscope baseline otsu_watershed cells.tif -o out/

        samscope baseline otsu_components data/*.tif -o out/ --min-size 50

        samscope baseline otsu_watershed nuclei.tif -o nuclei_labels.tif --smoothing 2
    """
    from samscope.cli._common import RunReport, summary_lines
    from samscope.pipeline import BaselineRequest, baseline_batch

    request = BaselineRequest(
        method,
        inputs,
        output,
        smoothing=smoothing,
        min_size=min_size,
        axes=axes,
        channel=channel,
        overwrite=overwrite,
    )
    with RunReport(f"baseline ({method})", done_text="already have labels", quiet=quiet) as report:
        result = baseline_batch(request, progress=report)
    for line in summary_lines(result):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add ``baseline`` to the application."""
    app.command("baseline")(baseline)
