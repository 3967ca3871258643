"""The multi-domain benchmark of samscope's generalist model (issue: a generalist default model).

Domains (each scored on its own; the headline is the mean over domains):

``hela``       Fluo-N2DL-HeLa frames (../shared/data/hela): small dense nuclei, 700×1100. The
               reference omits partial nuclei at the border, so it is scored twice: as the default
               command segments it (``hela``) and with border objects below 400 px dropped
               (``hela_border``, the option a user of that reference would set).
``cho``        Fluo-N3DH-CHO planes (../shared/data/cho) as 2-D images: large textured nuclei.
sim suites     ``samscope.simulate.generalist.SUITES`` at the images' own scale: nuclei of 8–16,
               16–40 and 40–150 px, phase-contrast cells, bacteria colonies, cytoplasm- and
               membrane-stained monolayers (seeds no training run used).

Splits: ``--split tune`` (HeLa frames 12–13, CHO time points 12–13, suite seed 301) for checkpoint
choice and calibration; ``--split test`` (HeLa 14–19, CHO 14–19, suite seed 401) for reporting
only. Neither was trained on (training uses HeLa 0–11, CHO 0–11, simulator seeds 201/202).

Methods: every automatic mode of each ``--model`` (``--modes``; the object size estimated per
image, or ``--diameter``), the classical Otsu + watershed baseline (``otsu``), and the interactive
protocol's first prompt (``--interactive``: one point / one box per reference object, SA50 and
mSA, plus three corrective-click iterations).

Usage::

    python benchmarks/eval_generalist.py --model samscope-generalist --split test --out eval/gen
    python benchmarks/eval_generalist.py --model samscope-lm --modes ais --split test --out eval/lm
    python benchmarks/eval_generalist.py --model runs/x/model.pt --split tune --suite-n 4 --quick

Writes ``results.json`` (every score per domain and method, the diameters used) and
``results.md`` (a table: domains as rows) to ``--out``; prints the table. The segmentations are
what ``samscope segment`` computes for the same images (the same library call); ``samscope
evaluate`` on its outputs gives the same mSA.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
SPLITS = {
    "tune": {"hela": range(12, 14), "cho": range(12, 14), "seed": 301},
    "test": {"hela": range(14, 20), "cho": range(14, 20), "seed": 401},
}


def real_domains(split: str) -> dict[str, tuple[list[np.ndarray], list[np.ndarray]]]:
    """HeLa frames and CHO planes of ``split`` (empty when the data are absent)."""
    import tifffile

    out: dict = {}
    s = SPLITS[split]
    if (DATA / "hela" / "images.tif").is_file():
        im = tifffile.imread(DATA / "hela" / "images.tif")
        gt = tifffile.imread(DATA / "hela" / "masks.tif")
        idx = list(s["hela"])
        out["hela"] = ([im[i] for i in idx], [gt[i] for i in idx])
    if (DATA / "cho" / "images.tif").is_file():
        im = tifffile.imread(DATA / "cho" / "images.tif")
        gt = tifffile.imread(DATA / "cho" / "masks.tif")
        pairs = [(im[t, z], gt[t, z]) for t in s["cho"] for z in range(im.shape[1])]
        out["cho"] = ([p[0] for p in pairs], [p[1] for p in pairs])
    return out


def sim_domains(split: str, n: int, cache: Path | None) -> dict:
    """The simulated suites of ``split`` (cached as npz under ``cache``)."""
    from samscope.simulate.generalist import SUITES, suite

    out = {}
    seed = SPLITS[split]["seed"]
    for name in SUITES:
        path = cache / f"{name}_{seed}_{n}.npz" if cache else None
        if path is not None and path.is_file():
            z = np.load(path, allow_pickle=False)
            k = len([key for key in z.files if key.startswith("im")])
            out[name] = ([z[f"im{i}"] for i in range(k)], [z[f"gt{i}"] for i in range(k)])
            continue
        samples = suite(name, n, seed=seed)
        ims = [s.image for s in samples]
        gts = [np.asarray(s.labels) for s in samples]
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(
                path, **{f"im{i}": a for i, a in enumerate(ims)}, **{f"gt{i}": g for i, g in enumerate(gts)}
            )
        out[name] = (ims, gts)
    return out


def scores(gts: list[np.ndarray], preds: list[np.ndarray]) -> dict:
    """Mean mSA, SA50, SA75, precision-like counts over images."""
    from samscope.evaluation.metrics import segmentation_accuracy

    accs = [segmentation_accuracy(g, p) for g, p in zip(gts, preds, strict=True)]
    return {
        "msa": float(np.mean([a.msa for a in accs])),
        "sa50": float(np.mean([a.sa50 for a in accs])),
        "sa75": float(np.mean([a.sa75 for a in accs])),
        "n_pred": float(np.mean([a.n_pred for a in accs])),
        "n_gt": float(np.mean([a.n_gt for a in accs])),
    }


def drop_border(labels: np.ndarray, min_size: int = 400) -> np.ndarray:
    """The HeLa reference's convention: no partial nuclei below ``min_size`` at the border."""
    from samscope.instance.ais import drop_small_border_objects

    return drop_small_border_objects(labels, min_size)


def run_mode(model, images, mode: str, diameter: float | None, settings: dict) -> tuple[list, list, float]:
    """Segment every image; returns labels, diameters used and seconds per image."""
    from samscope.instance.segment import config_class, segment

    cfg = config_class(mode)(**settings) if settings else None
    preds, diams = [], []
    t0 = time.perf_counter()
    for im in images:
        inst = segment(im, model, mode=mode, config=cfg, diameter=diameter)
        preds.append(np.asarray(inst.labels))
        diams.append(inst.diameter)
    return preds, diams, (time.perf_counter() - t0) / max(1, len(images))


def run_otsu(images) -> list:
    from samscope.instance.classical import otsu_watershed

    return [np.asarray(otsu_watershed(im)) for im in images]


def run_interactive(
    model, images, gts, *, iterations: int = 3, scaled: bool = True, feed_logits: bool = True,
    correction: str = "both", multimask: str = "never", merge: str = "replace",
    radius: float | None = None,
) -> dict:
    """First point, first box and corrective clicks of the interactive protocol (mSA, SA50 per
    iteration, averaged over images). ``scaled``: embed each image at the scale of its estimated
    object size (:func:`samscope.instance.scale.interactive_scale`), as users' prompts are.
    ``feed_logits``: each correction also gets the object's previous low-resolution logits (as
    samscope's annotators and µSAM's iterative prompting with masks do). ``correction``: the
    points each correction adds (:func:`samscope.evaluation.interactive.run_interactive`);
    ``multimask``: when the model picks among SAM's three candidates
    (:func:`samscope.evaluation.interactive.model_segmenter`)."""
    from samscope.embeddings import compute_embeddings
    from samscope.evaluation.interactive import model_segmenter
    from samscope.evaluation.interactive import run_interactive as protocol
    from samscope.instance.scale import interactive_scale

    out = {}
    scales = [interactive_scale(im, model)[0] if scaled else 1.0 for im in images]
    out["scales"] = [round(s, 3) for s in scales]
    embs = [compute_embeddings(im, model, scale=s) for im, s in zip(images, scales, strict=True)]
    for start in ("point", "box"):
        res = [
            protocol(model_segmenter(model, emb, multimask=multimask, merge=merge, radius=radius), gt, mode=start, n_iterations=iterations,
                     feed_logits=feed_logits, correction=correction)
            for emb, gt in zip(embs, gts, strict=True)
        ]
        msa = np.mean([[a.msa for a in r.accuracy] for r in res], axis=0)
        sa50 = np.mean([[a.sa50 for a in r.accuracy] for r in res], axis=0)
        out[start] = {"msa": [float(v) for v in msa], "sa50": [float(v) for v in sa50]}
    return out


def table(results: dict, methods: list[str]) -> str:
    """Markdown: domains as rows, methods as columns (mSA / SA50)."""
    domains = list(results)
    lines = ["| domain | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for d in domains:
        cells = []
        for m in methods:
            r = results[d].get(m)
            cells.append(f"{r['msa']:.3f} / {r['sa50']:.3f}" if r else "")
        lines.append(f"| {d} | " + " | ".join(cells) + " |")
    means = []
    for m in methods:
        vals = [results[d][m]["msa"] for d in domains if m in results[d] and d != "hela_border"]
        means.append(f"{np.mean(vals):.3f}" if vals else "")
    lines.append("| **mean mSA** | " + " | ".join(means) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", default=[], help="model name or path (repeatable)")
    p.add_argument("--modes", default="ais", help="comma-separated automatic modes")
    p.add_argument("--split", choices=sorted(SPLITS), default="tune")
    p.add_argument("--suite-n", type=int, default=6, help="images per simulated suite")
    p.add_argument("--domains", default="", help="comma-separated subset of domains")
    p.add_argument("--images", type=int, default=0,
                   help="at most this many images per domain, spread evenly (0: all)")
    p.add_argument("--diameter", type=float, default=None, help="fixed diameter (default: estimated)")
    p.add_argument("--set", action="append", default=[], help="MODE.FIELD=VALUE setting")
    p.add_argument("--working-diameter", type=float, default=None,
                   help="override the card's working diameter (e.g. 28 for a checkpoint of the run)")
    p.add_argument("--no-otsu", action="store_true")
    p.add_argument("--refine", action="store_true",
                   help="also score each mode's labels cut to their bright cores (instance.refine)")
    p.add_argument("--interactive", action="store_true", help="also the interactive protocol")
    p.add_argument("--interactive-native", action="store_true",
                   help="prompt on native-scale embeddings (default: at the estimated object size)")
    p.add_argument("--no-feed-logits", action="store_true",
                   help="corrections without the previous logits (µSAM's evaluation default)")
    p.add_argument("--correction", choices=("both", "largest"), default="both",
                   help="points per correction: one per error region, or one in the larger")
    p.add_argument("--multimask", choices=("never", "single-point", "always"), default="single-point",
                   help="when the model picks among three candidates (default: a lone point, as "
                   "the annotators and the web app do)")
    p.add_argument("--merge", choices=("replace", "progressive", "local", "local-first"),
                   default="local",
                   help="what a correction does to the mask (progressive: only the clicked part; "
                   "local: only near the new clicks; local-first: "
                   "local at the first correction, replace later)")
    p.add_argument("--local-radius", type=float, default=None,
                   help="radius of the local update in working diameters (default: "
                   "samscope.prompt_inputs.LOCAL_RADIUS)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--cache", type=Path, default=HERE / ".cache")
    args = p.parse_args(argv)

    from samscope.models.registry import load_model

    data = real_domains(args.split)
    data.update(sim_domains(args.split, args.suite_n, args.cache))
    if args.domains:
        keep = set(args.domains.split(","))
        data = {k: v for k, v in data.items() if k in keep}
    if args.images:
        for k, (ims, gts) in list(data.items()):
            pairs = subset(list(zip(ims, gts, strict=True)), args.images)
            data[k] = ([a for a, _ in pairs], [b for _, b in pairs])
    settings: dict[str, dict] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        mode, _, name = key.partition(".")
        settings.setdefault(mode, {})[name] = type_of(value)
    results: dict = {d: {} for d in data}
    if "hela" in data:
        results["hela_border"] = {}
    methods: list[str] = []
    if not args.no_otsu:
        methods.append("otsu")
        for d, (ims, gts) in data.items():
            results[d]["otsu"] = scores(gts, run_otsu(ims))
        if "hela" in data:
            ims, gts = data["hela"]
            results["hela_border"]["otsu"] = scores(gts, [drop_border(x) for x in run_otsu(ims)])
    for name in args.model or ["samscope-generalist"]:
        model = load_model(name)
        if args.working_diameter:
            from dataclasses import replace

            model.card = replace(model.card, working_diameter=args.working_diameter)
        label = Path(name).stem if Path(name).suffix else name
        if label in ("model", "last", "best"):
            label = f"{Path(name).parent.name}/{label}"
        for mode in filter(None, args.modes.split(",")):
            key = f"{label}:{mode}"
            methods.append(key)
            for d, (ims, gts) in data.items():
                preds, diams, sec = run_mode(model, ims, mode, args.diameter, settings.get(mode, {}))
                r = scores(gts, preds)
                r["s_per_image"] = sec
                r["diameters"] = [None if x is None else round(float(x), 1) for x in diams]
                results[d][key] = r
                print(f"{key:40s} {d:15s} mSA {r['msa']:.3f} SA50 {r['sa50']:.3f} "
                      f"({sec:.2f} s/image; d {r['diameters'][:4]})", flush=True)
                if d == "hela":
                    results["hela_border"][key] = scores(gts, [drop_border(x) for x in preds])
                if args.refine:
                    from samscope.instance.refine import refine_to_core

                    cut = [refine_to_core(grey(im), x) for im, x in zip(ims, preds, strict=True)]
                    results[d][key + "+core"] = scores(gts, cut)
                    if key + "+core" not in methods:
                        methods.append(key + "+core")
                    if d == "hela":
                        results["hela_border"][key + "+core"] = scores(gts, [drop_border(x) for x in cut])
        if args.interactive:
            for d in ("hela", "cho"):
                if d in data:
                    ims, gts = data[d]
                    r = run_interactive(model, ims[:2], gts[:2], scaled=not args.interactive_native,
                                        feed_logits=not args.no_feed_logits,
                                        correction=args.correction, multimask=args.multimask,
                                        merge=args.merge, radius=args.local_radius)
                    results[d][f"{label}:interactive"] = r
                    for start in ("point", "box"):
                        print(f"{label}:interactive {d:15s} {start:5s} scales {r['scales']} "
                              "mSA per iteration " + " ".join(f"{v:.3f}" for v in r[start]["msa"])
                              + " SA50 " + " ".join(f"{v:.3f}" for v in r[start]["sa50"]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    md = table({d: {m: v for m, v in r.items() if "msa" in v} for d, r in results.items()}, methods)
    (args.out / "results.md").write_text(md + "\n")
    print(md)
    return 0


def subset(items: list, k: int) -> list:
    """``k`` items spread evenly over ``items`` (all of them when ``k`` is 0 or too large)."""
    if k <= 0 or k >= len(items):
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, k).round().astype(int)]


def grey(image: np.ndarray) -> np.ndarray:
    """A grey plane of an image (RGB averaged)."""
    image = np.asarray(image)
    return image.mean(axis=-1) if image.ndim == 3 else image


def type_of(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


if __name__ == "__main__":
    sys.exit(main())
