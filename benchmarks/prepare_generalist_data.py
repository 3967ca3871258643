"""Write the training data of the ``samscope_generalist`` recipe into ``--out`` (default ``data/``).

- ``sim-generalist``: 1,500 images of 320² from the generalist simulator, seed 201 (training);
- ``sim-generalist-val``: 60 images, seed 202 (validation during training);
- ``real/hela_train*.tif``: HeLa frames 0–11, ``real/hela_val*.tif``: frames 12–13;
- ``real/cho_train_{a,b}*.tif``: CHO time points 0–11, every plane, resized by 0.42 and 0.6 so that
  nuclei (median in-plane diameter ≈ 67 px) come near the working diameter of 28 px;
  ``real/cho_val*.tif``: time points 12–13 resized by 0.42.

HeLa frames 14–19 and CHO time points 14–19 are never written: they are the held-out test split.

Usage (from the folder the recipe runs in)::

    python /path/to/samscope/benchmarks/prepare_generalist_data.py --out data -j 2
    samscope train --recipe samscope_generalist
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
#: Resize factors of the CHO planes (working diameter 28 px / median nucleus ≈ 67 px, and larger).
CHO_FACTORS = {"a": 0.42, "b": 0.6}


def _resize_planes(images, labels, factor: float):
    from skimage.transform import resize

    shape = (int(round(images.shape[-2] * factor)), int(round(images.shape[-1] * factor)))
    ims = [resize(p.astype(np.float32), shape, order=1, anti_aliasing=True, preserve_range=True)
           for p in images.reshape(-1, *images.shape[-2:])]
    labs = [resize(p, shape, order=0, anti_aliasing=False, preserve_range=True)
            for p in labels.reshape(-1, *labels.shape[-2:])]
    return np.stack(ims).astype(np.float32), np.stack(labs).astype(np.uint16)


def write_real(out: Path, data: Path = DATA) -> None:
    """The real-data files (see the module docstring)."""
    import tifffile

    out.mkdir(parents=True, exist_ok=True)
    h, hm = tifffile.imread(data / "hela" / "images.tif"), tifffile.imread(data / "hela" / "masks.tif")
    for name, sl in (("hela_train", slice(0, 12)), ("hela_val", slice(12, 14))):
        tifffile.imwrite(out / f"{name}.tif", h[sl])
        tifffile.imwrite(out / f"{name}_labels.tif", hm[sl])
    c, cm = tifffile.imread(data / "cho" / "images.tif"), tifffile.imread(data / "cho" / "masks.tif")
    for tag, f in CHO_FACTORS.items():
        i, lab = _resize_planes(c[0:12], cm[0:12], f)
        tifffile.imwrite(out / f"cho_train_{tag}.tif", i)
        tifffile.imwrite(out / f"cho_train_{tag}_labels.tif", lab)
    i, lab = _resize_planes(c[12:14], cm[12:14], CHO_FACTORS["a"])
    tifffile.imwrite(out / "cho_val.tif", i)
    tifffile.imwrite(out / "cho_val_labels.tif", lab)


def main(argv: list[str] | None = None) -> int:
    from samscope.simulate import write_dataset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("data"))
    p.add_argument("-n", type=int, default=1500)
    p.add_argument("-j", "--workers", type=int, default=1)
    args = p.parse_args(argv)
    write_dataset("generalist", args.n, args.out / "sim-generalist", seed=201, shape=(320, 320),
                  workers=args.workers)
    write_dataset("generalist", 60, args.out / "sim-generalist-val", seed=202, shape=(320, 320),
                  workers=args.workers)
    write_real(args.out / "real")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
