"""Make ``amg_microsam.npz``: micro-sam 1.8.14's AMG on oracle decoder outputs.

Run once with the peers' environment (see /work/shared/peers/README.md)::

    /tmp/peers/bin/python tests/instance/data/make_amg_fixture.py

The decoder's *low-resolution* output is replaced by :func:`oracle` (after the real prompt
encoder ran): logits 20 × a smooth signed distance (in image pixels) of the ground-truth object
under the point, sampled at the low-resolution nodes (``bench_microsam.py`` uses 5 × an unsmoothed
distance at full resolution; smooth logits make the stability score resolution-independent, as
it is for real decoder output, and samscope computes it on the low-resolution logits). Three
masks per point with different predicted IoU and stability, so every filter acts. micro-sam then upsamples, scores, filters and suppresses as
it does; ``tests/instance/test_amg.py`` feeds the same oracle to samscope's post-processing and
compares masks. This module is importable without micro-sam (the test imports :func:`oracle`).
"""

from __future__ import annotations

import os
import sys

import numpy as np
from scipy import ndimage as ndi

SHAPE = (200, 280)
INPUT_SIZE = 1024
LOW_RES = 256
SLOPE = 20.0  # logits per pixel of signed distance
CASES = {  # name: (AMG init kwargs, generate kwargs)
    "default": ({"points_per_side": 16}, {}),
    "loose_clean": (
        {"points_per_side": 16},
        {"pred_iou_thresh": 0.85, "stability_score_thresh": 0.9, "min_mask_region_area": 40},
    ),
    "crops": ({"points_per_side": 8, "crop_n_layers": 1}, {}),
}


def ground_truth(seed: int = 3) -> np.ndarray:
    """Blobs (some touching, some with a hole, one small island pair) as labels ``SHAPE``."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    gt = np.zeros(SHAPE, np.uint8)
    for lab in range(1, 15):
        cy, cx = rng.uniform(12, SHAPE[0] - 12), rng.uniform(12, SHAPE[1] - 12)
        ry, rx = rng.uniform(5, 14, size=2)
        blob = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        if lab % 5 == 0:  # a hole
            blob &= ((yy - cy) / (ry / 3)) ** 2 + ((xx - cx) / (rx / 3)) ** 2 > 1
        gt[blob & (gt == 0)] = lab
    return gt


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    """Smooth signed distance in pixels (positive inside, zero on the pixel edges, σ = 1 px blur)."""
    inside = ndi.distance_transform_edt(mask) - 0.5
    outside = ndi.distance_transform_edt(~mask) - 0.5
    return ndi.gaussian_filter(np.where(mask, inside, -outside), 1.0)


def oracle(gt: np.ndarray, points_yx: np.ndarray, factors: tuple[float, float]):
    """Low-resolution oracle logits ``(P, 3, L, L)`` float32 and IoU ``(P, 3)`` float32.

    ``gt`` is the region the points refer to (a crop for crop layers), ``points_yx`` in its pixel
    coordinates, ``factors`` = resized / original size per axis (the encoder-input transform).
    Low-resolution node ``r`` sits at input position ``4 (r + 0.5)``, i.e. at original pixel
    coordinate ``4 (r + 0.5) / f − 0.5``.
    """
    fy, fx = factors
    step = INPUT_SIZE / LOW_RES
    ny = (step * (np.arange(LOW_RES) + 0.5)) / fy - 0.5
    nx = (step * (np.arange(LOW_RES) + 0.5)) / fx - 0.5
    grid = np.stack(np.meshgrid(ny, nx, indexing="ij"))
    cache: dict[int, np.ndarray] = {}

    def field(lab: int) -> np.ndarray:
        if lab not in cache:
            sd = _signed_distance(gt == lab) if lab > 0 else _signed_distance(gt == 0)
            cache[lab] = ndi.map_coordinates(sd, grid, order=1, mode="nearest")
        return cache[lab]

    h, w = gt.shape
    logits = np.zeros((len(points_yx), 3, LOW_RES, LOW_RES), np.float32)
    iou = np.zeros((len(points_yx), 3), np.float32)
    for p, (y, x) in enumerate(np.asarray(points_yx, np.float64)):
        ky, kx = int(round(y * 1000)), int(round(x * 1000))
        jitter = ((ky * 7919 + kx * 104729) % 997) * 1e-5
        lab = int(gt[min(int(round(y, 3)), h - 1), min(int(round(x, 3)), w - 1)])
        sd = field(lab)
        if lab > 0:
            logits[p] = np.stack([SLOPE * sd, SLOPE * (sd + 2.0), 0.3 * sd])
            iou[p] = (0.95 - jitter, 0.90 - jitter, 0.97 - jitter)
        else:
            logits[p] = np.stack([SLOPE * sd, np.full_like(sd, -10.0), SLOPE * sd])
            iou[p] = (0.30 - jitter, 0.50 - jitter, 0.92 - jitter)
    return logits, iou


def main() -> None:  # pragma: no cover - runs in the peers' environment
    import torch
    from micro_sam import util
    from micro_sam.instance_segmentation import AutomaticMaskGenerator

    torch.set_num_threads(2)
    torch.manual_seed(0)
    gt = ground_truth()
    image = (gt > 0).astype(np.float32) * 200 + 20
    ckpt = os.path.join(os.environ.get("TMPDIR", "/tmp"), "samscope_fixture_random_vit_t.pt")
    if not os.path.exists(ckpt):
        torch.save(util.sam_model_registry["vit_t"]().state_dict(), ckpt)
    predictor = util.get_sam_model(model_type="vit_t", checkpoint_path=ckpt, device="cpu")
    state = {"crop": (0, 0, SHAPE[1], SHAPE[0])}
    real_predict = predictor.predict_torch

    class Stub(torch.nn.Module):
        def forward(self, image_embeddings, image_pe, sparse_prompt_embeddings, dense_prompt_embeddings, multimask_output):
            coords = state["coords"]  # (P, 2) x, y in the crop's input frame
            x0, y0, x1, y1 = state["crop"]
            old = (y1 - y0, x1 - x0)
            scale = INPUT_SIZE / max(old)
            new = (int(old[0] * scale + 0.5), int(old[1] * scale + 0.5))
            fy, fx = new[0] / old[0], new[1] / old[1]
            pts = np.stack([coords[:, 1] / fy, coords[:, 0] / fx], axis=1)
            lg, iou = oracle(gt[y0:y1, x0:x1], pts, (fy, fx))
            return torch.from_numpy(lg), torch.from_numpy(iou)

    def predict_torch(point_coords, point_labels, **kw):
        state["coords"] = point_coords[:, 0, :].double().numpy()
        return real_predict(point_coords, point_labels, **kw)

    predictor.model.mask_decoder = Stub()
    predictor.predict_torch = predict_torch
    out = {"gt": gt}
    for name, (init_kw, gen_kw) in CASES.items():
        amg = AutomaticMaskGenerator(predictor, **init_kw)
        real_process_crop = amg._process_crop

        def process_crop(image, crop_box, *a, _real=real_process_crop, **k):
            state["crop"] = tuple(int(v) for v in crop_box)
            return _real(image, crop_box, *a, **k)

        amg._process_crop = process_crop
        amg.initialize(image, verbose=False)
        anns = amg.generate(output_mode="binary_mask", **gen_kw)
        masks = np.array([a["segmentation"] for a in anns], bool).reshape(-1, *SHAPE)
        out[f"{name}_masks"] = np.packbits(masks, axis=-1)
        out[f"{name}_iou"] = np.array([a["predicted_iou"] for a in anns], np.float32)
        out[f"{name}_stability"] = np.array([a["stability_score"] for a in anns], np.float32)
        print(name, len(anns), "masks", file=sys.stderr)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "amg_microsam.npz")
    np.savez_compressed(path, **out)
    print(path, os.path.getsize(path), "bytes", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    main()
