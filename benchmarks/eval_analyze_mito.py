"""Dot/rod analysis of simulated mitochondria against the truth: segment + analyze, end to end.

Three simulated conditions differ in how fragmented their mitochondria are (the simulator's
length range: short tubes are dots, long ones rods):

    Normal        length 300–8000 nm   (fewest dots)
    Hypoxia       length 300–4000 nm   (most dots)
    Hypoxia-ADM   length 300–6000 nm   (in between)

as in the morphology case study of Jadhav et al. 2026 (§4.5: dots rise under hypoxia and fall
back with ADM). Each condition gets ``--n`` fields (width 300–600 nm, seamless tiling, 80 nm
pixels, seed ``--seed`` + condition index; none of these seeds is used in training or tuning).
The script runs the user's path, ``samscope segment IMAGES -o SEG/COND --model samscope-mito``
then ``samscope analyze SEG -o REPORT --mito``, and compares with the truth: the same rule
(area ≤ 1.28 µm²) applied to the simulator's ground-truth masks, each measured whole
(``samscope.analysis.measure_masks`` + ``dot_rod_summary``).

Targets (issue 15): every per-image dot and rod proportion (by count and by area) within 0.05
of the truth; the report's per-condition mean dot proportions in the truth's order.

    python benchmarks/eval_analyze_mito.py --out /tmp/mito_eval --n 10 --shape 512
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CONDITIONS = {  # name → simulator length range, nm
    "Normal": (300.0, 8000.0),
    "Hypoxia": (300.0, 4000.0),
    "Hypoxia-ADM": (300.0, 6000.0),
}
COMMON = {"width_nm": (300.0, 600.0), "tiling": "seamless", "bend_deg": 30.0}


def _run(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/samscope_mito_eval"))
    p.add_argument("--n", type=int, default=10, help="images per condition")
    p.add_argument("--shape", type=int, default=512)
    p.add_argument("--seed", type=int, default=1501)
    p.add_argument("--tolerance", type=float, default=0.05)
    args = p.parse_args(argv)

    from samscope.analysis import dot_rod_summary, measure_masks
    from samscope.analysis.table import read_csv_rows
    from samscope.io import read_image
    from samscope.simulate.dataset import config_for, write_dataset

    sim, seg, rep = args.out / "sim", args.out / "seg", args.out / "report"
    seconds = {"simulate": 0.0, "segment": 0.0}
    for k, (cond, length) in enumerate(CONDITIONS.items()):
        t0 = time.perf_counter()
        cfg = config_for("mitochondria", length_nm=length, **COMMON)
        write_dataset("mitochondria", args.n, sim / cond, seed=args.seed + k, config=cfg,
                      shape=(args.shape, args.shape), progress=False)
        seconds["simulate"] += time.perf_counter() - t0
        seconds["segment"] += _run([sys.executable, "-m", "samscope.cli.main", "segment",
                                    str(sim / cond / "images"), "-o", str(seg / cond),
                                    "--model", "samscope-mito"])
    seconds["analyze"] = _run([sys.executable, "-m", "samscope.cli.main", "analyze", str(seg),
                               "-o", str(rep), "--mito", "--overwrite"])

    predicted = {(r["condition"], r["image"].rsplit("/", 1)[-1]): r
                 for r in read_csv_rows(rep / "images.csv")}
    rows, truth_by_cond = [], {c: [] for c in CONDITIONS}
    for cond in CONDITIONS:
        for mask_file in sorted((sim / cond / "masks").glob("*.tif")):
            name = mask_file.stem
            masks = np.asarray(read_image(mask_file).data) > 0
            truth = dot_rod_summary(measure_masks(masks, pixel_size_nm=80.0))
            pred = predicted[(cond, name)]
            row = {"condition": cond, "image": name, "n_true": truth.n,
                   "n_pred": int(pred["n_objects"])}
            for key in ("dot_count_fraction", "dot_area_fraction"):
                row[f"{key}_true"] = getattr(truth, key)
                row[f"{key}_pred"] = float(pred[key])
                row[f"{key}_error"] = row[f"{key}_pred"] - row[f"{key}_true"]
            rows.append(row)
            truth_by_cond[cond].append(row)

    print(f"\n{'condition':<12} {'image':<7} {'n true':>6} {'n pred':>6}  "
          f"{'dot count: true  pred   err':>28}  {'dot area: true  pred   err':>27}")
    for r in rows:
        print(f"{r['condition']:<12} {r['image']:<7} {r['n_true']:>6} {r['n_pred']:>6}  "
              f"{r['dot_count_fraction_true']:>16.3f} {r['dot_count_fraction_pred']:.3f} "
              f"{r['dot_count_fraction_error']:+.3f}  {r['dot_area_fraction_true']:>14.3f} "
              f"{r['dot_area_fraction_pred']:.3f} {r['dot_area_fraction_error']:+.3f}")
    result: dict = {"n_per_condition": args.n, "shape": args.shape, "seed": args.seed,
                    "seconds": seconds, "tolerance": args.tolerance, "per_image": rows}
    print()
    for key in ("dot_count_fraction", "dot_area_fraction"):
        err = np.abs([r[f"{key}_error"] for r in rows])
        within = float(np.mean(err <= args.tolerance))
        result[key] = {"max_abs_error": float(err.max()), "mean_abs_error": float(err.mean()),
                       "bias": float(np.mean([r[f"{key}_error"] for r in rows])),
                       "fraction_within_tolerance": within}
        print(f"{key}: max |error| {err.max():.3f}, mean {err.mean():.3f}, "
              f"bias {result[key]['bias']:+.3f}, within {args.tolerance}: {within:.0%}")
    summary = {(r["condition"], r["metric"]): float(r["mean"] or "nan")
               for r in read_csv_rows(rep / "conditions.csv")}
    for key in ("dot_count_fraction", "dot_area_fraction"):
        true_means = {c: float(np.mean([r[f"{key}_true"] for r in truth_by_cond[c]]))
                      for c in CONDITIONS}
        report_means = {c: summary[(c, key)] for c in CONDITIONS}
        true_order = sorted(CONDITIONS, key=lambda c: true_means[c])
        report_order = sorted(CONDITIONS, key=lambda c: report_means[c])
        result[f"{key}_order"] = {"truth": true_order, "report": report_order,
                                  "truth_means": true_means, "report_means": report_means,
                                  "same": true_order == report_order}
        print(f"{key} by condition (report / truth): "
              + ", ".join(f"{c} {report_means[c]:.3f} / {true_means[c]:.3f}"
                          for c in CONDITIONS)
              + f" → order {'matches' if true_order == report_order else 'DIFFERS'}")
    print(f"seconds: {seconds}")
    (args.out / "eval_analyze_mito.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out / 'eval_analyze_mito.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
