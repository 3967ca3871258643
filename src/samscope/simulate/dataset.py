"""Simulated samples, per-sample random streams, datasets on disk and preview grids.

Every simulated sample ``i`` of a run with seed ``s`` is drawn from its own random stream,
``numpy.random.SeedSequence(s, spawn_key=(i,))`` (the ``i``-th child of ``SeedSequence(s).spawn``).
So a sample depends only on ``(s, i)``: the same whether it comes from
:func:`~samscope.simulate.mitochondria` with ``rng=s``, from :func:`stream` in any data-loader
worker, or from :func:`write_dataset` resumed after an interruption.

Dataset layout
--------------
::

    DIR/dataset.json          kind, seed, n, shape, format, every configuration field, pixel size
    DIR/images/000000.tif     float32 (y, x) image               (or images.zarr/000000 with fmt="zarr")
    DIR/labels/000000.tif     uint16/uint32 (y, x) label image, 0 = background
    DIR/masks/000000.tif      uint8 (n, y, x) overlapping per-object masks (mitochondria only)
    DIR/params/000000.json    every value drawn for the sample (the run's config is in dataset.json)

Each file is written to a temporary name and renamed into place, the label file last, so a
sample whose label file exists is complete; resuming skips complete samples and recomputes the
rest (a sample depends only on ``(seed, i)``, so the result is the same as an uninterrupted run).
``dataset.json`` says ``"complete": true`` once every sample is written. Per-sample values live
in their own small files so that nothing grows with ``n``: memory and the cost of each write stay
bounded for any number of samples.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.simulate.sample import (
    SimulatedSample,
    check_fraction,
    check_range,
    check_shape,
    config_to_dict,
    labels_dtype,
    resolve_config,
    sample_rng,
    sample_seeds,
    simulate_samples,
)

__all__ = [
    "SimulatedSample",
    "KINDS",
    "simulate",
    "stream",
    "write_dataset",
    "read_sample",
    "preview_grid",
    "config_for",
    # from samscope.simulate.sample, where they live
    "check_fraction",
    "check_range",
    "check_shape",
    "config_to_dict",
    "labels_dtype",
    "resolve_config",
    "sample_rng",
    "sample_seeds",
]

#: Names of the simulators, as used by :func:`stream`, :func:`write_dataset` and the CLI.
KINDS = ("mitochondria", "nuclei", "cells", "generalist")


# --------------------------------------------------------------------------------------------
# dispatch


def _registry() -> dict[str, tuple[type, Callable[..., SimulatedSample]]]:
    import importlib

    # importlib, not ``from samscope.simulate import mitochondria``: the package binds those
    # names to the functions of the same name
    mods = {k: importlib.import_module(f"samscope.simulate.{k}") for k in KINDS}
    return {
        "mitochondria": (mods["mitochondria"].MitochondriaConfig, mods["mitochondria"].simulate_one),
        "nuclei": (mods["nuclei"].NucleiConfig, mods["nuclei"].simulate_one),
        "cells": (mods["cells"].CellsConfig, mods["cells"].simulate_one),
        "generalist": (mods["generalist"].GeneralistConfig, mods["generalist"].simulate_one),
    }


def _lookup(kind: str) -> tuple[type, Callable[..., SimulatedSample]]:
    reg = _registry()
    if kind not in reg:
        raise InputError(f"unknown simulator {kind!r}; choose one of {', '.join(KINDS)}")
    return reg[kind]


def config_for(kind: str, config: Any = None, **overrides: Any) -> Any:
    """The validated configuration of simulator ``kind`` (defaults, ``config``, ``overrides``)."""
    cls, _ = _lookup(kind)
    return resolve_config(cls, config, overrides)


def simulate(
    kind: str,
    n: int = 1,
    shape: tuple[int, int] = (512, 512),
    *,
    rng: int | np.random.Generator | None = None,
    config: Any = None,
    **overrides: Any,
) -> list[SimulatedSample]:
    """Simulate ``n`` samples of ``kind`` (``"mitochondria"``, ``"nuclei"`` or ``"cells"``).

    See :func:`samscope.simulate.mitochondria` for the parameters.
    """
    cls, one = _lookup(kind)
    return simulate_samples(one, cls, n, shape, rng, config, overrides)


def stream(
    kind: str,
    *,
    seed: int,
    config: Any = None,
    shape: tuple[int, int] = (512, 512),
    start: int = 0,
    step: int = 1,
) -> Iterator[SimulatedSample]:
    """Endless samples ``start, start + step, …`` of ``kind`` for on-the-fly training.

    Sample ``i`` depends only on ``(seed, i)``, so data-loader workers can share the work by
    index (worker ``w`` of ``W`` uses ``start=w, step=W``) and the union of their samples is the
    same for any number of workers.

    Parameters
    ----------
    kind : str
        ``"mitochondria"``, ``"nuclei"`` or ``"cells"``.
    seed : int
        Root seed (>= 0).
    config : dataclass, optional
        The simulator's configuration; defaults when omitted.
    shape : tuple of int
        Image shape ``(y, x)``.
    start, step : int
        First index and stride.

    Examples
    --------
    >>> from itertools import islice
    >>> from samscope.simulate import stream
    >>> a = [s.image.sum() for s in islice(stream("nuclei", seed=1, shape=(64, 64)), 3)]
    >>> b = next(stream("nuclei", seed=1, shape=(64, 64), start=2)).image.sum()
    >>> bool(a[2] == b)
    True
    """
    cls, one = _lookup(kind)
    cfg = resolve_config(cls, config, {})
    shape = check_shape(shape)
    sample_seeds(1, seed)  # validates the seed
    if int(start) < 0 or int(step) < 1:
        raise InputError(f"stream: start must be >= 0 and step >= 1, got {start}, {step}")

    def _gen() -> Iterator[SimulatedSample]:
        i = int(start)
        while True:
            yield one(shape, cfg, seed=int(seed), index=i)
            i += int(step)

    return _gen()


# --------------------------------------------------------------------------------------------
# writing datasets

_SUBDIRS = ("images", "labels", "masks", "params", "images.zarr")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    from samscope.io import atomic_target

    with atomic_target(path, overwrite=True) as tmp:
        tmp.write_bytes(data)


def _atomic_write_tiff(path: Path, array: np.ndarray, **kwargs: Any) -> None:
    import tifffile

    from samscope.io import atomic_target

    with atomic_target(path, overwrite=True) as tmp:
        tifffile.imwrite(tmp, array, **kwargs)


def _write_json(path: Path, obj: dict) -> None:
    _atomic_write_bytes(path, (json.dumps(obj, indent=1) + "\n").encode())


def _sample_name(i: int) -> str:
    return f"{i:06d}"


def _sample_params(sample: SimulatedSample) -> dict:
    """A sample's own parameters without the run's configuration (kept once in dataset.json)."""
    return {k: v for k, v in sample.params.items() if k != "config"}


def _write_sample(out: Path, i: int, sample: SimulatedSample, fmt: str) -> None:
    """Write one sample; the label file goes last and marks the sample complete."""
    name = _sample_name(i)
    if fmt == "zarr":
        import zarr

        root = zarr.open_group(str(out / "images.zarr"), mode="a")
        arr = root.create_array(
            name, shape=sample.image.shape, dtype=sample.image.dtype, chunks=sample.image.shape,
            overwrite=True,
        )
        arr[...] = sample.image
        arr.attrs["pixel_size_nm"] = sample.pixel_size_nm
    else:
        res = 1e7 / sample.pixel_size_nm  # pixels per cm
        _atomic_write_tiff(
            out / "images" / f"{name}.tif", sample.image, compression="zlib",
            compressionargs={"level": 1},  # 5× faster than the default, files 20 % larger
            resolution=(res, res), resolutionunit="CENTIMETER",
        )
    if sample.masks is not None:
        masks = sample.masks
        masks = masks.view(np.uint8) if masks.dtype == bool else masks.astype(np.uint8)
        with warnings.catch_warnings():
            # an image without objects has an empty (0, y, x) stack: tifffile warns, reads it back
            warnings.filterwarnings("ignore", message=".*zero-size array", category=UserWarning)
            _atomic_write_tiff(out / "masks" / f"{name}.tif", masks, compression="zlib")
    _write_json(out / "params" / f"{name}.json", _sample_params(sample))
    _atomic_write_tiff(out / "labels" / f"{name}.tif", sample.labels, compression="zlib")


def _is_complete(out: Path, i: int, fmt: str, has_masks: bool) -> bool:
    name = _sample_name(i)
    if not (out / "labels" / f"{name}.tif").is_file():
        return False
    if not (out / "params" / f"{name}.json").is_file():
        return False
    if fmt == "zarr":
        if not (out / "images.zarr" / name / "zarr.json").is_file():
            return False
    elif not (out / "images" / f"{name}.tif").is_file():
        return False
    return not has_masks or (out / "masks" / f"{name}.tif").is_file()


def read_sample(out_dir: str | os.PathLike, index: int) -> SimulatedSample:
    """Read sample ``index`` back from a dataset written by :func:`write_dataset`.

    Its ``params`` are the sample's own values with the run's ``config`` added, as simulated.
    """
    import tifffile

    out = Path(out_dir)
    meta_path = out / "dataset.json"
    if not meta_path.is_file():
        raise InputError(f"{out} is not a samscope dataset (no dataset.json)")
    meta = json.loads(meta_path.read_text())
    name = _sample_name(index)
    fmt = meta["format"]
    if not _is_complete(out, index, fmt, meta["kind"] == "mitochondria"):
        raise InputError(f"sample {index} of {out} is missing or incomplete")
    if fmt == "zarr":
        import zarr

        image = np.asarray(zarr.open_group(str(out / "images.zarr"), mode="r")[name][...])
    else:
        image = tifffile.imread(out / "images" / f"{name}.tif")
    labels = tifffile.imread(out / "labels" / f"{name}.tif")
    mpath = out / "masks" / f"{name}.tif"
    masks = None
    if meta["kind"] == "mitochondria":
        masks = tifffile.imread(mpath).astype(bool).reshape(-1, *labels.shape)
    fg = masks.any(axis=0) if masks is not None else labels > 0
    params = {**json.loads((out / "params" / f"{name}.json").read_text()), "config": meta["config"]}
    return SimulatedSample(image, labels, masks, fg, params, float(meta["pixel_size_nm"]))


def _simulate_and_write(args: tuple) -> tuple[int, dict]:
    """Simulate sample ``i`` and write it (runs in worker processes too); returns its params."""
    kind, shape, cfg, seed, i, out, fmt = args
    _, one = _lookup(kind)
    sample = one(shape, cfg, seed=seed, index=i)
    _write_sample(out, i, sample, fmt)
    return i, _sample_params(sample)


def write_dataset(
    kind: str,
    n: int,
    out_dir: str | os.PathLike,
    *,
    seed: int,
    config: Any = None,
    shape: tuple[int, int] = (512, 512),
    fmt: str = "tif",
    preview: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
    workers: int = 1,
) -> Path:
    """Simulate ``n`` samples of ``kind`` into ``out_dir``, resuming an interrupted run.

    Samples stream to disk one at a time (in each worker), so memory stays bounded for any
    ``n``. Complete samples of the same run (same kind, seed, shape, format and configuration)
    are kept and skipped; a directory holding another run is an error unless ``overwrite``.

    Parameters
    ----------
    kind : str
        ``"mitochondria"``, ``"nuclei"`` or ``"cells"``.
    n : int
        Number of samples (>= 1).
    out_dir : path
        Output directory (created if needed).
    seed : int
        Root seed; sample ``i`` depends only on ``(seed, i)``.
    config : dataclass, optional
        The simulator's configuration; defaults when omitted.
    shape : tuple of int
        Image shape ``(y, x)``.
    fmt : {"tif", "zarr"}
        Image format; labels and masks are always (zlib-compressed) TIFF.
    preview : path, optional
        Write a PNG grid of the first samples with outlined ground truth there.
    overwrite : bool
        Replace a dataset of a different run in ``out_dir`` instead of refusing.
    progress : bool
        Show a tqdm progress bar.
    workers : int
        Processes that simulate and write in parallel (the files do not depend on it).

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    cls, _ = _lookup(kind)
    cfg = resolve_config(cls, config, {})
    shape = check_shape(shape)
    out = Path(out_dir)
    _check_write_arguments(n, seed, fmt, workers, out, preview)
    n, workers = int(n), int(workers)

    run = {"kind": kind, "seed": int(seed), "shape": list(shape), "format": fmt, "config": config_to_dict(cfg)}
    meta_path = out / "dataset.json"
    _claim_folder(out, run, overwrite)

    has_masks = kind == "mitochondria"
    subdirs = ["labels", "params"] + (["masks"] if has_masks else []) + ([] if fmt == "zarr" else ["images"])
    for sub in subdirs:
        (out / sub).mkdir(parents=True, exist_ok=True)
        for stale in (out / sub).glob(".*.tmp"):  # temporary files of an interrupted run
            stale.unlink(missing_ok=True)
    pixel = cfg.optics.pixel_size_nm if hasattr(cfg, "optics") else cfg.pixel_size_nm
    meta = {
        "samscope_dataset": 1,
        **run,
        "n": n,
        "pixel_size_nm": float(pixel),
        "layout": {
            "images": "images.zarr/<index>" if fmt == "zarr" else "images/<index>.tif",
            "labels": "labels/<index>.tif",
            "masks": "masks/<index>.tif (uint8 (n, y, x))" if has_masks else None,
            "params": "params/<index>.json (values drawn for the sample)",
        },
        "complete": False,
    }
    _write_json(meta_path, meta)

    todo = [i for i in range(n) if not _is_complete(out, i, fmt, has_masks)]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, initial=n - len(todo), desc=f"simulate {kind}", unit="img")
    args = [(kind, shape, cfg, int(seed), i, out, fmt) for i in todo]
    try:
        done = _parallel(args, workers) if workers > 1 and len(args) > 1 else map(_simulate_and_write, args)
        for _ in done:
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    meta["complete"] = True
    _write_json(meta_path, meta)
    if preview is not None:
        preview_grid([read_sample(out, i) for i in range(min(n, 6))], preview)
    return out


def _check_write_arguments(n: int, seed: Any, fmt: str, workers: Any, out: Path, preview: Any) -> None:
    """The argument checks of :func:`write_dataset` (InputError naming the bad one)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise InputError(f"seed must be an integer, got {seed!r}")
    sample_seeds(n, seed)  # validates n and the seed
    if fmt not in ("tif", "zarr"):
        raise InputError(f"fmt must be 'tif' or 'zarr', got {fmt!r}")
    if isinstance(workers, bool) or int(workers) != workers or workers < 1:
        raise InputError(f"workers must be an integer >= 1, got {workers!r}")
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a directory")
    if preview is not None and Path(preview).suffix.lower() != ".png":
        raise InputError(f"preview must be a .png path, got {preview}")


def _claim_folder(out: Path, run: dict, overwrite: bool) -> None:
    """Keep ``out`` for a resumed run of ``run``, clear it with ``overwrite``, refuse otherwise."""
    meta_path = out / "dataset.json"
    if meta_path.is_file():
        try:
            old = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        same = old is not None and all(old.get(k) == v for k, v in run.items())
        if not same and not overwrite:
            raise InputError(
                f"{out} holds a different dataset (kind, seed, shape, format or parameters "
                "differ); use another directory or overwrite=True (--overwrite)"
            )
        if overwrite:
            _clear_dataset(out)
    elif out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise InputError(f"{out} is not empty and holds no samscope dataset; use --overwrite")
        _clear_dataset(out)


def _parallel(args: list[tuple], workers: int) -> Iterator[tuple[int, dict]]:
    """Run :func:`_simulate_and_write` over ``args`` in ``workers`` spawned processes.

    Each worker is started with one BLAS/OpenMP thread (the environment is restored after).
    """
    import multiprocessing as mp

    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update({k: "1" for k in names})
    try:
        pool = mp.get_context("spawn").Pool(workers)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    with pool:
        yield from pool.imap_unordered(_simulate_and_write, args, chunksize=1)


def _clear_dataset(out: Path) -> None:
    """Remove what a previous dataset left in ``out`` (only samscope's own entries)."""
    import shutil

    for sub in _SUBDIRS:
        p = out / sub
        if p.is_dir():
            shutil.rmtree(p)
    (out / "dataset.json").unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# preview


def _display(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (0.5, 99.8))
    return np.clip((image - lo) / max(hi - lo, 1e-12), 0, 1)


def preview_grid(
    samples: list[SimulatedSample], path: str | os.PathLike, *, columns: int = 3
) -> Path:
    """Write a PNG grid: each sample percentile-normalised, its objects outlined in colour.

    Overlapping masks are outlined one by one, so crossing objects stay visible.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from skimage.segmentation import find_boundaries

    from samscope.analysis import label_colours

    if not samples:
        raise InputError("preview_grid: no samples")
    path = Path(path)
    cols = min(columns, len(samples))
    rows = -(-len(samples) // cols)
    fig = Figure(figsize=(4 * cols, 4 * rows), dpi=100)
    for k, s in enumerate(samples):
        ax = fig.add_subplot(rows, cols, k + 1)
        rgb = np.repeat(_display(s.image)[..., None], 3, axis=2)
        if s.masks is None:
            bnd = find_boundaries(s.labels, mode="inner")
            rgb[bnd] = label_colours(s.labels[bnd].astype(np.int64))
        else:
            for j, m in enumerate(s.masks):
                ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
                if not ys.size:
                    continue
                win = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
                bnd = find_boundaries(np.pad(m[win], 1), mode="inner")[1:-1, 1:-1]
                rgb[win][bnd] = label_colours(np.array([j + 1]))[0]
        ax.imshow(rgb, interpolation="nearest")
        kind = s.params.get("kind", "")
        ax.set_title(f"{kind} #{s.params.get('index', k)}: {s.n_objects} objects", fontsize=9)
        ax.set_axis_off()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    from samscope.io import atomic_target

    with atomic_target(path, overwrite=True) as tmp:
        fig.savefig(tmp, format="png")
    return path
