"""``samscope info``, ``samscope embed`` and ``samscope prompt``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from samscope.cli._common import PrecisionOpt, load, parse_ints, parse_rows, parse_shape
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
    precision: PrecisionOpt = None,
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

    from samscope.cli import _interrupt
    from samscope.embeddings import cache_progress, check_cache_location
    from samscope.io import read_image
    from samscope.io.paths import check_not_input, check_output_dir

    inputs = _inputs(image, model, checkpoint)
    check_not_input(output, inputs, "embeddings cache")
    if not check_cache_location(output):  # an existing samscope cache is checked on opening
        check_output_dir(output, inputs=inputs, what="embeddings cache")
    data = read_image(image, axes=axes, lazy=True)
    emb_axes = _embedding_axes(data.axes, tuple(data.data.shape))
    net = load(model, checkpoint, device, precision)

    def finished() -> str | None:
        progress = cache_progress(output) if output.exists() else None
        if progress is None:
            return None
        return f"{progress[0]} of {progress[1]} embedding(s) stored in {output}"

    _interrupt.report(finished)
    start = time.perf_counter()
    emb = _embed(
        image,
        data.data,
        net,
        tile_shape=parse_shape(tile_shape, "tile shape"),
        halo=parse_shape(halo, "halo"),
        axes=emb_axes,
        cache=output,
        batch_size=batch_size,
        progress=True,
    )
    planes, tiles = emb.features.shape[:2]
    if emb.repaired:
        typer.echo(
            f"repaired {output}: recomputed {len(emb.repaired)} damaged or missing piece(s): "
            + "; ".join(emb.repaired[:3])
            + (" …" if len(emb.repaired) > 3 else "")
        )
    typer.echo(
        f"wrote {output}: {planes} plane(s) × {tiles} tile(s) with {net.name} "
        f"in {time.perf_counter() - start:.1f} s"
    )


def _inputs(image: Path, model: str, checkpoint: Path | None) -> list[Path]:
    """The files a command reads: never one of its outputs."""
    from samscope.models.registry import looks_like_path

    inputs = [image]
    if checkpoint is not None:
        inputs.append(checkpoint)
    if looks_like_path(model):  # not a registered name: a model file
        inputs.append(Path(model))
    return inputs


def _embed(image: Path, data, net, **kwargs):
    """compute_embeddings, with the image file named in its input errors."""
    from samscope.embeddings import compute_embeddings
    from samscope.errors import InputError

    try:
        return compute_embeddings(data, net, **kwargs)
    except InputError as err:
        if str(image) in str(err):
            raise
        raise InputError(f"{image}: {err}") from None


def _embedding_axes(axes: str, shape: tuple[int, ...] | None = None) -> str:
    from samscope.errors import InputError

    if axes in ("YX", "YXC", "ZYX", "TYX", "ZYXC", "TYXC"):
        if axes.endswith("C") and shape is not None and shape[-1] not in (1, 3, 4):
            raise InputError(
                f"an image with {shape[-1]} channels (shape {tuple(shape)}) cannot be embedded: "
                "the models take grey, RGB or RGBA; pick one channel with --axes or convert it"
            )
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
    sequential: Annotated[
        bool,
        typer.Option(
            "--sequential",
            help="The points are clicks in order: the first (or the box) prompts, each later one "
            "corrects the mask near it, as in the annotator (samscope.prompt_corrections).",
        ),
    ] = False,
    propagate: Annotated[
        bool,
        typer.Option(
            "--propagate",
            help="Stacks: follow the object(s) from --plane through all planes; writes 3-D labels.",
        ),
    ] = False,
    propagator: Annotated[
        str,
        typer.Option(
            "--propagator",
            help="With --propagate: projection (each plane prompted from its neighbour's mask) "
            "or sam2-memory (SAM2's video memory; needs a SAM2 model).",
        ),
    ] = "projection",
    diameter: Annotated[
        float | None,
        typer.Option(
            "--diameter",
            help="Object diameter in pixels; scale-aware models (the default) embed the image "
            "at the size where such objects match their working size (default: estimated).",
        ),
    ] = None,
    native: Annotated[
        bool, typer.Option("--native", help="Embed at the image's own size (no size estimate).")
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output.")] = False,
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
) -> None:
    """Segment objects from point and box prompts and write a label image.

    Points (y, x) describe one object, with positive (1) and negative (0) labels; each box
    (y0, x0, y1, x1, ends exclusive) is one object, and points given with a single box refine
    it. The output has label 1, 2, … per object at the image's resolution.

    Examples:

        samscope prompt cells.tif -p 120,80 -o mask.tif

        samscope prompt cells.tif -p "120,80;130,95" -l 1,0 -o mask.tif -e cells.zarr

        samscope prompt cells.tif -b "10,10,60,70;100,40,150,90" -o labels.tif

    With --sequential the points are corrective clicks in the order given (the first prompts,
    each later one changes the mask only near itself, as the annotator does):

        samscope prompt cells.tif -p "120,80;131,97" -l 1,0 --sequential -o mask.tif

    With --propagate, a stack's object(s) prompted on --plane are followed plane by plane in
    both directions until they end (samscope.multidim.propagate), and the output is a 3-D label
    stack (one id per object):

        samscope prompt volume.tif --plane 12 -b "10,10,60,70;100,40,150,90" --propagate -o objects.tif

    Object size: with a scale-aware model the typical object diameter is estimated (or taken
    from --diameter) and the image is embedded resized so that objects match the model's working
    size — large nuclei at 60× then come out whole from one click. Prompts and the output stay in
    the image's pixels. An existing --embeddings cache keeps the scale it was made at.
    """
    import numpy as np

    from samscope.embeddings import check_cache_location
    from samscope.errors import InputError
    from samscope.io import read_image, write_labels
    from samscope.io.paths import check_not_input, check_output_dir, check_output_file
    from samscope.prompting import segment_from_boxes, segment_from_prompts

    pts = parse_rows(points, 2, "point")
    lab = parse_ints(labels, "labels")
    bxs = parse_rows(boxes, 4, "box")
    if pts is None and bxs is None:
        raise InputError("give --points and/or --boxes")
    if bxs is not None and pts is not None and len(bxs) > 1:
        raise InputError("points can refine a single box only; give one box with --points")
    inputs = _inputs(image, model, checkpoint)
    check_output_file(output, inputs=[*inputs, embeddings], overwrite=overwrite, what="output")
    _check_label_format(output)
    if embeddings is not None:
        check_not_input(embeddings, inputs, "embeddings cache")
        if not check_cache_location(embeddings):
            check_output_dir(embeddings, inputs=inputs, what="embeddings cache")
    data = read_image(image, axes=axes, lazy=True)
    emb_axes = _embedding_axes(data.axes, tuple(data.data.shape))
    n_planes = 1 if emb_axes in ("YX", "YXC") else int(data.data.shape[0])
    if not 0 <= plane < n_planes:
        raise InputError(f"--plane {plane} out of range: {image} has {n_planes} plane(s)")
    net = load(model, checkpoint, device, precision)
    if propagate and propagator != "projection":  # SAM2's memory embeds the planes itself
        _propagate(net, data, None, emb_axes, plane, pts, lab, bxs, output, overwrite, propagator)
        return
    try:
        scale = 1.0 if propagate or native else _prompt_scale(
            data.data, emb_axes, net, diameter, embeddings, plane
        )
    except InputError as err:
        raise InputError(str(err) if str(image) in str(err) else f"{image}: {err}") from None
    emb = _embed(
        image,
        data.data,
        net,
        tile_shape=parse_shape(tile_shape, "tile shape"),
        halo=parse_shape(halo, "halo"),
        axes=emb_axes,
        cache=embeddings,
        progress=True,
        scale=scale,
    )
    if emb.repaired:
        typer.echo(
            f"repaired {embeddings}: recomputed {len(emb.repaired)} damaged or missing piece(s)",
            err=True,
        )
    if propagate:
        _propagate(net, data, emb, emb_axes, plane, pts, lab, bxs, output, overwrite)
        return
    h, w = emb.plane_shape
    labels_out = np.zeros((h, w), np.uint32)
    if bxs is not None and (pts is None or len(bxs) > 1):
        if pts is not None:
            raise InputError("points can refine a single box only; give one box with --points")
        result = segment_from_boxes(net, emb, bxs, plane=plane)
        scores = result.iou
        for i, mask in enumerate(result.masks, start=1):
            labels_out[mask & (labels_out == 0)] = i
    elif sequential and pts is not None:
        from samscope.prompt_corrections import segment_clicks

        state = segment_clicks(net, emb, pts, lab, bxs[0] if bxs is not None else None, plane=plane)
        scores = np.array([state.score])
        labels_out[state.mask] = 1
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


def _prompt_scale(data, axes, net, diameter, cache, plane) -> float:
    """The embedding scale for prompting: a cache's own, else from the object diameter."""
    import numpy as np

    from samscope.instance.scale import prompt_scale

    arr = data if axes in ("YX", "YXC") else data[plane]  # a stack: the size on the prompted plane
    scale, used = prompt_scale(np.asarray(arr), net, diameter=diameter, cache=cache)
    if scale != 1.0 and used is not None:
        typer.echo(f"objects of about {used:.1f} px: embedding at ×{scale:.3g}", err=True)
    return scale


def _propagate(net, data, emb, axes, plane, pts, lab, bxs, output, overwrite, propagator="projection") -> None:
    """``prompt --propagate``: the prompted object(s) followed through the stack (3-D labels)."""
    from samscope.errors import InputError
    from samscope.io import write_labels
    from samscope.multidim import ObjectPrompt, PlaneStack
    from samscope.multidim import propagate as follow

    if axes in ("YX", "YXC"):
        raise InputError("--propagate needs a stack (ZYX or TYX); this image is 2-D")
    if bxs is not None and (pts is None or len(bxs) > 1):
        objects = [ObjectPrompt(plane, box=b) for b in bxs]
    else:
        objects = [ObjectPrompt(plane, points=pts, labels=lab, box=None if bxs is None else bxs[0])]
    stack = PlaneStack(data.data, net, axes=axes, embeddings=emb)
    result = follow(net, stack, objects, propagator=propagator)
    labels = result.labels()
    output.parent.mkdir(parents=True, exist_ok=True)
    write_labels(output, labels, axes=axes.replace("C", ""), overwrite=overwrite)
    summary = ", ".join(
        f"{i}: planes {o.extent[0]}–{o.extent[1]}" if o.extent else f"{i}: none"
        for i, o in enumerate(result.objects, 1)
    )
    typer.echo(f"wrote {output} — {summary}")


def _check_label_format(output: Path) -> None:
    """The output's suffix names a format labels can be written in (checked before any work)."""
    from samscope.errors import InputError

    name = output.name.lower()
    if not name.endswith((".tif", ".tiff", ".png", ".npy", ".zarr")):
        raise InputError(
            f"cannot write labels to {output}: unknown format {output.suffix or '(none)'!r}; "
            "use .tif (or .ome.tif), .png, .npy or .zarr"
        )


def register(app: typer.Typer) -> None:
    """Add ``info``, ``embed`` and ``prompt`` to the application."""
    app.command("info")(info)
    app.command("embed")(embed)
    app.command("prompt")(prompt)
