"""SAM2 conversion proof: Meta's ``sam2`` against the converted ``transformers`` model.

For each preset (default: SAM2.1 hiera tiny and base+), Meta's model is built on the CPU with
seeded random weights (:func:`_sam2_meta.build_meta`), its state dict converted strictly
(:func:`samscope.models.sam2_convert.build_sam2_model`), and on a seeded random 1024² input:

- the image embedding and both high-resolution feature maps (Meta's ``forward_image`` +
  ``_prepare_backbone_features`` + ``no_mem_embed``, against ``Sam2Model.get_image_embeddings``);
- low-resolution mask logits and IoU predictions for point, points with a negative, box,
  box + point and point + mask prompts, multimask on and off: Meta's ``sam_prompt_encoder`` /
  ``sam_mask_decoder`` against ``Sam2Model.forward(image_embeddings=…)`` **and** against samscope's
  own path (``SamscopeModel.embed_prompts`` / ``prepare_decoder`` / ``decode``).

Prints the largest absolute difference per output and model and exits non-zero past ``--tol``
(default 1e-4). Needs Meta's ``sam2`` package (no torchvision)::

    python benchmarks/verify_sam2.py                       # hiera_t and hiera_b+ (SAM2.1)
    python benchmarks/verify_sam2.py --models hiera_test hiera_t:2.0
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sam2_meta import build_meta, meta_decode, meta_image_features, standard_prompts  # noqa: E402


def _hf_decode(hf, feats, prompt):
    """Logits and IoU of one prompt through ``transformers.Sam2Model.forward``."""
    kwargs = {}
    if "points" in prompt:
        kwargs["input_points"] = torch.tensor(prompt["points"], dtype=torch.float32)[None, None]
        kwargs["input_labels"] = torch.tensor(prompt["labels"])[None, None].int()
    if "box" in prompt:
        kwargs["input_boxes"] = torch.tensor(prompt["box"], dtype=torch.float32)[None, None]
    if "mask" in prompt:
        kwargs["input_masks"] = prompt["mask"]
    with torch.no_grad():
        out = hf(image_embeddings=feats, multimask_output=prompt["multimask"], **kwargs)
    return out.pred_masks[0], out.iou_scores[0]


def _samscope_decode(model, cache, prompt):
    """Logits and IoU of one prompt through samscope's model interface."""
    pts = torch.tensor(prompt["points"], dtype=torch.float32)[None] if "points" in prompt else None
    labels = torch.tensor(prompt["labels"])[None] if "points" in prompt else None
    box = torch.tensor(prompt["box"], dtype=torch.float32)[None] if "box" in prompt else None
    sparse, dense = model.embed_prompts(points=pts, labels=labels, boxes=box, masks=prompt.get("mask"))
    return model.decode(cache, sparse, dense, multimask=prompt["multimask"])


def verify(name: str, version: str, *, seed: int, samscope: bool) -> dict[str, float]:
    from samscope.models.sam2_convert import build_sam2_model

    t0 = time.perf_counter()
    meta = build_meta(name, version, seed=seed)
    hf, spec = build_sam2_model(meta.state_dict())
    assert spec.name == name and spec.version == version, (spec.name, spec.version)
    gen = torch.Generator().manual_seed(seed + 1)
    pixels = torch.randn(1, 3, spec.image_size, spec.image_size, generator=gen)
    embed, high_res = meta_image_features(meta, pixels)
    with torch.no_grad():
        feats = hf.get_image_embeddings(pixels)
    diffs = {
        "image_embed": (feats[-1] - embed).abs().max().item(),
        "high_res_s0": (feats[0] - high_res[0]).abs().max().item(),
        "high_res_s1": (feats[1] - high_res[1]).abs().max().item(),
    }
    scope = cache = None
    if samscope:
        from samscope.models.sam2_model import samscope_sam2_model

        scope = samscope_sam2_model(hf, spec, name=f"verify-{name}")
        features = scope.encode_features(pixels)
        for key, ref in (("samscope_embed", embed), ("samscope_s0", high_res[0]), ("samscope_s1", high_res[1])):
            got = features[{"samscope_embed": "embedding", "samscope_s0": "s0", "samscope_s1": "s1"}[key]]
            diffs[key] = (got - ref).abs().max().item()
        cache = scope.prepare_decoder(features)
    for prompt in standard_prompts(spec.image_size, seed=seed + 2):
        ref_logits, ref_iou = meta_decode(
            meta, embed, high_res, points=prompt.get("points"), labels=prompt.get("labels"),
            box=prompt.get("box"), mask=prompt.get("mask"), multimask=prompt["multimask"],
        )  # fmt: skip
        tag = f"{prompt['kind']}/{'multi' if prompt['multimask'] else 'single'}"
        logits, iou = _hf_decode(hf, feats, prompt)
        diffs[f"masks {tag}"] = (logits - ref_logits).abs().max().item()
        diffs[f"iou {tag}"] = (iou - ref_iou).abs().max().item()
        if scope is not None:
            logits, iou = _samscope_decode(scope, cache, prompt)
            diffs[f"samscope masks {tag}"] = (logits - ref_logits).abs().max().item()
            diffs[f"samscope iou {tag}"] = (iou - ref_iou).abs().max().item()
    scale = embed.abs().max().item()
    print(f"\n{name} (SAM{version}), {spec.image_size}² input, {time.perf_counter() - t0:.0f} s, "
          f"max |image_embed| {scale:.3g}:")  # fmt: skip
    for key, value in diffs.items():
        print(f"  {key:34s} max abs diff {value:.2e}")
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["hiera_t", "hiera_b+"],
                        help="presets, optionally NAME:2.0 for SAM2.0 (default: SAM2.1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--no-samscope", action="store_true",
                        help="compare transformers only, not samscope's model interface")  # fmt: skip
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    worst = 0.0
    for item in args.models:
        name, _, version = item.partition(":")
        diffs = verify(name, version or "2.1", seed=args.seed, samscope=not args.no_samscope)
        worst = max(worst, *diffs.values())
    ok = worst <= args.tol
    print(f"\nlargest difference {worst:.2e} ({'within' if ok else 'ABOVE'} {args.tol:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
