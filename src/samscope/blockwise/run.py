"""One blockwise run, from an image of any size to a stitched OME-Zarr label image and a table.

:func:`segment_blockwise` (what ``samscope segment BIG -o OUT.zarr`` runs):

1. open the input lazily (:class:`~samscope.blockwise.source.ImageSource`), load the model once,
   estimate the object diameter once on sample blocks, lay out the grid;
2. check or create the output (other settings are refused; finished blocks are skipped);
3. segment the blocks not yet done (each writes its local labels and a marker);
4. match every pair of neighbouring blocks on their overlap; union-find → global ids;
5. write each block's core with global ids and measure its objects;
6. write the table (``OUT_objects.csv`` beside ``OUT.zarr``) and mark the output complete.

Memory: the client holds the grid, the markers and the match graph (a few numbers per object);
each task holds one block's outer region, its labels and the model, so the peak per process does
not depend on the image size.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samscope.blockwise.executors import SerialExecutor
from samscope.blockwise.grid import BlockGrid, as_tuple
from samscope.blockwise.source import ImageSource
from samscope.blockwise.store import BlockStore
from samscope.blockwise.tasks import Job, match_task, segment_task, write_task
from samscope.errors import InputError
from samscope.models.registry import DEFAULT_MODEL

__all__ = ["BlockwiseRequest", "BlockwiseResult", "PhaseProgress", "segment_blockwise"]

log = logging.getLogger(__name__)

#: Default core size of a 2-D block, and of a volume's (z, y, x) block.
DEFAULT_BLOCK_2D = 2048
DEFAULT_BLOCK_3D = (32, 512, 512)


@dataclass(frozen=True)
class BlockwiseRequest:
    """A blockwise segmentation of one image into a ``.zarr`` output.

    Parameters
    ----------
    input : str or Path
        TIFF / OME-TIFF, zarr / OME-Zarr (2-D ``YX``, RGB, or a ``ZYX`` volume).
    output : Path
        The ``.zarr`` folder to write (its table goes to ``OUT_objects.csv`` beside it).
    model, checkpoint, device, mode, settings
        As for ``samscope segment`` (settings: fields of the mode's config).
    block_size : int or tuple of int, optional
        Core size per axis (default 2048² for 2-D, 32×512×512 for volumes, clipped to the image).
    halo : int or tuple of int, optional
        Overlap per side (default twice the object diameter, at least 32 px; 4 planes in z).
    diameter : float, optional
        Object diameter in pixels (default: estimated once on sample blocks, for models that
        rescale).
    axes, key, channel
        How to read the input (as :func:`samscope.io.read_image`).
    tile_shape, tile_halo : tuple of int, optional
        Tiling inside each block (the model card's default otherwise).
    overwrite : bool
        Redo an output made with other settings (a non-samscope folder is never removed).
    iou_threshold : float
        Overlap IoU above which two blocks' objects are one.
    keep_blocks : bool
        Keep the per-block local labels after the run (for inspection).
    normalise : {"block", "image"}
        ``"block"`` (default): each block is normalised with its own percentiles (on an
        illumination gradient this agreed with a whole-image run as well as one range did, see
        docs/blockwise.md); ``"image"``: one intensity range for every block
        (``value_range``, else the model's normalisation percentiles over a sample of blocks:
        :func:`~samscope.blockwise.estimate.estimate_value_range`), as a whole-image run
        normalises.
    value_range : (float, float), optional
        The intensities mapped to 0 and 1 (implies ``normalise="image"``).
    precision : {"fp32", "bf16", "int8"}, optional
        The encoder's precision (None: the model's default), as ``samscope segment
        --precision``; recorded in the output's settings when it is not fp32.
    """

    input: str | os.PathLike
    output: str | os.PathLike
    model: str = DEFAULT_MODEL
    checkpoint: str | None = None
    device: str | None = None
    mode: str = "auto"
    settings: Mapping[str, Any] | None = None
    block_size: int | tuple[int, ...] | None = None
    halo: int | tuple[int, ...] | None = None
    diameter: float | None = None
    axes: str | None = None
    key: str | None = None
    channel: int | None = None
    tile_shape: tuple[int, int] | None = None
    tile_halo: tuple[int, int] | None = None
    overwrite: bool = False
    iou_threshold: float = 0.5
    keep_blocks: bool = False
    normalise: str = "block"
    value_range: tuple[float, float] | None = None
    precision: str | None = None


@dataclass(frozen=True)
class PhaseProgress:
    """Progress of one phase (``segment``, ``match``, ``write``), after each finished block."""

    phase: str
    done: int
    total: int
    elapsed: float

    @property
    def rate(self) -> float:
        """Blocks per second so far."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far."""
        return (self.total - self.done) / self.rate if self.rate > 0 else None


@dataclass(frozen=True)
class BlockwiseResult:
    """What a blockwise run did."""

    output: Path
    table: Path | None
    status: str
    n_objects: int
    n_blocks: int
    blocks_run: int
    diameter: float | None
    block_size: tuple[int, ...]
    halo: tuple[int, ...]
    seconds: float
    executor: str = "single process"
    timings: dict[str, float] = field(default_factory=dict)


def table_path(output: Path) -> Path:
    """``OUT_objects.csv`` beside ``OUT.zarr``."""
    return output.with_name(output.name.removesuffix(".zarr") + "_objects.csv")


def _check_paths(source: ImageSource, output: Path) -> None:
    if output.suffix != ".zarr":
        raise InputError(f"a blockwise output is a .zarr folder, got '{output}'")
    src = Path(source.path).resolve()
    out = output.resolve()
    if out == src or src.is_relative_to(out) or out.is_relative_to(src):
        raise InputError(f"the output '{output}' would overwrite the input '{source.path}'")


def default_block(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The default core size for an image of this spatial shape."""
    base = (DEFAULT_BLOCK_2D,) * 2 if len(shape) == 2 else DEFAULT_BLOCK_3D
    return tuple(min(b, n) for b, n in zip(base, shape, strict=True))


def default_halo(block: tuple[int, ...], shape: tuple[int, ...], diameter: float | None
                 ) -> tuple[int, ...]:
    """Twice the diameter (at least 32 px, a multiple of 8), 4 planes in z; 0 on unsplit axes."""
    xy = 64 if diameter is None else max(32, int(math.ceil(2 * diameter / 8) * 8))
    halo = (4,) * (len(block) - 2) + (xy, xy)
    return tuple(0 if n <= b else min(h, b // 2)
                 for h, b, n in zip(halo, block, shape, strict=True))


def _model_segmenter(request: BlockwiseRequest, source: ImageSource, store: BlockStore):
    """(segmenter with the mode and diameter resolved, model) for a model request."""
    from samscope.blockwise.estimate import check_diameter, estimate_image_diameter
    from samscope.blockwise.segmenter import ModelSegmenter

    seg = ModelSegmenter(
        model=str(request.model), checkpoint=None if request.checkpoint is None else str(request.checkpoint),
        device=request.device, mode=request.mode,
        settings=tuple(sorted((str(k), v) for k, v in (request.settings or {}).items())),
        tile_shape=request.tile_shape, tile_halo=request.tile_halo, precision=request.precision,
    ).resolved()
    net, mode, _ = seg.loaded()
    check_diameter(net, request.diameter)
    card = getattr(net, "card", None)
    diameter = request.diameter
    scale_aware = bool(getattr(card, "working_diameter", None)) and mode != "foreground" \
        and getattr(net, "instance_head", None) is not None
    if diameter is None and scale_aware:
        stored = (store.stored_settings() or {}).get("settings", {})
        previous = stored.get("segmenter", {})
        if previous.get("model") == getattr(net, "name", None) and previous.get("mode") == mode:
            diameter = previous.get("diameter")  # resume: the estimate of the first run
        if diameter is None:
            shape = source.spatial_shape
            block = default_block(shape) if request.block_size is None else \
                as_tuple(request.block_size, len(shape), "block size")
            probe = BlockGrid(shape, tuple(min(b, n) for b, n in zip(block, shape, strict=True)),
                              tuple(max(1, b // 2) if n > b else 0
                                    for b, n in zip(block, shape, strict=True)))
            diameter = estimate_image_diameter(source, net, probe)
    from dataclasses import replace

    if diameter is not None and mode != "foreground":
        seg = replace(seg, diameter=float(diameter))
    if (request.normalise == "image" or request.value_range is not None) \
            and mode in ("ais", "amg", "apg"):
        value_range = request.value_range
        if value_range is None:
            from samscope.blockwise.estimate import estimate_value_range

            shape = source.spatial_shape
            block = default_block(shape) if request.block_size is None else \
                as_tuple(request.block_size, len(shape), "block size")
            block = tuple(min(b, n) for b, n in zip(block, shape, strict=True))
            value_range = estimate_value_range(source, net, BlockGrid(
                shape, block, tuple(max(1, b // 2) if n > b else 0
                                    for b, n in zip(block, shape, strict=True))))
        if value_range is not None:
            seg = replace(seg, value_range=(float(value_range[0]), float(value_range[1])))
    return seg


def _check_normalise(request: BlockwiseRequest) -> None:
    if request.normalise not in ("image", "block"):
        raise InputError(f"normalise must be 'image' or 'block', got {request.normalise!r}")
    if request.value_range is not None:
        try:
            lo, hi = (float(v) for v in request.value_range)
        except (TypeError, ValueError):
            raise InputError(f"value_range must be two numbers (low, high), got "
                             f"{request.value_range!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise InputError(f"value_range must be finite with low < high, got ({lo}, {hi})")


def segment_blockwise(
    request: BlockwiseRequest,
    *,
    client: Any = None,
    segmenter: Any = None,
    progress: Callable[[PhaseProgress], None] | None = None,
) -> BlockwiseResult:
    """Segment an image of any size block by block and stitch it exactly (see the module docstring).

    Parameters
    ----------
    request : BlockwiseRequest
    client : distributed.Client, optional
        Run the blocks on this Dask cluster (:func:`samscope.blockwise.cluster.dask_client`);
        None: in this process, one block after another.
    segmenter : object, optional
        A block segmenter (``segment(block, axes)``, ``signature()``) in place of the request's
        model and mode, e.g. :class:`~samscope.blockwise.segmenter.ThresholdSegmenter`.
    progress : callable, optional
        Called with a :class:`PhaseProgress` after each block of each phase.

    Returns
    -------
    BlockwiseResult
        ``status``: ``"done"``, or ``"skipped"`` when the output was already complete.

    Raises
    ------
    InputError
        Before any block runs: an unreadable input or one with other axes than YX/YXC/ZYX, an
        output that is not ``.zarr`` or would overwrite the input, a block larger than the
        image, a halo larger than half a block, an output made with other settings.
    """
    from samscope.blockwise.executors import DaskExecutor, share_one_malloc_arena

    if client is None:  # before zarr's codec threads start (see its docstring)
        share_one_malloc_arena()
    start = time.perf_counter()
    source = ImageSource(str(request.input), key=request.key, axes=request.axes,
                         channel=request.channel)
    output = Path(request.output)
    _check_paths(source, output)
    shape = source.spatial_shape
    store = BlockStore(output)
    block = default_block(shape) if request.block_size is None else \
        as_tuple(request.block_size, len(shape), "block size")
    BlockGrid(shape, block, default_halo(block, shape, None) if request.halo is None
              else as_tuple(request.halo, len(shape), "halo"))  # bad sizes fail before a model loads
    _check_normalise(request)
    if segmenter is None:
        segmenter = _model_segmenter(request, source, store)
        if client is not None:  # one torch thread per Dask task: a worker's threads run blocks
            from dataclasses import replace

            segmenter = replace(segmenter, threads=1)
    diameter = getattr(segmenter, "diameter", None) or request.diameter
    halo = default_halo(block, shape, diameter) if request.halo is None else \
        as_tuple(request.halo, len(shape), "halo")
    grid = BlockGrid(shape, block, halo)
    split = [h for h, b, n in zip(grid.halo[-2:], grid.block[-2:], grid.shape[-2:], strict=True)
             if n > b]
    if diameter and split and min(split) < diameter:
        log.warning("halo %s is smaller than the object diameter %.0f px: objects crossing "
                    "block borders may be cut", grid.halo[-2:], diameter)
    settings = {
        "input": source.describe(),
        "grid": {"block": list(grid.block), "halo": list(grid.halo)},
        "segmenter": segmenter.signature(),
        "stitch": {"iou_threshold": float(request.iou_threshold)},
    }
    state = store.prepare(settings, overwrite=request.overwrite)
    executor = SerialExecutor() if client is None else DaskExecutor(client)
    base = dict(output=output, diameter=diameter, block_size=grid.block, halo=grid.halo,
                n_blocks=len(grid), executor=executor.name)
    if state == "complete":
        table = table_path(output)
        return BlockwiseResult(table=table if table.exists() else None, status="skipped",
                               n_objects=int(store.n_objects() or 0), blocks_run=0,
                               seconds=time.perf_counter() - start, **base)
    job = Job(source, store, grid, segmenter, float(request.iou_threshold))
    timings: dict[str, float] = {}

    def describe(flat: int) -> str:
        """``block 5 (y 2048:4096, x 0:2048)``: a block by name and core, for error messages."""
        core = grid.block_at(flat).core
        where = ", ".join(f"{a} {lo}:{hi}" for a, (lo, hi)
                          in zip(source.spatial_axes.lower(), core, strict=True))
        return f"block {flat} ({where})"

    def phase(name: str, fn, items, consume, extra=None) -> None:
        """Run ``fn`` over ``items``; each result goes to ``consume`` and is not kept here."""
        items = list(items)
        t0 = time.perf_counter()
        for i, result in enumerate(executor.run(
                fn, job, items, extra, describe=lambda k: f"the {name} task of {describe(k)}"), 1):
            consume(result)
            if progress is not None:
                progress(PhaseProgress(name, i, len(items), time.perf_counter() - t0))
        timings[name] = round(time.perf_counter() - t0, 3)

    # per block only (n, ids present in its core) as numpy: the client's memory is a few
    # bytes per object, not a Python dict of Python ints per block
    done = {k: _marker(meta) for k, meta in store.segmented().items()}
    todo = [k for k in range(len(grid)) if k not in done]
    phase("segment", segment_task, todo,
          lambda meta: done.__setitem__(meta["flat"], _marker(meta)))
    matches: list[np.ndarray] = []
    phase("match", match_task, range(len(grid)), matches.append)
    from samscope.blockwise.stitch import global_lookups
    from samscope.labels import label_dtype

    lookups, n = global_lookups(
        [done[k][0] for k in range(len(grid))],
        [done[k][1] for k in range(len(grid))],
        np.concatenate(matches) if matches else np.zeros((0, 4), np.int64),
    )
    done.clear()
    matches.clear()
    dtype = np.dtype(label_dtype(n))
    lookups[:] = [lut.astype(dtype) for lut in lookups]  # the mapped core is made in this dtype
    store.final_array(grid.shape, grid.block, dtype)
    written = store.written_blocks()
    todo_write = [k for k in range(len(grid)) if k not in written]
    phase("write", write_task, todo_write, lambda stats: None, lambda k: lookups[k])
    lookups.clear()
    # order-independent (a resumed run measured some blocks before): the records read back,
    # one block at a time
    table = _write_table(output, (store.written_marker(k) for k in range(len(grid))), n,
                         len(shape))
    store.finish(n_objects=n, axes=source.spatial_axes, pixel_size_nm=source.pixel_size(),
                 keep_blocks=request.keep_blocks)
    return BlockwiseResult(table=table, status="done", n_objects=n, blocks_run=len(todo),
                           seconds=time.perf_counter() - start, timings=timings, **base)


def _marker(meta: Mapping[str, Any]) -> tuple[int, np.ndarray]:
    """A block's segmented marker as ``(n local objects, ids present in its core)``."""
    return int(meta["n"]), np.asarray(meta["present"], np.int64).reshape(-1)


def _write_table(output: Path, stats: Iterable[Mapping[str, Any]], n: int, ndim: int) -> Path:
    """``OUT_objects.csv``: id, area, centroid, box of every object, merged over the blocks.

    ``stats`` is consumed one block at a time (an iterator of the blocks' ``written`` records),
    so only the table's numpy columns (8 numbers per object in 2-D) are held.
    """
    area = np.zeros(n + 1, np.int64)
    sums = np.zeros((ndim, n + 1))
    lo = np.full((ndim, n + 1), np.iinfo(np.int64).max)
    hi = np.zeros((ndim, n + 1), np.int64)
    for s in stats:
        ids = np.asarray(s["id"], np.int64)
        if not ids.size:
            continue
        np.add.at(area, ids, np.asarray(s["area"], np.int64))
        for d in range(ndim):
            np.add.at(sums[d], ids, np.asarray(s["sum"][d], np.float64))
            np.minimum.at(lo[d], ids, np.asarray(s["lo"][d], np.int64))
            np.maximum.at(hi[d], ids, np.asarray(s["hi"][d], np.int64))
    names = "zyx"[-ndim:]
    columns = ["id", "area", *[f"centroid_{a}" for a in names], *[f"bbox_{a}0" for a in names],
               *[f"bbox_{a}1" for a in names]]
    with np.errstate(invalid="ignore", divide="ignore"):
        centroid = sums / area
    return _stream_csv(table_path(output), columns, area, centroid, lo, hi)


def _stream_csv(path: Path, columns: list[str], area, centroid, lo, hi, *, chunk: int = 20_000) -> Path:
    """Write the table in chunks of rows (atomically), never holding one dict per object.

    The format is :func:`samscope.evaluation.report.write_csv`'s: integers as is, floats in full
    precision (``repr``), a missing centroid (an object of area 0) as an empty cell. A table of a
    whole slide has millions of rows; built as dicts it was the one part of a blockwise run whose
    memory grew with the image (≈ 1 kB per object).
    """
    from samscope.io import atomic_target

    n = area.size - 1
    with atomic_target(path, overwrite=True) as tmp, open(tmp, "w", newline="") as f:
        f.write(",".join(columns) + "\n")
        for start in range(1, n + 1, chunk):
            stop = min(start + chunk, n + 1)
            lines = []
            for i in range(start, stop):
                cells = [str(i), str(int(area[i]))]
                cells += ["" if not np.isfinite(c) else repr(float(c)) for c in centroid[:, i]]
                cells += [str(int(v)) for v in lo[:, i]]
                cells += [str(int(v)) for v in hi[:, i]]
                lines.append(",".join(cells))
            f.write("\n".join(lines) + "\n")
    return path
