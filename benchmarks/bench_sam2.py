"""SAM2.1 hiera tiny against SAM1 ViT-B on this CPU, in one run (issue 20's speed targets).

    python benchmarks/bench_sam2.py [--size 1024] [--reps 3] [--prompt-reps 20] [--no-amg]

Both models have random weights (no downloads: the architectures are the published ones, so
the arithmetic is that of the real models). Prints medians of:

- the image embedding of a ``SIZE²`` input (``SamscopeModel.encode``; for SAM2 the three feature
  maps the decoder uses);
- one point prompt on a cached embedding (prompt encoding + decoding + the mask at the image's
  resolution: ``samscope.prompting.segment_from_prompts``, what a click costs);
- AMG with SAM's 32² grid on one cached image (``samscope.instance.amg.amg_predict``);

and the ratios. Issue 20's targets: hiera-t embedding ≥ 3× faster than ViT-B, prompt ≤ 25 ms.
Wall-clock medians on a shared machine: take the figures on a quiet one.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def median_time(fn, n: int) -> float:
    """Median seconds of ``n`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def random_model(arch: str, name: str):
    from samscope.models.architectures import build_sam
    from samscope.models.card import ModelCard
    from samscope.models.sam import SamscopeModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        sam = build_sam(arch)
    return SamscopeModel(sam, ModelCard(name=name, architecture=arch, source="test"), device="cpu")


def bench(model, image: np.ndarray, args) -> dict[str, float]:
    from samscope.embeddings import compute_embeddings
    from samscope.instance.amg import AMGConfig, amg_predict
    from samscope.prompting import segment_from_prompts

    size = model.image_size
    pixels = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    out = {"embed_s": median_time(lambda: model.encode(pixels), args.reps)}
    emb = compute_embeddings(image, model)
    point = np.array([[image.shape[0] // 3, image.shape[1] // 2]])
    out["prompt_s"] = median_time(
        lambda: segment_from_prompts(model, emb, points=point, multimask=True), args.prompt_reps
    )
    if not args.no_amg:
        config = AMGConfig(points_per_side=32)
        t0 = time.perf_counter()
        pred = amg_predict(model, emb, config=config, image=image)
        out["amg_s"] = time.perf_counter() - t0
        out["amg_candidates"] = float(len(getattr(pred, "masks", []) or []))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="image side (default 1024)")
    parser.add_argument("--reps", type=int, default=3, help="embedding repetitions")
    parser.add_argument("--prompt-reps", type=int, default=20)
    parser.add_argument("--no-amg", action="store_true")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[: args.size, : args.size]
    image = rng.normal(1000, 30, (args.size, args.size))
    for cy, cx in rng.integers(0, args.size, (40, 2)):
        image += 2000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 15.0**2))
    image = image.astype(np.uint16)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, image {args.size}²")
    results = {}
    for arch, name in (("sam2_hiera_t", "SAM2.1 hiera-t"), ("vit_b", "SAM1 ViT-B")):
        model = random_model(arch, name)
        results[name] = r = bench(model, image, args)
        parts = [f"embedding {r['embed_s']:.2f} s", f"point prompt {1000 * r['prompt_s']:.1f} ms"]
        if "amg_s" in r:
            parts.append(f"AMG 32² {r['amg_s']:.1f} s")
        print(f"{name:16s} " + ", ".join(parts), flush=True)
        del model
    s2, s1 = results["SAM2.1 hiera-t"], results["SAM1 ViT-B"]
    print(f"embedding: hiera-t {s1['embed_s'] / s2['embed_s']:.2f}× faster than ViT-B (target ≥ 3×)")
    print(f"prompt: hiera-t {1000 * s2['prompt_s']:.1f} ms (target ≤ 25 ms), "
          f"ViT-B {1000 * s1['prompt_s']:.1f} ms")  # fmt: skip
    if "amg_s" in s2:
        print(f"AMG 32²: hiera-t {s2['amg_s']:.1f} s, ViT-B {s1['amg_s']:.1f} s")


if __name__ == "__main__":
    main()
