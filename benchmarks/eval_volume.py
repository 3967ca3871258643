"""Volumes on the real CHO data: automatic 3-D segmentation and interactive 3-D propagation.

CHO (``../shared/data/cho``): 20 time points × 5 planes × 443 × 512, 3-D nuclei labels. Time
points 0–13 are for development and tuning; 14–19 are held out and reported once (``--split
test``). Reports

- automatic: 3-D mSA / SA50 (objects matched in 3-D) of ``link`` (per-plane segmentation linked
  by overlap, at several ``min_overlap``), ``watershed`` (3-D watershed on stacked AIS maps),
  ``per-plane`` (ids restart per plane: its 3-D score shows what linking buys) and a 3-D Otsu +
  distance-transform watershed baseline; and the per-plane mSA (mean over planes, objects
  matched within a plane) of each result, so the gain from 3-D consistency is visible;
- interactive: one prompt (a point: the most interior pixel; or the box) on each nucleus's largest
  plane (``--start largest``, the issue's protocol) or on the volume's middle plane
  (``--start middle``, where the nucleus is there) → propagated through z for all nuclei at
  once → mean 3-D IoU with the reference nucleus, per propagation setting.

Embeddings are cached under ``--cache`` (one zarr per time point and scale), so reruns decode
only. Timings on a loaded CPU are not measurements; none are reported.

Usage::

    python benchmarks/eval_volume.py --split dev  [--model samscope-lm --scale 0.42]
    python benchmarks/eval_volume.py --split test --only-defaults
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cho"
SPLITS = {"dev": range(0, 14), "test": range(14, 20)}
Z_SCALE = 5.0  # Fluo-N3DH-CHO: 0.202 µm pixels, 1 µm planes


def otsu_watershed_3d(volume: np.ndarray, *, z_scale: float, diameter: float) -> np.ndarray:
    """The classical baseline: 3-D Otsu foreground, anisotropic distance transform, watershed."""
    from scipy import ndimage as ndi
    from skimage.feature import peak_local_max
    from skimage.filters import threshold_otsu
    from skimage.segmentation import watershed

    smooth = ndi.gaussian_filter(volume.astype(np.float32), (0, 2, 2))
    fg = smooth > threshold_otsu(smooth)
    fg = np.stack([ndi.binary_fill_holes(p) for p in fg])
    dist = ndi.distance_transform_edt(fg, sampling=(z_scale, 1, 1))
    # the few, far planes cap the distance in z: smooth in the plane so that each nucleus has one
    # peak, and look for peaks a radius apart through all planes
    dist = ndi.gaussian_filter(dist, (0, diameter / 8, diameter / 8))
    r = max(2, int(diameter / 2))
    footprint = np.ones((2 * int(np.ceil(r / z_scale)) + 1, 2 * r + 1, 2 * r + 1), bool)
    peaks = peak_local_max(dist, footprint=footprint, labels=fg.astype(int), exclude_border=False)
    markers = np.zeros(fg.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    lab = watershed(-dist, markers, mask=fg)
    sizes = np.bincount(lab.ravel())
    return np.where(sizes[lab] < 200, 0, lab)


def scores(gt: np.ndarray, pred: np.ndarray) -> dict:
    from samscope.evaluation.metrics import segmentation_accuracy

    sa = segmentation_accuracy(gt, pred)
    planes = [segmentation_accuracy(gt[z], pred[z]).msa for z in range(len(gt)) if gt[z].any()]
    return {"msa": sa.msa, "sa50": sa.sa50, "plane_msa": float(np.mean(planes))}


def gt_prompts(gt: np.ndarray, start: str):
    from scipy import ndimage as ndi

    from samscope.multidim import ObjectPrompt

    ids = [int(i) for i in np.unique(gt) if i]
    points, boxes, keep = [], [], []
    for i in ids:
        m = gt == i
        areas = m.reshape(len(m), -1).sum(1)
        z = int(np.argmax(areas)) if start == "largest" else len(m) // 2
        if not m[z].any():
            continue  # "middle": the nucleus is not on the middle plane
        keep.append(i)
        dist = ndi.distance_transform_edt(np.pad(m[z], 1))[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        points.append(ObjectPrompt(z, points=[[y, x]]))
        ys, xs = np.nonzero(m[z])
        boxes.append(ObjectPrompt(z, box=[ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]))
    return keep, points, boxes


def iou3d(a: np.ndarray, b: np.ndarray) -> float:
    u = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / u if u else 1.0


def main(argv: list[str] | None = None) -> int:
    import tifffile

    from samscope.models.registry import load_model
    from samscope.multidim import (
        LinkConfig,
        PlaneStack,
        PropagationConfig,
        link_planes,
        propagate,
        segment_volume,
        trim_faded,
    )

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=sorted(SPLITS), default="dev")
    ap.add_argument("--times", help="comma-separated time points (default: the split's)")
    ap.add_argument("--model", default="samscope-lm")
    ap.add_argument("--scale", type=float, default=None,
                    help="resize factor of the planes (default: from the model's working diameter, "
                         "else 28/67 for samscope-lm's 28-px training nuclei)")  # fmt: skip
    ap.add_argument("--cache", default="/tmp/samscope-eval-volume")
    ap.add_argument("--what", default="auto,interactive")
    ap.add_argument("--embed-only", action="store_true", help="only fill the embeddings caches")
    ap.add_argument("--start", choices=("largest", "middle"), default="largest")
    ap.add_argument("--only-defaults", action="store_true", help="only the shipped defaults")
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args(argv)

    images = tifffile.imread(DATA / "images.tif")
    masks = tifffile.imread(DATA / "masks.tif")
    times = [int(t) for t in args.times.split(",")] if args.times else list(SPLITS[args.split])
    if args.split == "dev" and any(t >= 14 for t in times):
        print("time points 14–19 are held out: use --split test", file=sys.stderr)
        return 2
    model = load_model(args.model, device="cpu")
    working = model.card.working_diameter
    scale = args.scale
    if scale is None:
        scale = None if working else 28.0 / 67.0
    what = set(args.what.split(","))
    link_grid = (
        [LinkConfig()]
        if args.only_defaults
        else [LinkConfig(min_overlap=o, measure=m) for m in ("iou", "smaller") for o in (0.1, 0.3, 0.5)]
    )
    fade_grid = [0.15] if args.only_defaults else [0.0, 0.15, 0.25]
    prop_grid = (
        [PropagationConfig()]
        if args.only_defaults
        else [PropagationConfig(prompt=p) for p in ("box", "box+mask", "points+mask", "box+points")]
        + [PropagationConfig(min_intensity=f) for f in (0.0, 0.1, 0.2, 0.25)]
        + [PropagationConfig(min_contrast=c) for c in (0.0, 0.1)]
    )
    rows: dict[str, list] = {}
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    for t in times:
        vol, gt = images[t], masks[t]
        from samscope.multidim.volume import volume_scale

        s, _ = volume_scale(vol, model, scale=scale)
        stack = PlaneStack(vol, model, scale=s, cache=cache / f"{args.model}_t{t}_s{s:.3f}.zarr")
        if args.embed_only:
            continue
        if "auto" in what:
            per = segment_volume(stack, model, method="per-plane", min_contrast=0)
            rows.setdefault("per-plane", []).append(scores(gt, per.labels))
            for lc in link_grid:
                lab = link_planes(per.labels, config=lc)
                for fc in fade_grid:
                    trimmed = trim_faded(lab, vol, min_contrast=fc)
                    key = f"link {lc.measure}>={lc.min_overlap} min_contrast={fc}"
                    rows.setdefault(key, []).append(scores(gt, trimmed))
            ws = segment_volume(stack, model, method="watershed", z_scale=Z_SCALE, min_contrast=0)
            for fc in fade_grid:
                key = f"watershed min_contrast={fc}"
                rows.setdefault(key, []).append(scores(gt, trim_faded(ws.labels, vol, min_contrast=fc)))
            base = otsu_watershed_3d(vol, z_scale=Z_SCALE, diameter=67.0)
            rows.setdefault("baseline otsu+dist-ws 3-D", []).append(scores(gt, base))
        if "interactive" in what:
            ids, pts, bxs = gt_prompts(gt, args.start)
            for cfg in prop_grid:
                for kind, prompts in (("point", pts), ("box", bxs)):
                    res = propagate(model, stack, prompts, config=cfg)
                    ious = [iou3d(res.mask(j), gt == i) for j, i in enumerate(ids)]
                    key = f"{kind} prompt={cfg.prompt} min_contrast={cfg.min_contrast} min_intensity={cfg.min_intensity}"
                    rows.setdefault(key, []).append({"iou3d": float(np.mean(ious)), "n": len(ids)})
        print(f"t={t} done ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
        _report(rows, args, times[: times.index(t) + 1], s, final=t == times[-1])
    return 0


def _report(rows: dict, args, times: list[int], s: float, *, final: bool) -> None:
    """Print the means so far (and write them to --out), so a long run can be stopped early."""
    summary = {}
    lines = [f"\nCHO {args.split} time points {','.join(map(str, times))}, model {args.model}, scale {s:.3f}"]
    for key, vals in rows.items():
        agg = {k: float(np.mean([v[k] for v in vals])) for k in vals[0] if k != "n"}
        summary[key] = agg
        lines.append(f"  {key:48s} " + "  ".join(f"{k} {v:.3f}" for k, v in agg.items()))
    print("\n".join(lines), file=sys.stdout if final else sys.stderr, flush=True)
    if args.out:
        doc = {"split": args.split, "times": times, "model": args.model, "scale": s, "results": summary}
        Path(args.out).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
