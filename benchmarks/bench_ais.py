"""AIS speed and peak memory at SIZE² (issue 5), side by side with micro-sam when its venv exists.

    python benchmarks/bench_ais.py [--size 1024] [--reps 3] [--peers /tmp/peers/bin/python]

ViT-B with random weights (the same checkpoint for samscope and micro-sam), a synthetic image of
Gaussian "nuclei". Prints medians of REPS runs (wall clock, 2 torch threads) of:

- samscope, on a cached embedding: the instance head (``predict_ais_maps``, one run), the watershed
  (``ais_from_maps``) and both (``segment_ais``), for three head settings:
    * ``unetr``: :class:`samscope.models.heads.InstanceDistanceHead`, µSAM's decoder structure
      (64 initial features, full encoder-input resolution) — what µSAM checkpoints load into;
    * ``unetr_half``: the same head with ``last_level="half"`` (its last level at half
      resolution, logits up-sampled: ≈ 1.4× fewer operations, approximate; see ``--agreement``);
    * ``light``: :class:`samscope.models.distance_head.DistanceMapHead` with three outputs at a
      quarter of the encoder input, bilinearly up-sampled;
  and the encoder (``compute_embeddings``) on its own, so "including the encoder" is their sum;
- the watershed on ground-truth target maps (realistic seeds, as many objects as the image has);
- micro-sam 1.8.14 (``InstanceSegmentationWithDecoder.initialize`` + ``generate``, random UNETR
  decoder, cached embedding), run once, in its own venv;
- peak memory: the peak resident set size *during* each step, over the process's size before it
  (Linux ``/proc/self/clear_refs`` resets the high-water mark; each side in its own process).

The machine is shared with other processes: timings are noisy, so compare medians and ratios.

    python benchmarks/bench_ais.py --ab [--size 1024] [--reps 5]

instead compares, in one process with interleaved repeats (robust to a loaded machine), the UNETR
head's module chain (what training runs, and the inference path before issue 19) with the
inference rewrite :meth:`InstanceDistanceHead.logits` uses in eval mode (1×1 convs before
up-sampling, batch norm folded), and prints both evaluations' multiply-accumulates
(``torch.utils.flop_counter``) and their largest difference; with ``--last-level half`` the
rewrite runs the approximate half-resolution last level instead
(:meth:`InstanceDistanceHead.logits`, ``last_level="half"``).

    python benchmarks/bench_ais.py --agreement [--steps 120] [--features 8]

measures what ``last_level="half"`` changes on a *trained* UNETR head (no trained µSAM decoder
is on this machine and no shipped samscope model has this head): the shipped ``samscope-lm``
encoder's embeddings of simulated nuclei (256², average-pooled 2×2 to a 16² grid, so that the
head's 16 g output is the image, as for ViT-B at 1024²) train an ``InstanceDistanceHead``
(``--features`` initial features) for ``--steps`` Adam steps on the µSAM target maps; then on
held-out simulated images it prints, for the full and the half last level, the mSA against the
truth, the mSA of one instance map against the other, and the largest map difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# -- helpers shared by both sides (numpy and the standard library only) ----------------------


def blobs(size: int, n: int = 60, seed: int = 0):
    """A float32 image of Gaussian nuclei and its labels (as the peers' benchmark makes it)."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    img = np.zeros((size, size), np.float32)
    r = size / 40
    for cy, cx in rng.uniform(r * 2, size - 2 * r, size=(n, 2)):
        img += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    gt, _ = ndi.label(img > 0.5)
    img += rng.normal(0, 0.05, img.shape).astype(np.float32)
    return img.astype(np.float32), gt


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def measure(fn, reps: int):
    """(median seconds, runs, result, peak RSS growth in MiB during the first run)."""
    try:  # hand freed heap pages back first, so they are not counted as "already resident"
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS
        can_reset = True
    except OSError:
        can_reset = False
    before = _rss_kib("VmRSS")
    runs, result = [], None
    for i in range(reps):
        t0 = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t0)
        if i == 0:
            peak = (_rss_kib("VmHWM") - before) / 1024 if can_reset else float("nan")
    return statistics.median(runs), runs, result, peak


# -- micro-sam side (run with the peers' python) -----------------------------------------------


def microsam_child(ckpt: str, size: int) -> None:
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    from micro_sam import util
    from micro_sam.instance_segmentation import (
        InstanceSegmentationWithDecoder,
        get_decoder,
        get_unetr,
    )

    img, gt = blobs(size)
    predictor = util.get_sam_model(model_type="vit_b", checkpoint_path=ckpt, device="cpu")
    torch.manual_seed(0)
    unetr = get_unetr(predictor.model.image_encoder, decoder_state=None, device="cpu")
    state = {k: v for k, v in unetr.state_dict().items() if not k.startswith("encoder")}
    decoder = get_decoder(predictor.model.image_encoder, state, device="cpu").eval()
    emb = util.precompute_image_embeddings(predictor, img, verbose=False)
    ais = InstanceSegmentationWithDecoder(predictor, decoder)
    init_s, _, _, init_mb = measure(lambda: ais.initialize(img, image_embeddings=emb), 1)
    gen_s, _, seg, gen_mb = measure(lambda: ais.generate(), 1)
    # the watershed alone on ground-truth-like maps (as the peers' benchmark builds them)
    from scipy import ndimage as ndi

    fg = (gt > 0).astype(np.float32)
    cd, bd = np.ones_like(fg), np.ones_like(fg)
    for lab in range(1, gt.max() + 1):
        m = gt == lab
        e = ndi.distance_transform_edt(m)
        cd[m] = 1 - e[m] / e.max()
        bd[m] = np.clip(1 - e[m] / 10, 0, 1)
    ais._foreground, ais._center_distances, ais._boundary_distances = fg, cd, bd
    oracle_s, _, oseg, _ = measure(lambda: ais.generate(), 3)
    print(
        json.dumps(
            {
                "initialize_s": init_s,
                "generate_s": gen_s,
                "initialize_peak_mb": init_mb,
                "objects_random": int(seg.max()),
                "generate_oracle_maps_s": oracle_s,
                "objects_oracle": int(len(np.unique(oseg)) - 1),
            }
        )
    )


# -- samscope side -------------------------------------------------------------------------------


def samscope_child(ckpt: str, size: int, reps: int) -> None:
    import torch

    torch.set_num_threads(2)
    from samscope.embeddings import compute_embeddings
    from samscope.evaluation.metrics import mean_segmentation_accuracy
    from samscope.instance.ais import AISConfig, ais_from_maps, predict_ais_maps, segment_ais
    from samscope.instance.targets import instance_distance_targets
    from samscope.models.distance_head import DistanceMapHead
    from samscope.models.heads import InstanceDistanceHead
    from samscope.models.registry import load_model

    img, gt = blobs(size)
    model = load_model(ckpt, device="cpu")
    out: dict[str, object] = {"objects_gt": int(gt.max())}
    enc_s, enc_runs, emb, enc_mb = measure(lambda: compute_embeddings(img, model), reps)
    out.update(encoder_s=enc_s, encoder_runs=enc_runs, encoder_peak_mb=enc_mb)
    # a foreground threshold of 0 makes random maps give seeds and objects to flood
    cfg = AISConfig(foreground_thresh=0.0)
    torch.manual_seed(0)
    unetr = InstanceDistanceHead.for_architecture(model.arch)
    heads = {  # name: (head, last level)
        "unetr": (unetr, "full"),
        "unetr_half": (unetr, "half"),  # the approximate half-resolution last level
        "light": (DistanceMapHead.for_architecture(model.arch, out_channels=3), "full"),
    }
    for name, (head, level) in heads.items():
        model.instance_head = head.eval()
        params = sum(p.numel() for p in head.parameters()) / 1e6
        maps_s, maps_runs, maps, maps_mb = measure(  # once: segment_ais below repeats it
            lambda lv=level: predict_ais_maps(model, emb, last_level=lv), 1
        )
        ws_s, _, inst, ws_mb = measure(lambda m=maps: ais_from_maps(m, config=cfg), reps)
        seg_s, seg_runs, _, seg_mb = measure(
            lambda lv=level: segment_ais(model, emb, config=cfg, last_level=lv), reps
        )
        out[name] = {
            "params_M": params,
            "head_s": maps_s,
            "head_runs": maps_runs,
            "watershed_s": ws_s,
            "segment_ais_s": seg_s,
            "segment_ais_runs": seg_runs,
            "segment_ais_peak_mb": seg_mb,
            "objects_random": inst.n,
        }
    targets = instance_distance_targets(gt)
    ws_s, _, inst, ws_mb = measure(lambda: ais_from_maps(targets), reps)
    out.update(
        watershed_gt_maps_s=ws_s,
        watershed_gt_maps_peak_mb=ws_mb,
        watershed_gt_objects=inst.n,
        watershed_gt_msa=mean_segmentation_accuracy(gt, inst.labels),
    )
    model.instance_head = unetr
    full_s, full_runs, _, full_mb = measure(
        lambda: segment_ais(model, compute_embeddings(img, model), config=cfg), 1
    )
    out.update(with_encoder_s=full_s, with_encoder_peak_mb=full_mb)
    print(json.dumps(out))


def agreement(
    steps: int, features: int, n_train: int = 16, n_test: int = 8, batch: int = 2
) -> None:
    """Full vs half last level of a briefly trained UNETR head (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    from samscope.embeddings import compute_embeddings
    from samscope.evaluation.metrics import mean_segmentation_accuracy
    from samscope.instance.ais import ais_from_maps
    from samscope.instance.targets import instance_distance_targets
    from samscope.models.heads import InstanceDistanceHead
    from samscope.models.registry import load_model
    from samscope.simulate import nuclei

    torch.set_num_threads(2)
    model = load_model("samscope-lm", device="cpu")
    samples = nuclei(n_train + n_test, (256, 256), rng=19)

    def embed(img):  # (1, C, 16, 16): 16 image pixels per cell, as ViT-B at 1024²
        emb = compute_embeddings(img, model).get(0, 0)
        return F.avg_pool2d(emb, 2) if emb.shape[-1] == 32 else emb

    t0 = time.perf_counter()
    embs = torch.cat([embed(s.image) for s in samples])
    targets = torch.from_numpy(
        np.stack([instance_distance_targets(s.labels) for s in samples]).astype(np.float32)
    )
    print(f"# embeddings {tuple(embs.shape)} and targets in {time.perf_counter() - t0:.0f} s")
    torch.manual_seed(0)
    head = InstanceDistanceHead(embs.shape[1], initial_features=features)
    opt = torch.optim.Adam(head.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for step in range(steps):  # µSAM trains with a Dice loss on the three sigmoid maps
        idx = torch.from_numpy(rng.choice(n_train, batch, replace=False))
        pred = head(embs[idx])
        inter = (pred * targets[idx]).sum((2, 3))
        denom = (pred * pred).sum((2, 3)) + (targets[idx] ** 2).sum((2, 3))
        loss = 1 - (2 * inter / denom.clamp_min(1e-6)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == steps - 1:
            print(f"step {step:4d} dice loss {loss.item():.3f} ({time.perf_counter() - t0:.0f} s)")
    head.eval()
    rows = []
    with torch.inference_mode():
        for i in range(n_train, n_train + n_test):
            full = head(embs[i : i + 1])[0].numpy()
            half = head(embs[i : i + 1], last_level="half")[0].numpy()
            gt = samples[i].labels
            lf, lh = ais_from_maps(full).labels, ais_from_maps(half).labels
            rows.append(
                (
                    mean_segmentation_accuracy(gt, lf),
                    mean_segmentation_accuracy(gt, lh),
                    mean_segmentation_accuracy(lf, lh),
                    float(np.abs(full - half).max()),
                    float(np.abs(full - half).mean()),
                )
            )
    r = np.array(rows)
    print(
        f"# {n_test} held-out simulated 256² images, head {features} features, {steps} steps\n"
        f"mSA vs truth: full {r[:, 0].mean():.3f}, half {r[:, 1].mean():.3f} "
        f"(per image half - full: min {np.min(r[:, 1] - r[:, 0]):+.3f}, "
        f"max {np.max(r[:, 1] - r[:, 0]):+.3f})\n"
        f"mSA half vs full instance maps: {r[:, 2].mean():.3f} (min {r[:, 2].min():.3f})\n"
        f"map difference: largest {r[:, 3].max():.3f}, mean {r[:, 4].mean():.4f}"
    )


def head_ab(size: int, reps: int, last_level: str = "full") -> None:
    """Interleaved A/B of the UNETR head: module chain vs the eval-mode rewrite (see the docstring)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from samscope.models.heads import InstanceDistanceHead

    torch.set_num_threads(2)
    torch.manual_seed(0)
    head = InstanceDistanceHead(256, initial_features=64)
    for m in head.modules():  # non-trivial batch-norm statistics, as a trained head has
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    head.eval()
    emb = torch.randn(1, 256, size // 16, size // 16)

    def chain():  # InstanceDistanceHead.logits without the rewrite: the modules one by one
        z9 = head.deconv1(emb)
        z6 = head.deconv2(z9)
        z3 = head.deconv3(z6)
        z0 = head.deconv4(z3)
        x = head.deconv_out(head.decoder(head.base(emb), [z9, z6, z3]))
        return head.out_conv(head.decoder_head(torch.cat([x, z0], dim=1)))

    rewrite = f"rewrite, {last_level}"
    variants = {"module chain": chain, rewrite: lambda: head.logits(emb, last_level=last_level)}
    with torch.inference_mode():
        outs, macs = {}, {}
        for name, fn in variants.items():
            with FlopCounterMode(display=False) as counter:
                outs[name] = fn()
            macs[name] = counter.get_total_flops() / 2e9
        diff = float((outs["module chain"] - outs[rewrite]).abs().max())
        runs: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(reps):
            for name, fn in variants.items():
                t0 = time.perf_counter()
                fn()
                runs[name].append(time.perf_counter() - t0)
    print(f"# UNETR head at {size}², 2 threads, interleaved, median of {reps}")
    for name in variants:
        print(
            f"{name:20s} {statistics.median(runs[name]):7.2f} s  {macs[name]:6.1f} GMAC  "
            f"runs {[round(t, 2) for t in runs[name]]}"
        )
    ratio = statistics.median(runs["module chain"]) / statistics.median(runs[rewrite])
    print(f"ratio {ratio:.2f}×; largest logit difference {diff:.1e}")


def run_child(python: str, args: list[str]) -> dict:
    res = subprocess.run([python, __file__, *args], capture_output=True, text=True, check=False)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        raise RuntimeError(f"{python} {args[0]} failed:\n{res.stderr[-3000:]}")
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--peers", default="/work/peers-venv/bin/python")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--ab", action="store_true", help="in-process A/B of the head only")
    parser.add_argument(
        "--last-level",
        choices=("full", "half"),
        default="full",
        help="samscope's UNETR last level (both modes); half is approximate",
    )
    parser.add_argument("--agreement", action="store_true", help="full vs half last level, trained")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--features", type=int, default=8)
    args = parser.parse_args()
    if args.agreement:
        agreement(args.steps, args.features)
        return
    if args.ab:
        head_ab(args.size, args.reps, args.last_level)
        return
    if args.child:
        kind, ckpt = args.child[:2]
        if kind == "microsam":
            microsam_child(ckpt, args.size)
        else:
            samscope_child(ckpt, args.size, args.reps)
        return

    import torch

    from samscope.models.architectures import build_sam
    from samscope.models.checkpoint import save_checkpoint

    size = args.size
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        ref = build_sam("vit_b", fast_attention=False)
        for p in ref.parameters():  # small random weights (SAM's init leaves many zeros)
            torch.nn.init.normal_(p, std=0.02)
        ckpt = Path(tmp) / "random_vit_b.pth"
        save_checkpoint(ckpt, ref, format="segment-anything")
        del ref
        common = ["--size", str(size), "--reps", str(args.reps)]
        ours = run_child(sys.executable, ["--child", "samscope", str(ckpt), *common])
        peer = None
        if Path(args.peers).exists():
            peer = run_child(args.peers, ["--child", "microsam", str(ckpt), *common])

    print(
        f"# AIS at {size}², ViT-B random weights, 2 threads, medians of {args.reps} "
        f"(micro-sam: 1 run); shared machine, timings noisy"
    )
    print(f"image: {ours['objects_gt']} nuclei")
    print(
        f"encoder (compute_embeddings)      {ours['encoder_s']:6.2f} s  runs "
        f"{[round(t, 2) for t in ours['encoder_runs']]}  peak +{ours['encoder_peak_mb']:.0f} MiB"
    )
    for name in ("unetr", "unetr_half", "light"):
        r = ours[name]
        print(
            f"{name:10s} head ({r['params_M']:.2f} M params): head {r['head_s']:6.2f} s, "
            f"watershed {r['watershed_s']:.3f} s, segment_ais {r['segment_ais_s']:6.2f} s "
            f"(runs {[round(t, 2) for t in r['segment_ais_runs']]}), peak +{r['segment_ais_peak_mb']:.0f} MiB"
        )
    print(
        f"watershed on GT target maps       {ours['watershed_gt_maps_s']:6.3f} s  "
        f"({ours['watershed_gt_objects']} objects, mSA {ours['watershed_gt_msa']:.3f}), "
        f"peak +{ours['watershed_gt_maps_peak_mb']:.0f} MiB"
    )
    print(
        f"encoder + segment_ais (unetr)     {ours['with_encoder_s']:6.2f} s  "
        f"peak +{ours['with_encoder_peak_mb']:.0f} MiB"
    )
    if peer is None:
        print(f"# no micro-sam venv at {args.peers}")
        return
    ms_total = peer["initialize_s"] + peer["generate_s"]
    print(
        f"micro-sam AIS: initialize {peer['initialize_s']:.2f} s + generate "
        f"{peer['generate_s']:.3f} s = {ms_total:.2f} s, peak +{peer['initialize_peak_mb']:.0f} MiB; "
        f"generate on oracle maps {peer['generate_oracle_maps_s']:.3f} s"
    )
    for name in ("unetr", "unetr_half", "light"):
        print(
            f"ratio micro-sam / samscope ({name} head + watershed): "
            f"{ms_total / ours[name]['segment_ais_s']:.1f}×"
        )


if __name__ == "__main__":
    main()
