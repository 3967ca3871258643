"""``samscope segment BIG -o OUT.zarr [--dask …]``: the blockwise branch of ``samscope segment``.

Kept apart from :mod:`samscope.cli.segment` (which only decides to come here) so that command
stays one thin function; the work is :func:`samscope.blockwise.segment_blockwise`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from samscope.errors import InputError

__all__ = ["parse_sizes", "run_blockwise", "wants_blockwise"]


def wants_blockwise(output: Path | None, *, dask: bool, block_size: str | None) -> bool:
    """A ``.zarr`` or ``.tif`` output, ``--dask`` or ``--block-size`` select the blockwise path."""
    from samscope.blockwise.tiff import TIFF_SUFFIXES

    suffix = "" if output is None else Path(output).suffix.lower()
    return bool(dask or block_size or suffix == ".zarr" or suffix in TIFF_SUFFIXES)


def parse_sizes(text: str | None, what: str) -> int | tuple[int, ...] | None:
    """``"2048"`` → 2048 (every axis), ``"16,512,512"`` → one size per axis."""
    if text is None:
        return None
    parts = [p for p in str(text).replace("x", ",").split(",") if p.strip()]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"{what} must be an integer or integers separated by commas, got {text!r}") from None
    if not values:
        raise InputError(f"{what} is empty")
    return values[0] if len(values) == 1 else values


class _Bars:
    """tqdm bars per phase (blocks done, rate, ETA) and what an interruption says was finished."""

    def __init__(self, output: Path) -> None:
        from samscope.blockwise.store import BlockStore
        from samscope.cli import _interrupt

        self.store = BlockStore(output)
        self.bar: Any = None
        self.phase = ""
        _interrupt.report(self._finished)

    def _finished(self) -> str | None:
        if not self.store.path.exists():
            return None
        seg, wrote = len(self.store.segmented()), len(self.store.written())
        return (f"{seg} block(s) segmented and {wrote} written into {self.store.path}; re-running "
                "the same command continues from there")

    def __call__(self, event) -> None:
        from tqdm.auto import tqdm

        if event.phase != self.phase:
            self.close()
            self.phase = event.phase
            self.bar = tqdm(total=event.total, desc=event.phase, unit="block")
        self.bar.update(event.done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def run_blockwise(
    inputs: list[str], output: Path | None, *, dask: bool, workers: int | None,
    scheduler: str | None, cluster_config: Path | None, block_size: str | None,
    halo: str | None, options: dict[str, Any],
) -> None:
    """Check the flags, run :func:`samscope.blockwise.segment_blockwise`, print what it did."""
    import typer

    from samscope.blockwise import BlockwiseRequest, segment_blockwise

    if len(inputs) != 1:
        raise InputError(f"blockwise segmentation (-o OUT.zarr, --dask, --block-size) takes one "
                         f"image, got {len(inputs)} inputs")
    from samscope.blockwise.tiff import TIFF_SUFFIXES, tiff_store_path, write_bigtiff

    if output is None or Path(output).suffix.lower() not in (".zarr", *TIFF_SUFFIXES):
        raise InputError("blockwise segmentation writes a zarr or a BigTIFF: give -o OUT.zarr "
                         "or -o OUT.tif")
    tiff = Path(output) if Path(output).suffix.lower() in TIFF_SUFFIXES else None
    if tiff is not None:
        output = tiff_store_path(tiff)  # the resumable working store beside the TIFF
        if tiff.exists() and not output.exists() and not options.get("overwrite"):
            raise InputError(f"'{tiff}' exists; pass --overwrite to replace it")
    if not dask and (workers or scheduler or cluster_config):
        raise InputError("--workers, --scheduler and --cluster-config need --dask")
    for flag in ("per_plane", "diameter_um"):
        if options.pop(flag, None):
            raise InputError(f"--{flag.replace('_', '-')} is not supported with blockwise "
                             "segmentation yet")
    request = BlockwiseRequest(
        inputs[0], output, block_size=parse_sizes(block_size, "--block-size"),
        halo=parse_sizes(halo, "--halo"), **options,
    )
    bars = _Bars(Path(output))
    start = time.perf_counter()
    try:
        if dask:
            from samscope.blockwise.cluster import dask_client

            with dask_client(scheduler=scheduler, workers=workers,
                             cluster_config=cluster_config) as client:
                typer.echo(f"dask: {len(client.scheduler_info().get('workers', {}))} worker(s), "
                           f"dashboard {client.dashboard_link}")
                result = segment_blockwise(request, client=client, progress=bars)
        else:
            result = segment_blockwise(request, progress=bars)
    finally:
        bars.close()
    if tiff is not None and (result.status != "skipped" or not tiff.exists()):
        write_bigtiff(output, tiff, overwrite=True)
        typer.echo(f"BigTIFF: {tiff} (tiled, from {output})")
    if result.status == "skipped":
        typer.echo(f"{tiff or output} is already complete with these settings "
                   f"({result.n_objects} object(s)); use --overwrite to redo it")
        return
    size = "" if result.diameter is None else f", diameter {result.diameter:.1f} px"
    typer.echo(
        f"done: {result.n_blocks} block(s) of {'×'.join(map(str, result.block_size))} with halo "
        f"{'×'.join(map(str, result.halo))} ({result.blocks_run} run now, {result.executor}), "
        f"{result.n_objects} object(s){size} in {time.perf_counter() - start:.0f} s "
        f"→ {result.output}, {result.table}"
    )
