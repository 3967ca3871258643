"""The arithmetic floor of a model's image encoder on this machine, and what it means for big images.

Prints, for one shipped model (default ``samscope-generalist``):

* the encoder's floating-point work per pass: convolutions and linear layers as counted by
  ``torch.utils.flop_counter`` plus the attention products ``QKᵀ`` and ``AV`` counted from the
  shapes (the CPU flash-attention kernel is not in PyTorch's counter tables);
* the machine's fp32 matrix-product peak (a 2048² ``matmul``, median of repeats, all threads);
* the encoder's measured time per pass at batch 1 and 4 and the fraction of the peak it reaches;
* for each ``--sizes`` image, the exact encoder passes of a blockwise run with ``--block-size``
  (the same count as ``bench_blockwise.py plan``) and of a tiling with no overlap at all, and the
  seconds these take at the peak (the floor no implementation of this encoder can beat) and at the
  measured rate.

Run it on an idle machine (it takes about a minute)::

    python benchmarks/encoder_floor.py --sizes 1024 16384

The floor explains targets that are below it on a given host: e.g. if ``floor_no_overlap_s`` of a
16384² image exceeds a time target, no tiling, batching or kernel change can meet the target with
this encoder on this CPU; only less arithmetic (a smaller encoder or a coarser working scale, each
an accuracy trade) or faster hardware can.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path


def attention_flops(encoder, side: int) -> int:
    """Multiply-add FLOPs (×2) of every attention's ``QKᵀ`` and ``AV`` for one ``side``² pass."""
    grid = side // int(encoder.patch_size)
    tokens = grid * grid
    total = 0
    for block in encoder.layers:
        width = int(block.qkv.in_features)
        total += 2 * 2 * tokens * tokens * width  # QKᵀ and AV over all heads
    return total


def encoder_flops(encoder, side: int) -> dict:
    """Counted FLOPs of one pass (batch 1) of ``encoder`` at ``side``² input."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, side, side)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        encoder(x)
    dense = int(counter.get_total_flops())
    attention = attention_flops(encoder, side) if hasattr(encoder, "layers") else 0
    return {"dense_gflop": dense / 1e9, "attention_gflop": attention / 1e9,
            "gflop_per_pass": (dense + attention) / 1e9}


def matmul_peak(n: int = 2048, repeats: int = 7) -> float:
    """Median fp32 GFLOP/s of an ``n``² matrix product with all of torch's threads."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times) / 1e9


def pass_seconds(encoder, side: int, batch: int, repeats: int = 5) -> float:
    """Median seconds per image of ``encoder`` at ``batch`` images of ``side``²."""
    import torch

    x = torch.randn(batch, 3, side, side)
    times = []
    with torch.inference_mode():
        encoder(x)
        for _ in range(repeats):
            t = time.perf_counter()
            encoder(x)
            times.append((time.perf_counter() - t) / batch)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="samscope-generalist")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 16384])
    parser.add_argument("--block-size", type=int, default=2048)
    parser.add_argument("--diameter", type=float, default=28.0,
                        help="object diameter in px (sets the working scale, as in bench_blockwise)")
    args = parser.parse_args()

    import torch

    from samscope.models.registry import get_card, load_model

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_blockwise import encoder_tiles

    model = load_model(args.model)
    encoder = model._vision_encoder("fp32")
    side = int(model.image_size)
    card = get_card(args.model)
    report = {"model": args.model, "encoder_input": side, "threads": torch.get_num_threads(),
              **{k: round(v, 4) for k, v in encoder_flops(encoder, side).items()}}
    peak = matmul_peak()
    report["matmul_peak_gflops"] = round(peak, 1)
    for batch in (1, 4):
        seconds = pass_seconds(encoder, side, batch)
        report[f"seconds_per_pass_batch{batch}"] = round(seconds, 4)
        report[f"fraction_of_peak_batch{batch}"] = round(report["gflop_per_pass"] / seconds / peak, 3)
    print(json.dumps(report), flush=True)
    best = min(report["seconds_per_pass_batch1"], report["seconds_per_pass_batch4"])
    inner = int(card.tile_shape)
    for size in args.sizes:
        tiles = encoder_tiles(size, args.block_size, diameter=args.diameter, model=args.model)
        scale = tiles["scale"]
        no_overlap = (-(-round(size * scale) // side)) ** 2
        row = {"size": size, "block": tiles["block"], "scale": scale, "tile_inner": inner,
               "passes_blockwise": tiles["tiles"], "passes_whole_image": tiles["tiles_whole_image"],
               "passes_no_overlap": no_overlap}
        for key in ("blockwise", "no_overlap"):
            work = row[f"passes_{key}"] * report["gflop_per_pass"]
            row[f"floor_{key}_s"] = round(work / peak, 1)
            row[f"measured_rate_{key}_s"] = round(row[f"passes_{key}"] * best, 1)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
