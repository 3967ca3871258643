"""Model-card figures of samscope's shipped models, side by side with classical baselines and Nellie.

HeLa (``samscope-lm``) — held-out frames 14–19 of ../shared/data/hela, never seen in training or
tuning: mSA, SA50, SEG, DET per automatic mode and for the two classical baselines (Otsu +
distance-transform watershed; Otsu + connected components), plus SA50 from one point and from
one box per object (the interactive protocol's first prompt, no corrections).

Mitochondria (``samscope-mito``) — simulated with a seed never used in training (default 777),
512² at 80 nm: precision, recall, mean and non-zero dice by the seed-000 protocol against the
overlapping ground-truth masks, for the foreground mode, the baselines and Nellie (run in the
peers venv by ``benchmarks/peers/nellie_segment.py`` when ``--nellie-python`` exists).

Usage::

    python benchmarks/eval_shipped_models.py --out eval/           # both models, ≈15 min on 2 cores
    python benchmarks/eval_shipped_models.py --only mito --mito-n 5

Prints a markdown table per model and writes ``results.json`` and ``results.md`` to ``--out``.
Timings are wall-clock on this machine (noisy when other jobs run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
HELA = HERE.parent.parent / "shared" / "data" / "hela"


def _hela_frames(frames: range) -> tuple[np.ndarray, np.ndarray]:
    import tifffile

    images = tifffile.imread(HELA / "images.tif")
    masks = tifffile.imread(HELA / "masks.tif")
    idx = list(frames)
    return images[idx], masks[idx]


def _scores(gts: list[np.ndarray], preds: list[np.ndarray]) -> dict:
    from samscope.evaluation.ctc import ctc_scores
    from samscope.evaluation.metrics import segmentation_accuracy

    accs = [segmentation_accuracy(g, p) for g, p in zip(gts, preds, strict=True)]
    ctc = ctc_scores(gts, preds)
    return {
        "msa": float(np.mean([a.msa for a in accs])),
        "sa50": float(np.mean([a.sa50 for a in accs])),
        "sa75": float(np.mean([a.sa75 for a in accs])),
        "seg": float(ctc.seg),
        "det": float(ctc.det),
        "n_pred": int(np.mean([a.n_pred for a in accs])),
        "n_gt": int(np.mean([a.n_gt for a in accs])),
    }


def _load(name: str, checkpoint: str | None):
    """A registered model, optionally with other weights (e.g. a run's best.pt) under its card."""
    from samscope.models.registry import load_model

    return load_model(name, checkpoint=checkpoint, device="cpu")


def eval_hela(
    model_name: str, modes: list[str], frames: range, interactive: bool, checkpoint: str | None = None
) -> dict:
    from samscope.embeddings import compute_embeddings
    from samscope.evaluation.interactive import model_segmenter, run_interactive
    from samscope.instance.amg import AMGConfig
    from samscope.instance.classical import BASELINES
    from samscope.instance.segment import segment

    images, gts = _hela_frames(frames)
    gts = [np.asarray(g) for g in gts]
    model = _load(model_name, checkpoint)
    rows: dict[str, dict] = {}
    for name, fn in BASELINES.items():
        t0 = time.perf_counter()
        preds = [fn(im) for im in images]
        rows[name] = {**_scores(gts, preds), "s_per_image": (time.perf_counter() - t0) / len(preds)}
        print(f"hela {name}: {rows[name]}", flush=True)
    embs = []
    t0 = time.perf_counter()
    for im in images:
        embs.append(compute_embeddings(im, model))
    embed_s = (time.perf_counter() - t0) / len(images)
    for mode in modes:
        config = AMGConfig(points_per_side=16) if mode == "amg" else None
        t0 = time.perf_counter()
        preds = [
            segment(im, model, mode=mode, embeddings=None if mode == "foreground" else e, config=config).labels
            for im, e in zip(images, embs, strict=True)
        ]
        elapsed = (time.perf_counter() - t0) / len(preds) + (0 if mode == "foreground" else embed_s)
        rows[mode] = {**_scores(gts, preds), "s_per_image": elapsed}
        print(f"hela {model_name} {mode}: {rows[mode]}", flush=True)
    out = {"model": model_name, "frames": [frames.start, frames.stop - 1], "modes": rows}
    if interactive:
        inter = {}
        for how in ("point", "box"):
            res = [
                run_interactive(model_segmenter(model, e), g, mode=how, n_iterations=0)
                for e, g in zip(embs, gts, strict=True)
            ]
            inter[how] = {
                "sa50": float(np.mean([r.sa50[0] for r in res])),
                "msa": float(np.mean([r.msa[0] for r in res])),
                "mean_object_iou": float(np.mean([r.iou[:, 0].mean() for r in res])),
            }
            print(f"hela {model_name} interactive {how}: {inter[how]}", flush=True)
        out["interactive"] = inter
    return out


def _mito_data(folder: Path, n: int, seed: int) -> Path:
    from samscope.simulate.dataset import write_dataset

    write_dataset("mitochondria", n, folder, seed=seed, shape=(512, 512), progress=False)
    return folder


def _dice(gt_masks: list[np.ndarray], preds: list) -> dict:
    from samscope.evaluation.metrics import MaskStack, dice_protocol

    res = [dice_protocol(MaskStack.from_dense(g.astype(bool)), p) for g, p in zip(gt_masks, preds, strict=True)]
    return {
        "precision": float(np.mean([r.precision for r in res])),
        "recall": float(np.mean([r.recall for r in res])),
        "mean_dice": float(np.mean([r.mean_dice for r in res])),
        "nonzero_dice": float(np.mean([r.nonzero_dice for r in res])),
    }


def eval_mito(
    model_name: str, n: int, seed: int, work: Path, nellie_python: str | None, checkpoint: str | None = None
) -> dict:
    import tifffile

    from samscope.evaluation.metrics import MaskStack
    from samscope.instance.classical import BASELINES
    from samscope.instance.segment import segment

    data = _mito_data(work / f"mito-seed{seed}", n, seed)
    files = sorted((data / "images").glob("*.tif"))
    images = [tifffile.imread(f) for f in files]
    gt_masks = [tifffile.imread(data / "masks" / f.name) for f in files]
    gt_masks = [m[None] if m.ndim == 2 else m for m in gt_masks]
    rows: dict[str, dict] = {}
    for name, fn in BASELINES.items():
        t0 = time.perf_counter()
        preds = [fn(im) for im in images]
        rows[name] = {**_dice(gt_masks, preds), "s_per_image": (time.perf_counter() - t0) / len(preds)}
        print(f"mito {name}: {rows[name]}", flush=True)
    model = _load(model_name, checkpoint)
    t0 = time.perf_counter()
    preds = []
    for im in images:
        res = segment(im, model, mode="foreground", pixel_size_nm=80.0)
        preds.append(MaskStack.from_dense(res.masks.dense().astype(bool)) if res.n else res.labels)
    rows[f"{model_name} foreground"] = {
        **_dice(gt_masks, preds), "s_per_image": (time.perf_counter() - t0) / len(images)
    }
    print(f"mito {model_name}: {rows[f'{model_name} foreground']}", flush=True)
    if nellie_python and Path(nellie_python).exists():
        out = work / f"nellie-seed{seed}"
        script = HERE / "peers" / "nellie_segment.py"
        cmd = [nellie_python, str(script), str(data / "images"), str(out), "--pixel-size-nm", "80"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        preds = [tifffile.imread(out / f.name) for f in files]
        rows["nellie"] = {**_dice(gt_masks, preds), "s_per_image": (time.perf_counter() - t0) / len(images)}
        print(f"mito nellie: {rows['nellie']}", flush=True)
    else:
        print("Nellie not run: give --nellie-python (see ../shared/peers/README.md)", flush=True)
    return {"model": model_name, "seed": seed, "n_images": n, "methods": rows}


def _markdown(results: dict) -> str:
    lines = []
    if "hela" in results:
        h = results["hela"]
        lines += [
            f"### HeLa frames {h['frames'][0]}–{h['frames'][1]} (held out), {h['model']}",
            "",
            "| method | mSA | SA50 | SA75 | SEG | DET | objects (GT) | s/image |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for k, r in h["modes"].items():
            lines.append(
                f"| {k} | {r['msa']:.3f} | {r['sa50']:.3f} | {r['sa75']:.3f} | {r['seg']:.3f} | "
                f"{r['det']:.3f} | {r['n_pred']} ({r['n_gt']}) | {r['s_per_image']:.2f} |"
            )
        for how, r in h.get("interactive", {}).items():
            lines.append(f"| interactive, one {how} per object | {r['msa']:.3f} | {r['sa50']:.3f} | | | | | |")
        lines.append("")
    if "mito" in results:
        m = results["mito"]
        lines += [
            f"### Simulated mitochondria, seed {m['seed']} ({m['n_images']} images 512², 80 nm), {m['model']}",
            "",
            "| method | precision | recall | mean dice | non-zero dice | s/image |",
            "|---|---|---|---|---|---|",
        ]
        for k, r in m["methods"].items():
            lines.append(
                f"| {k} | {r['precision']:.3f} | {r['recall']:.3f} | {r['mean_dice']:.3f} | "
                f"{r['nonzero_dice']:.3f} | {r['s_per_image']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("eval-shipped"))
    ap.add_argument("--only", choices=["hela", "mito"], default=None)
    ap.add_argument("--lm", default="samscope-lm", help="model name or checkpoint for HeLa")
    ap.add_argument("--mito", default="samscope-mito", help="model name or checkpoint for mitochondria")
    ap.add_argument("--lm-checkpoint", default=None, help="other weights under samscope-lm's card")
    ap.add_argument("--mito-checkpoint", default=None, help="other weights under samscope-mito's card")
    ap.add_argument("--modes", default="ais,apg,amg,foreground")
    ap.add_argument("--frames", default="14:20")
    ap.add_argument("--no-interactive", action="store_true")
    ap.add_argument("--mito-n", type=int, default=20)
    ap.add_argument("--mito-seed", type=int, default=777)
    ap.add_argument("--nellie-python", default="/tmp/peers/bin/python")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    start, stop = (int(v) for v in args.frames.split(":"))
    results: dict = {}
    if args.only in (None, "hela"):
        if not (HELA / "images.tif").exists():
            print(f"HeLa data not found at {HELA}", file=sys.stderr)
        else:
            modes = [m for m in args.modes.split(",") if m]
            results["hela"] = eval_hela(
                args.lm, modes, range(start, stop), not args.no_interactive, args.lm_checkpoint
            )
    if args.only in (None, "mito"):
        results["mito"] = eval_mito(
            args.mito, args.mito_n, args.mito_seed, args.out, args.nellie_python, args.mito_checkpoint
        )
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    md = _markdown(results)
    (args.out / "results.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
