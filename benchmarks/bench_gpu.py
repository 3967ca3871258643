"""One prepared GPU benchmark for a lent H100/H200 (issue 21): fp32 and bf16, batch 1 and 8.

    python benchmarks/bench_gpu.py [--device cuda] [--json OUT.json] [--budget-s 270]
    python benchmarks/bench_gpu.py --device cpu --quick      # checks that every section runs

Sections (each at fp32 and bf16 — ``SamscopeModel(precision=…)``, bf16 = autocast of the image
encoder and mask decoder — and at batch 1 and 8):

1. ``matmul``: the measured dense bf16 / fp32 matrix-product rate (8192³, TF32 off), beside the
   datasheet peak of the device (table below), so "fraction of peak" can be read both ways.
2. ``encoder``: ViT-B image embedding, 1024² input, random weights (normal, std 0.02), seconds
   per image; FLOPs per image counted by ``torch.utils.flop_counter.FlopCounterMode`` on one
   forward; achieved TFLOP/s and the fraction of the bf16 datasheet peak. Batch B = B images in
   one forward.
3. ``prompt``: one point prompt through ``segment_from_prompts`` (full-resolution mask), batch 8
   = 8 boxes in one ``segment_from_boxes`` call (time per call).
4. ``amg``: AMG (32² grid, ViT-B random weights) on HeLa frame 12 (or a simulated image) from
   precomputed embeddings, prediction and post-processing; batch B = B images embedded in one
   forward then AMG on each (per image). Random weights give noise masks, most of which the
   thresholds drop: the post-processing share is lower than with a trained model.
5. ``ais``: AIS with a random instance head on the ViT-B (the head and watershed cost; noise
   maps).
6. ``segment``: the shipped default model (``samscope-generalist``) end to end through
   ``samscope.instance.segment`` on the same image (tiles, size estimate, AIS), per image.
7. ``train``: ViT-B training steps/s (``samscope.training.objectives.TrainingModel``, 512²
   patches, 5 objects, 8 sub-iterations, AdamW, prompt objective — ``bench_train.py``'s
   settings) at batch 1 and 8, fp32 and bf16 autocast. micro-sam's ``SamTrainer`` is not run
   here: the lent machine reaches no registry to install it (``bench_train.py --peers`` does it
   where micro-sam is installed).

Times are medians of ``--reps`` after one warm-up, with ``torch.cuda.synchronize``. A section that
fails prints its error and the rest still run; sections past ``--budget-s`` are skipped (and
say so). ``--quick`` swaps in the tiny ``vit_test`` architecture, 256² images, batch 1 and 2,
one rep: it checks the script, its figures mean nothing.

Peak table (dense, no sparsity; NVIDIA datasheets): H100/H200 SXM 989 TFLOP/s bf16 (67 fp32),
H100 NVL 835, H100 PCIe 756 (51 fp32), A100 312 (19.5 fp32), L40S 362, L4 121, A10 125.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "hela"

#: (substring of torch.cuda.get_device_name, bf16 dense TFLOP/s, fp32 TFLOP/s), first match wins
PEAKS = (
    ("H200", 989.4, 66.9),
    ("H100 NVL", 835.0, 60.0),
    ("H100 PCIe", 756.0, 51.2),
    ("H100", 989.4, 66.9),  # SXM (e.g. "NVIDIA H100 80GB HBM3")
    ("A100", 312.0, 19.5),
    ("L40S", 362.0, 91.6),
    ("L4", 121.0, 30.3),
    ("A10", 125.0, 31.2),
)


def device_peak(device) -> tuple[str, float | None, float | None]:
    import torch

    if device.type != "cuda":
        return f"cpu ({os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()})", None, None
    name = torch.cuda.get_device_name(device)
    for key, bf16, fp32 in PEAKS:
        if key in name:
            return name, bf16, fp32
    return name, None, None


class Bench:
    """Timing, results and the time budget."""

    def __init__(self, device, reps: int, budget_s: float) -> None:
        self.device, self.reps, self.budget_s = device, reps, budget_s
        self.start = time.perf_counter()
        self.results: dict[str, dict] = {}

    def sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def time(self, fn, reps: int | None = None) -> float:
        """Median seconds of ``fn()`` over ``reps`` runs after one warm-up."""
        fn()
        self.sync()
        runs = []
        for _ in range(reps or self.reps):
            t0 = time.perf_counter()
            fn()
            self.sync()
            runs.append(time.perf_counter() - t0)
        return statistics.median(runs)

    def section(self, name: str, fn) -> None:
        left = self.budget_s - (time.perf_counter() - self.start)
        if left <= 0:
            print(f"[{name}] SKIPPED: the {self.budget_s:.0f} s budget is spent")
            self.results[name] = {"skipped": "budget"}
            return
        t0 = time.perf_counter()
        try:
            self.results[name] = fn() or {}
        except Exception as err:  # noqa: BLE001 - a benchmark section reports and moves on
            print(f"[{name}] FAILED: {type(err).__name__}: {err}")
            traceback.print_exc(limit=4)
            self.results[name] = {"failed": f"{type(err).__name__}: {err}"}
        print(f"[{name}] section took {time.perf_counter() - t0:.1f} s", flush=True)


def random_vit(arch: str, device, *, head: bool = False):
    import torch

    from samscope.models.architectures import build_sam
    from samscope.models.card import ModelCard
    from samscope.models.heads import InstanceDistanceHead
    from samscope.models.sam import SamscopeModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        sam = build_sam(arch)
        for p in sam.parameters():
            torch.nn.init.normal_(p, std=0.02)
        ihead = InstanceDistanceHead.for_architecture(arch) if head else None
    card = ModelCard(name=f"random_{arch}", architecture=arch, description="random weights",
                     licence="MIT", source="test", has_instance_head=head)  # fmt: skip
    return SamscopeModel(sam, card, instance_head=ihead, device=device, precision="fp32")


def test_image(size: int) -> np.ndarray:
    path = DATA / "images.tif"
    if path.exists():
        import tifffile

        return tifffile.imread(path, key=12)[:size, :size]
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    img = np.full((size, size), 1000.0)
    for cy, cx in rng.uniform(20, size - 20, (60, 2)):
        img += 3000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 10.0**2))
    return (img + rng.normal(0, 100, img.shape)).astype(np.uint16)


def sec_matmul(b: Bench, n: int, peaks) -> dict:
    import torch

    out = {}
    for prec, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        x = torch.randn(n, n, device=b.device, dtype=dtype)
        y = torch.randn(n, n, device=b.device, dtype=dtype)
        s = b.time(lambda x=x, y=y: x @ y, reps=max(3, b.reps))
        tflops = 2 * n**3 / s / 1e12
        peak = peaks[1] if prec == "bf16" else peaks[2]
        frac = f", {100 * tflops / peak:.0f} % of the datasheet {peak:.0f}" if peak else ""
        print(f"[matmul] {prec} {n}³: {tflops * 1000:10.1f} GFLOP/s measured{frac}")
        out[prec] = {"tflops": tflops, "datasheet_tflops": peak}
    return out


def sec_encoder(b: Bench, model, batches, peaks) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    size = model.image_size
    x1 = torch.randn(1, 3, size, size, device=b.device)
    counter = FlopCounterMode(display=False)
    with counter:
        model.encode(x1)
    flops = counter.get_total_flops()
    print(f"[encoder] {model.arch.name} {size}²: {flops / 1e9:.2f} GFLOP per image (FlopCounterMode)")
    out = {"tflop_per_image": flops / 1e12}
    for prec in ("fp32", "bf16"):
        net = model.with_precision(prec)
        for bs in batches:
            x = torch.randn(bs, 3, size, size, device=b.device)
            s = b.time(lambda net=net, x=x: net.encode(x))
            rate = flops * bs / s / 1e12
            frac = f", {100 * rate / peaks[1]:.1f} % of the bf16 peak" if peaks[1] else ""
            print(f"[encoder] {prec} batch {bs}: {s / bs * 1000:8.1f} ms/image, {rate:7.2f} TFLOP/s{frac}")
            out[f"{prec}_b{bs}"] = {"s_per_image": s / bs, "tflops": rate,
                                    "frac_bf16_peak": rate / peaks[1] if peaks[1] else None}  # fmt: skip
    return out


def sec_prompt(b: Bench, model, image, batches) -> dict:
    from samscope.embeddings import compute_embeddings
    from samscope.prompting import segment_from_boxes, segment_from_prompts

    h, w = image.shape
    out = {}
    for prec in ("fp32", "bf16"):
        net = model.with_precision(prec)
        emb = compute_embeddings(image, net)
        for bs in batches:
            if bs == 1:
                s = b.time(lambda net=net, emb=emb: segment_from_prompts(net, emb, points=[[h // 2, w // 2]]),
                           reps=1 if b.reps == 1 else max(10, b.reps))  # fmt: skip
                what = "one point prompt"
            else:
                ys = np.linspace(h * 0.2, h * 0.7, bs)
                boxes = np.stack([ys, ys, ys + h * 0.1, ys + w * 0.1], 1)
                s = b.time(lambda net=net, emb=emb, boxes=boxes: segment_from_boxes(net, emb, boxes),
                           reps=1 if b.reps == 1 else max(10, b.reps))  # fmt: skip
                what = f"{bs} boxes in one call"
            print(f"[prompt] {prec} {what}: {s * 1000:8.2f} ms ({s / bs * 1000:.2f} ms/prompt)")
            out[f"{prec}_b{bs}"] = {"s_per_call": s, "s_per_prompt": s / bs}
    return out


def _per_image(b: Bench, net, image, batches, run_one, name: str) -> dict:
    """Embed B copies (one forward) then run ``run_one(net, emb, plane)`` on each; s per image."""
    from samscope.embeddings import compute_embeddings

    out = {}
    for bs in batches:
        stack = np.stack([image] * bs) if bs > 1 else image

        def job(stack=stack, bs=bs):
            emb = compute_embeddings(stack, net, batch_size=bs)
            return [run_one(net, emb, p, stack if bs == 1 else stack[p]) for p in range(bs)]

        s = b.time(job, reps=1 if bs > 1 else b.reps)
        n = job()[0]
        print(f"[{name}] {net.precision} batch {bs}: {s / bs:8.3f} s/image (embedding included), "
              f"{n} objects")  # fmt: skip
        out[f"{net.precision}_b{bs}"] = {"s_per_image": s / bs, "objects": n}
    return out


def sec_amg(b: Bench, model, image, batches, grid: int) -> dict:
    from samscope.instance.amg import AMGConfig, segment_amg

    config = AMGConfig(points_per_side=grid)

    def one(net, emb, plane, img):
        return segment_amg(net, emb, plane=plane, config=config, image=img).n

    out = {}
    for prec in ("fp32", "bf16"):
        out.update(_per_image(b, model.with_precision(prec), image, batches, one, "amg"))
    return out


def sec_ais(b: Bench, model, image, batches) -> dict:
    from samscope.instance.segment import segment

    def one(net, emb, plane, img):
        if emb.n_planes > 1:  # segment() takes one plane's embeddings: recompute per plane
            return segment(img, net, mode="ais").n
        return segment(img, net, mode="ais", embeddings=emb).n

    out = {}
    for prec in ("fp32", "bf16"):
        out.update(_per_image(b, model.with_precision(prec), image, batches[:1], one, "ais"))
    return out


def sec_segment(b: Bench, image, batches, quick: bool) -> dict:
    from samscope.instance.segment import segment
    from samscope.models.registry import DEFAULT_MODEL, load_model

    out = {}
    for prec in ("fp32", "bf16"):
        t0 = time.perf_counter()
        net = load_model(DEFAULT_MODEL, device=str(b.device), precision=prec)
        load_s = time.perf_counter() - t0
        for bs in batches:
            s = b.time(lambda net=net, bs=bs: [segment(image, net) for _ in range(bs)], reps=1 if bs > 1 else b.reps)
            n = segment(image, net).n
            print(f"[segment] {DEFAULT_MODEL} {prec} {bs} image(s): {s / bs:8.3f} s/image "
                  f"(model load {load_s:.2f} s), {n} objects")  # fmt: skip
            out[f"{prec}_b{bs}"] = {"s_per_image": s / bs, "load_s": load_s, "objects": n}
    return out


def sec_train(b: Bench, arch: str, batches, patch: int, steps: int) -> dict:
    import contextlib
    import dataclasses

    import torch

    from samscope.models.architectures import build_sam
    from samscope.training.attention import use_training_attention
    from samscope.training.objectives import PromptSettings, TrainingModel
    from samscope.training.setup import initialise_weights

    rng = np.random.default_rng(0)
    n_img = max(batches)
    yy, xx = np.mgrid[:patch, :patch]
    images = np.zeros((n_img, patch, patch), np.float32)
    labels = np.zeros((n_img, patch, patch), np.int64)
    for k in range(n_img):
        for i in range(1, 12):
            cy, cx = rng.uniform(patch * 0.1, patch * 0.9, 2)
            r = rng.uniform(patch * 0.03, patch * 0.06)
            m = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) & (labels[k] == 0)
            labels[k][m], images[k][m] = i, rng.uniform(0.4, 0.9)
    out = {}
    for prec in ("fp32", "bf16"):
        for bs in batches:
            torch.manual_seed(0)
            sam = initialise_weights(build_sam(arch)).to(b.device)
            sam.train()
            use_training_attention(sam)
            settings = PromptSettings(5, 8, 0.5, 0.0, 0.025, True, 1.0)
            model = TrainingModel(sam, prompt=settings, weights={"prompt": 1.0},
                                  mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375)).to(b.device)  # fmt: skip
            opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
            img = torch.from_numpy(images[:bs])[:, None].to(b.device)
            lab = torch.from_numpy(labels[:bs]).to(b.device)
            ctx = (lambda: torch.autocast(b.device.type, dtype=torch.bfloat16)) if prec == "bf16" \
                else contextlib.nullcontext  # fmt: skip
            counter = {"i": 0}

            def step(model=model, opt=opt, img=img, lab=lab, ctx=ctx, counter=counter,
                     settings=settings):
                i = counter["i"] = counter["i"] + 1
                model.prompt = dataclasses.replace(settings, box_prob=float(i % 2))
                opt.zero_grad(set_to_none=True)
                with ctx():
                    res = model(img, lab, [None] * img.shape[0], seed=i)
                res["loss"].backward()
                opt.step()

            if b.device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(b.device)
            s = b.time(step, reps=steps)
            mem = torch.cuda.max_memory_allocated(b.device) / 2**30 if b.device.type == "cuda" else None
            memtxt = f", peak {mem:.1f} GiB" if mem is not None else ""
            print(f"[train] {arch} {patch}² {prec} batch {bs}: {1 / s:7.2f} steps/s ({s:.3f} s/step, "
                  f"{bs / s:.2f} images/s){memtxt}")  # fmt: skip
            out[f"{prec}_b{bs}"] = {"steps_per_s": 1 / s, "s_per_step": s, "peak_gib": mem}
            del model, opt, sam
            if b.device.type == "cuda":
                torch.cuda.empty_cache()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny model, small sizes: a smoke run")
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--budget-s", type=float, default=None, help="default 270 (none with --quick)")
    parser.add_argument("--sections", default="matmul,encoder,prompt,amg,ais,segment,train")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 here
        torch.backends.cudnn.allow_tf32 = False
    quick = args.quick
    arch = "vit_test" if quick else "vit_b"
    batches = (1, 2) if quick else (1, 8)
    size = 256 if quick else 1024
    reps = args.reps or (1 if quick else 3)
    budget = args.budget_s if args.budget_s is not None else (float("inf") if quick else 270.0)
    b = Bench(device, reps, budget)
    name, bf16_peak, fp32_peak = device_peak(device)
    peaks = (name, bf16_peak, fp32_peak)
    print(f"# bench_gpu on {name}; torch {torch.__version__}; {arch}, batches {batches}, "
          f"reps {reps}{' — QUICK: tiny model, figures mean nothing' if quick else ''}")  # fmt: skip
    if bf16_peak:
        print(f"# datasheet peaks (dense): bf16 {bf16_peak} TFLOP/s, fp32 {fp32_peak} TFLOP/s")
    else:
        print("# no datasheet peak for this device: fractions of peak are left out; see [matmul]")
    image = test_image(size)
    wanted = {s.strip() for s in args.sections.split(",")}
    model = random_vit(arch, device, head=True) if wanted & {"encoder", "prompt", "amg", "ais"} else None
    steps = {
        "matmul": lambda: sec_matmul(b, 256 if quick else 2048 if device.type == "cpu" else 8192, peaks),
        "encoder": lambda: sec_encoder(b, model, batches, peaks),
        "prompt": lambda: sec_prompt(b, model, image, batches),
        "amg": lambda: sec_amg(b, model, image, batches, 8 if quick else 32),
        "ais": lambda: sec_ais(b, model, image, batches),
        "segment": lambda: sec_segment(b, image, batches, quick),
        "train": lambda: sec_train(b, arch, batches, 128 if quick else 512, 1 if quick else 3),
    }
    for key, fn in steps.items():
        if key in wanted:
            b.section(key, fn)
    print(f"# total {time.perf_counter() - b.start:.1f} s")
    target = args.json or (Path(os.environ["OUT"]) / "bench_gpu.json" if os.environ.get("OUT") else None)
    if target:
        target.write_text(json.dumps({"device": name, "quick": quick, "results": b.results}, indent=1))
        print(f"# figures in {target}")


if __name__ == "__main__":
    main()
