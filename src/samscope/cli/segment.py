"""``samscope segment``: automatic instance segmentation of files, folders and globs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from samscope.cli._common import PrecisionOpt
from samscope.models.registry import DEFAULT_MODEL


def segment(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output folder (default: beside each image)."),
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="auto, amg, ais, apg, distance, foreground or concept.")
    ] = "auto",
    text: Annotated[
        str | None,
        typer.Option("--text", help="--mode concept (SAM3): the objects to find, e.g. nucleus."),
    ] = None,
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Registered model name or checkpoint file (samscope models list)."
        ),
    ] = DEFAULT_MODEL,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Weights file for --model.")
    ] = None,
    tile_shape: Annotated[
        str | None, typer.Option("--tile-shape", help="Tile size, e.g. 1024.")
    ] = None,
    halo: Annotated[
        str | None, typer.Option("--halo", help="Tile overlap per side (> largest object).")
    ] = None,
    pixel_size: Annotated[
        float | None,
        typer.Option("--pixel-size", help="Pixel size in nm (default: from the file)."),
    ] = None,
    diameter: Annotated[
        float | None,
        typer.Option(
            "--diameter", help="Object diameter in pixels (default: estimated, where the model can)."
        ),
    ] = None,
    diameter_um: Annotated[
        float | None,
        typer.Option("--diameter-um", help="Object diameter in µm (needs the pixel size)."),
    ] = None,
    axes: Annotated[
        str | None, typer.Option("--axes", help="Axes of the images, e.g. YX, ZYX, TYX.")
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set", "-s", help="Mode setting FIELD=VALUE, e.g. -s min_size=50 (repeatable)."
        ),
    ] = None,
    overlay: Annotated[
        bool, typer.Option(help="Also write IMAGE_overlay.png (objects outlined; 2-D images).")
    ] = True,
    overwrite: Annotated[bool, typer.Option(help="Redo images whose outputs exist.")] = False,
    per_plane: Annotated[
        bool,
        typer.Option(
            "--per-plane", help="Volumes: label each plane on its own (no 3-D objects)."
        ),
    ] = False,
    device: Annotated[str | None, typer.Option("--device", help="cpu or cuda.")] = None,
    precision: PrecisionOpt = None,
    dask: Annotated[
        bool, typer.Option("--dask", help="Blockwise on a Dask cluster (local by default).")
    ] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", help="--dask: local worker processes.")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="--dask: address of a running scheduler.")
    ] = None,
    cluster_config: Annotated[
        Path | None,
        typer.Option("--cluster-config", help="--dask: dask-jobqueue TOML (SLURM/LSF/PBS)."),
    ] = None,
    block_size: Annotated[
        str | None,
        typer.Option("--block-size", help="Blockwise: block core size, e.g. 2048 or 32,512,512."),
    ] = None,
) -> None:
    """Segment every object in images automatically.

    For each image IMAGE.tif it writes OUTDIR/IMAGE_labels.tif (uint16, uint32 past 65,535
    objects, with the pixel size; a label stack for stacks and time series, segmented plane by
    plane), OUTDIR/IMAGE_objects.csv (id, area, centroid, box, score; a plane column for
    stacks), OUTDIR/IMAGE_segmentation.json (model, mode, settings, pixel size, object diameter
    and rescale factor used), OUTDIR/IMAGE_overlay.png (2-D images: the objects outlined on the
    image) and, for modes whose objects may overlap (amg, apg, foreground) on 2-D images,
    OUTDIR/IMAGE_masks.tif (one mask per object). Without -o the outputs go beside each image;
    images found below a folder or glob keep their sub-folders under -o, and two inputs that
    would write the same names are an error before anything runs. Images whose outputs exist
    are skipped, so an interrupted folder run resumes; --overwrite redoes them.

    Volumes (ZYX, from the file or --axes ZYX) get 3-D labels: the planes are segmented and
    objects linked through z by overlap (one id per nucleus across planes; out-of-focus planes
    where an object has faded are left out); --per-plane keeps each plane's own ids.

    --diameter (pixels) or --diameter-um (µm, converted with the pixel size) gives the typical
    object size to models that rescale to it; the diameter used is printed per image.

    The default model, samscope-lm (nuclei, label-free cells), ships with samscope and works
    offline; samscope-mito segments mitochondria (foreground mode, give --pixel-size if the
    file does not carry it). Larger models: samscope models list.

    Examples:

        samscope segment nuclei.tif

        samscope segment mito.tif -o out/ --model samscope-mito --pixel-size 80

        samscope segment cells.tif -o out/ --model vit_b_lm

        samscope segment data/*.tif -o out/ --mode apg -s min_size=50

        samscope segment big.tif -o out/ --tile-shape 1024 --halo 128

        samscope segment "plates/**/*.tif" -o out/ --diameter-um 12

        samscope segment mito.tif -o out/ --mode foreground --pixel-size 80

    SAM3 (weights imported by you: samscope models import FOLDER --name sam3) finds every object
    of a text phrase:

        samscope segment cells.tif -o out/ --model sam3 --mode concept --text nucleus

    Images of any size (blockwise): with -o OUT.zarr (or --dask, --block-size) one image is
    read block by block (--block-size, default 2048; volumes 32,512,512), each block segmented
    with an overlap (--halo here means the block overlap, default twice the object diameter),
    neighbouring blocks' objects matched on their overlaps into one id each, and the labels
    written into OUT.zarr (OME-Zarr) as blocks finish, with OUT_objects.csv beside it. The object
    size is estimated once for the whole image. An interrupted run resumes; an OUT.zarr made with
    other settings is refused. --dask runs the blocks on a local Dask cluster (--workers N), a
    running scheduler (--scheduler tcp://host:8786) or SLURM/LSF/PBS jobs (--cluster-config
    cluster.toml, see samscope.blockwise.cluster); the dashboard link is printed.

        samscope segment slide.ome.tif -o slide.zarr --block-size 2048

        samscope segment volume.zarr -o labels.zarr --dask --workers 4
    """
    from samscope.cli._common import RunReport, parse_shape, summary_lines
    from samscope.cli.segment_blockwise import run_blockwise, wants_blockwise
    from samscope.pipeline import SegmentRequest, segment_batch
    from samscope.settings import parse_assignments

    if wants_blockwise(output, dask=dask, block_size=block_size):
        run_blockwise(
            inputs, output, dask=dask, workers=workers, scheduler=scheduler,
            cluster_config=cluster_config, block_size=block_size, halo=halo,
            options=dict(
                model=model, checkpoint=checkpoint, device=device, mode=mode,
                settings=parse_assignments(settings), diameter=diameter, axes=axes,
                tile_shape=parse_shape(tile_shape, "tile shape"), overwrite=overwrite,
                per_plane=per_plane, diameter_um=diameter_um, precision=precision,
            ),
        )
        return

    if text is not None:  # the concept mode's text is one of its settings
        settings = [*(settings or []), f"text={text}"]
    request = SegmentRequest(
        inputs,
        output=output,
        model=model,
        checkpoint=checkpoint,
        device=device,
        mode=mode,
        settings=parse_assignments(settings),
        tile_shape=parse_shape(tile_shape, "tile shape"),
        halo=parse_shape(halo, "halo"),
        pixel_size_nm=pixel_size,
        diameter=diameter,
        diameter_um=diameter_um,
        axes=axes,
        overlay=overlay,
        overwrite=overwrite,
        per_plane=per_plane,
        precision=precision,
    )
    with RunReport("segment", done_text="already segmented") as report:
        result = segment_batch(request, progress=report, tile_progress=True)
    for line in summary_lines(result):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add ``segment`` to the application."""
    app.command("segment")(segment)
