"""Accuracy of the speed settings against the current defaults, on the tuning splits only.

Each speed lever that changes results is checked here before it becomes a default (issue 21.3 /
13): the fitted tile layout (:func:`samscope.tiling.fitted_tiling`, fewer tiles per frame) and
the lighter size estimate (fewer looks). Scored with mSA on HeLa frames 12–13 and CHO time points
12–13 (planes as 2-D images), never the held-out frames 14–19.

    python benchmarks/check_speed_settings.py tiling      # HeLa 12-13 (CHO planes fit one tile)
    python benchmarks/check_speed_settings.py estimate    # HeLa 12-13 and CHO 12-13
    python benchmarks/check_speed_settings.py coarse --domains hela   # coarser working scale

Prints per image: diameter, tiles, mSA of the default and of the faster setting, CPU seconds;
then the mean mSA difference (the bar: within 0.005).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _maps(model, work, tiling):
    from samscope.embeddings import compute_embeddings
    from samscope.instance.ais import predict_image_maps

    t0 = time.process_time()
    tile_shape, halo = tiling if tiling is not None else (None, None)
    if tiling is not None and tile_shape is None:  # fits one input: untiled
        emb = compute_embeddings(work, model, tile_shape=None, halo=None)
    else:
        emb = compute_embeddings(work, model, tile_shape=tile_shape, halo=halo)
    maps = predict_image_maps(model, emb)
    return maps, len(emb.tiles), time.process_time() - t0


def check_tiling(model, images, gts, min_halo: int) -> list[float]:
    from samscope.evaluation.metrics import segmentation_accuracy
    from samscope.instance.ais import AISConfig
    from samscope.instance.scale import estimate_diameter, resize_plane, scale_for
    from samscope.instance.segment import ais_from_scaled_maps
    from samscope.tiling import fitted_tiling

    cfg = AISConfig().resolve(model.card.automatic)
    side = int(model.image_size)
    deltas = []
    for i, (im, gt) in enumerate(zip(images, gts, strict=True)):
        d = estimate_diameter(im, model).diameter
        s = scale_for(d, model.card.working_diameter)
        work = im if s == 1.0 else resize_plane(im, s)
        scores = []
        for name, tiling in (("default", None), ("fitted", fitted_tiling(work.shape[:2], side, min_halo=min_halo))):
            maps, n, cpu = _maps(model, work, tiling)
            lab = ais_from_scaled_maps(maps, im.shape[:2], config=cfg).labels
            scores.append(segmentation_accuracy(gt, lab).msa)
            print(f"  image {i} d={d:.1f} scale={s:.3f} {name}: {n} tiles, mSA {scores[-1]:.4f}, "
                  f"{cpu:.1f} s CPU", flush=True)
        deltas.append(scores[1] - scores[0])
    return deltas


def check_estimate(model, images, gts, crops: int) -> list[float]:
    from samscope.evaluation.metrics import segmentation_accuracy
    from samscope.instance.scale import estimate_diameter
    from samscope.instance.segment import segment

    deltas = []
    for i, (im, gt) in enumerate(zip(images, gts, strict=True)):
        scores, seen = [], {}
        for name, kw in (("default", {}), ("light", {"crops": crops})):
            t0 = time.process_time()
            est = estimate_diameter(im, model, **kw)
            cpu = time.process_time() - t0
            if est.diameter not in seen:  # the same estimate gives the same result
                res = segment(im, model, diameter=est.diameter) if est.diameter else segment(im, model)
                seen[est.diameter] = (segmentation_accuracy(gt, res.labels).msa, res.scale)
            msa, scale = seen[est.diameter]
            scores.append(msa)
            print(f"  image {i} {name}: d={est.diameter}, zooms={len(est.candidates)}, scale={scale:.3f}, "
                  f"mSA {scores[-1]:.4f}, estimate {cpu:.1f} s CPU", flush=True)
        deltas.append(scores[1] - scores[0])
    return deltas


def check_coarse(model, images, gts, factors: tuple[float, ...]) -> list[float]:
    """Segment at a coarser working scale: the estimated diameter times each factor is given as
    the diameter, so the image is shrunk by that factor more (fewer tiles), then scored.
    Returns, per image, the mSA difference of the largest factor against factor 1."""
    from samscope.evaluation.metrics import segmentation_accuracy
    from samscope.instance.scale import estimate_diameter, resize_plane
    from samscope.instance.segment import segment

    deltas = []
    for i, (im, gt) in enumerate(zip(images, gts, strict=True)):
        d = estimate_diameter(im, model).diameter
        scores = []
        for f in factors:
            t0 = time.process_time()
            res = segment(im, model, diameter=d * f)
            cpu = time.process_time() - t0
            work = im if res.scale == 1.0 else resize_plane(im, res.scale)
            tiles = _tile_count(model, work)
            scores.append(segmentation_accuracy(gt, res.labels).msa)
            print(f"  image {i} d={d:.1f} factor {f:g}: scale {res.scale:.3f}, {tiles} tiles, "
                  f"mSA {scores[-1]:.4f}, {cpu:.1f} s CPU", flush=True)
        deltas.append(scores[-1] - scores[0])
    return deltas


def _tile_count(model, work) -> int:
    from samscope.tiling import TileGrid

    tiling = model.card.default_tiling(work.shape[:2])
    if not tiling or max(work.shape[:2]) <= int(model.image_size):
        return 1
    tile, halo = (int(v) for v in tiling)
    return len(TileGrid(tuple(work.shape[:2]), (tile, tile), (halo, halo)).tiles)


def main(argv: list[str] | None = None) -> int:
    from eval_generalist import real_domains

    from samscope.models.registry import load_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("tiling", "estimate", "coarse"))
    p.add_argument("--factors", default="1,1.5,2", help="coarse: diameter factors (1 first)")
    p.add_argument("--model", default="samscope-generalist")
    p.add_argument("--min-halo", type=int, default=8)
    p.add_argument("--crops", type=int, default=1)
    p.add_argument("--domains", default="hela,cho")
    args = p.parse_args(argv)
    model = load_model(args.model, device="cpu")
    data = real_domains("tune")
    for domain in args.domains.split(","):
        if domain not in data:
            print(f"{domain}: no data")
            continue
        ims, gts = data[domain]
        print(f"{domain} ({len(ims)} images)", flush=True)
        if args.what == "tiling":
            deltas = check_tiling(model, ims, gts, args.min_halo)
        elif args.what == "coarse":
            deltas = check_coarse(model, ims, gts, tuple(float(f) for f in args.factors.split(",")))
        else:
            deltas = check_estimate(model, ims, gts, args.crops)
        print(f"{domain}: mean mSA difference (faster - default) {np.mean(deltas):+.4f} "
              f"(per image {', '.join(f'{x:+.4f}' for x in deltas)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
