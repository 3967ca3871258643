"""``samscope info``, ``samscope embed`` and ``samscope prompt``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from samscope.cli._common import load, parse_ints, parse_rows, parse_shape
from samscope.models.registry import DEFAULT_MODEL

ModelOpt = Annotated[
    str, typer.Option("--model", "-m", help="Registered model name or checkpoint file.")
]
CheckpointOpt = Annotated[
    Path | None,
    typer.Option("--checkpoint", help="Weights file to use with --model's architecture."),
]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="cpu or cuda (default: cuda if available).")
]
TileOpt = Annotated[
    str | None, typer.Option("--tile-shape", help="Tile size, e.g. 512 or 512,768.")
]
HaloOpt = Annotated[
    str | None, typer.Option("--halo", help="Tile overlap per side (default tile/8).")
]
AxesOpt = Annotated[
    str | None, typer.Option("--axes", help="Axes of the image, e.g. YX, ZYX, TYX, YXC.")
]


def info() -> None:
    """Show versions, compute device and the model cache.

    Example:

        samscope info
    """
    import platform

    import numpy
    import torch
    import transformers

    import samscope
    from samscope.models.registry import cache_dir, list_models, resolve_checkpoint

    typer.echo(f"samscope      {samscope.__version__}")
    typer.echo(f"python        {platform.python_version()} ({platform.machine()})")
    typer.echo(f"numpy         {numpy.__version__}")
    typer.echo(f"torch         {torch.__version__} ({torch.get_num_threads()} threads)")
    typer.echo(f"transformers  {transformers.__version__}")
    if torch.cuda.is_available():
        typer.echo(f"device        cuda: {torch.cuda.get_device_name(0)}")
    else:
        typer.echo("device        cpu (no CUDA device)")
    typer.echo(f"model cache   {cache_dir()}")
    ready = []
    for card in list_models():
        try:
            _, path = resolve_checkpoint(card.name)
        except Exception:  # noqa: BLE001 - a damaged cached file shows as not ready
            continue
        if path is not None or card.source in ("test", "samscope"):
            ready.append(card.name)
    typer.echo(f"models ready  {', '.join(ready) if ready else 'none'}")


def embed(
    image: Annotated[
        Path, typer.Argument(help="Image file (TIFF, OME-TIFF, PNG, JPEG, zarr, npy).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Embeddings cache to write (.zarr).")
    ],
    model: ModelOpt = DEFAULT_MODEL,
    checkpoint: CheckpointOpt = None,
    tile_shape: TileOpt = None,
    halo: HaloOpt = None,
    axes: AxesOpt = None,
    device: DeviceOpt = None,
    batch_size: Annotated[int, typer.Option(help="Encoder inputs per forward pass.")] = 1,
) -> None:
    """Compute image embeddings once and cache them, for fast prompting later.

    Stacks and time series get one embedding per slice/frame. An existing cache for the same
    image, model and settings is completed (an interrupted run resumes); a cache for anything
    else is refused with what differs.

    Examples:

        samscope embed cells.tif -o cells.zarr

        samscope embed big.tif -o big.zarr --tile-shape 1024 --halo 128 --model vit_b_lm
    """
    import time

    from samscope.embeddings import compute_embeddings
    from samscope.io import read_image

    data = read_image(image, axes=axes, lazy=True)
    net = load(model, checkpoint, device)
    start = time.perf_counter()
    emb = compute_embeddings(
        data.data,
        net,
        tile_shape=parse_shape(tile_shape, "tile shape"),
        halo=parse_shape(halo, "halo"),
        axes=_embedding_axes(data.axes),
        cache=output,
        batch_size=batch_size,
        progress=True,
    )
    planes, tiles = emb.features.shape[:2]
    typer.echo(
        f"wrote {output}: {planes} plane(s) × {tiles} tile(s) with {net.name} "
        f"in {time.perf_counter() - start:.1f} s"
    )


def _embedding_axes(axes: str) -> str:
    from samscope.errors import InputError

    if axes in ("YX", "YXC", "ZYX", "TYX", "ZYXC", "TYXC"):
        return axes
    raise InputError(
        f"image axes {axes!r} cannot be embedded directly; supported: YX, YXC, ZYX, TYX "
        "(pick a channel with --axes or convert the file)"
    )


def prompt(
    image: Annotated[Path, typer.Argument(help="Image file.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Mask/label image to write (.tif, .png).")
    ],
    points: Annotated[
        str | None, typer.Option("--points", "-p", help="Points 'y,x;y,x' (one object).")
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option("--labels", "-l", help="Point labels '1,0' (1 positive, 0 negative)."),
    ] = None,
    boxes: Annotated[
        str | None,
        typer.Option(
            "--boxes",
            "-b",
            help="Boxes 'y0,x0,y1,x1;...': one object per box (or one with --points).",
        ),
    ] = None,
    model: ModelOpt = DEFAULT_MODEL,
    checkpoint: CheckpointOpt = None,
    embeddings: Annotated[
        Path | None,
        typer.Option("--embeddings", "-e", help="Embeddings cache (.zarr) to use or create."),
    ] = None,
    tile_shape: TileOpt = None,
    halo: HaloOpt = None,
    axes: AxesOpt = None,
    plane: Annotated[int, typer.Option(help="Slice/frame of a stack.")] = 0,
    multimask: Annotated[
        bool, typer.Option(help="Pick the best of three candidate masks.")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
    device: DeviceOpt = None,
) -> None:
    """Segment objects from point and box prompts and write a label image.

    Points (y, x) describe one object, with positive (1) and negative (0) labels; each box
    (y0, x0, y1, x1, ends exclusive) is one object, and points given with a single box refine
    it. The output has label 1, 2, … per object at the image's resolution.

    Examples:

        samscope prompt cells.tif -p 120,80 -o mask.tif

        samscope prompt cells.tif -p "120,80;130,95" -l 1,0 -o mask.tif -e cells.zarr

        samscope prompt cells.tif -b "10,10,60,70;100,40,150,90" -o labels.tif
    """
    import numpy as np

    from samscope.embeddings import compute_embeddings
    from samscope.errors import InputError
    from samscope.io import read_image, write_labels
    from samscope.prompting import segment_from_boxes, segment_from_prompts

    if output.exists() and not overwrite:
        raise InputError(f"{output} exists; pass --overwrite to replace it")
    pts = parse_rows(points, 2, "point")
    lab = parse_ints(labels, "labels")
    bxs = parse_rows(boxes, 4, "box")
    if pts is None and bxs is None:
        raise InputError("give --points and/or --boxes")
    data = read_image(image, axes=axes, lazy=True)
    net = load(model, checkpoint, device)
    emb = compute_embeddings(
        data.data,
        net,
        tile_shape=parse_shape(tile_shape, "tile shape"),
        halo=parse_shape(halo, "halo"),
        axes=_embedding_axes(data.axes),
        cache=embeddings,
        progress=True,
    )
    h, w = emb.image_shape
    labels_out = np.zeros((h, w), np.uint32)
    if bxs is not None and (pts is None or len(bxs) > 1):
        if pts is not None:
            raise InputError("points can refine a single box only; give one box with --points")
        result = segment_from_boxes(net, emb, bxs, plane=plane)
        scores = result.iou
        for i, mask in enumerate(result.masks, start=1):
            labels_out[mask & (labels_out == 0)] = i
    else:
        result = segment_from_prompts(
            net,
            emb,
            points=pts,
            labels=lab,
            box=bxs[0] if bxs is not None else None,
            multimask=multimask,
            plane=plane,
        )
        scores = result.iou[[result.best]]
        labels_out[result.best_mask] = 1
    output.parent.mkdir(parents=True, exist_ok=True)
    write_labels(output, labels_out, overwrite=overwrite)
    summary = ", ".join(
        f"{i}: {int((labels_out == i).sum())} px (IoU pred {s:.2f})"
        for i, s in enumerate(scores, 1)
    )
    typer.echo(f"wrote {output} — {summary}")


def register(app: typer.Typer) -> None:
    """Add ``info``, ``embed`` and ``prompt`` to the application."""
    app.command("info")(info)
    app.command("embed")(embed)
    app.command("prompt")(prompt)
