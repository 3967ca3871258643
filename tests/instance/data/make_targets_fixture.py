"""Make ``torch_em_targets.npz``: torch_em's PerObjectDistanceTransform on a hand-made label image.

Run with an environment that has torch_em (micro-sam's), e.g.
``/tmp/peers/bin/python tests/instance/data/make_targets_fixture.py``. The label image is built
here with numpy only, so the test can rebuild it and compare.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def fixture_labels() -> np.ndarray:
    """A (96, 112) label image with the cases that matter.

    Touching squares, a disc touching one, a crescent (centroid outside the object), an ellipse
    cut by the image edge, one id drawn as two separate pieces, a 1-pixel object, a 3-pixel
    object (removed by min_size=5), and random blobs.
    """
    lab = np.zeros((96, 112), np.int32)
    yy, xx = np.mgrid[:96, :112]
    lab[5:20, 5:20] = 1
    lab[5:20, 20:32] = 2  # touches 1
    lab[((yy - 30) ** 2 + (xx - 18) ** 2) < 64] = 3  # touches 1 and 2
    crescent = (((yy - 60) ** 2 + (xx - 25) ** 2) < 15**2) & (
        ((yy - 60) ** 2 + (xx - 33) ** 2) >= 12**2
    )
    lab[crescent] = 4
    lab[(((yy - 0) / 10.0) ** 2 + ((xx - 70) / 18.0) ** 2) < 1] = 5  # cut by the top edge
    lab[40:50, 60:70] = 6
    lab[60:66, 80:90] = 6  # same id, second piece
    lab[85, 100] = 7  # one pixel
    lab[90, 5:8] = 8  # three pixels
    rng = np.random.default_rng(0)
    for i in range(9, 15):
        cy, cx = rng.integers(30, 90), rng.integers(70, 108)
        r = rng.integers(3, 7)
        lab[((yy - cy) ** 2 + (xx - cx) ** 2) < r * r] = i
    lab[:, 108:] = 15  # a band along the right edge
    return lab


def main() -> None:
    from torch_em.transform.label import PerObjectDistanceTransform

    lab = fixture_labels()
    out = {}
    for min_size in (0, 5):
        trafo = PerObjectDistanceTransform(
            distances=True,
            boundary_distances=True,
            directed_distances=False,
            foreground=True,
            instances=False,
            min_size=min_size,
        )
        out[f"min_size_{min_size}"] = trafo(lab.copy()).astype(np.float32)
    np.savez_compressed(Path(__file__).with_name("torch_em_targets.npz"), labels=lab, **out)


if __name__ == "__main__":
    main()
