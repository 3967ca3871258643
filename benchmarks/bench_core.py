"""Core speed and memory figures (issue 2), side by side with micro-sam when its venv exists.

    python benchmarks/bench_core.py [--size 1024] [--reps 3] [--peers /tmp/peers/bin/python]

Prints, for ViT-B with the *same random weights* in samscope and micro-sam:
  - image embedding at SIZE² (median of REPS), samscope and micro-sam, and the ratio;
    samscope with transformers' stock attention too, to show what the faster attention buys;
  - point and box prompt on a cached embedding, mask at the original resolution (median of 30);
  - the cache signature (streaming data hash) of a 2 GB uint16 volume: time and peak memory,
    measured in a child process so the figure is that of hashing alone.
Timings are wall-clock medians of one run on a noisy shared machine; compare ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def median_time(fn, n):
    ts = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), ts


def hash_child(path: str, shape: tuple[int, ...]) -> None:
    """Run in a child: hash a memmap and print time and peak RSS growth."""
    import resource

    from samscope.embeddings import data_hash

    arr = np.lib.format.open_memmap(path, mode="r")
    assert arr.shape == shape
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    digest = data_hash(arr)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": dt, "peak_rss_growth_mb": (after - before) / 1024, "digest": digest}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--peers", default="/work/peers-venv/bin/python")
    parser.add_argument("--skip-volume", action="store_true")
    parser.add_argument("--hash-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.hash_child:
        path, shape = args.hash_child
        hash_child(path, tuple(json.loads(shape)))
        return

    torch.set_num_threads(2)
    from samscope.embeddings import compute_embeddings
    from samscope.models.architectures import build_sam
    from samscope.models.checkpoint import save_checkpoint
    from samscope.models.registry import load_model
    from samscope.prompting import segment_from_boxes, segment_from_prompts

    size, reps = args.size, args.reps
    img = np.random.default_rng(0).random((size, size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        ref = build_sam("vit_b", fast_attention=False)
        for p in ref.parameters():  # small random weights (SAM's init leaves many zeros)
            torch.nn.init.normal_(p, std=0.02)
        ckpt = Path(tmp) / "random_vit_b.pth"
        save_checkpoint(ckpt, ref, format="segment-anything")
        model = load_model(ckpt, device="cpu")
        print(f"# samscope vit_b from {ckpt.name} (random weights), {torch.get_num_threads()} threads")

        emb_s, emb_runs = median_time(lambda: compute_embeddings(img, model), reps)
        print(f"embedding {size}²   samscope          {emb_s:7.2f} s  runs {[round(t, 2) for t in emb_runs]}")

        stock = build_sam("vit_b", fast_attention=False)
        stock.load_state_dict(model.sam.state_dict())
        x = torch.randn(1, 3, 1024, 1024)
        with torch.inference_mode():
            stock_s, _ = median_time(lambda: stock.get_image_embeddings(x), 1)
        print(f"embedding 1024²   transformers SDPA {stock_s:7.2f} s  (stock attention, 1 run)")
        stock = None  # free the second ViT-B before the prompt timings

        emb = compute_embeddings(img, model)
        c = size // 2
        segment_from_prompts(model, emb, points=[[c, c]])  # warm-up and decoder cache
        pt_s, _ = median_time(lambda: segment_from_prompts(model, emb, points=[[c, c]]), 30)
        pt_mm, _ = median_time(lambda: segment_from_prompts(model, emb, points=[[c, c]], multimask=True), 30)
        box = np.array([c - size // 10, c - size // 10, c + size // 10, c + size // 10])
        bx_s, _ = median_time(lambda: segment_from_prompts(model, emb, box=box), 30)
        boxes = np.tile(box, (32, 1)) + np.arange(32)[:, None]
        b32_s, _ = median_time(lambda: segment_from_boxes(model, emb, boxes), 5)
        print(f"point prompt      samscope          {pt_s * 1000:7.1f} ms (multimask {pt_mm * 1000:.1f} ms)")
        print(f"box prompt        samscope          {bx_s * 1000:7.1f} ms; 32 boxes in one batch {b32_s * 1000:.0f} ms "
              f"({b32_s / 32 * 1000:.1f} ms/box)")

        peer = Path(args.peers)
        if peer.exists():
            res = subprocess.run(
                [str(peer), str(HERE / "peers" / "microsam_core.py"), str(ckpt), str(size), str(reps)],
                capture_output=True, text=True, check=False,
            )
            line = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
            if line:
                ms = json.loads(line[-1])
                print(f"embedding {size}²   micro-sam 1.8.14  {ms['embedding_s']:7.2f} s  "
                      f"runs {[round(t, 2) for t in ms['embedding_runs']]}")
                print(f"point prompt      micro-sam         {ms['point_s'] * 1000:7.1f} ms")
                print(f"box prompt        micro-sam         {ms['box_s'] * 1000:7.1f} ms")
                print(f"ratios (micro-sam / samscope): embedding {ms['embedding_s'] / emb_s:.2f}×, "
                      f"point {ms['point_s'] / pt_s:.2f}×, box {ms['box_s'] / bx_s:.2f}×")
            else:
                print("# micro-sam run failed:", res.stderr[-2000:])
        else:
            print(f"# no micro-sam venv at {peer}; see ../shared/peers/install-peers.sh")

        if not args.skip_volume:
            shape = (1000, 1024, 1024)  # uint16: 2.0 GiB
            vol = Path(tmp) / "volume.npy"
            arr = np.lib.format.open_memmap(vol, mode="w+", dtype=np.uint16, shape=shape)
            for i in range(0, shape[0], 50):
                arr[i : i + 50] = np.uint16(i)
            arr.flush()
            del arr
            res = subprocess.run(
                [sys.executable, __file__, "--hash-child", str(vol), json.dumps(shape)],
                capture_output=True, text=True, check=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            info = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"cache signature of a 2.0 GiB volume: {info['seconds']:.1f} s, "
                  f"peak memory growth {info['peak_rss_growth_mb']:.0f} MB")


if __name__ == "__main__":
    main()
