"""SAM3 concept prompts ("nucleus") against AIS / APG / AMG, on the same images and metrics.

For each image, the concept mode (SAM3, :mod:`samscope.instance.concept`, one text phrase) and
any number of ``MODEL:MODE`` pairs (samscope's automatic modes on any registered or file model:
SAM1 / µSAM ViTs, SAM2.1 once its card is loaded, SAM3's own family where samscope can run it)
segment the image; reported per method: mSA and SA50 against the reference labels (µSAM's
segmentation accuracy, :func:`samscope.evaluation.metrics.segmentation_accuracy`), objects found
and seconds per image.

Data (``../shared/data``): ``hela`` (2-D frames, many small nuclei) or ``cho`` (the middle plane of
each time point, large nuclei). Frames / time points 0–13 are for development, 14–19 are held out
(``--split test``, report once).

SAM3's weights are gated and never reach this machine, so this has not been run here (a tiny
random SAM3 only proves the mechanics: ``tests/instance/test_concept.py``). With the Hugging Face
folder from https://huggingface.co/facebook/sam3::

    python benchmarks/bench_concept.py --sam3 ~/models/sam3 --text nucleus \\
        --methods samscope-lm:ais samscope-lm:apg vit_b_lm:ais vit_b:amg sam2.1_hiera_t:amg
    python benchmarks/bench_concept.py --sam3 ~/models/sam3 --data cho --text "cell nucleus" \\
        --thresholds 0.3,0.5,0.7      # concept score thresholds, each reported (dev only)

Timings on a loaded machine are not measurements.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SPLITS = {"dev": range(0, 14), "test": range(14, 20)}


def images_of(data: str, indices: list[int]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    import tifffile

    images = tifffile.imread(DATA / data / "images.tif")
    masks = tifffile.imread(DATA / data / "masks.tif")
    if data == "cho":  # (T, Z, Y, X): the middle plane
        z = images.shape[1] // 2
        return [(f"t{t} z{z}", images[t, z], masks[t, z]) for t in indices]
    return [(f"frame {t}", images[t], masks[t]) for t in indices]


def main(argv: list[str] | None = None) -> int:
    from samscope.evaluation.metrics import segmentation_accuracy
    from samscope.instance.concept import ConceptConfig
    from samscope.instance.segment import segment
    from samscope.models.registry import load_model
    from samscope.models.sam3 import load_sam3

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sam3", type=Path, help="SAM3 Hugging Face folder (config.json, weights, tokenizer)")
    ap.add_argument("--text", default="nucleus")
    ap.add_argument("--thresholds", default="0.5", help="concept score thresholds, comma-separated")
    ap.add_argument("--methods", nargs="*", default=[], help="MODEL:MODE pairs, e.g. samscope-lm:ais")
    ap.add_argument("--data", choices=("hela", "cho"), default="hela")
    ap.add_argument("--split", choices=sorted(SPLITS), default="dev")
    ap.add_argument("--indices", help="comma-separated frames / time points (default: the split's)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", help="write the figures as JSON here")
    args = ap.parse_args(argv)

    indices = [int(i) for i in args.indices.split(",")] if args.indices else list(SPLITS[args.split])
    if args.split == "dev" and any(i >= 14 for i in indices):
        print("frames / time points 14–19 are held out: use --split test", file=sys.stderr)
        return 2
    if args.sam3 is None and not args.methods:
        ap.error("give --sam3 and/or --methods")
    runs: list[tuple[str, object, str, object]] = []
    if args.sam3 is not None:
        sam3 = load_sam3(args.sam3, device=args.device)
        for th in (float(v) for v in args.thresholds.split(",")):
            runs.append((f"sam3 concept '{args.text}' >{th:g}", sam3, "concept",
                         ConceptConfig(text=args.text, score_threshold=th)))  # fmt: skip
    for spec in args.methods:
        name, _, mode = spec.partition(":")
        runs.append((f"{name}:{mode or 'auto'}", load_model(name, device=args.device), mode or "auto", None))
    rows: dict[str, list[dict]] = {}
    for label, image, gt in images_of(args.data, indices):
        for name, model, mode, config in runs:
            t0 = time.perf_counter()
            inst = segment(image, model, mode=mode, config=config)
            dt = time.perf_counter() - t0
            sa = segmentation_accuracy(gt, inst.labels)
            rows.setdefault(name, []).append({"msa": sa.msa, "sa50": sa.sa50, "n": inst.n, "seconds": dt})
            print(f"{label} {name}: mSA {sa.msa:.3f} SA50 {sa.sa50:.3f} ({inst.n} objects, {dt:.1f} s)",
                  file=sys.stderr, flush=True)  # fmt: skip
    print(f"\n{args.data} {args.split} ({len(indices)} images)")
    print("| method | mSA | SA50 | objects | s / image |")
    print("|---|---|---|---|---|")
    summary = {}
    for name, rs in rows.items():
        summary[name] = {k: float(np.mean([r[k] for r in rs])) for k in ("msa", "sa50", "n", "seconds")}
        s = summary[name]
        print(f"| {name} | {s['msa']:.3f} | {s['sa50']:.3f} | {s['n']:.0f} | {s['seconds']:.1f} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                              "summary": summary, "rows": rows}, indent=1))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
