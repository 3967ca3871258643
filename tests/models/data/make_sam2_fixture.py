"""Make the fixture that pins samscope's SAM2 conversion to Meta's ``sam2`` code (run once, by hand).

Needs Meta's ``sam2`` package (``pip install sam2==1.1.0 torch==2.13.0``, no torchvision)::

    python tests/models/data/make_sam2_fixture.py

It builds Meta's SAM2.1 model at samscope's tiny ``hiera_test`` preset (Meta's own hiera-t config
shrunk by hydra overrides: ``benchmarks/_sam2_meta.py``) with seeded random weights rounded to
float16, and writes next to this file ``sam2_hiera_test_meta.npz`` holding:

- ``checkpoint``: the bytes of a Meta-layout ``.pt`` file (``torch.save({"model": state})``,
  float16 tensors) — what ``tests/models/test_sam2_convert.py`` converts without ``sam2``;
- ``pixels``: a 256² encoder input (float16 values);
- ``embed``, ``s0``, ``s1``: Meta's image embedding and high-resolution maps;
- per prompt ``i``: ``logits_i``, ``iou_i`` (Meta's low-resolution mask logits and IoU), and the
  prompt itself as JSON in ``prompts`` (``points``, ``labels``, ``box``, ``multimask``;
  ``mask_i`` for mask prompts).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
OUT = HERE / "sam2_hiera_test_meta.npz"
SEED = 20


def main() -> None:
    sys.path.insert(0, str(HERE.parents[2] / "benchmarks"))
    from _sam2_meta import build_meta, meta_decode, meta_image_features, standard_prompts

    meta = build_meta("hiera_test", "2.1", seed=SEED)
    with torch.no_grad():  # float16-exact weights, so the fp16 file reproduces them
        for tensor in meta.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    state = {k: v.detach().half() if v.is_floating_point() else v for k, v in meta.state_dict().items()}
    buf = io.BytesIO()
    torch.save({"model": state}, buf)
    gen = torch.Generator().manual_seed(SEED + 1)
    pixels = torch.randn(1, 3, 256, 256, generator=gen).half().float()
    embed, (s0, s1) = meta_image_features(meta, pixels)
    out = {
        "checkpoint": np.frombuffer(buf.getvalue(), np.uint8),
        "pixels": pixels.numpy().astype(np.float16),
        "embed": embed.numpy(),
        "s0": s0.numpy(),
        "s1": s1.numpy(),
    }
    prompts = []
    for i, prompt in enumerate(standard_prompts(256, seed=SEED + 2)):
        logits, iou = meta_decode(
            meta, embed, (s0, s1), points=prompt.get("points"), labels=prompt.get("labels"),
            box=prompt.get("box"), mask=prompt.get("mask"), multimask=prompt["multimask"],
        )  # fmt: skip
        out[f"logits_{i}"] = logits[0].numpy()
        out[f"iou_{i}"] = iou[0].numpy()
        if "mask" in prompt:
            out[f"mask_{i}"] = prompt["mask"].numpy()
        prompts.append({k: v for k, v in prompt.items() if k != "mask"} | {"mask": "mask" in prompt})
    out["prompts"] = np.frombuffer(json.dumps(prompts).encode(), np.uint8)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size / 2**20:.2f} MB, {len(prompts)} prompts)")


if __name__ == "__main__":
    main()
