"""SAM2 video-propagation proof: Meta's ``SAM2VideoPredictor`` against samscope's memory propagator.

Meta's video predictor is built on the CPU with seeded random weights (every tensor perturbed, as
:func:`_sam2_meta.build_meta` does, and the object-score head's bias raised by 5 so that objects are
present), hole filling off (it needs Meta's CUDA extension; transformers has none), and its
state dict converted strictly into ``transformers.Sam2VideoModel``
(:func:`samscope.models.sam2_convert.build_sam2_video_model`). On a short sequence of blob
planes, both get the same preprocessed frames (samscope's
:func:`~samscope.multidim.sam2_memory.preprocess_plane`; Meta's frame loader is bypassed) and the
same prompts:

- object 0: a click on frame 1 and a second click on frame 3 (two conditioning frames),
- object 1: a box on frame 1,

then ``propagate_in_video`` forward and ``reverse=True`` (Meta) against
:class:`~samscope.multidim.sam2_memory.MemoryPropagator` with every stop rule off. Compared per
object and frame: the low-resolution mask logits (Meta's ``pred_masks`` in its output dicts), and
the masks at the plane's resolution (pixels that differ). Prints the largest absolute difference
and exits non-zero past ``--tol`` (default 1e-4). Needs Meta's ``sam2`` (no torchvision)::

    python benchmarks/verify_sam2_video.py                          # hiera_test, 256², 5 frames
    python benchmarks/verify_sam2_video.py --model hiera_t --frames 4   # SAM2.1 tiny, 1024²

CI cannot install ``sam2``; there ``tests/multidim/test_sam2_memory.py`` checks the propagator
against transformers' own ``Sam2VideoModel`` propagation (the link this script checks to Meta).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _sam2_meta import CONFIGS, TEST_OVERRIDES  # noqa: E402


def blobs(n_frames: int, size: int, seed: int = 0) -> np.ndarray:
    """``(n_frames, size, size)`` uint8: two bright discs drifting, on noise."""
    rng = np.random.default_rng(seed)
    y, x = np.indices((size, size))
    out = np.empty((n_frames, size, size), np.uint8)
    for t in range(n_frames):
        img = 20 + 10 * rng.standard_normal((size, size))
        for cy, cx, r in ((0.35, 0.3, 0.12), (0.65, 0.7, 0.1)):
            cy, cx = (cy + 0.02 * t) * size, (cx + 0.015 * t) * size
            img[(y - cy) ** 2 + (x - cx) ** 2 <= (r * size) ** 2] += 150
        out[t] = np.clip(img, 0, 255)
    return out


def prompts(size: int) -> list[list[dict]]:
    """Per object, its prompts: (frame, points (y, x) | box (y0, x0, y1, x1))."""
    s = float(size)
    return [
        [{"frame": 1, "points": [[0.37 * s, 0.32 * s]]}, {"frame": 3, "points": [[0.41 * s, 0.35 * s]]}],
        [{"frame": 1, "box": [0.52 * s, 0.57 * s, 0.8 * s, 0.86 * s]}],
    ]


#: ``hiera_test`` for the video path: width 128, not 96 (Meta splits each 128-wide object pointer
#: into memory tokens of 64 channels, so the width must be a multiple of the memory width).
VIDEO_TEST_OVERRIDES = [o.replace("=96", "=128") for o in TEST_OVERRIDES]


def meta_predictor(name: str, version: str, seed: int, scale: float = 0.05, object_bias: float = 5.0):
    """Meta's video predictor (eval, CPU, hole filling off), every tensor perturbed by seeded
    noise as in :func:`_sam2_meta.build_meta`; and the samscope spec of the same shapes."""
    from dataclasses import replace

    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from sam2.build_sam import build_sam2_video_predictor

    from samscope.models.sam2_specs import SAM2_SPECS

    if not GlobalHydra.instance().is_initialized():
        initialize_config_module("sam2", version_base="1.2")
    extra = ["++model.fill_hole_area=0"]
    if name == "hiera_test":
        extra = VIDEO_TEST_OVERRIDES + extra
        cfg = CONFIGS[("hiera_t", version)]
        spec = replace(SAM2_SPECS["hiera_test"], hidden=128, mask_downsampler_dim=128, fuser_dim=128,
                       version=version)  # fmt: skip
    else:
        cfg = CONFIGS[(name, version)]
        spec = replace(SAM2_SPECS[name], version=version)
    predictor = build_sam2_video_predictor(cfg, None, device="cpu", mode="eval", hydra_overrides_extra=extra)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in predictor.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(scale * torch.randn(tensor.shape, generator=gen))
        # random weights give object scores near 0, half the objects "absent" (all logits -1024):
        # shift the object-score head so that objects are present and their masks are compared
        head = [k for k in predictor.state_dict() if k.startswith("sam_mask_decoder.pred_obj_score_head")
                and k.endswith("bias")]  # fmt: skip
        predictor.state_dict()[sorted(head)[-1]].add_(object_bias)
    return predictor, spec


@torch.no_grad()
def run_meta(predictor, frames: torch.Tensor, plane_shape, objects) -> dict:
    """Meta's low-resolution logits per (object, frame), from its own output dicts."""
    import sam2.sam2_video_predictor as svp

    h, w = plane_shape
    original = svp.load_video_frames
    svp.load_video_frames = lambda **kw: (frames, h, w)
    try:
        state = predictor.init_state("unused")
    finally:
        svp.load_video_frames = original
    for i, obj in enumerate(objects):
        for pr in obj:
            kw = {}
            if "points" in pr:
                kw["points"] = np.array([[p[1], p[0]] for p in pr["points"]], np.float32)
                kw["labels"] = np.ones(len(pr["points"]), np.int32)
            if "box" in pr:
                b = pr["box"]
                kw["box"] = np.array([b[1], b[0], b[3], b[2]], np.float32)
            predictor.add_new_points_or_box(state, frame_idx=pr["frame"], obj_id=i, **kw)
    masks = {}
    for reverse in (False, True):
        for f, ids, video_res in predictor.propagate_in_video(state, reverse=reverse):
            for j, oid in enumerate(ids):
                masks[(oid, f)] = (video_res[j, 0] > 0).numpy()
    logits = {}
    for oid, idx in state["obj_id_to_idx"].items():
        out = state["output_dict_per_obj"][idx]
        for key in ("cond_frame_outputs", "non_cond_frame_outputs"):
            for f, o in out[key].items():
                logits[(oid, f)] = o["pred_masks"][0, 0].float().numpy()
    return {"logits": logits, "masks": masks}


def run_samscope(video, stack: np.ndarray, objects):
    from samscope.multidim import ObjectPrompt
    from samscope.multidim.sam2_memory import MemoryConfig, MemoryPropagator

    cfg = MemoryConfig(min_object_score=-float("inf"), min_area=0, max_growth=None)
    prop = MemoryPropagator(video, stack, config=cfg, keep_logits=True)
    for obj in objects:
        prop.add([ObjectPrompt(pr["frame"], points=pr.get("points"), box=pr.get("box")) for pr in obj])
    result = prop.run()
    masks = {(i, p): result.mask(i)[p] for i in range(len(objects)) for p in range(stack.shape[0])}
    return prop, {"logits": prop.logits, "masks": masks}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="hiera_test", help="hiera_test, hiera_t, hiera_s, hiera_b+, hiera_l")
    parser.add_argument("--version", default="2.1")
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--plane", type=int, default=None, help="Plane side (default: the model's input side).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tol", type=float, default=1e-4)
    args = parser.parse_args()

    from samscope.models.sam2_convert import build_sam2_video_model
    from samscope.multidim.sam2_memory import _Frames
    from samscope.multidim.stack import PlaneStack

    torch.manual_seed(args.seed)
    t0 = time.perf_counter()
    predictor, spec = meta_predictor(args.model, args.version, args.seed)
    meta_state = {k: v for k, v in predictor.state_dict().items()}
    video, spec = build_sam2_video_model(meta_state, spec)
    video.eval()
    size = spec.image_size
    side = args.plane or size
    stack = blobs(args.frames, side, args.seed)
    frames = _Frames(PlaneStack(stack, None), size, "cpu", keep=1)
    pixels = torch.stack([frames[k] for k in range(args.frames)])
    objects = prompts(side)
    print(f"{args.model} SAM{args.version}: {args.frames} frames of {side}², input {size}², "
          f"built in {time.perf_counter() - t0:.1f} s")  # fmt: skip

    t1 = time.perf_counter()
    ref = run_meta(predictor, pixels, (side, side), objects)
    t2 = time.perf_counter()
    prop, got = run_samscope(video, stack, objects)
    t3 = time.perf_counter()
    print(f"Meta {t2 - t1:.1f} s, samscope {t3 - t2:.1f} s (CPU, under load: not a speed figure)")

    worst, n_px = 0.0, 0
    missing = sorted(set(ref["logits"]) ^ set(got["logits"]))
    if missing:
        print(f"FAIL: (object, frame) decoded by one side only: {missing}")
    for key in sorted(ref["logits"]):
        if key not in got["logits"]:
            continue
        d = float(np.abs(ref["logits"][key] - got["logits"][key]).max())
        px = int((ref["masks"][key] != got["masks"][key]).sum())
        worst, n_px = max(worst, d), n_px + px
        area = int(ref["masks"][key].sum())
        print(f"  object {key[0]} frame {key[1]}: max |Δ logit| {d:.2e}, pixels differing {px} "
              f"(Meta's mask {area} px)")  # fmt: skip
    ok = not missing and worst <= args.tol
    print(f"{'OK' if ok else 'FAIL'}: largest difference {worst:.2e} (tol {args.tol:g}), "
          f"{n_px} mask pixels differ over {len(ref['logits'])} object-frames")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
