"""Side by side: real crops (HeLa, CHO) and generalist-corpus crops of the same kind.

Writes ``docs/images/generalist_real_vs_sim.png``: row 1 real HeLa and CHO crops (training split),
row 2 simulated fluorescent nuclei at the same object size (native look and re-rendered), row 3 a
sample of the other domains and looks. All shown after samscope's percentile normalisation, with
the instance outlines on the right half of each crop.

    python benchmarks/figure_real_vs_sim.py [--out docs/images/generalist_real_vs_sim.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def _show(ax, image, labels, title):
    from skimage.segmentation import find_boundaries

    im = image.astype(np.float64)
    lo, hi = np.percentile(im, (1, 99.8))
    im = np.clip((im - lo) / (hi - lo + 1e-12), 0, 1)
    rgb = np.dstack([im] * 3)
    b = find_boundaries(labels)
    half = b.copy()
    half[:, : b.shape[1] // 2] = False
    rgb[half] = (1.0, 0.2, 0.2)
    ax.imshow(rgb)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def main(argv=None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tifffile

    from samscope.simulate.generalist import generalist_config, simulate_one

    p = argparse.ArgumentParser()
    p.add_argument("--out", type=Path, default=HERE.parent / "docs" / "images" / "generalist_real_vs_sim.png")
    args = p.parse_args(argv)
    fig, axes = plt.subplots(3, 4, figsize=(12, 9.4))
    h, hm = tifffile.imread(DATA / "hela" / "images.tif"), tifffile.imread(DATA / "hela" / "masks.tif")
    c, cm = tifffile.imread(DATA / "cho" / "images.tif"), tifffile.imread(DATA / "cho" / "masks.tif")
    _show(axes[0, 0], h[3, 200:456, 300:556], hm[3, 200:456, 300:556], "real: HeLa nuclei (frame 3), d≈28 px")
    _show(axes[0, 1], h[8, 300:556, 600:856], hm[8, 300:556, 600:856], "real: HeLa nuclei (frame 8)")
    _show(axes[0, 2], c[4, 1, 100:420, 150:470], cm[4, 1, 100:420, 150:470], "real: CHO nuclei (t 4, z 1), d≈70 px")
    _show(axes[0, 3], c[9, 2, 60:380, 100:420], cm[9, 2, 60:380, 100:420], "real: CHO nuclei (t 9, z 2)")
    sims = [
        ({"domains": ("nuclei",), "looks": ("native",), "diameter_px": (27, 29), "coverage": (0.12, 0.15)}, (256, 256), "sim: nuclei, native look, d 28"),
        ({"domains": ("nuclei",), "looks": ("fluorescent",), "diameter_px": (27, 29), "coverage": (0.2, 0.3)}, (256, 256), "sim: nuclei, re-rendered, d 28"),
        ({"domains": ("nuclei",), "looks": ("native",), "diameter_px": (65, 75), "coverage": (0.2, 0.25)}, (320, 320), "sim: nuclei, native look, d 70"),
        ({"domains": ("nuclei",), "looks": ("fluorescent",), "diameter_px": (65, 75), "coverage": (0.2, 0.3)}, (320, 320), "sim: nuclei, re-rendered, d 70"),
        ({"domains": ("phase_cells",), "looks": ("native",)}, (256, 256), "sim: phase-contrast cells"),
        ({"domains": ("bacteria",), "looks": ("phase",)}, (256, 256), "sim: bacteria colony"),
        ({"domains": ("monolayer",), "looks": ("membrane",)}, (256, 256), "sim: membrane-stained monolayer"),
        ({"domains": ("monolayer",), "looks": ("dic",)}, (256, 256), "sim: DIC monolayer"),
    ]
    for k, (over, shape, title) in enumerate(sims):
        s = simulate_one(shape, generalist_config(**over), seed=7, index=k)
        ax = axes[1 + k // 4, k % 4]
        _show(ax, np.asarray(s.image), np.asarray(s.labels), f"{title} ({s.params['acquisition']['dtype']})")
    fig.suptitle("Real (top row, training splits) and simulated crops of the generalist corpus; outlines on the right half", fontsize=10)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=70)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
