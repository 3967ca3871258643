"""Reduced-precision inference (issue 21): masks of bf16 / int8 against fp32, and timings.

    python benchmarks/bench_precision.py [--models vit_b,samscope-generalist] [--prompts 100]
                                         [--reps 3] [--no-timing] [--json OUT.json]
                                         [--precisions fp32,int8,bf16]

For each model — ViT-B with *random* weights (normal, std 0.02, seed 0; the weights micro-sam
comparisons use, see bench_core.py) and the shipped default model ``samscope-generalist`` — it
embeds one image at fp32, bf16 and int8 and decodes the same ``--prompts`` point prompts and
``--prompts`` box prompts with each, then prints per precision:

- mask IoU against fp32 (mean, 5th percentile, minimum, share of prompts at IoU ≥ 0.98), for
  points and boxes separately;
- for ``bf16``, also "bf16 encoder + fp32 decoder" (the embeddings alone in bf16);
- mask IoU against the ground truth object (the shipped model on real data: does precision cost
  accuracy where it matters?);
- the largest relative difference of the embeddings, and the fp32 masks' mean area (random
  weights can give empty masks, on which every precision agrees trivially: read IoU with it);
- **logit IoU** against fp32, which is meaningful with random weights too: per prompt, the
  threshold is the fp32 low-resolution logits' median (50 % of the area) or their 90th percentile
  (top 10 %), and the IoU is that of ``fp32 logits > t`` and ``other logits > t`` — the same
  level set of both, so a precision that reorders the logits loses IoU even where the 0-threshold
  masks are empty (mean / 5th percentile / minimum / share ≥ 0.98, points and boxes pooled);
- timings: embedding (median of ``--reps``) and one point prompt (median over the prompts).

The image is HeLa frame 12 (``../shared/data/hela``, the training/tuning split: nothing is tuned
here, but the held-out frames 14–19 stay untouched) with its reference masks; prompts are the
innermost pixel (distance-transform maximum) and the bounding box of 100 objects drawn with
seed 0. Without the data a simulated nuclei image is used.

Timings are labelled "UNDER LOAD" when the 1-minute load average exceeds the benchmark's own threads plus half the cores: ratios
from a busy machine are not figures. Accuracy does not depend on load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "hela"
PRECISIONS = ("fp32", "bf16", "int8")


def load_state() -> str:
    """"idle" or "UNDER LOAD (load average L on N cores)".

    The benchmark's own threads count towards the load average (a 2-thread run on 2 cores makes
    it ≈ 2 by itself), so the machine is "under load" only when the load exceeds the cores plus
    half of them.
    """
    import torch

    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > min(cores, torch.get_num_threads()) + 0.5 * cores:
        return f"UNDER LOAD (load average {load:.1f} on {cores} cores): timings are not figures"
    return f"idle (load average {load:.1f} on {cores} cores)"


def test_image(size: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(image, labels, description): HeLa frame 12 cropped to ≤ size, else simulated nuclei."""
    images, masks = DATA / "images.tif", DATA / "masks.tif"
    if images.exists() and masks.exists():
        import tifffile

        img = tifffile.imread(images, key=12)[:size, :size]
        lab = tifffile.imread(masks, key=12)[:size, :size]
        return img, lab, f"HeLa frame 12 {img.shape[0]}×{img.shape[1]} (tuning split)"
    from skimage.draw import disk

    rng = np.random.default_rng(0)
    lab = np.zeros((size, size), np.uint16)
    for i in range(1, 151):
        rr, cc = disk(tuple(rng.integers(20, size - 20, 2)), rng.uniform(8, 16), shape=lab.shape)
        lab[rr, cc] = i
    img = 1000 + 3000 * (lab > 0) + rng.normal(0, 200, lab.shape)
    return img.astype(np.uint16), lab, f"simulated nuclei {size}² (no ../shared/data)"


def prompts(labels: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Innermost points (y, x), boxes (y0, x0, y1, x1) and ids of ``n`` objects (seed 0)."""
    from scipy import ndimage as ndi

    ids = np.unique(labels)
    ids = ids[ids > 0]
    rng = np.random.default_rng(0)
    chosen = rng.choice(ids, size=n, replace=len(ids) < n)
    slices = ndi.find_objects(labels)
    points, boxes = [], []
    for i in chosen:
        sl = slices[i - 1]
        obj = labels[sl] == i
        dist = ndi.distance_transform_edt(np.pad(obj, 1))[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        points.append((sl[0].start + y, sl[1].start + x))
        boxes.append((sl[0].start, sl[1].start, sl[0].stop, sl[1].stop))
    return np.array(points, float), np.array(boxes, float), chosen


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def random_checkpoint(tmp: Path) -> Path:
    """A segment-anything ``.pth`` of ViT-B with small normal weights (SAM's init leaves many zeros)."""
    import torch

    from samscope.models.architectures import build_sam
    from samscope.models.checkpoint import save_checkpoint

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        ref = build_sam("vit_b", fast_attention=False)
        for p in ref.parameters():
            torch.nn.init.normal_(p, std=0.02)
    ckpt = tmp / "random_vit_b.pth"
    save_checkpoint(ckpt, ref, format="segment-anything")
    return ckpt


def random_vit_b(tmp: Path):
    from samscope.models.registry import load_model

    return load_model(random_checkpoint(tmp), device="cpu")


def decode_all(net, emb, points, boxes):
    """Point masks (one prompt per call, with per-call times), box masks (one batch) and every
    prompt's low-resolution logits with the window they refer to (points first, then boxes)."""
    from samscope.prompting import segment_from_boxes, segment_from_prompts

    pm, times, logits = [], [], []
    for y, x in points:
        t0 = time.perf_counter()
        res = segment_from_prompts(net, emb, points=[[y, x]])
        times.append(time.perf_counter() - t0)
        pm.append(res.masks[0])
        logits.append((res.logits[0], tuple(np.asarray(res.windows).reshape(-1, 4)[0])))
    res = segment_from_boxes(net, emb, boxes)
    bm = list(res.masks)
    windows = np.asarray(res.windows).reshape(-1, 4)
    logits += [(res.logits[i], tuple(windows[i])) for i in range(len(bm))]
    return pm, bm, times, logits


def logit_iou(ref: list, other: list, quantile: float) -> tuple[list[float], int]:
    """IoU of ``ref > t`` and ``other > t`` per prompt, ``t`` the ``quantile`` of ``ref``'s logits.

    Prompts whose two results refer to different windows (a tiled model that re-routed) are left
    out; their number is returned too.
    """
    out, skipped = [], 0
    for (a, wa), (b, wb) in zip(ref, other, strict=True):
        if wa != wb:
            skipped += 1
            continue
        t = np.quantile(a, quantile)
        out.append(iou(a > t, b > t))
    return out, skipped


def summary(values: list[float]) -> dict:
    v = np.asarray(values)
    return {"mean": float(v.mean()), "p5": float(np.percentile(v, 5)), "min": float(v.min()),
            "share98": float((v >= 0.98).mean())}  # fmt: skip


def run_model(name: str, model, image, labels, points, boxes, ids, reps: int, timing: bool,
              precisions: tuple[str, ...] = ("fp32", "int8", "bf16")):  # fmt: skip
    """Rows per precision (fp32 first, then int8, bf16 — bf16 is the slow one on CPUs without
    native bf16), each printed as soon as it is measured."""
    from samscope.embeddings import compute_embeddings

    rows: dict[str, dict] = {}
    ref = None
    print(f"\n## {name}")
    print(f"{'precision':<30} {'points IoU vs fp32 mean/p5/min/≥.98':<38} "
          f"{'boxes IoU vs fp32 mean/p5/min/≥.98':<38} {'vs GT pt/box':<14} emb rel diff")  # fmt: skip
    for prec in precisions:
        t0 = time.perf_counter()
        emb = compute_embeddings(image, model, precision=prec)
        runs = [time.perf_counter() - t0]
        if timing:
            for _ in range(reps - 1):
                t0 = time.perf_counter()
                compute_embeddings(image, model, precision=prec)
                runs.append(time.perf_counter() - t0)
        net = model.with_precision(prec)
        pm, bm, times, lg = decode_all(net, emb, points, boxes)
        rows[prec] = {"embedding_s": statistics.median(runs), "embedding_runs": runs,
                      "point_ms": 1000 * statistics.median(times[1:] or times)}  # fmt: skip
        variants = [(prec, pm, bm, lg)]
        if prec == "bf16":  # the embeddings alone in bf16, decoded in fp32
            pm2, bm2, _, lg2 = decode_all(model, emb, points, boxes)
            variants.append(("bf16 encoder + fp32 decoder", pm2, bm2, lg2))
        for label, p_masks, b_masks, p_logits in variants:
            row = rows.setdefault(label, {})
            row["points_iou_vs_gt"] = float(np.mean([iou(m, labels == i) for m, i in zip(p_masks, ids, strict=True)]))
            row["boxes_iou_vs_gt"] = float(np.mean([iou(m, labels == i) for m, i in zip(b_masks, ids, strict=True)]))
            if ref is None:
                ref = (np.asarray(emb.features), pm, bm, lg)
                row["mask_area_mean_px"] = float(np.mean([m.sum() for m in pm]))
            else:
                a, b = ref[0], np.asarray(emb.features)
                row["embedding_rel_diff"] = float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))
                row["points_iou_vs_fp32"] = summary([iou(p, q) for p, q in zip(ref[1], p_masks, strict=True)])
                row["boxes_iou_vs_fp32"] = summary([iou(p, q) for p, q in zip(ref[2], b_masks, strict=True)])
                for key, q in (("logit_iou_median", 0.5), ("logit_iou_top10", 0.9)):
                    values, skipped = logit_iou(ref[3], p_logits, q)
                    row[key] = summary(values) if values else None
                    row["logit_windows_differ"] = skipped
            print_row(label, row)
        sys.stdout.flush()
    return rows


def print_row(label: str, row: dict) -> None:
    gt = f"{row['points_iou_vs_gt']:.3f}/{row['boxes_iou_vs_gt']:.3f}"
    if "points_iou_vs_fp32" not in row:
        area = f"(reference; mean point-mask area {row.get('mask_area_mean_px', 0):.0f} px)"
        print(f"{label:<30} {area:<38} {'':<38} {gt:<14}")
        return
    p, b = row["points_iou_vs_fp32"], row["boxes_iou_vs_fp32"]
    fmt = "{mean:.4f}/{p5:.4f}/{min:.4f}/{share98:.2f}"
    print(f"{label:<30} {fmt.format(**p):<38} {fmt.format(**b):<38} {gt:<14} "
          f"{row['embedding_rel_diff']:.2e}")  # fmt: skip
    parts = []
    for key, what in (("logit_iou_median", "at the fp32 median"), ("logit_iou_top10", "top 10 %")):
        if row.get(key):
            parts.append(f"{what} {fmt.format(**row[key])}")
    if parts:
        skipped = row.get("logit_windows_differ", 0)
        note = f" ({skipped} prompts in another window left out)" if skipped else ""
        print(f"{'':<30} logit IoU vs fp32, points+boxes: {'; '.join(parts)}{note}")


def print_timings(rows: dict, state: str) -> None:
    print(f"timings ({state}):")
    for prec in [p for p in PRECISIONS if p in rows]:
        row = rows[prec]
        print(f"  {prec:<5} embedding {row['embedding_s']:7.2f} s (runs "
              f"{[round(t, 2) for t in row['embedding_runs']]}), point prompt {row['point_ms']:7.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="vit_b,samscope-generalist")
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-timing", action="store_true", help="accuracy only (one embedding each)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--precisions", default="fp32,int8,bf16",
                        help="fp32 first (the reference); bf16 is ≈20× slower on AVX2-only CPUs")
    args = parser.parse_args()

    import torch

    from samscope.models.registry import load_model

    image, labels, what = test_image(args.size)
    points, boxes, ids = prompts(labels, args.prompts)
    print(f"# {what}; {args.prompts} point + {args.prompts} box prompts; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, CPU capability {torch.backends.cpu.get_cpu_capability()}")  # fmt: skip
    print(f"# machine: {load_state()}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            model = random_vit_b(Path(tmp)) if name == "vit_b" else load_model(name, device="cpu")
            label = "ViT-B (random weights)" if name == "vit_b" else name
            precisions = ("fp32", *[p for p in args.precisions.split(",") if p not in ("", "fp32")])
            rows = run_model(label, model, image, labels, points, boxes, ids, args.reps,
                             not args.no_timing, precisions)  # fmt: skip
            state = load_state()
            print_timings(rows, state)
            results[label] = {"rows": rows, "machine": state}
            sys.stdout.flush()
            del model
    if args.json:
        args.json.write_text(json.dumps({"image": what, "results": results}, indent=1))


if __name__ == "__main__":
    main()
