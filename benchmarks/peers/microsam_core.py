"""micro-sam side of bench_core.py: embedding and point/box prompt timing (run in the peers venv).

usage: /tmp/peers/bin/python microsam_core.py CHECKPOINT SIZE REPS
Prints one JSON line with medians (seconds). Written for samscope's benchmark; micro-sam is never
a samscope dependency.
"""

import json
import statistics
import sys
import time
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")
torch.set_num_threads(2)

from micro_sam import prompt_based_segmentation as pbs  # noqa: E402
from micro_sam import util  # noqa: E402

ckpt, size, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
img = np.random.default_rng(0).random((size, size)).astype(np.float32)
predictor = util.get_sam_model(model_type="vit_b", checkpoint_path=ckpt, device="cpu")


def times(fn, n):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        res = fn()
        out.append(time.perf_counter() - t0)
    return out, res


emb_t, emb = times(lambda: util.precompute_image_embeddings(predictor, img, verbose=False), reps)
c = size // 2
pt_t, _ = times(lambda: pbs.segment_from_points(predictor, np.array([[c, c]]), np.array([1]), image_embeddings=emb), 20)
box = np.array([c - size // 10, c - size // 10, c + size // 10, c + size // 10])
bx_t, _ = times(lambda: pbs.segment_from_box(predictor, box, image_embeddings=emb), 20)
print(json.dumps({
    "embedding_s": statistics.median(emb_t), "embedding_runs": emb_t,
    "point_s": statistics.median(pt_t), "box_s": statistics.median(bx_t),
}))
