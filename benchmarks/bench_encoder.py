"""Image-encoder time per precision, against micro-sam's fp32, in one run (issue 21).

    python benchmarks/bench_encoder.py [--size 1024] [--reps 3] [--models vit_b,samscope-generalist]
                                       [--peers /work/peers-venv/bin/python] [--json OUT.json]

For ViT-B with the *same random weights* in samscope and micro-sam (normal, std 0.02, seed 0, as
``bench_core.py``) it prints the embedding time of a ``SIZE``² image (``compute_embeddings``, so
preprocessing included, as micro-sam's ``precompute_image_embeddings``):

- samscope fp32 and samscope int8, **interleaved in one process** (fp32, int8, fp32, int8, …
  after one warm-up each; medians of ``--reps``), so a change of load hits both alike;
- micro-sam 1.8.14 fp32 (its own venv, a subprocess, ``peers/microsam_core.py``), after them;
- the ratios micro-sam / samscope-fp32 and micro-sam / samscope-int8 (issue 21's target: ≥ 3×
  for the precision ``samscope segment`` uses by default), and int8's gain over fp32.

For every other model in ``--models`` (e.g. the shipped compact ``samscope-generalist``) it times
one encoder input (its own tile) at fp32 and int8 the same interleaved way, so each card's
``default_precision`` can be set from measurement. The last line per model says which precision
is faster and what the card says.

Wall-clock medians on a shared machine are only figures when the machine is idle: each block is
labelled with the 1-minute load average ("UNDER LOAD" above its own threads plus half the cores). Accuracy of int8
is ``bench_precision.py``'s job (masks and logits against fp32).
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_precision import load_state, random_checkpoint  # noqa: E402


def interleaved(fns: dict, reps: int) -> dict[str, list[float]]:
    """Times of each function, one warm-up each, then ``reps`` rounds in turn."""
    for fn in fns.values():
        fn()
    runs: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            runs[name].append(time.perf_counter() - t0)
    return runs


def fmt_runs(runs: list[float]) -> str:
    return f"{statistics.median(runs):7.2f} s  runs {[round(t, 2) for t in runs]}"


def vit_b_block(args, tmp: Path) -> dict:
    from samscope.embeddings import compute_embeddings
    from samscope.models.builtin_cards import builtin_cards
    from samscope.models.registry import load_model

    ckpt = random_checkpoint(tmp)
    model = load_model(ckpt, device="cpu", precision="fp32")
    img = np.random.default_rng(0).random((args.size, args.size)).astype(np.float32)
    print(f"\n## ViT-B (random weights, {ckpt.name}), {args.size}² image; {load_state()}")
    runs = interleaved(
        {p: (lambda p=p: compute_embeddings(img, model, precision=p)) for p in ("fp32", "int8")},
        args.reps,
    )
    out = {"fp32": runs["fp32"], "int8": runs["int8"], "state_samscope": load_state()}
    print(f"embedding {args.size}²  samscope fp32       {fmt_runs(runs['fp32'])}")
    print(f"embedding {args.size}²  samscope int8       {fmt_runs(runs['int8'])}")
    s32, s8 = statistics.median(runs["fp32"]), statistics.median(runs["int8"])
    print(f"int8 / fp32 speed-up (samscope): {s32 / s8:.2f}×")
    model = None  # free it before micro-sam loads its own
    peer = Path(args.peers)
    if not peer.exists():
        print(f"# no micro-sam venv at {peer}; see ../shared/peers/install-peers.sh")
        return out
    res = subprocess.run(
        [str(peer), str(HERE / "peers" / "microsam_core.py"), str(ckpt), str(args.size), str(args.reps)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if not line:
        print("# micro-sam run failed:", res.stderr[-2000:])
        return out
    ms = json.loads(line[-1])
    out["microsam"] = ms["embedding_runs"]
    out["state_microsam"] = load_state()
    m = ms["embedding_s"]
    print(f"embedding {args.size}²  micro-sam 1.8.14    {fmt_runs(ms['embedding_runs'])}")
    print(f"ratios (micro-sam fp32 / samscope): fp32 {m / s32:.2f}×, int8 {m / s8:.2f}×")
    card = builtin_cards()[0]["vit_b"]
    print(f"vit_b card default_precision: {card.default_precision or 'fp32'}; faster here: "
          f"{'int8' if s8 < s32 else 'fp32'}  ({load_state()})")  # fmt: skip
    return out


def model_block(name: str, args) -> dict:
    import torch

    from samscope.models.registry import load_model

    model = load_model(name, device="cpu", precision="fp32")
    size = model.image_size
    x = torch.randn(1, 3, size, size)
    print(f"\n## {name} ({model.arch.name}), one {size}² encoder input; {load_state()}")
    reps = max(args.reps, 5) * 4  # a small encoder: more rounds
    runs = interleaved({p: (lambda p=p: model.encode(x, precision=p)) for p in ("fp32", "int8")}, reps)
    for p in ("fp32", "int8"):
        print(f"encoder {size}²  samscope {p}  {1000 * statistics.median(runs[p]):8.1f} ms "
              f"(median of {reps})")  # fmt: skip
    s32, s8 = statistics.median(runs["fp32"]), statistics.median(runs["int8"])
    print(f"int8 / fp32 speed-up: {s32 / s8:.2f}×; card default_precision: "
          f"{model.card.default_precision or 'fp32'}; faster here: {'int8' if s8 < s32 else 'fp32'}")  # fmt: skip
    return {"fp32": runs["fp32"], "int8": runs["int8"], "state": load_state()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--models", default="vit_b,samscope-generalist")
    parser.add_argument("--peers", default="/work/peers-venv/bin/python")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, quantized engine "
          f"{torch.backends.quantized.engine}; {os.cpu_count()} cores")  # fmt: skip
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            results[name] = vit_b_block(args, Path(tmp)) if name == "vit_b" else model_block(name, args)
            sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
