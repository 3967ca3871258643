"""End-to-end time of ``samscope segment`` on a 1024² image with the default model (issue 21.3:
≤ 2 s median of 5 fresh processes, process start included).

Each repeat is a fresh process, as a user runs it: interpreter start, imports, model load,
reading the image, the object-size estimate, tiled embeddings, the automatic mode, and writing
labels, table, record and overlay. The image is simulated (HeLa-like nuclei, 1024², uint16 with
a camera offset), written once.

Usage::

    python benchmarks/bench_segment.py [--model samscope-generalist] [--size 1024] [--repeats 5]

Prints each wall time and the median (the figure for the target), then a per-stage breakdown:
interpreter start and imports in a fresh process, and one in-process run stage by stage (model
load, read, size estimate with its number of looks, embeddings with the tile count, AIS maps,
watershed, writing).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMPORTS = (
    "import samscope.cli.main, samscope.pipeline.segmentation, samscope.instance.segment, "
    "samscope.models.registry, samscope.analysis, torch, skimage.segmentation, skimage.transform"
)


def _image(folder: Path, size: int) -> Path:
    import numpy as np

    from samscope.io import write_image
    from samscope.simulate import stream

    sample = next(stream("nuclei", seed=4242, shape=(size, size)))
    path = folder / f"nuclei_{size}.tif"
    write_image(path, np.clip(sample.image, 0, 65535).astype(np.uint16), overwrite=True)
    return path


def _fresh(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t0


def _stages(path: Path, model_name: str, out: Path) -> dict[str, float]:
    """One in-process run, stage by stage, doing what ``samscope segment`` does in AIS mode."""
    from samscope.analysis import write_overlay
    from samscope.embeddings import compute_embeddings
    from samscope.evaluation.report import write_csv
    from samscope.instance.ais import AISConfig, ais_from_maps, predict_image_maps
    from samscope.instance.instances import object_table
    from samscope.instance.scale import estimate_diameter, resize_plane, scale_for
    from samscope.instance.segment import ais_from_scaled_maps
    from samscope.io import read_image, write_labels
    from samscope.models.registry import load_model

    t: dict[str, float] = {}

    def lap(name: str, t0: float) -> float:
        now = time.perf_counter()
        t[name] = now - t0
        return now

    t0 = time.perf_counter()
    model = load_model(model_name, device="cpu")
    t0 = lap("load model", t0)
    plane = read_image(path).data
    t0 = lap("read image", t0)
    working = getattr(model.card, "working_diameter", None)
    diameter, scale = None, 1.0
    if working and getattr(model, "instance_head", None) is not None:
        est = estimate_diameter(plane, model)
        diameter, scale = est.diameter, scale_for(est.diameter, working)
        d = "none" if diameter is None else f"{diameter:.1f} px"
        t0 = lap(f"size estimate ({len(est.candidates)} zooms, d={d}, scale {scale:.3g})", t0)
    work = plane if scale == 1.0 else resize_plane(plane, scale)
    emb = compute_embeddings(work, model)
    t0 = lap(f"embeddings ({len(emb.tiles)} tiles)", t0)
    maps = predict_image_maps(model, emb)
    t0 = lap("AIS maps", t0)
    cfg = AISConfig().resolve(model.card.automatic)
    result = ais_from_maps(maps, config=cfg) if scale == 1.0 else ais_from_scaled_maps(
        maps, plane.shape[:2], config=cfg)  # fmt: skip
    t0 = lap(f"watershed ({result.n} objects)", t0)
    out.mkdir(parents=True, exist_ok=True)
    write_labels(out / "labels.tif", result.labels, overwrite=True)
    rows = object_table(result)
    write_csv(out / "objects.csv", rows)
    t0 = lap("write labels + table", t0)
    write_overlay(out / "overlay.png", plane, result.labels, overwrite=True)
    lap("write overlay", t0)
    return t


def main() -> int:
    from samscope.models.registry import DEFAULT_MODEL

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-stages", action="store_true", help="only the fresh-process timings")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = _image(folder, args.size)
        walls = []
        cmd = [sys.executable, "-m", "samscope.cli.main", "segment", str(path), "-o", str(folder / "out"),
               "--model", args.model, "--overwrite"]  # fmt: skip
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
            print(f"samscope segment {args.size}² ({args.model}): {walls[-1]:.2f} s", flush=True)
        print(f"TARGET 21.3: median of {len(walls)} fresh processes: {statistics.median(walls):.2f} s "
              "(target <= 2 s)", flush=True)  # fmt: skip
        if args.no_stages:
            return 0
        start = min(_fresh("pass") for _ in range(3))
        imports = min(_fresh(IMPORTS) for _ in range(2)) - start
        print(f"  interpreter start: {start:.2f} s")
        print(f"  imports (fresh process): {imports:.2f} s")
        import samscope.instance.segment  # noqa: F401  (paid above; here only for the stages)

        for stage, seconds in _stages(path, args.model, folder / "stages").items():
            print(f"  {stage}: {seconds:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
