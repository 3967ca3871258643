"""``samscope track``: follow every object of a time series through time, with divisions.

Thin over :func:`samscope.pipeline.tracking.track_series`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from samscope.models.registry import DEFAULT_MODEL


def track(
    series: Annotated[
        Path,
        typer.Argument(help="Time series (TYX, TYXC or TZYX file), or a folder of one file per frame."),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Result folder (CTC format).")],
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Track this existing segmentation (label series file or folder) instead of segmenting."),
    ] = None,
    model: Annotated[str, typer.Option("--model", "-m", help="Registered model name or checkpoint file.")] = DEFAULT_MODEL,
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint", help="Weights file for --model.")] = None,
    mode: Annotated[str, typer.Option("--mode", help="Automatic mode: auto, ais, apg, amg, distance, foreground.")] = "auto",
    settings: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Mode setting FIELD=VALUE (repeatable).")
    ] = None,
    diameter: Annotated[
        float | None, typer.Option("--diameter", help="Object diameter in pixels (default: estimated once for the series).")
    ] = None,
    axes: Annotated[str | None, typer.Option("--axes", help="Axes of the file, e.g. TYX or TZYX.")] = None,
    z_scale: Annotated[
        float | None, typer.Option("--z-scale", help="TZYX: plane spacing / pixel size (default: from the file, else 1).")
    ] = None,
    max_distance: Annotated[
        float | None, typer.Option("--max-distance", help="Largest move between frames, px (default: 1 × the median diameter).")
    ] = None,
    max_gap: Annotated[int, typer.Option("--max-gap", help="Close gaps of up to this many missed frames (slow; TRA does not reward it).")] = 0,
    divisions: Annotated[bool, typer.Option(help="Detect divisions.")] = True,
    max_division_distance: Annotated[
        float | None,
        typer.Option("--max-division-distance", help="Mother to daughter distance, px (default: 0.75 × the median diameter)."),
    ] = None,
    link_iou: Annotated[
        float, typer.Option("--link-iou", help="Link objects of consecutive frames outright above this IoU (1: never).")
    ] = 0.5,
    min_area: Annotated[int, typer.Option("--min-area", help="Do not track objects smaller than this (px).")] = 0,
    device: Annotated[str | None, typer.Option("--device", help="cpu or cuda.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing result in OUTPUT.")] = False,
    fewer_tiles: Annotated[
        bool,
        typer.Option("--fewer-tiles", help="AIS: the fewest encoder tiles per frame, narrower halo (HeLa: 15 not 20 tiles, about 25 % faster, 0.010 lower mSA)."),
    ] = False,
) -> None:
    """Track objects through a time series: segment every frame (or take --labels), link into tracks with divisions.

    Writes OUTPUT/mask000.tif … (labels = track ids) and OUTPUT/res_track.txt (L B E P: label,
    first frame, last frame, parent) in the Cell Tracking Challenge's result format,
    OUTPUT/tracks.csv (track_id, t, [z,] y, x, parent_track_id: napari's Tracks layer) and
    OUTPUT/tracking.json (settings, counts, timings). Linking: laptrack (LAP with gap closing and
    splitting); objects overlapping by IoU > --link-iou are linked outright.

    Examples:

        samscope track movie.tif -o movie_RES

        samscope track cho.tif --axes TZYX --z-scale 5 -o cho_RES

        samscope track movie.tif --labels movie_labels.tif -o movie_RES --max-gap 2
    """
    from samscope.errors import InputError
    from samscope.multidim.linking import LinkerConfig
    from samscope.pipeline.tracking import TrackRequest, track_series
    from samscope.settings import parse_assignments

    if not 0 <= link_iou <= 1:
        raise InputError(f"--link-iou must be in [0, 1], got {link_iou}")
    request = TrackRequest(
        series, output, labels=labels, model=model, checkpoint=checkpoint, device=device,
        mode=mode, settings=parse_assignments(settings) or None, diameter=diameter, axes=axes,
        z_scale=z_scale, overwrite=overwrite, fewer_tiles=fewer_tiles,
        link=LinkerConfig(
            max_distance=max_distance, link_iou=None if link_iou >= 1 else link_iou,
            max_gap=max_gap, divisions=divisions, max_division_distance=max_division_distance,
            min_area=min_area,
        ),
    )  # fmt: skip
    from tqdm.auto import tqdm

    bar = None

    def progress(stage: str, done: int, total: int) -> None:
        nonlocal bar
        if stage == "segment":
            if bar is None:
                bar = tqdm(total=total, desc="segmenting", unit="frame")
            bar.update(1)

    result = track_series(request, progress=progress)
    if bar is not None:
        bar.close()
    lin = result.tracked.lineage
    s = result.seconds
    typer.echo(
        f"{result.tracked.n_frames} frames: {len(lin)} tracks, {lin.n_divisions} divisions "
        f"(segment {s.get('segment', 0):.1f} s, link {s.get('link', 0):.1f} s)"
    )
    typer.echo(f"wrote {output}/mask*.tif, res_track.txt, tracks.csv, tracking.json")


def register(app: typer.Typer) -> None:
    """Add ``track`` to the application."""
    app.command("track")(track)
