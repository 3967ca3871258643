"""End-to-end time of ``samscope segment`` on a 1024² image with a shipped model (issue target: < 5 s).

Each repeat is a fresh process, as a user runs it: interpreter start, imports, model load,
reading the image, tiled embeddings, the automatic mode, and writing labels, table and overlay.
The image is simulated (HeLa-like nuclei, 1024², uint16 with a camera offset), written once.

Usage::

    python benchmarks/bench_segment.py [--model samscope-lm] [--size 1024] [--repeats 3]

Prints each wall time, the median, and a per-stage breakdown from one in-process run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _image(folder: Path, size: int) -> Path:
    import numpy as np

    from samscope.io import write_image
    from samscope.simulate import stream

    sample = next(stream("nuclei", seed=4242, shape=(size, size)))
    path = folder / f"nuclei_{size}.tif"
    write_image(path, np.clip(sample.image, 0, 65535).astype(np.uint16), overwrite=True)
    return path


def _stages(path: Path, model_name: str) -> dict[str, float]:
    """One in-process run, timed stage by stage (imports already paid by the caller)."""
    from samscope.embeddings import compute_embeddings
    from samscope.instance.segment import segment
    from samscope.io import read_image
    from samscope.models.registry import load_model

    t = {}
    t0 = time.perf_counter()
    model = load_model(model_name, device="cpu")
    t["load model"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    image = read_image(path)
    t["read image"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb = compute_embeddings(image.data, model)
    t[f"embeddings ({len(emb.tiles)} tiles)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = segment(image.data, model, embeddings=emb)
    t[f"{result.mode} ({result.n} objects)"] = time.perf_counter() - t0
    return t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="samscope-lm")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = _image(folder, args.size)
        walls = []
        cmd = ["samscope", "segment", str(path), "-o", str(folder / "out"), "--model", args.model, "--overwrite"]
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
            print(f"samscope segment {args.size}² ({args.model}): {walls[-1]:.2f} s", flush=True)
        print(f"median of {len(walls)}: {statistics.median(walls):.2f} s (target < 5 s)")
        t0 = time.perf_counter()
        import samscope.instance.segment  # noqa: F401  (imports, for the breakdown)
        import samscope.models.registry  # noqa: F401

        print(f"  imports: {time.perf_counter() - t0:.2f} s")
        for stage, seconds in _stages(path, args.model).items():
            print(f"  {stage}: {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
