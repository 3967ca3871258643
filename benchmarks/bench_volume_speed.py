"""Speed of 3-D propagation: 10 objects through a 64-plane volume from cached embeddings.

Issue 12's target: under 10 s on this CPU with the shipped model, memory bounded by the planes in
flight. The volume is simulated (:func:`samscope.simulate.volume.nuclei_volume`, 64 planes);
its embeddings are computed once into a zarr cache (``--cache``; not timed: that is ``samscope
embed``'s cost), then ``--repeats`` runs of :func:`samscope.multidim.propagate` with one point per
object on its largest plane are timed, all objects at once. Peak memory of the timed run is
taken with ``tracemalloc`` (numpy buffers included) and printed beside the size of the whole
stack's embeddings: with the cache read plane by plane it stays a few planes' worth.

Timings on a loaded machine are not measurements: run it on a quiet one.

Usage::

    python benchmarks/bench_volume_speed.py [--model samscope-generalist] [--planes 64] [--objects 10]
    python benchmarks/bench_volume_speed.py --model vit_test --planes 8 --shape 128   # smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from samscope.evaluation.interactive_volume import first_prompts_3d
    from samscope.models.registry import DEFAULT_MODEL, load_model
    from samscope.multidim import ObjectPrompt, PlaneStack, propagate
    from samscope.multidim.volume import volume_scale
    from samscope.simulate.volume import Nuclei3DConfig, nuclei_volume

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--planes", type=int, default=64)
    ap.add_argument("--shape", type=int, default=256, help="plane side, px")
    ap.add_argument("--objects", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache", default="/tmp/samscope-bench-volume")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    # nuclei about as deep as the volume: 64 planes of 0.5 µm through nuclei 8-12 µm across
    cfg = Nuclei3DConfig(z_step_nm=500.0, oversample_z=1, n_nuclei=(args.objects, args.objects + 4),
                         aspect_z=(2.0, 2.5), touching_fraction=0.2)  # fmt: skip
    s = nuclei_volume((args.planes, args.shape, args.shape), cfg, seed=1)
    model = load_model(args.model, device="cpu")
    scale, _ = volume_scale(s.image, model)
    cache = Path(args.cache) / f"{Path(str(args.model)).stem}_{args.planes}x{args.shape}_s{scale:.3f}.zarr"
    t = time.perf_counter()
    stack = PlaneStack(s.image, model, scale=scale, cache=cache)
    stack.embeddings(0)
    print(f"embeddings of {args.planes} planes (cached at {cache}): {time.perf_counter() - t:.1f} s", file=sys.stderr)
    first = first_prompts_3d(s.labels)[: args.objects]
    prompts = [ObjectPrompt(f.plane, points=[f.point]) for f in first]
    times, peak = [], 0
    for _ in range(args.repeats):
        stack = PlaneStack(s.image, model, scale=scale, cache=cache)  # fresh: nothing held in memory
        tracemalloc.start()
        t = time.perf_counter()
        res = propagate(model, stack, prompts)
        times.append(time.perf_counter() - t)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    planes = [len(o.masks) for o in res.objects]
    emb_bytes = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"model {args.model}, {len(prompts)} objects through {args.planes} planes of {args.shape}² "
          f"(working scale {scale:.3f}), planes per object {min(planes)}–{max(planes)}")  # fmt: skip
    print(f"  propagate: best {min(times):.2f} s, median {float(np.median(times)):.2f} s over {len(times)} runs "
          f"(target < 10 s; load average {load:.1f}: {'NOT a measurement' if load > 1.5 else 'quiet'})")  # fmt: skip
    print(f"  peak traced memory {peak / 2**20:.0f} MiB; the whole stack's embeddings on disk {emb_bytes / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
