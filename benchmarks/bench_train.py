"""Training speed and memory: samscope vs micro-sam's ``SamTrainer`` (what ``train_sam`` runs).

    python benchmarks/bench_train.py [--model vit_b] [--steps 4] [--warmup 1] [--objects 5]
                                     [--sub-iterations 8] [--batch 1] [--patch 512]
                                     [--freeze image_encoder] [--amp both|on|off] [--peers /tmp/peers/bin/python]
                                     [--checkpoint-encoder on|off] [--variant fast|plain] [--losses]

Quiet speed/memory check (issue 21.4 target: samscope ≥ 2× micro-sam's steps/s, peak ≤ 8 GB):
``python benchmarks/bench_train.py --steps 3 --warmup 1 --amp off``. Loss-curve check (no timing,
may run under load): ``python benchmarks/bench_train.py --steps 20 --warmup 0 --amp off --losses``
(``--variant plain`` runs samscope's step as it was before the chunked attention, to compare the
two curves; the losses of one seed agree to float rounding).

Both sides get the *same random weights* (samscope's from-scratch initialisation, written as a
segment-anything state dict, which is micro-sam's checkpoint format), the same images in the same
order, and µSAM's settings: AdamW lr 1e-5, N objects per image, k sub-iterations (decoder passes),
mask fed back with p = 0.5, box distortion 0.025, steps alternating between a point start
(multimask) and a box start exactly as ``SamTrainer`` alternates by iteration parity. Only the
prompt objective is trained (``with_segmentation_decoder=False`` in µSAM terms).

Each side runs in its own fresh process (so ``ru_maxrss`` is its own peak); micro-sam in its own
virtual environment (it is never a samscope dependency). ``train_sam`` enables mixed precision,
which on a CPU means bfloat16 autocast: both sides are timed in float32 and with bf16 autocast
(samscope's ``--amp bf16``), and the ratio is given per precision.

Reported per configuration: the median seconds per optimiser step (and every step), iterations
per second, and the process's peak resident memory (``ru_maxrss``). The machine may be shared:
timings are noisy, so compare medians taken in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import torch

MICROSAM_SIDE = textwrap.dedent(
    r'''
    import json, resource, statistics, sys, time, warnings
    from contextlib import nullcontext
    import numpy as np, torch
    warnings.filterwarnings("ignore")
    torch.set_num_threads(int(sys.argv[8]))
    from micro_sam.training.util import get_trainable_sam_model, ConvertToSamInputs
    from micro_sam.training.sam_trainer import SamTrainer
    ckpt, data, steps, warmup, objects, subiters, amp = sys.argv[1:8]
    freeze = [f for f in sys.argv[9].split(",") if f]
    steps, warmup, objects, subiters, amp = int(steps), int(warmup), int(objects), int(subiters), amp == "on"
    arrays = np.load(data)
    images, labels = arrays["images"], arrays["labels"]
    batch = int(arrays["batch"])
    torch.manual_seed(0); np.random.seed(0)
    model = get_trainable_sam_model("vit_b", device="cpu", checkpoint_path=ckpt, freeze=freeze or None)
    convert = ConvertToSamInputs(transform=model.transform, box_distortion_factor=0.025)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    loader = [(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))]
    trainer = SamTrainer(
        name="bench", train_loader=loader, val_loader=loader, model=model, optimizer=opt,
        device="cpu", lr_scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.9, patience=3),
        logger=None, log_image_interval=100, mixed_precision=amp, convert_inputs=convert,
        n_objects_per_batch=objects, n_sub_iteration=subiters, compile_model=False, mask_prob=0.5,
        save_root=None,
    )
    context = (lambda: torch.autocast(device_type="cpu", dtype=torch.bfloat16)) if amp else nullcontext
    model.train()
    times, losses = [], []
    for i in range(warmup + steps):
        sel = [(i * batch + j) % len(images) for j in range(batch)]
        x = torch.from_numpy(images[sel])[:, None] * 255.0   # µSAM wants 0-255 input
        y = torch.from_numpy(labels[sel].astype(np.float32))[:, None]
        trainer._iteration = i                                 # point start on even, box on odd
        t0 = time.perf_counter()
        opt.zero_grad()
        with context():
            loss = trainer._interactive_train_iteration(x, y)[0]
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"step_s": statistics.median(times) if times else float("nan"), "steps": times,
                      "losses": losses,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    '''
)


def make_data(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images in 0–1 with 10–20 bright ellipses each, and their labels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.zeros((n, size, size), np.float32)
    labels = np.zeros((n, size, size), np.int32)
    for k in range(n):
        for i in range(1, int(rng.integers(10, 21))):
            cy, cx = rng.uniform(30, size - 30, 2)
            ry, rx = rng.uniform(12, 28, 2)
            m = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
            m &= labels[k] == 0
            labels[k][m] = i
            images[k][m] = rng.uniform(0.4, 0.9)
        images[k] = np.clip(images[k] + rng.normal(0, 0.05, (size, size)), 0, 1)
    return images, labels


def samscope_side(args, data: Path) -> dict:
    """Time samscope's training step on the same data with µSAM's settings (own process)."""
    from contextlib import nullcontext

    from samscope.models.architectures import build_sam
    from samscope.training.attention import use_training_attention
    from samscope.training.data import Batch
    from samscope.training.objectives import PromptSettings, TrainingModel
    from samscope.training.setup import apply_freeze, initialise_weights

    arrays = np.load(data)
    images, labels = arrays["images"], arrays["labels"]
    torch.manual_seed(0)
    sam = initialise_weights(build_sam(args.model))
    sam.train()
    apply_freeze(sam, tuple(f for f in args.freeze.split(",") if f))
    use_training_attention(sam)
    params = [p for p in sam.parameters() if p.requires_grad]
    if args.variant == "plain":  # the step before issue 21.4: explicit attention, plain AdamW
        from samscope.models.attention import RelPosAttention
        from samscope.training.attention import TrainingRelPosAttention

        TrainingRelPosAttention._attend_with_bias = staticmethod(RelPosAttention._attend_with_bias)
        optimizer = torch.optim.AdamW(params, lr=1e-5)
    else:
        from samscope.training.trainer import adamw

        optimizer = adamw(params, lr=1e-5)
    settings = PromptSettings(args.objects, args.sub_iterations, 0.5, 0.0, 0.025, True, 1.0)
    model = TrainingModel(sam, prompt=settings, weights={"prompt": 1.0},
                          mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375),
                          checkpoint_encoder=args.checkpoint_encoder == "on")
    context = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.amp == "on" else nullcontext
    times, step_losses = [], []
    for i in range(args.warmup + args.steps):
        sel = [(i * args.batch + j) % len(images) for j in range(args.batch)]
        batch = Batch(torch.from_numpy(images[sel])[:, None], torch.from_numpy(labels[sel]).long(),
                      [None] * len(sel))
        # the same start as SamTrainer: a point on even iterations, a box on odd ones
        model.prompt = dataclasses.replace(settings, box_prob=float(i % 2))
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with context():
            out = model(batch.image, batch.labels, batch.masks, seed=i)
        out["loss"].backward()
        optimizer.step()
        step_losses.append(float(out["loss"].detach()))
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    return {"step_s": statistics.median(times) if times else float("nan"), "steps": times,
            "losses": step_losses,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(cmd: list[str]) -> dict | None:
    """Run one side in a fresh process (its ``ru_maxrss`` is then its own)."""
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        print(f"# failed (exit {proc.returncode}): {' '.join(cmd[:2])} …\n{proc.stderr[-2000:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pool(results: dict, name: str, res: dict | None) -> None:
    """Add one process's timed steps to ``results[name]`` (median over all, max of peaks)."""
    if res is None:
        return
    print(json.dumps({name: res}), flush=True)
    entry = results.setdefault(name, {"steps": [], "peak_rss_mb": 0.0})
    entry["steps"] += res["steps"]
    entry.setdefault("losses", []).append(res.get("losses", []))
    entry["peak_rss_mb"] = max(entry["peak_rss_mb"], res["peak_rss_mb"])
    entry["step_s"] = statistics.median(entry["steps"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="vit_b")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--objects", type=int, default=5)
    parser.add_argument("--sub-iterations", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--patch", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--freeze", default="", help="comma-separated parts to freeze, e.g. image_encoder")
    parser.add_argument("--peers", default="/tmp/peers/bin/python")
    parser.add_argument("--amp", choices=("both", "on", "off"), default="both",
                        help="bf16 autocast on the CPU for both sides (on), neither (off), or both ways")
    parser.add_argument("--only", choices=("samscope", "micro-sam"), default=None)
    parser.add_argument("--checkpoint-encoder", choices=("on", "off"), default="off",
                        help="samscope: activation checkpointing of the encoder blocks")
    parser.add_argument("--variant", choices=("fast", "plain"), default="fast",
                        help="samscope: the current step (fast) or the step before issue 21.4 "
                             "(plain: explicit attention keeping the probabilities, plain AdamW)")
    parser.add_argument("--losses", action="store_true",
                        help="print every step's loss per side (the loss-curve comparison)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="alternate the two sides this many times (each a fresh process) and "
                             "pool their timed steps: load on a shared machine then hits both")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # data file: samscope side
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(samscope_side(args, Path(args.child))))
        return
    images, labels = make_data(max(4, args.batch * 2), args.patch)
    print(f"# {args.model}, batch {args.batch}, {args.patch}² patches, {args.objects} objects, "
          f"{args.sub_iterations} sub-iterations, frozen: {args.freeze or 'nothing'}, "
          f"{args.threads} threads, {args.warmup} warm-up + {args.steps} timed steps; device cpu; "
          f"samscope step {args.variant}, encoder checkpointing {args.checkpoint_encoder}",
          flush=True)
    results = {}
    modes = ("off", "on") if args.amp == "both" else (args.amp,)
    peer = Path(args.peers)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.npz"
        np.savez(data, images=images, labels=labels, batch=args.batch)
        ckpt = script = None
        if args.model == "vit_b" and peer.exists() and args.only != "samscope":
            from samscope.models.architectures import build_sam
            from samscope.models.checkpoint import save_checkpoint
            from samscope.training.setup import initialise_weights

            torch.manual_seed(0)  # the same weights samscope_side builds
            ckpt = save_checkpoint(Path(tmp) / "random_vit_b.pt",
                                   initialise_weights(build_sam("vit_b")), format="segment-anything")
            script = Path(tmp) / "microsam_train.py"
            script.write_text(MICROSAM_SIDE)
        elif args.only != "samscope":
            print(f"# no micro-sam run (needs vit_b and the venv at {peer}; "
                  "see ../shared/peers/install-peers.sh)")
        for amp in modes:
            precision = "bf16 autocast" if amp == "on" else "fp32"
            for _ in range(args.repeats):
                if args.only != "micro-sam":
                    cmd = [sys.executable, __file__, *sys.argv[1:], "--amp", amp, "--child", str(data)]
                    _pool(results, f"samscope {precision}", run_child(cmd))
                if script is not None:
                    cmd = [str(peer), str(script), str(ckpt), str(data), str(args.steps),
                           str(args.warmup), str(args.objects), str(args.sub_iterations), amp,
                           str(args.threads), args.freeze]
                    name = f"micro-sam {precision}" + (" (train_sam default)" if amp == "on" else "")
                    _pool(results, name, run_child(cmd))
    print(f"\n{'configuration':42s} {'s/step':>8s} {'it/s':>8s} {'peak RSS MB':>12s}")
    for name, res in results.items():
        rate = 1 / res["step_s"] if res["step_s"] > 0 else float("nan")
        print(f"{name:42s} {res['step_s']:8.2f} {rate:8.4f} {res['peak_rss_mb']:12.0f}")
    for amp in modes:
        precision = "bf16 autocast" if amp == "on" else "fp32"
        ours = results.get(f"samscope {precision}")
        theirs = [v for k, v in results.items() if k.startswith(f"micro-sam {precision}")]
        if ours and theirs:
            print(f"speed-up of samscope over micro-sam, {precision}: "
                  f"{theirs[0]['step_s'] / ours['step_s']:.2f}×")
    if args.losses:
        print("\nloss per step (warm-up steps included; one row per process):")
        for name, res in results.items():
            for curve in res.get("losses", []):
                print(f"{name:42s} " + " ".join(f"{v:.4f}" for v in curve))
    best_ours = min((v["step_s"] for k, v in results.items() if k.startswith("samscope")), default=None)
    default = results.get("micro-sam bf16 autocast (train_sam default)")
    if best_ours and default:
        print(f"samscope's fastest vs micro-sam's train_sam default: {default['step_s'] / best_ours:.2f}×")


if __name__ == "__main__":
    main()
