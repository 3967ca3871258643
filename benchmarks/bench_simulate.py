"""Throughput and memory of the simulators (issue 3: ≥ 4 mitochondria fields of 512² per second).

Run: ``python benchmarks/bench_simulate.py [--fields 40] [--workers 2] [--memory 50,400]``

1. In memory, one process: wall time and process CPU time per sample for mitochondria (512²
   fields, Table 1 defaults), nuclei and label-free cells (512²). CPU time per field is the
   figure that does not depend on what else runs on the machine.
2. ``write_dataset`` to a temporary folder (TIFF, zlib) with 1 and ``--workers`` processes:
   fields per second end to end, including compressing and writing the overlapping masks.
3. Memory bound: ``write_dataset`` of ``--memory A,B`` fields, each in a fresh process; the peak
   resident memory of the parent and of the largest worker. Equal peaks for A and B mean the
   memory does not grow with n (every sample streams to disk; nothing per sample is kept).

The load average is printed before and after: on a shared machine, wall-clock rates are lower
than the CPU time per field implies.
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


def _load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def in_memory(kind: str, n: int) -> tuple[float, float]:
    """Wall and CPU seconds per 512² sample of ``kind`` (after one warm-up sample)."""
    from samscope.simulate import stream

    it = stream(kind, seed=0, shape=(512, 512))
    next(it)  # warm-up: PSF and OTF caches, imports
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        next(it)
    return (time.perf_counter() - w0) / n, (time.process_time() - c0) / n


def to_disk(n: int, workers: int) -> tuple[float, float]:
    """Fields per second of ``write_dataset('mitochondria', n)`` with ``workers`` processes,
    and CPU seconds per field (this process and its workers)."""
    from samscope.simulate import write_dataset

    def cpu() -> float:
        s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    with tempfile.TemporaryDirectory() as tmp:
        t, c0 = time.perf_counter(), cpu()
        write_dataset("mitochondria", n, tmp, seed=1, progress=False, workers=workers)
        return n / (time.perf_counter() - t), (cpu() - c0) / n


_CHILD = """
import json, resource, sys, tempfile
from samscope.simulate import write_dataset
n, workers = int(sys.argv[1]), int(sys.argv[2])
with tempfile.TemporaryDirectory() as tmp:
    write_dataset("mitochondria", n, tmp, seed=2, progress=False, workers=workers)
print(json.dumps({
    "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
}))
"""


def peak_memory(n: int, workers: int) -> dict:
    """Peak RSS (MB) of a fresh process writing ``n`` fields, and of its largest worker."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(n), str(workers)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fields", type=int, default=40, help="samples per measurement")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory", default="50,400", help="two dataset sizes for the memory check")
    args = ap.parse_args()

    print(f"CPUs: {os.cpu_count()}, {_load()}")
    print("\n1. in memory, one process, 512² samples")
    for kind, n in (("mitochondria", args.fields), ("nuclei", args.fields), ("cells", args.fields)):
        wall, cpu = in_memory(kind, n)
        print(f"  {kind:13s} {1 / wall:6.2f} /s wall   {cpu * 1000:6.0f} ms CPU per sample ({n} samples)")
    print(f"  peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")

    print("\n2. write_dataset('mitochondria'), TIFF + zlib, 512² fields")
    for workers in sorted({1, args.workers}):
        rate, cpu = to_disk(args.fields, workers)
        print(
            f"  workers={workers}: {rate:6.2f} fields/s wall, {cpu * 1000:4.0f} ms CPU per field "
            f"(incl. worker start-up; {args.fields} fields)"
        )

    print("\n3. memory bound (fresh process per run)")
    for n in (int(v) for v in args.memory.split(",")):
        mem = peak_memory(n, args.workers)
        print(
            f"  n={n:5d} workers={args.workers}: parent peak {mem['self_mb']:.0f} MB, "
            f"largest worker peak {mem['children_mb']:.0f} MB"
        )
    print(f"\n{_load()}")


if __name__ == "__main__":
    main()
