"""``samscope segment``: automatic instance segmentation of files, folders and globs."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from samscope.cli._common import load, outputs_for, parse_shape, planes_of
from samscope.errors import InputError
from samscope.models.registry import DEFAULT_MODEL

log = logging.getLogger(__name__)


def parse_settings(mode: str, settings: list[str] | None) -> Any:
    """Build the mode's config dataclass from ``FIELD=VALUE`` strings (unknown fields listed)."""
    from samscope.instance.segment import config_class

    cls = config_class(mode)
    if not settings:
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for item in settings:
        if "=" not in item:
            raise InputError(f"--set takes FIELD=VALUE, got {item!r}")
        key, raw = (s.strip() for s in item.split("=", 1))
        key = key.replace("-", "_")
        if key not in fields:
            raise InputError(
                f"{cls.__name__} has no setting {key!r}; settings of mode {mode!r}: {', '.join(sorted(fields))}"
            )
        values[key] = _coerce(raw, key)
    return cls(**values)


def _coerce(raw: str, key: str) -> Any:
    low = raw.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def segment(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output folder (default: beside each image)."),
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="auto, amg, ais, apg, distance or foreground.")
    ] = "auto",
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
    device: Annotated[str | None, typer.Option("--device", help="cpu or cuda.")] = None,
) -> None:
    """Segment every object in images automatically.

    For each image IMAGE.tif it writes OUTDIR/IMAGE_labels.tif (uint16, uint32 past 65,535
    objects; a label stack for stacks and time series, segmented plane by plane),
    OUTDIR/IMAGE_objects.csv (id, area, centroid, box, score; a plane column for stacks),
    OUTDIR/IMAGE_overlay.png (2-D images: the objects outlined on the image) and, for modes
    whose objects may overlap (amg, apg, foreground) on 2-D images, OUTDIR/IMAGE_masks.tif (one
    mask per object). Without -o the outputs go beside each image. Images whose outputs exist
    are skipped, so an interrupted folder run resumes; --overwrite redoes them.

    The default model, samscope-lm (nuclei, label-free cells), ships with samscope and works
    offline; samscope-mito segments mitochondria (foreground mode, give --pixel-size if the
    file does not carry it). Larger models: samscope models list.

    Examples:

        samscope segment nuclei.tif

        samscope segment mito.tif -o out/ --model samscope-mito --pixel-size 80

        samscope segment cells.tif -o out/ --model vit_b_lm

        samscope segment data/*.tif -o out/ --mode apg -s min_size=50

        samscope segment big.tif -o out/ --tile-shape 1024 --halo 128

        samscope segment mito.tif -o out/ --mode foreground --pixel-size 80
    """
    import numpy as np
    from tqdm.auto import tqdm

    from samscope.evaluation.report import write_csv
    from samscope.instance.instances import object_table
    from samscope.instance.segment import choose_mode
    from samscope.instance.segment import segment as run_segment
    from samscope.io import list_images, read_image, write_labels

    files = list_images(inputs)
    if output is not None and output.exists() and not output.is_dir():
        raise InputError(f"output {output} exists and is not a folder")
    net = load(model, checkpoint, device)
    chosen = choose_mode(net, mode)
    config = parse_settings(chosen, settings)
    ts, hl = parse_shape(tile_shape, "tile shape"), parse_shape(halo, "halo")
    if output is not None:
        output.mkdir(parents=True, exist_ok=True)
    todo = []
    for f in files:
        outs = outputs_for(f, output if output is not None else f.parent)
        if not overwrite and outs["labels"].exists() and outs["table"].exists():
            continue
        todo.append((f, outs))
    skipped = len(files) - len(todo)
    if skipped:
        typer.echo(
            f"{skipped} of {len(files)} image(s) already segmented (use --overwrite to redo)"
        )
    total_objects = 0
    for f, outs in tqdm(todo, desc=f"segment ({chosen})", unit="image", disable=len(todo) < 2):
        image = read_image(f, axes=axes)
        px = pixel_size
        if px is None and image.pixel_size is not None and np.isfinite(image.pixel_size[-1]):
            px = float(image.pixel_size[-1])
        planes, stacked = planes_of(image)
        label_planes, rows, masks_2d = [], [], None
        for p, plane in enumerate(
            tqdm(planes, desc="planes", unit="plane", leave=False, disable=len(planes) < 2)
        ):
            result = run_segment(
                plane,
                net,
                mode=chosen,
                tile_shape=ts,
                halo=hl,
                pixel_size_nm=px,
                config=config,
                progress=not stacked,
            )
            label_planes.append(result.labels)
            for row in object_table(result):
                rows.append({"plane": p, **row} if stacked else row)
            if not stacked and result.masks is not None and result.n:
                masks_2d = result.masks.dense().astype(np.uint8)
            if overlay and not stacked:
                from samscope.analysis import write_overlay

                write_overlay(outs["overlay"], plane, result.labels, masks=masks_2d, overwrite=True)
        n_max = max((int(lp.max()) for lp in label_planes), default=0)
        from samscope.instance.instances import label_dtype_for

        dtype = label_dtype_for(n_max)
        labels = (
            np.stack([lp.astype(dtype) for lp in label_planes])
            if stacked
            else label_planes[0].astype(dtype)
        )
        out_axes = image.axes.replace("C", "")[: labels.ndim] if stacked else "YX"
        write_labels(
            outs["labels"],
            labels,
            axes=out_axes if len(out_axes) == labels.ndim else None,
            overwrite=True,
        )
        if masks_2d is not None:
            from samscope.io import write_image

            write_image(outs["masks"], masks_2d, axes="ZYX", overwrite=True)
        columns = (["plane"] if stacked else []) + [
            "id",
            "area",
            "centroid_y",
            "centroid_x",
            "bbox_y0",
            "bbox_x0",
            "bbox_y1",
            "bbox_x1",
            "score",
        ]
        write_csv(outs["table"], rows, columns=columns)  # written last: marks the image done
        total_objects += len(rows)
        typer.echo(f"{f.name}: {len(rows)} object(s) → {outs['labels']}")
    typer.echo(
        f"done: {len(todo)} image(s) segmented with {net.name} ({chosen}), {total_objects} object(s)"
    )


def register(app: typer.Typer) -> None:
    """Add ``segment`` to the application."""
    app.command("segment")(segment)
