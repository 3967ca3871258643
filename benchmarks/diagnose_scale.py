"""Per-image diagnosis of the object-size estimate on the multi-domain *tuning* split.

For every image of the chosen domains (HeLa 12–13, CHO 12–13, simulated suites with seed 301;
never the test split): the true median equivalent diameter of the reference objects, the
estimated diameter (:func:`samscope.instance.scale.estimate_diameter`) with its zoom ladder, and
the AIS mSA at the estimated diameter against the mSA at the true one (the *oracle* diameter), so
that each domain's gap splits into what the estimate costs and what the model costs.

    python benchmarks/diagnose_scale.py --domains bacteria,phase_cells,cytoplasm --out eval/diag

``--looks``: also cache, per image, the instance head's maps of the most textured window at a
dense zoom ladder (``looks_<domain>_<index>.npz``), so estimator variants can be compared offline. Writes
``diagnosis.json`` and prints one line per image and a per-domain summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Dense zoom ladder cached by ``--looks`` (√2 steps from ×4 to ×¼).
LOOK_ZOOMS = tuple(float(2.0 ** (k / 2)) for k in range(4, -5, -1))


def msa_at(model, image, gt, diameter) -> float:
    """AIS mSA of ``image`` segmented at ``diameter`` (None: estimated)."""
    from samscope.evaluation.metrics import segmentation_accuracy
    from samscope.instance.segment import segment

    return float(segmentation_accuracy(gt, np.asarray(segment(image, model, diameter=diameter).labels)).msa)


def window_maps(model, plane: np.ndarray, zooms=LOOK_ZOOMS) -> dict[str, np.ndarray]:
    """The instance head's maps of the most textured encoder-sized window at each zoom."""
    from samscope.embeddings import compute_embeddings
    from samscope.instance.ais import predict_image_maps
    from samscope.instance.scale import _windows, resize_plane

    side = int(getattr(model, "image_size", None) or 256)
    out = {}
    for z in zooms:
        (wy, wx), = _windows(plane, int(np.ceil(side / z)), 1)
        small = resize_plane(plane[wy, wx], z)
        emb = compute_embeddings(small, model, tile_shape=None, halo=None)
        out[f"z{z:.4f}"] = predict_image_maps(model, emb).astype(np.float16)
    return out


def main(argv: list[str] | None = None) -> int:
    from eval_generalist import real_domains, sim_domains

    from samscope.instance.scale import estimate_diameter, median_diameter
    from samscope.models.registry import load_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="samscope-generalist")
    p.add_argument("--domains", default="", help="comma-separated subset (default: all)")
    p.add_argument("--suite-n", type=int, default=6)
    p.add_argument("--no-oracle", action="store_true", help="skip the mSA at the true diameter")
    p.add_argument("--no-msa", action="store_true", help="only diameters (no segmentation)")
    p.add_argument("--looks", action="store_true", help="cache window maps at a dense zoom ladder")
    p.add_argument("--no-estimate", action="store_true", help="skip the estimate (with --looks)")
    p.add_argument("--start", type=int, default=0, help="first image index per domain")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache", type=Path, default=Path(__file__).resolve().parent / ".cache")
    args = p.parse_args(argv)

    model = load_model(args.model)
    data = real_domains("tune")
    data.update(sim_domains("tune", args.suite_n, args.cache))
    if args.domains:
        keep = set(args.domains.split(","))
        data = {k: v for k, v in data.items() if k in keep}
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for dom, (ims, gts) in data.items():
        for i, (im, gt) in enumerate(zip(ims, gts, strict=True)):
            if i < args.start:
                continue
            true_d, n_gt = median_diameter(np.asarray(gt))
            row = {"domain": dom, "index": i, "true_d": round(true_d, 1), "n_gt": n_gt}
            if args.no_estimate:
                est = None
            else:
                t0 = time.perf_counter()
                est = estimate_diameter(np.asarray(im), model)
                row["est_s"] = round(time.perf_counter() - t0, 2)
                row["est_d"] = None if est.diameter is None else round(est.diameter, 1)
                row["candidates"] = [[round(float(v), 3) for v in c] for c in est.candidates]
            if est is not None and not args.no_msa:
                row["msa_est"] = round(msa_at(model, im, gt, est.diameter), 3)
                if not args.no_oracle and np.isfinite(true_d):
                    row["msa_true"] = round(msa_at(model, im, gt, true_d), 3)
            if args.looks:
                plane = np.asarray(im)
                plane = plane.mean(-1) if plane.ndim == 3 else plane
                maps = window_maps(model, plane.astype(np.float32))
                np.savez_compressed(args.out / f"looks_{dom}_{i}.npz", **maps)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "candidates"}), flush=True)
            (args.out / "diagnosis.json").write_text(json.dumps(rows, indent=1))
    if args.no_estimate:
        return 0
    print("\n| domain | images | est/true (median, worst) | mSA at estimate | mSA at true |")
    print("|---|---|---|---|---|")
    for dom in data:
        rs = [r for r in rows if r["domain"] == dom]
        ratios = [r["est_d"] / r["true_d"] for r in rs if r["est_d"] and r["true_d"] == r["true_d"]]
        worst = max(ratios, key=lambda x: abs(np.log(x))) if ratios else float("nan")
        me = np.mean([r["msa_est"] for r in rs]) if "msa_est" in rs[0] else float("nan")
        mt = np.mean([r["msa_true"] for r in rs if "msa_true" in r]) if "msa_true" in rs[0] else float("nan")
        print(f"| {dom} | {len(rs)} | {np.median(ratios):.2f}, {worst:.2f} | {me:.3f} | {mt:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
