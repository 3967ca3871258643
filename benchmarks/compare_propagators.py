"""Prompt projection against SAM2's video memory, on the same data and prompts.

On CHO (``../shared/data/cho``: 20 time points × 5 planes × 443 × 512, labels that are track
identities), for each propagator:

- ``--axis z``: every time point's volume, one prompt per nucleus on its largest plane (a point:
  the most interior pixel, or ``--prompt box``), all nuclei propagated through z at once;
- ``--axis t``: one plane (``--z``, default the middle) as a time series over the chosen time
  points, every nucleus prompted on the first of them and followed forward (divisions are not
  modelled by either propagator: a track that divides keeps one daughter at best);

and reports the mean 3-D (z·y·x or t·y·x) IoU with the reference nucleus, and the wall time per
stack plane and per decoded object-plane (image encoders included: SAM1's embeddings and SAM2's
features are both computed in the run).

Models: ``--model`` (samscope registry name or file) for the projection propagator;
``--sam2`` for the memory propagator: a Meta SAM2/SAM2.1 checkpoint (``sam2.1_hiera_tiny.pt``,
converted strictly by :mod:`samscope.models.sam2_convert`), or ``random:hiera_t`` /
``random:hiera_test`` (random weights: only the timings mean something). No SAM2 weights reach
this machine, so accuracy here is meaningless; users with the checkpoints run::

    python benchmarks/compare_propagators.py --sam2 ~/sam2.1_hiera_tiny.pt --model sam2.1_hiera_t
    python benchmarks/compare_propagators.py --axis t --sam2 ~/sam2.1_hiera_tiny.pt
    python benchmarks/compare_propagators.py --sam2 random:hiera_test --model vit_test --times 0  # smoke

Time points 0–13 are for development; 14–19 are held out (``--split test``, report once).
Timings on a loaded machine are not measurements.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cho"
SPLITS = {"dev": range(0, 14), "test": range(14, 20)}


def load_sam2(spec: str):
    """``transformers.Sam2VideoModel`` from a Meta checkpoint path or ``random:PRESET``."""
    import torch

    if spec.startswith("random:"):
        from transformers import Sam2VideoModel

        from samscope.models.sam2_specs import SAM2_SPECS, sam2_video_config

        name = spec.split(":", 1)[1]
        preset = SAM2_SPECS[name]
        if name == "hiera_test":  # the video path needs a width that is a multiple of 64
            from dataclasses import replace

            preset = replace(preset, hidden=128, mask_downsampler_dim=128, fuser_dim=128)
        torch.manual_seed(0)
        return Sam2VideoModel(sam2_video_config(preset)).eval()
    from samscope.models.sam2_convert import build_sam2_video_model, read_meta_checkpoint

    model, _ = build_sam2_video_model(read_meta_checkpoint(spec))
    return model.eval()


def gt_prompts(gt: np.ndarray, kind: str, first_only: bool):
    """One prompt per object on its largest plane (or the first plane, for time series)."""
    from scipy import ndimage as ndi

    from samscope.multidim import ObjectPrompt

    ids, prompts = [], []
    for i in (int(v) for v in np.unique(gt) if v):
        m = gt == i
        z = 0 if first_only else int(np.argmax(m.reshape(len(m), -1).sum(1)))
        if not m[z].any():
            continue
        dist = ndi.distance_transform_edt(np.pad(m[z], 1))[1:-1, 1:-1]
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        ys, xs = np.nonzero(m[z])
        box = [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]
        prompts.append(ObjectPrompt(z, points=[[y, x]]) if kind == "point" else ObjectPrompt(z, box=box))
        ids.append(i)
    return ids, prompts


def iou3d(a: np.ndarray, b: np.ndarray) -> float:
    u = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / u if u else 1.0


def run_one(name: str, model, stack: np.ndarray, gt: np.ndarray, kind: str, axis: str) -> dict:
    from samscope.multidim import PropagationConfig, propagate

    directions = "both" if axis == "z" else "forward"
    ids, prompts = gt_prompts(gt, kind, first_only=axis == "t")
    cfg = PropagationConfig(directions=directions, motion_smoothing=None if axis == "z" else 0.5)
    t0 = time.perf_counter()
    res = propagate(model, stack, prompts, config=cfg, axes="ZYX" if axis == "z" else "TYX",
                    propagator=name)  # fmt: skip
    dt = time.perf_counter() - t0
    ious = [iou3d(res.mask(j), gt == i) for j, i in enumerate(ids)]
    decoded = sum(len(o.masks) + len(o.stopped) for o in res.objects)
    return {"iou3d": float(np.mean(ious)) if ious else float("nan"), "n": len(ids),
            "s_per_plane": dt / len(stack), "s_per_object_plane": dt / max(decoded, 1), "seconds": dt}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    import tifffile

    from samscope.models.registry import load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", choices=sorted(SPLITS), default="dev")
    ap.add_argument("--times", help="comma-separated time points (default: the split's)")
    ap.add_argument("--axis", choices=("z", "t"), default="z")
    ap.add_argument("--z", type=int, default=2, help="--axis t: the plane followed through time")
    ap.add_argument("--prompt", choices=("point", "box"), default="point")
    ap.add_argument("--model", default="samscope-lm", help="model of the projection propagator")
    ap.add_argument("--sam2", default=None, help="Meta SAM2 .pt, or random:hiera_t / random:hiera_test")
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args(argv)

    images = tifffile.imread(DATA / "images.tif")
    masks = tifffile.imread(DATA / "masks.tif")
    times = [int(t) for t in args.times.split(",")] if args.times else list(SPLITS[args.split])
    if args.split == "dev" and any(t >= 14 for t in times):
        print("time points 14–19 are held out: use --split test", file=sys.stderr)
        return 2
    models = {"projection": load_model(args.model, device="cpu")}
    if args.sam2:
        models["sam2-memory"] = load_sam2(args.sam2)
    if args.axis == "z":
        cases = [(f"t={t}", images[t], masks[t]) for t in times]
    else:
        cases = [(f"z={args.z} t={times[0]}–{times[-1]}", images[times, args.z], masks[times, args.z])]
    rows: dict[str, list[dict]] = {}
    for label, stack, gt in cases:
        for name, model in models.items():
            r = run_one(name, model, stack, gt, args.prompt, args.axis)
            rows.setdefault(name, []).append(r)
            print(f"{label} {name}: IoU {r['iou3d']:.3f} ({r['n']} objects), "
                  f"{r['s_per_plane']:.2f} s/plane", file=sys.stderr, flush=True)  # fmt: skip
    print(f"\n{args.axis}-propagation on CHO {args.split} ({len(times)} time point(s)), "
          f"one {args.prompt} per nucleus; projection model {args.model}, SAM2 {args.sam2}")  # fmt: skip
    print("| propagator | mean 3-D IoU | s / plane | s / object-plane |")
    print("|---|---|---|---|")
    summary = {}
    for name, rs in rows.items():
        summary[name] = {k: float(np.mean([r[k] for r in rs])) for k in ("iou3d", "s_per_plane", "s_per_object_plane")}
        s = summary[name]
        print(f"| {name} | {s['iou3d']:.3f} | {s['s_per_plane']:.2f} | {s['s_per_object_plane']:.3f} |")
    if args.sam2 and args.sam2.startswith("random:"):
        print("(SAM2 with random weights: its IoU means nothing; timings on a loaded CPU are not measurements)")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
