"""Automatic 3-D segmentation of simulated nuclei volumes (``samscope simulate nuclei --3d``).

Simulates ``-n`` volumes from a held-out seed (default 9000: nothing in samscope was tuned on
simulated volumes, and the seed is not used elsewhere), segments each with the default model
and the volume defaults (:func:`samscope.multidim.segment_volume`, ``method="link"``, ``z_scale``
from the simulated z step over the pixel) and reports the 3-D mSA / SA50 (objects matched in
3-D), the per-plane mSA of the same result and the 3-D Otsu + distance-watershed baseline of
``eval_volume.py``. Target (issue 12): 3-D mSA >= 0.6.

Usage::

    python benchmarks/eval_volume_sim.py [-n 2] [--seed 9000] [--model samscope-generalist]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    from eval_volume import otsu_watershed_3d, scores

    from samscope.models.registry import DEFAULT_MODEL, load_model
    from samscope.multidim import segment_volume
    from samscope.simulate.volume import Nuclei3DConfig, nuclei_volume

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=2)
    ap.add_argument("--seed", type=int, default=9000)
    ap.add_argument("--shape", default="12,256,256")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    shape = tuple(int(v) for v in args.shape.split(","))
    cfg = Nuclei3DConfig()
    z_scale = cfg.z_step_nm / cfg.pixel_size_nm
    model = load_model(args.model, device="cpu")
    rows: dict[str, list] = {}
    t0 = time.time()
    for i in range(args.n):
        s = nuclei_volume(shape, cfg, seed=args.seed, index=i)
        res = segment_volume(s.image, model, z_scale=z_scale)
        rows.setdefault("link (default)", []).append(scores(s.labels, res.labels))
        d = 2 * float(np.mean([np.mean(n["semi_axes_um"][1:]) for n in s.params["nuclei"]])) * 1000 / cfg.pixel_size_nm
        rows.setdefault("baseline otsu+dist-ws 3-D", []).append(scores(s.labels, otsu_watershed_3d(s.image, z_scale=z_scale, diameter=d)))
        print(f"volume {i}: {s.n_objects} nuclei, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    summary = {k: {m: float(np.mean([v[m] for v in vals])) for m in vals[0]} for k, vals in rows.items()}
    print(f"simulated nuclei volumes, seed {args.seed}, n {args.n}, shape {shape}, model {args.model}")
    for k, agg in summary.items():
        print(f"  {k:32s} " + "  ".join(f"{m} {v:.3f}" for m, v in agg.items()))
    if args.out:
        Path(args.out).write_text(json.dumps({"seed": args.seed, "n": args.n, "shape": shape, "model": args.model,
                                              "results": summary}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
