"""Blockwise segmentation at scale: memory per process, time, Dask scaling, equivalence, faults.

Targets of issue 17: peak resident memory per process (single process and per Dask worker)
within 10 % between a 4096² and a 16384² image and <= 2 GB; 16384² with the shipped model in
under 8 minutes single-process on a 2-core CPU; ``--dask`` with 2 single-threaded workers no
slower than single-process; on an 8192² simulated nuclei image the 2-worker Dask result and the
single-process result agree (mSA >= 0.99), blockwise vs ground truth no worse than a whole-image
run by more than 0.01 mSA, and no object split or duplicated at block borders; killing a worker
mid-run gives the same result as an uninterrupted run.

Usage::

    # peak RSS and time per process, single process and --dask 2 workers (fresh processes)
    python benchmarks/bench_blockwise.py memory --sizes 4096 16384 [--segmenter threshold]
    # equivalence on simulated nuclei: blockwise vs whole image vs ground truth, dask vs single
    python benchmarks/bench_blockwise.py equivalence --size 8192 [--no-whole]
    # kill one Dask worker mid-run; compare with an uninterrupted run
    python benchmarks/bench_blockwise.py faults --size 2048
    # an illumination gradient: per-block vs one image-wide intensity range, vs whole image
    python benchmarks/bench_blockwise.py gradient --size 1024 --block-size 256
    # encoder passes per size and block size (exact operation counts, no model run)
    python benchmarks/bench_blockwise.py plan --sizes 4096 16384 --blocks 2048 2128
    # time 4096² (single, --dask 2) and extrapolate to 16384² by encoder passes
    python benchmarks/bench_blockwise.py speed --size 4096 --target 16384
    # the model's segment() of one 2048² block: default malloc arenas vs the one shared arena
    python benchmarks/bench_blockwise.py malloc --reps 2

Big inputs are made without holding them in memory: a mosaic of independently simulated 1024²
nuclei tiles written tile by tile into a chunked zarr. Each measured run is a fresh process
(``_run``), so its peak RSS is its own. Speed figures on a loaded machine are not ratios to
trust: rerun on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TILE = 1024


def _status_mb(key: str) -> float | None:
    """A ``/proc/self/status`` memory line (``VmHWM``, ``VmRSS``) in MB; None where unreadable."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def _rss_mb() -> float:
    """This process's own peak RSS (VmHWM). Not ``ru_maxrss``: Linux carries the parent's peak
    over ``exec`` into it, so a run started by a driver that held more read the driver's peak."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_now_mb() -> float:
    """This process's resident memory now (VmRSS): flat after each block when nothing per
    block is kept (the peak, VmHWM, also holds the largest block's transient)."""
    now = _status_mb("VmRSS")
    return now if now is not None else float("nan")


def mosaic(path: Path, size: int, seed: int = 17, distinct: int = 0) -> Path:
    """A ``size``² uint16 zarr of simulated nuclei, one 1024² simulation per chunk.

    ``distinct`` > 0: only that many different simulations, repeated in turn (cheap big
    inputs for memory runs; same statistics per block, not new objects).
    """
    import numpy as np
    import zarr

    from samscope.simulate import nuclei

    if distinct:
        path = path.with_name(path.name.removesuffix(".zarr") + f"_r{distinct}.zarr")
    if path.exists():
        return path
    arr = zarr.create_array(str(path), shape=(size, size), dtype=np.uint16,
                            chunks=(TILE, TILE), zarr_format=2)
    n = -(-size // TILE)
    cache: dict[int, object] = {}  # only with distinct: the few simulations reused
    for i in range(n):
        for j in range(n):
            k = i * n + j if not distinct else (i * n + j) % distinct
            s = cache.get(k)
            if s is None:
                [s] = nuclei(1, (TILE, TILE), rng=seed * 100003 + k)
                if distinct:
                    cache[k] = s
            h, w = min(TILE, size - i * TILE), min(TILE, size - j * TILE)
            arr[i * TILE:i * TILE + h, j * TILE:j * TILE + w] = \
                np.clip(s.image[:h, :w], 0, 65535).astype(np.uint16)
    return path


def _segmenter(kind: str):
    from samscope.blockwise import ThresholdSegmenter

    # the mosaic's background is ~33 000 counts (camera offset); nuclei are well above it
    return None if kind == "model" else ThresholdSegmenter(threshold=33400.0, min_size=20)


def run_once(args) -> dict:
    """One blockwise run in this (fresh) process; prints a JSON line."""
    import shutil

    from samscope.blockwise import BlockwiseRequest, segment_blockwise
    from samscope.blockwise.run import table_path

    out = Path(args.output)
    if out.exists():  # this benchmark's own output: a complete one would be skipped, not timed
        shutil.rmtree(out)
        table_path(out).unlink(missing_ok=True)

    request = BlockwiseRequest(args.input, args.output, model=args.model,
                               block_size=args.block_size, diameter=args.diameter,
                               overwrite=True, **_precision(args))
    t0 = time.perf_counter()
    workers_rss: list[float] = []
    trace: list[dict] = []  # after each segmented block: seconds, peak RSS so far
    client = None

    def peak_workers() -> list[float]:
        return sorted(client.run(_rss_mb).values())

    def progress(p) -> None:
        if p.phase != "segment":
            return
        row = {"done": p.done, "seconds": round(time.perf_counter() - t0, 1),
               "rss_client_mb": round(_rss_mb()), "rss_now_client_mb": round(_rss_now_mb())}
        if client is not None:
            row["rss_workers_mb"] = [round(v) for v in peak_workers()]
        trace.append(row)
        print("block", json.dumps(row), file=sys.stderr, flush=True)  # kept if the run is killed
        if args.max_blocks and p.done >= args.max_blocks:
            raise _Stop

    result = None
    try:
        if args.workers:
            from samscope.blockwise.cluster import dask_client

            with dask_client(workers=args.workers) as client:
                try:
                    result = segment_blockwise(request, client=client, progress=progress,
                                               segmenter=_segmenter(args.segmenter))
                finally:
                    workers_rss = peak_workers()
        else:
            result = segment_blockwise(request, progress=progress,
                                       segmenter=_segmenter(args.segmenter))
    except _Stop:
        pass
    doc = {
        "size": args.size, "workers": args.workers, "segmenter": args.segmenter,
        "precision": args.precision, "partial": result is None,
        "seconds": round(time.perf_counter() - t0, 1),
        "rss_client_mb": round(_rss_mb()), "rss_workers_mb": [round(v) for v in workers_rss],
        "trace": trace,
    }
    if result is not None:
        doc.update({"blocks": result.n_blocks, "block": list(result.block_size),
                    "halo": list(result.halo), "objects": result.n_objects,
                    "diameter": result.diameter, "phases": result.timings})
    else:
        doc.update({"blocks": len(trace), "block": [args.block_size] * 2, "halo": None,
                    "objects": None, "diameter": None, "phases": {}})
    print(json.dumps(doc), flush=True)
    return doc


class _Stop(Exception):
    """Ends a partial run (``--max-blocks``) after that many segmented blocks."""


def _precision(args) -> dict:
    return {} if args.precision is None else {"precision": args.precision}


def _fresh(args, size: int, workers: int, inp: Path, out: Path) -> dict:
    cmd = [sys.executable, __file__, "_run", "--input", str(inp), "--output", str(out),
           "--size", str(size), "--workers", str(workers), "--segmenter", args.segmenter,
           "--model", args.model, "--block-size", str(min(args.block_size, size))]
    if args.max_blocks:
        cmd += ["--max-blocks", str(args.max_blocks)]
    if args.precision:
        cmd += ["--precision", args.precision]
    if args.diameter:
        cmd += ["--diameter", str(args.diameter)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        raise SystemExit(f"run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def memory(args) -> None:
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench_blockwise_"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in args.sizes:
        inp = mosaic(folder / f"mosaic_{size}.zarr", size,
                     distinct=args.distinct_tiles if size > 4096 else 0)
        for workers in args.workers_list:
            doc = _fresh(args, size, workers, inp, folder / f"labels_{size}_{workers}.zarr")
            rows.append(doc)
            where = "single process" if not workers else f"dask {workers} workers"
            part = f"PARTIAL: first {doc['blocks']} blocks segmented, " if doc["partial"] else ""
            print(f"{size}² {where}: {part}{doc['seconds']} s, {doc['objects']} objects, peak "
                  f"RSS client {doc['rss_client_mb']} MB, workers {doc['rss_workers_mb']} MB "
                  f"({doc['blocks']} blocks of {doc['block']}, halo {doc['halo']}); "
                  f"after each block: peak {[r['rss_client_mb'] for r in doc['trace']]} MB, "
                  f"now {[r.get('rss_now_client_mb') for r in doc['trace']]} MB (client)"
                  + ("" if not workers else
                     f", {[r['rss_workers_mb'] for r in doc['trace']]} MB (workers)"),
                  flush=True)
    print(json.dumps(rows))


def encoder_tiles(size: int, block: int, halo: int | None = None, *, diameter: float = 28.0,
                  model: str = "samscope-generalist") -> dict:
    """Exact encoder-pass count of a blockwise run of a ``size``² image (an operation count).

    Each block's outer region is resized by the model's scale for ``diameter`` and cut into the
    card's tiles (each tile one encoder pass, whatever its clipped size); compared with one
    whole-image run at the same scale. ``halo`` None: the blockwise default for ``diameter``.
    """
    from samscope.blockwise import BlockGrid
    from samscope.blockwise.run import default_halo
    from samscope.instance.scale import scale_for
    from samscope.models.registry import get_card
    from samscope.tiling import TileGrid

    card = get_card(model)
    tile = (int(card.tile_shape),) * 2
    tile_halo = (int(card.halo),) * 2
    scale = scale_for(diameter, card.working_diameter)
    block = min(block, size)
    shape = (size, size)
    halo_t = default_halo((block, block), shape, diameter) if halo is None else (halo, halo)
    grid = BlockGrid(shape, (block, block), halo_t)

    def tiles(h: int, w: int) -> int:
        hs, ws = max(1, round(h * scale)), max(1, round(w * scale))
        return len(TileGrid((hs, ws), tile, tile_halo))

    side = tile[0] + 2 * tile_halo[0]  # the encoder input the card's tiles fill

    def fitted(h: int, w: int, min_halo: int = 8) -> int:
        """Tiles if each axis had the fewest equal tiles whose outer region fits ``side`` with
        a halo >= ``min_halo`` (e.g. 9 × 240 + 8 in a 2160 px block instead of 10 × 224 + 16)."""
        n = 1
        for length in (max(1, round(h * scale)), max(1, round(w * scale))):
            n *= 1 if length <= side else -(-(length - 2 * min_halo) // (side - 2 * min_halo))
        return n

    per_block = [tiles(*b.outer_shape) for b in grid]
    outer_px = sum(b.outer_shape[0] * b.outer_shape[1] for b in grid)
    whole = tiles(size, size)
    return {"size": size, "block": block, "halo": list(halo_t), "blocks": len(grid),
            "scale": round(scale, 4), "tiles": sum(per_block), "tiles_whole_image": whole,
            "tiles_per_block": sorted(set(per_block)), "tile_overhead": round(sum(per_block) / whole, 4),
            "halo_pixel_overhead": round(outer_px / size**2, 4),
            "tiles_fitted_halo8": sum(fitted(*b.outer_shape) for b in grid)}


def plan(args) -> None:
    """Encoder passes for each size and block size (no model run; exact counts)."""
    for size in args.sizes:
        for block in args.blocks:
            print(json.dumps(encoder_tiles(size, block, args.halo, diameter=args.diameter or 28.0,
                                           model=args.model)))


def speed(args) -> None:
    """Time a ``--size`` run (single process, then --dask 2 single-threaded workers) and
    extrapolate to ``--target`` by encoder passes.

    Fixed costs (model load, the once-per-image diameter estimate: the run's seconds minus its
    phases) are not scaled; the segment phase scales with the encoder passes (exact counts from
    :func:`encoder_tiles`), match and write with the number of blocks.
    """
    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench_blockwise_speed_"))
    folder.mkdir(parents=True, exist_ok=True)
    inp = mosaic(folder / f"mosaic_{args.size}.zarr", args.size)
    rows = []
    for workers in args.workers_list:
        doc = _fresh(args, args.size, workers, inp, folder / f"labels_{args.size}_{workers}.zarr")
        diameter = doc["diameter"] or args.diameter or 28.0
        here = encoder_tiles(args.size, args.block_size, diameter=diameter, model=args.model)
        there = encoder_tiles(args.target, args.block_size, diameter=diameter, model=args.model)
        ph = doc["phases"]
        fixed = doc["seconds"] - sum(ph.values())
        seg = ph.get("segment", 0.0) * there["tiles"] / here["tiles"]
        rest = (ph.get("match", 0.0) + ph.get("write", 0.0)) * there["blocks"] / here["blocks"]
        est = fixed + seg + rest
        where = "single process" if not workers else f"dask {workers} workers (1 thread each)"
        print(f"{args.size}² {where}: {doc['seconds']} s (fixed {fixed:.1f} s, phases {ph}), "
              f"{doc['objects']} objects, {here['blocks']} blocks, {here['tiles']} encoder "
              f"passes; → {args.target}² ({there['blocks']} blocks, {there['tiles']} passes): "
              f"≈ {est:.0f} s = {est / 60:.1f} min", flush=True)
        rows.append({**doc, "tiles": here["tiles"], "target": there,
                     "extrapolated_seconds": round(est, 1)})
    if len(rows) == 2:
        print(f"dask/single time ratio at {args.size}²: "
              f"{rows[1]['seconds'] / rows[0]['seconds']:.2f}; extrapolated to {args.target}²: "
              f"{rows[1]['extrapolated_seconds'] / rows[0]['extrapolated_seconds']:.2f}")
    print(json.dumps(rows))


def malloc_ab(args) -> None:
    """The model's ``segment()`` of one block with glibc's default arenas vs one shared arena.

    Fresh processes, alternated (default, one, default, one …), each segmenting the same
    ``--block-size``² crop of the 4096² mosaic twice. The figure that holds under load is the
    minor page faults (``ru_minflt``: the cost a fixed trim threshold had, 1.7 M instead of
    17–46 k per 2048² block); the seconds are only worth comparing on a quiet machine.
    """
    import statistics

    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench_blockwise_malloc_"))
    folder.mkdir(parents=True, exist_ok=True)
    inp = mosaic(folder / "mosaic_4096.zarr", 4096)
    rows: dict[str, list[dict]] = {"default": [], "one": []}
    for rep in range(args.reps):
        for arena in ("default", "one"):
            cmd = [sys.executable, __file__, "_block", "--input", str(inp), "--arena", arena,
                   "--model", args.model, "--block-size", str(args.block_size),
                   "--diameter", str(args.diameter or 29.0)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not lines:
                raise SystemExit(f"run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
            doc = json.loads(lines[-1])
            rows[arena].append(doc)
            print(f"rep {rep} arenas {arena} ({doc['arenas']} at the end): "
                  + "; ".join(f"segment {i}: {r['wall']} s wall, user {r['user']} s, sys "
                              f"{r['sys']} s, {r['minflt']} minor faults"
                              for i, r in enumerate(doc["segments"])), flush=True)
    for arena, docs in rows.items():
        warm = [d["segments"][-1] for d in docs]
        print(f"arenas {arena}: median of {len(warm)} (second segment() of each process): "
              f"{statistics.median(r['wall'] for r in warm):.2f} s wall, "
              f"{statistics.median(r['minflt'] for r in warm):.0f} minor faults")
    print(json.dumps(rows))


def block_once(args) -> None:
    """One fresh process of :func:`malloc_ab`: two ``segment()`` calls of one block."""
    if args.arena == "one":  # first, as segment_blockwise does before any thread starts
        from samscope.blockwise.executors import share_one_malloc_arena

        share_one_malloc_arena()
    import numpy as np
    import zarr

    from samscope.blockwise.executors import malloc_arena_count
    from samscope.instance.segment import segment
    from samscope.models.registry import load_model

    img = np.asarray(zarr.open_array(args.input, mode="r")[:args.block_size, :args.block_size])
    model = load_model(args.model)
    segments = []
    for _ in range(2):
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        segment(img, model, diameter=args.diameter)
        r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        segments.append({"wall": round(t1 - t0, 2), "user": round(r1.ru_utime - r0.ru_utime, 2),
                         "sys": round(r1.ru_stime - r0.ru_stime, 2),
                         "minflt": r1.ru_minflt - r0.ru_minflt})
    print(json.dumps({"arena": args.arena, "arenas": malloc_arena_count(),
                      "segments": segments}), flush=True)


def _border_report(reference, labels, grid) -> dict:
    """Reference objects crossing block borders: how many are split (>= 2 blockwise objects
    over 20 % of their area each) or merged (a blockwise object over >= 2 of them)."""
    import numpy as np

    owner = np.zeros(reference.shape, np.int32)
    for b in grid:
        owner[b.core_slices] = b.flat
    ref = reference.ravel().astype(np.int64)
    fg = ref > 0
    pairs = np.unique(np.stack([ref[fg], owner.ravel()[fg]]), axis=1)
    crossing = np.unique(pairs[0][np.r_[False, pairs[0][1:] == pairs[0][:-1]]])
    lab = labels.ravel().astype(np.int64)
    both = fg & (lab > 0)
    keys, counts = np.unique(np.stack([ref[both], lab[both]]), axis=1, return_counts=True)
    area = np.bincount(ref)
    big = counts >= 0.2 * area[keys[0]]
    per_ref = np.bincount(keys[0][big], minlength=len(area))
    split = int((per_ref[crossing] >= 2).sum())
    lab_area = np.bincount(lab)
    major = counts >= 0.5 * area[keys[0]]
    refs_per_lab = np.bincount(keys[1][major], minlength=len(lab_area))
    merged_labs = set(np.flatnonzero(refs_per_lab >= 2).tolist())
    merged = int(sum(1 for r, lb, m in zip(keys[0], keys[1], major, strict=True)
                     if m and lb in merged_labs and r in set(crossing.tolist())))
    return {"crossing": int(len(crossing)), "split": split, "merged": merged}


def equivalence(args) -> None:
    import numpy as np
    import zarr

    from samscope.blockwise import BlockGrid, BlockwiseRequest, segment_blockwise
    from samscope.evaluation.metrics import mean_segmentation_accuracy as msa
    from samscope.io import write_image
    from samscope.simulate import nuclei

    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench_blockwise_eq_"))
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    [sample] = nuclei(1, (args.size, args.size), rng=args.seed)
    image = np.clip(sample.image, 0, 65535).astype(np.uint16)
    inp = write_image(folder / f"nuclei_{args.size}.tif", image, overwrite=True)
    truth = sample.labels
    print(f"simulated {args.size}²: {int(truth.max())} nuclei in {time.perf_counter() - t0:.0f} s",
          flush=True)
    del sample
    out = {}
    for workers in (0,) if args.no_dask else (0, 2):
        dest = folder / f"blockwise_{workers}.zarr"
        request = BlockwiseRequest(inp, dest, model=args.model, block_size=args.block_size,
                                   overwrite=True, diameter=out.get("diameter"))
        t0 = time.perf_counter()
        if workers:
            from samscope.blockwise.cluster import dask_client

            with dask_client(workers=workers) as client:
                result = segment_blockwise(request, client=client)
        else:
            result = segment_blockwise(request)
        out["diameter"] = result.diameter
        out[f"seconds_{workers}"] = round(time.perf_counter() - t0, 1)
        print(f"blockwise ({result.executor}): {result.n_objects} objects, "
              f"{out[f'seconds_{workers}']} s, diameter {result.diameter}", flush=True)
        out["grid"] = (result.block_size, result.halo)
    single = zarr.open_group(str(folder / "blockwise_0.zarr"), mode="r")["0"][...]
    grid = BlockGrid(single.shape, *out["grid"])
    report = {"size": args.size, "objects_truth": int(truth.max())}
    if not args.no_dask:
        dask = zarr.open_group(str(folder / "blockwise_2.zarr"), mode="r")["0"][...]
        report["msa_dask_vs_single"] = msa(single, dask)
        report["identical_dask_single"] = bool(np.array_equal(single, dask))
    report.update({
        "msa_blockwise_vs_truth": msa(truth, single),
        "borders_vs_truth": _border_report(truth, single, grid),
        **{k: v for k, v in out.items() if k != "grid"},
        "block": list(out["grid"][0]), "halo": list(out["grid"][1]),
    })
    if not args.no_whole:
        from samscope.instance.segment import segment
        from samscope.models.registry import load_model

        t0 = time.perf_counter()
        whole = segment(image, load_model(args.model), diameter=out["diameter"]).labels
        report["seconds_whole"] = round(time.perf_counter() - t0, 1)
        report["msa_whole_vs_truth"] = msa(truth, whole)
        report["msa_blockwise_vs_whole"] = msa(whole, single)
        report["borders_vs_whole"] = _border_report(whole, single, grid)
        report["whole_borders_vs_truth"] = _border_report(truth, whole, grid)
    print(json.dumps(report, indent=1))


def faults(args) -> None:
    """Kill one of two Dask workers after a few blocks; the run must still finish identically."""
    import signal
    import threading

    import numpy as np
    import zarr

    from samscope.blockwise import BlockwiseRequest, segment_blockwise
    from samscope.blockwise.cluster import dask_client

    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench_blockwise_faults_"))
    folder.mkdir(parents=True, exist_ok=True)
    inp = mosaic(folder / f"mosaic_{args.size}.zarr", args.size)
    seg = _segmenter(args.segmenter)
    ref = folder / "reference.zarr"
    segment_blockwise(BlockwiseRequest(inp, ref, model=args.model, block_size=args.block_size,
                                       diameter=args.diameter, overwrite=True), segmenter=seg)
    out = folder / "killed.zarr"
    with dask_client(workers=2) as client:
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        killed = []

        def killer():
            marks = out / "_blockwise" / "segmented"
            while not killed:
                if marks.is_dir() and len(list(marks.glob("*.json"))) >= 2:
                    os.kill(victim, signal.SIGKILL)
                    killed.append(time.time())
                time.sleep(0.2)

        threading.Thread(target=killer, daemon=True).start()
        result = segment_blockwise(BlockwiseRequest(inp, out, model=args.model,
                                                    block_size=args.block_size,
                                                    diameter=args.diameter, overwrite=True),
                                   client=client, segmenter=seg)
    a = zarr.open_group(str(ref), mode="r")["0"][...]
    b = zarr.open_group(str(out), mode="r")["0"][...]
    doc = {"killed_worker": bool(killed), "objects": result.n_objects,
           "identical": bool(np.array_equal(a, b)), "block": list(result.block_size),
           "blocks": result.n_blocks}
    print(json.dumps(doc))
    if not killed:
        print("NOTE: no worker was killed (the run finished before 2 blocks were marked); "
              "use a smaller --block-size", file=sys.stderr)


def gradient(args) -> None:
    """Blocks of uneven brightness: per-block vs one image-wide intensity range, vs whole image.

    Simulated nuclei whose signal above the background falls from 100 % to ``--dim`` across x
    (an illumination gradient); blockwise runs with ``normalise="block"`` and ``"image"``,
    compared (mSA) with a whole-image run and with the ground truth.
    """
    import numpy as np
    import zarr

    from samscope.blockwise import BlockGrid, BlockwiseRequest, segment_blockwise
    from samscope.evaluation.metrics import mean_segmentation_accuracy as msa
    from samscope.instance.segment import segment
    from samscope.io import write_image
    from samscope.models.registry import load_model
    from samscope.simulate import nuclei

    folder = Path(args.folder or tempfile.mkdtemp(prefix="bench_blockwise_grad_"))
    folder.mkdir(parents=True, exist_ok=True)
    [sample] = nuclei(1, (args.size, args.size), rng=args.seed)
    img = sample.image.astype(np.float64)
    bg = float(np.percentile(img, 5))
    ramp = np.linspace(1.0, args.dim, args.size)[None, :]
    image = np.clip(bg + (img - bg) * ramp, 0, 65535).astype(np.uint16)
    inp = write_image(folder / f"gradient_{args.size}.tif", image, overwrite=True)
    truth = sample.labels
    report: dict = {"size": args.size, "dim": args.dim, "objects_truth": int(truth.max()),
                    "block": args.block_size}
    results = {}
    diameter = args.diameter
    for how in ("block", "image"):
        dest = folder / f"gradient_{how}.zarr"
        t0 = time.perf_counter()
        r = segment_blockwise(BlockwiseRequest(inp, dest, model=args.model,
                                               block_size=args.block_size, diameter=diameter,
                                               normalise=how, overwrite=True))
        diameter = r.diameter
        results[how] = zarr.open_group(str(dest), mode="r")["0"][...]
        report[f"seconds_{how}"] = round(time.perf_counter() - t0, 1)
        report["halo"] = list(r.halo)
    report["diameter"] = diameter
    t0 = time.perf_counter()
    whole = segment(image, load_model(args.model), diameter=diameter).labels
    report["seconds_whole"] = round(time.perf_counter() - t0, 1)
    grid = BlockGrid(whole.shape, (args.block_size,) * 2, tuple(report["halo"]))
    report["msa_whole_vs_truth"] = msa(truth, whole)
    for how, lab in results.items():
        report[f"msa_{how}_vs_truth"] = msa(truth, lab)
        report[f"msa_{how}_vs_whole"] = msa(whole, lab)
        report[f"borders_{how}_vs_truth"] = _border_report(truth, lab, grid)
    print(json.dumps(report, indent=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", default="samscope-generalist")
    common.add_argument("--segmenter", choices=("model", "threshold"), default="model")
    common.add_argument("--block-size", type=int, default=2048)
    common.add_argument("--diameter", type=float, default=None)
    common.add_argument("--folder", default=None)
    common.add_argument("--precision", default=None, choices=("fp32", "int8"),
                        help="encoder precision (default: the model's)")
    m = sub.add_parser("memory", parents=[common])
    m.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    m.add_argument("--workers-list", type=int, nargs="+", default=[0, 2])
    m.add_argument("--distinct-tiles", type=int, default=0,
                   help="images above 4096²: repeat this many simulated 1024² tiles (cheap)")
    m.add_argument("--max-blocks", type=int, default=0,
                   help="stop after this many segmented blocks (a partial run for the segment "
                        "phase's peak memory; no stitching)")
    pl = sub.add_parser("plan", parents=[common])
    pl.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
    pl.add_argument("--blocks", type=int, nargs="+", default=[1024, 2048, 2128, 4096])
    pl.add_argument("--halo", type=int, default=None)
    sp = sub.add_parser("speed", parents=[common])
    sp.add_argument("--size", type=int, default=4096)
    sp.add_argument("--target", type=int, default=16384)
    sp.add_argument("--workers-list", type=int, nargs="+", default=[0, 2])
    sp.add_argument("--max-blocks", type=int, default=0)
    e = sub.add_parser("equivalence", parents=[common])
    e.add_argument("--size", type=int, default=8192)
    e.add_argument("--seed", type=int, default=8192)
    e.add_argument("--no-whole", action="store_true")
    e.add_argument("--no-dask", action="store_true")
    f = sub.add_parser("faults", parents=[common])
    f.add_argument("--size", type=int, default=2048)
    g = sub.add_parser("gradient", parents=[common])
    g.add_argument("--size", type=int, default=1024)
    g.add_argument("--seed", type=int, default=1024)
    g.add_argument("--dim", type=float, default=0.3)
    ma = sub.add_parser("malloc", parents=[common])
    ma.add_argument("--reps", type=int, default=2)
    b = sub.add_parser("_block", parents=[common])
    b.add_argument("--input", required=True)
    b.add_argument("--arena", choices=("default", "one"), required=True)
    r = sub.add_parser("_run", parents=[common])
    r.add_argument("--input", required=True)
    r.add_argument("--output", required=True)
    r.add_argument("--size", type=int, required=True)
    r.add_argument("--workers", type=int, default=0)
    r.add_argument("--max-blocks", type=int, default=0)
    args = parser.parse_args()
    if args.command in ("equivalence", "faults", "gradient"):  # a small check run: one block at most
        args.block_size = min(args.block_size, args.size)
    if args.command == "faults":  # enough blocks that one is killed mid-run (>= 16)
        args.block_size = min(args.block_size, max(64, args.size // 4))
    {"memory": memory, "equivalence": equivalence, "faults": faults, "gradient": gradient,
     "plan": plan, "speed": speed, "malloc": malloc_ab, "_block": block_once, "_run": run_once}[
        args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
