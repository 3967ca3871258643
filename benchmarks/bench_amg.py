"""AMG benchmark: samscope (grid and foreground schedules) vs micro-sam 1.8.14, same random vit_b.

usage::

    python benchmarks/bench_amg.py [--reps 3] [--out DIR] [--no-microsam] [--datasets nuclei,hela]
                                   [--all-variants]

What it measures, on this machine's CPU (2 threads):

- image embedding (vit_b, 1024² input);
- the per-prompt cost of samscope's point decoder on 64 random points, against the floor set by
  its multiply–accumulates at the measured fp32 matrix-product peak, and the decoder to the IoU
  (what the IoU gate leaves of a grid prompt) tiled and un-tiled (AMG's default), alternated;
- AMG with a 32×32 grid (the default path, and with the row-tiled decoder,
  ``GatedPointDecoder.tiled``, in the same process) and with the foreground-aware schedule,
  each split into prediction (network) and post-processing, with peak memory
  (``--all-variants``: also without the IoU gate and with ``skip_covered``);
- micro-sam's ``AutomaticMaskGenerator`` initialise + generate on the *same* random weights and
  image embeddings of its own, run once (``AMG_REPS=1``: it takes minutes), in the peers'
  environment (``/tmp/peers/bin/python``), by re-running this file with ``--peer``.

With random weights the masks are noise, so, as ``/work/shared/peers/bench_microsam.py`` does, the
real decoder runs for every prompt (real compute) and its low-resolution output is then replaced
by an oracle: 20 × a smooth signed distance of the ground-truth object under the point (the
background for background points), predicted IoU 0.95 on objects and 0.3 on background. Both
tools get the identical low-resolution oracle, so the mSA comparison measures the prompt schedule
and post-processing, not the (random) network. Datasets: "nuclei" = the Gaussian blobs of
``bench_microsam.py`` at 1024² (60 nuclei), "hela" = HeLa frame 14 (held-out split, 700×1100).

The machine is shared: timings are noisy; medians (and all runs) are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

PEERS_PYTHON = Path("/tmp/peers/bin/python")
HELA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "hela"
INPUT_SIZE, LOW_RES, SLOPE = 1024, 256, 20.0


# ------------------------------------------------------------------------------------------
# shared by both environments (numpy/scipy only)
# ------------------------------------------------------------------------------------------


def blobs(size: int = 1024, n: int = 60, seed: int = 0):
    """The synthetic nuclei of bench_microsam.py: image float32, labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    img = np.zeros((size, size), np.float32)
    r = size / 40
    for cy, cx in rng.uniform(r * 2, size - 2 * r, size=(n, 2)):
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    gt, _ = ndi.label(img > 0.5)
    img += rng.normal(0, 0.05, img.shape).astype(np.float32)
    return img.astype(np.float32), gt


def _smooth_sd(mask: np.ndarray) -> np.ndarray:
    inside = ndi.distance_transform_edt(mask) - 0.5
    outside = ndi.distance_transform_edt(~mask) - 0.5
    return ndi.gaussian_filter(np.where(mask, inside, -outside), 1.0).astype(np.float32)


class Oracle:
    """Low-resolution oracle logits for point prompts on one image (see module docstring)."""

    def __init__(self, gt: np.ndarray, margin: int = 24) -> None:
        self.gt = gt
        h, w = gt.shape
        scale = INPUT_SIZE / max(h, w)
        fy, fx = int(h * scale + 0.5) / h, int(w * scale + 0.5) / w
        step = INPUT_SIZE / LOW_RES
        self.ny = step * (np.arange(LOW_RES) + 0.5) / fy - 0.5  # node positions, image pixels
        self.nx = step * (np.arange(LOW_RES) + 0.5) / fx - 0.5
        self.margin = margin
        self.fields: dict[int, np.ndarray] = {}
        self.objects = ndi.find_objects(gt)

    def field(self, lab: int) -> np.ndarray:
        if lab in self.fields:
            return self.fields[lab]
        h, w = self.gt.shape
        if lab == 0:
            y0, x0, y1, x1 = 0, 0, h, w
        else:
            sl = self.objects[lab - 1]
            y0, y1 = max(sl[0].start - self.margin, 0), min(sl[0].stop + self.margin, h)
            x0, x1 = max(sl[1].start - self.margin, 0), min(sl[1].stop + self.margin, w)
        sd = _smooth_sd(self.gt[y0:y1, x0:x1] == lab)
        out = np.full((LOW_RES, LOW_RES), -SLOPE * self.margin, np.float32)
        ry = np.flatnonzero((self.ny >= y0) & (self.ny <= y1 - 1))
        rx = np.flatnonzero((self.nx >= x0) & (self.nx <= x1 - 1))
        if ry.size and rx.size:
            grid = np.stack(np.meshgrid(self.ny[ry] - y0, self.nx[rx] - x0, indexing="ij"))
            out[np.ix_(ry, rx)] = SLOPE * ndi.map_coordinates(sd, grid, order=1, mode="nearest")
        self.fields[lab] = out
        return out

    def precompute(self) -> None:
        for lab in range(int(self.gt.max()) + 1):
            self.field(lab)

    def labels(self, points_yx: np.ndarray) -> list[int]:
        h, w = self.gt.shape
        return [
            int(self.gt[min(max(int(y), 0), h - 1), min(max(int(x), 0), w - 1)])
            for y, x in np.asarray(points_yx)
        ]

    @staticmethod
    def iou(labs, k: int = 3) -> np.ndarray:
        return np.array([[0.95 if lab > 0 else 0.3] * k for lab in labs], np.float32).reshape(-1, k)

    def __call__(self, points_yx: np.ndarray, k: int = 3):
        labs = self.labels(points_yx)
        logits = np.empty((len(labs), k, LOW_RES, LOW_RES), np.float32)
        for j, lab in enumerate(labs):
            logits[j] = self.field(lab)
        return logits, self.iou(labs, k)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------------
# micro-sam side (peers' environment)
# ------------------------------------------------------------------------------------------


def peer_main(data_path: str, ckpt: str, out_path: str) -> None:  # pragma: no cover
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    from micro_sam import util
    from micro_sam.instance_segmentation import AutomaticMaskGenerator

    if not os.path.exists(ckpt):
        torch.manual_seed(0)
        torch.save(util.sam_model_registry["vit_b"]().state_dict(), ckpt)
    if data_path == "-":
        return
    data = np.load(data_path)
    image, gt = data["image"], data["gt"]
    predictor = util.get_sam_model(model_type="vit_b", checkpoint_path=ckpt, device="cpu")
    t0 = time.perf_counter()
    emb = util.precompute_image_embeddings(predictor, image, verbose=False)
    t_emb = time.perf_counter() - t0
    oracle = Oracle(gt)
    oracle.precompute()
    state = {"decoder_s": 0.0, "prompts": 0}
    real_predict = predictor.predict_torch
    real_forward = predictor.model.mask_decoder.forward
    h, w = gt.shape
    scale = INPUT_SIZE / max(h, w)
    fy, fx = int(h * scale + 0.5) / h, int(w * scale + 0.5) / w

    def forward(*a, **kw):
        t = time.perf_counter()
        real_forward(*a, **kw)
        state["decoder_s"] += time.perf_counter() - t
        xy = state["coords"]
        logits, iou = oracle(np.stack([xy[:, 1] / fy, xy[:, 0] / fx], axis=1))
        return torch.from_numpy(logits), torch.from_numpy(iou)

    def predict_torch(point_coords, point_labels, **kw):
        state["coords"] = point_coords[:, 0, :].double().numpy()
        state["prompts"] += len(point_coords)
        return real_predict(point_coords, point_labels, **kw)

    predictor.model.mask_decoder.forward = forward
    predictor.predict_torch = predict_torch
    amg = AutomaticMaskGenerator(predictor)
    t0 = time.perf_counter()
    amg.initialize(image, image_embeddings=emb, verbose=False)
    t_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    seg = amg.generate()
    t_gen = time.perf_counter() - t0
    np.save(out_path + ".npy", np.asarray(seg))
    result = {
        "embedding_s": t_emb, "initialize_s": t_init, "generate_s": t_gen,
        "decoder_s": state["decoder_s"], "prompts": state["prompts"], "peak_rss_mb": peak_rss_mb(),
    }  # fmt: skip
    Path(out_path + ".json").write_text(json.dumps(result))
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------
# samscope side
# ------------------------------------------------------------------------------------------


def matmul_peak_gflops(torch) -> float:
    a, w = torch.randn(16384, 256), torch.randn(256, 256)
    best = np.inf
    for _ in range(5):
        t0 = time.perf_counter()
        a @ w
        best = min(best, time.perf_counter() - t0)
    return 2 * 16384 * 256 * 256 / best / 1e9


def decoder_macs(grid: int = 64, c: int = 256, heads: int = 8, tokens: int = 7, inner: int = 128):
    """Multiply–accumulates per point prompt: SAM's decoder as written, and as samscope runs it."""
    n = grid * grid
    proj = n * c * inner  # one (N, C) × (C, I) projection
    up = n * c * c + 4 * n * (c // 4) * (c // 8) * 4  # two 2×2 transposed convolutions
    sam = 7 * proj + up  # k, v, q, out projections over the image tokens
    small = n * c * heads * tokens  # one (N, C) × (C, H·T) product
    ours = 10 * small + n * tokens * inner + up
    return sam, ours


#: samscope's variants: (label, AMGConfig fields; "_tiled": GatedPointDecoder.tiled)
VARIANTS = (
    ("grid", {"schedule": "grid"}),
    ("grid, tiled decoder", {"schedule": "grid", "_tiled": True}),
    ("foreground", {"schedule": "foreground", "foreground": "image"}),
)
#: further variants with ``--all-variants`` (each adds a grid run: ≈ 30-55 s quiet)
MORE_VARIANTS = (
    ("grid, no IoU gate", {"schedule": "grid", "iou_gate": False}),
    ("grid, skip covered", {"schedule": "grid", "skip_covered": True}),
)


def counted_macs(model, cache, torch) -> tuple[float, float]:
    """Multiply–accumulates per point prompt (multimask) as PyTorch counts them: the transformer
    and heads up to the IoU, and the up-scaling the IoU gate skips."""
    from torch.utils.flop_counter import FlopCounterMode

    from samscope.models.decoder import decode_reassociated, upscale_and_predict

    pts = torch.full((4, 1, 2), 512.0)
    sparse, _ = model.embed_prompts(points=pts, labels=torch.ones(4, 1, dtype=torch.long))
    dec = model.sam.mask_decoder
    with torch.inference_mode():
        with FlopCounterMode(display=False) as fc:
            keys, hyper, _ = decode_reassociated(dec, cache, sparse, None, True, upscale=False)
        transformer = fc.get_total_flops() / 4 / 2
        with FlopCounterMode(display=False) as fc:
            upscale_and_predict(dec, keys, hyper, cache.grid)
        upscale = fc.get_total_flops() / 4 / 2
    return transformer, upscale


def to_the_iou_ms(model, cache, sparse, reps: int, torch) -> tuple[list, list]:
    """ms per prompt of the decoder to the IoU (what every grid prompt costs with the gate):
    the tiled decoder (AMG's default) and the un-tiled reassociated one, alternated."""
    from samscope.models.decoder import decode_reassociated
    from samscope.models.decoder_batch import decode_tiled

    dec, n = model.sam.mask_decoder, sparse.shape[0]
    passes = [sparse[s : s + 8] for s in range(0, n, 8)]
    tiled, untiled = [], []
    with torch.inference_mode():
        for _ in range(reps):
            t0 = time.perf_counter()
            for part in passes:
                decode_tiled(dec, cache, part, True)
            tiled.append((time.perf_counter() - t0) / n * 1e3)
            t0 = time.perf_counter()
            for part in passes:
                decode_reassociated(dec, cache, part, None, True, upscale=False)
            untiled.append((time.perf_counter() - t0) / n * 1e3)
    return tiled, untiled


def run_samscope(model, emb, image, gt, fields: dict, reps: int, amg, torch):
    from samscope.evaluation.metrics import mean_segmentation_accuracy

    oracle = Oracle(gt)
    oracle.precompute()
    real = amg._decode_batch
    runs = []
    for _ in range(reps):
        stats = {"decoder_s": 0.0, "prompts": 0, "upscaled": 0}

        def decode(decoder, points_xy, multimask, gate=None, _stats=stats):
            # the real decoder runs on every prompt; the oracle's IoU (which replaces the
            # decoder's) drives the gate, so exactly the prompts the oracle keeps are up-scaled
            fy, fx = decoder.transform.factors
            pts = np.stack([points_xy[:, 1] / fy, points_xy[:, 0] / fx], axis=1)
            k = 3 if multimask else 1
            iou = oracle.iou(oracle.labels(pts), k)
            seen = None if gate is None else (lambda _iou, index: gate(iou[index], index))
            t = time.perf_counter()
            _, _, rows = real(decoder, points_xy, multimask, seen)
            _stats["decoder_s"] += time.perf_counter() - t
            _stats["prompts"] += len(points_xy)
            _stats["upscaled"] += len(rows)
            logits, _ = oracle(pts[rows], k)
            return torch.from_numpy(logits), torch.from_numpy(iou), rows

        amg._decode_batch = decode
        fields = dict(fields)
        tiled = amg.GatedPointDecoder.tiled
        amg.GatedPointDecoder.tiled = fields.pop("_tiled", tiled)
        try:
            config = amg.AMGConfig(**fields)
            t0 = time.perf_counter()
            pred = amg.amg_predict(model, emb, config=config, image=image)
            t1 = time.perf_counter()
            res = amg.amg_postprocess(pred, config=config)
            t2 = time.perf_counter()
        finally:
            amg._decode_batch = real
            amg.GatedPointDecoder.tiled = tiled
        runs.append({
            "predict_s": t1 - t0, "postprocess_s": t2 - t1, "total_s": t2 - t0,
            "decoder_s": stats["decoder_s"], "prompts": stats["prompts"],
            "upscaled": stats["upscaled"],
            "candidates": len(pred), "prediction_mb": pred.nbytes / 2**20, "masks": res.n,
        })  # fmt: skip
    msa = mean_segmentation_accuracy(gt, res.labels)
    return runs, msa


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default="/tmp/bench_amg")
    parser.add_argument("--no-microsam", action="store_true")
    parser.add_argument("--datasets", default="nuclei,hela")
    parser.add_argument("--all-variants", action="store_true", help="also no IoU gate, skip covered")
    parser.add_argument("--peer", nargs=3, metavar=("DATA", "CKPT", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        peer_main(*args.peer)
        return

    import torch

    torch.set_num_threads(2)
    from samscope.embeddings import compute_embeddings
    from samscope.instance import amg
    from samscope.models.architectures import build_sam
    from samscope.models.decoder import decode
    from samscope.models.registry import get_card, load_model
    from samscope.models.sam import SamscopeModel

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    peers = PEERS_PYTHON.exists() and not args.no_microsam
    ckpt = out / "random_vit_b.pt"
    if peers and not ckpt.exists():  # micro-sam's random init, saved in segment-anything format
        subprocess.run([str(PEERS_PYTHON), __file__, "--peer", "-", str(ckpt), "-"], check=True)
    if ckpt.exists():
        model = load_model(ckpt, device="cpu")
        weights = f"micro-sam random init ({ckpt})"
    else:
        torch.manual_seed(0)
        model = SamscopeModel(build_sam("vit_b"), get_card("vit_b"))
        weights = "samscope random init"
    print(f"# vit_b, {weights}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"# load average at start: {os.getloadavg()}")

    # -- decoder floor --------------------------------------------------------------------
    peak = matmul_peak_gflops(torch)
    sam_macs, our_macs = decoder_macs()
    img, gt = blobs()
    t0 = time.perf_counter()
    emb = compute_embeddings(img, model)
    t_emb = time.perf_counter() - t0
    decoder = amg.GatedPointDecoder(model, emb.get(0, 0), emb.transform(0))
    pts = np.random.default_rng(0).uniform(0, 1024, (64, 2))
    per = []
    for _ in range(max(3, args.reps)):
        t0 = time.perf_counter()
        decoder(pts, True)
        per.append((time.perf_counter() - t0) / 64 * 1e3)
    sparse, _ = model.embed_prompts(
        points=torch.as_tensor(pts, dtype=torch.float32)[:, None], labels=torch.ones(64, 1)
    )
    ref = []
    for _ in range(max(3, args.reps)):
        t0 = time.perf_counter()
        with torch.inference_mode():  # transformers' order of operations, for comparison
            decode(model.sam, decoder.cache, sparse, multimask=True, method="reference")
        ref.append((time.perf_counter() - t0) / 64 * 1e3)
    floor_sam = 2 * sam_macs / (peak * 1e9) * 1e3
    floor_ours = 2 * our_macs / (peak * 1e9) * 1e3
    print(f"embedding 1024²: {t_emb:.1f} s; fp32 matmul peak now: {peak:.0f} GFLOP/s")
    print(
        f"decoder per point prompt (multimask, batch 64): samscope {statistics.median(per):.1f} ms "
        f"(runs {', '.join(f'{v:.1f}' for v in per)}); reference order {statistics.median(ref):.1f} ms"
    )
    print(
        f"  SAM's decoder: {sam_macs / 1e9:.2f} GMAC/prompt -> floor {floor_sam:.1f} ms at the "
        f"measured peak; samscope's reassociated decoder: {our_macs / 1e9:.2f} GMAC -> {floor_ours:.1f} ms"
    )
    tiled, untiled = to_the_iou_ms(model, decoder.cache, sparse, max(3, args.reps), torch)
    print(
        f"decoder to the IoU (multimask, passes of 8, interleaved): tiled {statistics.median(tiled):.1f} "
        f"ms/prompt (runs {', '.join(f'{v:.1f}' for v in tiled)}), un-tiled "
        f"{statistics.median(untiled):.1f} ms/prompt (runs {', '.join(f'{v:.1f}' for v in untiled)})"
    )
    macs_t, macs_u = counted_macs(model, decoder.cache, torch)
    print(
        f"  counted (FlopCounterMode): {macs_t / 1e9:.3f} GMAC/prompt to the IoU + {macs_u / 1e9:.3f} "
        f"GMAC up-scaling (skipped by the IoU gate for prompts it drops)"
    )
    del decoder, emb

    # -- AMG ------------------------------------------------------------------------------
    datasets = {}
    names = args.datasets.split(",")
    if "nuclei" in names:
        datasets["nuclei"] = (img, gt)
    if "hela" in names and (HELA / "images.tif").exists():
        import tifffile

        datasets["hela"] = (
            tifffile.imread(HELA / "images.tif", key=14),
            tifffile.imread(HELA / "masks.tif", key=14).astype(np.int64),
        )
    summary = {}
    variants = VARIANTS + (MORE_VARIANTS if args.all_variants else ())
    for name, (image, labels) in datasets.items():
        emb = compute_embeddings(image, model)  # once: AMG's figures exclude the embedding
        for schedule, fields in variants:
            runs, msa = run_samscope(model, emb, image, labels, fields, args.reps, amg, torch)
            summary[(name, schedule)] = (runs, msa)
            print(
                f"{name} {image.shape} samscope {schedule}: total {median(runs, 'total_s'):.2f} s "
                f"(predict {median(runs, 'predict_s'):.2f}, decoder {median(runs, 'decoder_s'):.2f}, "
                f"post {median(runs, 'postprocess_s'):.2f}) for {runs[0]['prompts']} prompts, "
                f"{runs[0]['upscaled']} up-scaled "
                f"[{(runs[0]['prompts'] * macs_t + runs[0]['upscaled'] * macs_u) / 1e9:.0f} GMAC] "
                f"({median(runs, 'decoder_s') / runs[0]['prompts'] * 1e3:.1f} ms/prompt in the decoder), "
                f"{runs[0]['masks']} masks, mSA {msa:.3f}, prediction {runs[0]['prediction_mb']:.1f} MB, "
                f"runs {[round(r['total_s'], 2) for r in runs]}, peak RSS so far {peak_rss_mb():.0f} MB",
                flush=True,
            )
        if peers:
            from samscope.evaluation.metrics import mean_segmentation_accuracy

            data = out / f"{name}.npz"
            np.savez(data, image=image, gt=labels)
            result = out / f"microsam_{name}"
            subprocess.run(
                [str(PEERS_PYTHON), __file__, "--peer", str(data), str(ckpt), str(result)], check=True
            )
            ms = json.loads(Path(str(result) + ".json").read_text())
            seg = np.load(str(result) + ".npy")
            msa = mean_segmentation_accuracy(labels, seg.astype(np.int64))
            total = ms["initialize_s"] + ms["generate_s"]
            print(
                f"{name} micro-sam AMG (1 run): initialise {ms['initialize_s']:.1f} s + generate "
                f"{ms['generate_s']:.1f} s = {total:.1f} s (decoder {ms['decoder_s']:.1f} s for "
                f"{ms['prompts']} prompts), mSA {msa:.3f}, peak RSS {ms['peak_rss_mb']:.0f} MB"
            )
            for schedule, _ in variants:
                runs, our_msa = summary[(name, schedule)]
                print(
                    f"  speed-up {schedule}: {total / median(runs, 'total_s'):.1f}x "
                    f"(mSA {our_msa:.3f} vs {msa:.3f})"
                )
    print(f"# samscope process peak RSS: {peak_rss_mb():.0f} MB; load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
