"""Calibrate APG, distance mode and AMG of a scale-aware model on the *tuning* split of every domain.

The companion of ``tune_generalist.py`` (AIS) for the other automatic modes. The objective is the
same: the mean over domains (HeLa frames 12–13, CHO time points 12–13, each simulated suite with
seed 301) of the mean mSA, never the test split. Each image is resized once to the model's
working scale (the object size estimated as ``samscope segment`` does); the network part of each
mode is computed once per image where the mode allows it (embeddings for APG and AMG, the distance
map for distance mode), and the grid's cheap part per setting. ``min_size`` is applied to the
masks afterwards (at the working scale, as the card's values are), so each seed setting costs one
APG run. AIS on the same images is scored beside them (the card's thresholds), so the gap to the
best mode is read off one table.

    python benchmarks/tune_generalist_modes.py --modes apg,distance --out eval/tune_modes
    python benchmarks/tune_generalist_modes.py --modes amg --images 1 --out eval/tune_amg

AMG is slow on a CPU (a 32×32 point grid per window): use ``--images 1``. Writes
``tuning_<mode>.json`` (every row, the best) to ``--out`` and prints the best setting per mode.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

GRIDS = {
    "apg": {
        "foreground_thresh": (0.4, 0.5, 0.6),
        "boundary_distance_thresh": (0.4, 0.5, 0.6),
        "center_distance_thresh": (0.4, 0.5),
    },
    "distance": {
        "peak_thresh": (0.2, 0.3, 0.4, 0.5, 0.6),
        "fill_thresh": (0.05, 0.1, 0.2),
    },
    "amg": {
        "pred_iou_thresh": (0.5, 0.7, 0.8),
        "stability_score_thresh": (0.6, 0.8, 0.9),
    },
}
#: Objects smaller than this (pixels at the working scale) are dropped after the mode ran.
MIN_SIZES = (0, 50, 100, 200)


def drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    """``labels`` without the objects of fewer than ``min_size`` pixels."""
    if min_size <= 0:
        return labels
    counts = np.bincount(labels.ravel())
    small = np.flatnonzero(counts < min_size)
    small = small[small > 0]
    if small.size == 0:
        return labels
    out = labels.copy()
    out[np.isin(labels, small)] = 0
    return out


def native_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Working-scale labels back on the input's grid (nearest neighbour)."""
    from samscope.instance.instances import Instances
    from samscope.instance.scale import rescale_instances

    if labels.shape == tuple(shape):
        return labels
    return np.asarray(rescale_instances(Instances.from_labels(labels), shape).labels)


def prepare(model, image) -> dict:
    """The image at the working scale, with its embeddings and the AIS maps."""
    from samscope.embeddings import compute_embeddings
    from samscope.instance.scale import resize_plane
    from samscope.instance.segment import _object_scale

    used, scale = _object_scale(np.asarray(image), model, "ais", None)
    work = image if scale == 1.0 else resize_plane(np.asarray(image), scale)
    return {"work": work, "shape": np.asarray(image).shape[:2], "diameter": used, "scale": scale,
            "emb": compute_embeddings(work, model)}


def mode_labels(model, item: dict, mode: str, setting: dict) -> np.ndarray:
    """Working-scale labels of one mode and setting (network parts cached in ``item``)."""
    from samscope.instance.segment import config_class, segment

    working = model.card.working_diameter
    if mode == "distance":
        from samscope.instance.distance import (
            DistanceConfig,
            distance_from_map,
            predict_distance_map,
        )

        if "dist" not in item:
            item["dist"] = predict_distance_map(model, np.asarray(item["work"]), config=DistanceConfig())
        cfg = DistanceConfig(**setting, min_size=0)
        return np.asarray(distance_from_map(item["dist"], config=cfg).labels)
    cfg = config_class(mode)(**setting, min_size=0)
    inst = segment(item["work"], model, mode=mode, embeddings=item["emb"], config=cfg, diameter=working)
    return np.asarray(inst.labels)


def main(argv: list[str] | None = None) -> int:
    from eval_generalist import real_domains, sim_domains, subset

    from samscope.evaluation.metrics import segmentation_accuracy
    from samscope.instance.segment import segment
    from samscope.models.registry import load_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="samscope-generalist")
    p.add_argument("--modes", default="apg,distance")
    p.add_argument("--images", type=int, default=2, help="images per domain (spread evenly)")
    p.add_argument("--cho-images", type=int, default=4, help="CHO planes (spread over z and t)")
    p.add_argument("--suite-n", type=int, default=4)
    p.add_argument("--domains", default="", help="comma-separated subset of domains")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache", type=Path, default=Path(__file__).resolve().parent / ".cache")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    data = real_domains("tune")
    data.update(sim_domains("tune", args.suite_n, args.cache))
    if args.domains:
        data = {k: v for k, v in data.items() if k in set(args.domains.split(","))}
    items: dict[str, list[tuple[dict, np.ndarray]]] = {}
    ais: dict[str, float] = {}
    for d, (ims, gts) in data.items():
        k = args.cho_images if d == "cho" else args.images
        pairs = subset(list(zip(ims, gts, strict=True)), k)
        items[d] = [(prepare(model, im), gt) for im, gt in pairs]
        ais[d] = float(np.mean([
            segmentation_accuracy(gt, np.asarray(segment(im, model, mode="ais", diameter=it["diameter"]).labels)).msa
            if it["diameter"] else segmentation_accuracy(gt, np.asarray(segment(im, model, mode="ais").labels)).msa
            for (it, gt), (im, _) in zip(items[d], pairs, strict=True)
        ]))
        print(f"prepared {d}: {len(pairs)} images, scales {[round(it['scale'], 3) for it, _ in items[d]]}, "
              f"AIS mSA {ais[d]:.3f}", flush=True)
    print(f"AIS mean {np.mean(list(ais.values())):.3f}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for mode in filter(None, args.modes.split(",")):
        grid = GRIDS[mode]
        names = list(grid)
        rows = []
        for values in itertools.product(*(grid[n] for n in names)):
            setting = dict(zip(names, values, strict=True))
            if mode == "distance" and setting["fill_thresh"] > setting["peak_thresh"]:
                continue
            t0 = time.perf_counter()
            per = {m: {} for m in MIN_SIZES}
            for d, pairs in items.items():
                accs = {m: [] for m in MIN_SIZES}
                for it, gt in pairs:
                    lab = mode_labels(model, it, mode, setting)
                    for m in MIN_SIZES:
                        pred = native_labels(drop_small(lab, m), it["shape"])
                        accs[m].append(segmentation_accuracy(gt, pred).msa)
                for m in MIN_SIZES:
                    per[m][d] = float(np.mean(accs[m]))
            for m in MIN_SIZES:
                rows.append({**setting, "min_size": m, **per[m], "mean": float(np.mean(list(per[m].values())))})
            best_here = max(rows[-len(MIN_SIZES):], key=lambda r: r["mean"])
            print(f"{mode} {setting} best min_size {best_here['min_size']}: mean {best_here['mean']:.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
        best = max(rows, key=lambda r: r["mean"])
        doc = {"mode": mode, "best": best, "ais": ais, "ais_mean": float(np.mean(list(ais.values()))),
               "images": {d: len(v) for d, v in items.items()}, "rows": rows}
        (args.out / f"tuning_{mode}.json").write_text(json.dumps(doc, indent=1))
        print(f"best {mode}:", json.dumps(best), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
