"""Segmentations of the tracking benchmark's series, cached (they take minutes per series on CPU).

``python benchmarks/_tracking_cache.py hela cho [--cache DIR]`` segments every frame with
:func:`samscope.pipeline.tracking.segment_frames` (what ``samscope track`` runs) and stores
``DIR/NAME_seg.npy`` (ids per frame) and ``DIR/NAME_seg.json`` (diameter, seconds).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_CACHE = Path("/tmp/samscope-tracking-cache")


def load(name: str):
    """``(images, axes, reference labels or None, z_scale)`` of a named series."""
    import tifffile

    if name == "hela":
        return tifffile.imread(DATA / "hela" / "images.tif"), "TYX", None, None
    if name == "cho":
        img = tifffile.imread(DATA / "cho" / "images.tif")
        return img, "TZYX", tifffile.imread(DATA / "cho" / "masks.tif"), 5.0
    raise SystemExit(f"unknown series {name}")


def cached_segmentation(name: str, images, axes, model, cache: Path, z_scale=None, log=print):
    """Labels per frame from the cache, or computed and stored."""
    from samscope.pipeline.tracking import segment_frames

    cache.mkdir(parents=True, exist_ok=True)
    npy, meta = cache / f"{name}_seg.npy", cache / f"{name}_seg.json"
    if npy.exists() and meta.exists():
        return np.load(npy), json.loads(meta.read_text())
    t0 = time.perf_counter()
    labels, diameter = segment_frames(
        images, axes, model, z_scale=z_scale,
        progress=lambda d, n: log(f"  {name}: frame {d}/{n} ({time.perf_counter() - t0:.0f} s)"),
    )  # fmt: skip
    info = {"diameter": diameter, "seconds": time.perf_counter() - t0, "frames": int(len(labels))}
    np.save(npy, labels)
    meta.write_text(json.dumps(info))
    return labels, info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="+")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--model", default="samscope-generalist")
    args = ap.parse_args()
    from samscope.models.registry import load_model

    model = load_model(args.model, device="cpu")
    for name in args.names:
        images, axes, _, z = load(name)
        _, info = cached_segmentation(name, images, axes, model, args.cache, z_scale=z,
                                      log=lambda s: print(s, flush=True))  # fmt: skip
        print(name, info, flush=True)


if __name__ == "__main__":
    main()
