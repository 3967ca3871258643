"""Calibrate the shipped models' automatic-mode thresholds on tuning data (never on test data).

- ``samscope-lm`` AIS: HeLa frames 12–13 (the training run's validation frames; 14–19 stay held
  out), grid over centre/boundary distance, foreground threshold, minimum size and distance
  smoothing and the size below which border-touching objects are dropped, maximising mSA + SA50 (the two figures the targets name).
- ``samscope-mito`` foreground mode: simulated mitochondria with seed 778 (training used 103,
  evaluation uses 777), grid over the predicted-IoU cut and the overlap filter, maximising
  precision + recall + mean dice of the seed-000 protocol.

Each image is predicted once (maps or candidate masks) and only the post-processing runs per
grid point (:func:`samscope.evaluation.search.grid_search`). Prints the best settings and the
top of each table; copy them into ``samscope/models/builtin_cards.py`` (``_SAMSCOPE_LM``,
``_SAMSCOPE_MITO``).

Usage::

    python benchmarks/tune_shipped_models.py [--lm-checkpoint best.pt] [--mito-checkpoint best.pt]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

HELA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "hela"


def tune_lm(checkpoint: str | None) -> None:
    import tifffile

    from samscope.embeddings import compute_embeddings
    from samscope.evaluation.metrics import segmentation_accuracy
    from samscope.evaluation.search import grid_search
    from samscope.instance.ais import AISConfig, ais_from_maps, predict_image_maps
    from samscope.models.registry import load_model

    model = load_model("samscope-lm", checkpoint=checkpoint, device="cpu")
    images = tifffile.imread(HELA / "images.tif")[12:14]
    gts = list(tifffile.imread(HELA / "masks.tif")[12:14])
    preds = [predict_image_maps(model, compute_embeddings(im, model)) for im in images]

    def post(maps, prm):
        return ais_from_maps(maps, config=AISConfig(**prm)).labels

    def metric(gt, pred):
        acc = segmentation_accuracy(gt, pred)
        return acc.msa + acc.sa50

    grid = {
        "center_distance_thresh": [0.4, 0.5, 0.6],
        "boundary_distance_thresh": [0.5, 0.6, 0.7],
        "foreground_thresh": [0.4, 0.5],
        "min_size": [50, 100, 150],
        "distance_smoothing": [1.6],
        "foreground_smoothing": [1.0],
        "border_min_size": [0, 250, 400],
    }
    res = grid_search(preds, gts, post, grid, metric=metric, progress=True)
    print("samscope-lm AIS best (mSA + SA50):", res.best, f"{res.best_score:.4f}")
    for row in sorted(res.table, key=lambda r: -r["metric" if "metric" in r else list(r)[-1]])[:5]:
        print("  ", row)
    best = ais_from_maps(preds[0], config=AISConfig(**res.best)).labels
    acc = segmentation_accuracy(gts[0], best)
    print(f"  frame 12 at best: mSA {acc.msa:.3f} SA50 {acc.sa50:.3f}")


def tune_mito(checkpoint: str | None, work: Path, n: int) -> None:
    import tifffile

    from samscope.evaluation.metrics import MaskStack, dice_protocol
    from samscope.evaluation.search import grid_search
    from samscope.instance.foreground import (
        ForegroundConfig,
        foreground_postprocess,
        foreground_predict,
    )
    from samscope.models.registry import load_model
    from samscope.simulate.dataset import write_dataset

    model = load_model("samscope-mito", checkpoint=checkpoint, device="cpu")
    folder = work / "mito-seed778"
    write_dataset("mitochondria", n, folder, seed=778, shape=(512, 512), progress=False)
    files = sorted((folder / "images").glob("*.tif"))
    base = ForegroundConfig().resolve(model.card)
    preds = [
        foreground_predict(model, tifffile.imread(f), pixel_size_nm=80.0, config=base) for f in files
    ]
    gts = []
    for f in files:
        m = tifffile.imread(folder / "masks" / f.name)
        gts.append(MaskStack.from_dense((m[None] if m.ndim == 2 else m).astype(bool)))

    def post(pred, prm):
        res = foreground_postprocess(pred, config=dataclasses.replace(base, **prm))
        return MaskStack.from_dense(res.masks.dense().astype(bool)) if res.n else res.labels

    def metric(gt, pred):
        d = dice_protocol(gt, pred)
        return d.precision + d.recall + d.mean_dice

    grid = {"pred_iou_thresh": [0.0, 0.5, 0.6, 0.7, 0.8, 0.85], "overlap_thresh": [0.3, 0.5, 0.7]}
    res = grid_search(preds, gts, post, grid, metric=metric, progress=True)
    print("samscope-mito foreground best (P + R + mean dice):", res.best, f"{res.best_score:.4f}")
    for pred, gt in list(zip(preds, gts, strict=True))[:2]:
        d = dice_protocol(gt, post(pred, res.best))
        print(f"  image: P {d.precision:.3f} R {d.recall:.3f} dice {d.mean_dice:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["lm", "mito"])
    ap.add_argument("--lm-checkpoint")
    ap.add_argument("--mito-checkpoint")
    ap.add_argument("--work", type=Path, default=Path("tune-shipped"))
    ap.add_argument("--mito-n", type=int, default=6)
    args = ap.parse_args()
    if args.only in (None, "lm"):
        tune_lm(args.lm_checkpoint)
    if args.only in (None, "mito"):
        tune_mito(args.mito_checkpoint, args.work, args.mito_n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
