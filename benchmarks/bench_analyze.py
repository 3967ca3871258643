"""Time ``samscope analyze`` on a results folder of N images of SIZE² (target: 100 × 1024² < 30 s).

Builds a folder that looks like ``samscope segment``'s output: ``--distinct`` label images of
touching cells (a watershed of random seeds inside a blurred random foreground, about 60 %
confluent, several hundred cells per 1024² image), each with its raw image, objects table and
segmentation record, hard-linked under N names in two condition folders (the analysis reads
every file, so repeated content costs the same as distinct content). Then it runs the command
a user runs, ``samscope analyze RESULTS -o REPORT`` (fresh process: imports and plots
included), and prints the wall time per ``--workers`` setting.

    python benchmarks/bench_analyze.py --n 100 --size 1024 --workers 1 2

Figures taken on a loaded machine are not comparable; measure on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def cells(size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Label image of touching cells and a matching noisy image."""
    from scipy import ndimage as ndi
    from skimage.segmentation import watershed

    rng = np.random.default_rng(seed)
    fg = ndi.gaussian_filter(rng.random((size, size)), size / 64) > 0.49
    n = int(size * size / 1500)
    markers = np.zeros((size, size), np.int32)
    pts = rng.integers(0, size, (n, 2))
    markers[pts[:, 0], pts[:, 1]] = np.arange(1, n + 1)
    markers[~fg] = 0
    lab = watershed(ndi.gaussian_filter(rng.random((size, size)), 2), markers, mask=fg)
    img = (rng.normal(100, 10, (size, size)) + 80 * (lab > 0)).astype(np.float32)
    return lab.astype(np.uint16), img


def build(folder: Path, n: int, size: int, distinct: int) -> None:
    from samscope.evaluation.report import write_csv
    from samscope.instance.instances import Instances, object_table
    from samscope.io import write_image, write_labels

    proto = folder / "_proto"
    proto.mkdir(parents=True, exist_ok=True)
    for k in range(distinct):
        lab, img = cells(size, k)
        write_labels(proto / f"p{k}_labels.tif", lab, pixel_size=(325.0, 325.0), overwrite=True)
        write_image(proto / f"p{k}.tif", img, pixel_size=(325.0, 325.0), overwrite=True)
        rows = object_table(Instances.from_labels(lab.astype(np.int64)))
        write_csv(proto / f"p{k}_objects.csv", rows)
    for i in range(n):
        cond = "A" if i % 2 == 0 else "B"
        d, raw = folder / "results" / cond, folder / "raw" / cond
        d.mkdir(parents=True, exist_ok=True)
        raw.mkdir(parents=True, exist_ok=True)
        k = i % distinct
        name = f"img{i:03d}"
        for src, dst in ((proto / f"p{k}_labels.tif", d / f"{name}_labels.tif"),
                         (proto / f"p{k}_objects.csv", d / f"{name}_objects.csv"),
                         (proto / f"p{k}.tif", raw / f"{name}.tif")):
            if not dst.exists():
                os.link(src, dst)
        (d / f"{name}_segmentation.json").write_text(json.dumps(
            {"input": str(raw / f"{name}.tif"), "model": "samscope-lm", "mode": "ais",
             "pixel_size_nm": 325.0}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--distinct", type=int, default=4)
    p.add_argument("--workers", type=int, nargs="+", default=[1])
    p.add_argument("--dir", type=Path, default=Path("/tmp/samscope_bench_analyze"))
    args = p.parse_args(argv)

    if args.dir.exists():
        shutil.rmtree(args.dir)
    t0 = time.perf_counter()
    build(args.dir, args.n, args.size, args.distinct)
    print(f"built {args.n} results of {args.size}² in {time.perf_counter() - t0:.1f} s")
    result = {"n": args.n, "size": args.size, "runs": []}
    for w in args.workers:
        out = args.dir / f"report_w{w}"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "samscope.cli.main", "analyze",
                        str(args.dir / "results"), "-o", str(out), "--workers", str(w)],
                       check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        n_obj = sum(1 for _ in open(out / "objects.csv", encoding="utf-8")) - 1
        result["runs"].append({"workers": w, "seconds": wall, "objects": n_obj})
        print(f"samscope analyze, {args.n} × {args.size}², workers={w}: {wall:.1f} s "
              f"({wall / args.n * 1e3:.0f} ms/image, {n_obj} objects)")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
