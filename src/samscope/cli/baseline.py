"""``samscope baseline``: classical segmentation (Otsu components, Otsu + watershed) of images."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from samscope.cli._common import outputs_for, planes_of
from samscope.errors import InputError

#: Output suffixes that make ``-o`` a label file (one input) rather than a folder.
_FILE_SUFFIXES = (".tif", ".tiff")


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
    OUTDIR/IMAGE_labels.tif (uint16, uint32 past 65,535 objects; a label stack for stacks and
    time series, segmented plane by plane), or the -o file itself when it ends in .tif and there
    is one input. Images whose labels exist are skipped (an existing -o file is an error);
    --overwrite redoes them. Colour (RGB) images are averaged to grey.

    Examples:

        samscope baseline otsu_watershed cells.tif -o out/

        samscope baseline otsu_components data/*.tif -o out/ --min-size 50

        samscope baseline otsu_watershed nuclei.tif -o nuclei_labels.tif --smoothing 2
    """
    import numpy as np
    from tqdm.auto import tqdm

    from samscope.instance.classical import BASELINES
    from samscope.io import list_images, read_image, write_labels

    if method not in BASELINES:
        raise InputError(
            f"unknown baseline {method!r}; choose one of: {', '.join(sorted(BASELINES))}"
        )
    run = BASELINES[method]
    files = list_images(inputs)
    if output.suffix.lower() in _FILE_SUFFIXES:
        if len(files) != 1:
            raise InputError(
                f"output {output} is a file but {len(files)} images were given; "
                "pass a folder as -o for several images"
            )
        if output.exists() and not overwrite:
            raise InputError(f"{output} exists; pass --overwrite to replace it")
        targets = [output]
    else:
        if output.exists() and not output.is_dir():
            raise InputError(f"output {output} exists and is not a folder")
        targets = [outputs_for(f, output)["labels"] for f in files]
    todo = [(f, t) for f, t in zip(files, targets, strict=True) if overwrite or not t.exists()]
    skipped = len(files) - len(todo)
    if skipped:
        typer.echo(
            f"{skipped} of {len(files)} image(s) already have labels (use --overwrite to redo)"
        )
    total = 0
    for f, target in tqdm(
        todo, desc=f"baseline ({method})", unit="image", disable=quiet or len(todo) < 2
    ):
        image = read_image(f, axes=axes, channel=channel)
        planes, stacked = planes_of(image)
        label_planes = []
        for plane in tqdm(
            planes, desc="planes", unit="plane", leave=False, disable=quiet or len(planes) < 2
        ):
            label_planes.append(run(_grey(plane, image), smoothing=smoothing, min_size=min_size))
        labels = np.stack(label_planes) if stacked else label_planes[0]
        out_axes = image.axes.replace("C", "")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_labels(
            target,
            labels,
            axes=out_axes if len(out_axes) == labels.ndim else None,
            overwrite=True,
        )
        n = sum(int(lp.max()) for lp in label_planes)
        total += n
        if not quiet:
            typer.echo(f"{f.name}: {n} object(s) → {target}")
    typer.echo(f"done: {len(todo)} image(s) segmented with {method}, {total} object(s)")


def _grey(plane, image):
    """A 2-D plane: colour (RGB) planes averaged; other channel axes are an error."""
    import numpy as np

    plane = np.asarray(plane)
    if plane.ndim == 2:
        return plane
    if image.rgb:
        return plane[..., :3].astype(np.float32).mean(axis=-1)
    raise InputError(
        f"{image.path}: the baselines segment one channel; the image has {plane.shape[-1]} "
        "channels (axis C): pass --channel N"
    )


def register(app: typer.Typer) -> None:
    """Add ``baseline`` to the application."""
    app.command("baseline")(baseline)
