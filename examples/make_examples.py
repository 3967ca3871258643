"""Regenerate the example images in this folder, bit for bit, from samscope's simulators.

Run: ``python examples/make_examples.py`` (writes), ``python examples/make_examples.py --check``
(exits 1 if a file differs from what the simulators make now).

* ``nuclei.tif`` (256², uint16, camera offset ≈ 33,000 like the Fluo-N2DL-HeLa frames, 645 nm
  pixels) and ``nuclei_labels.tif`` (uint16 instance labels): :func:`samscope.simulate.nuclei`
  with its default, HeLa-matched parameters.
* ``mitochondria.tif`` (512², uint16 photon counts, 80 nm pixels; 4×4 crops of 128² as in seed
  000) and ``mitochondria_labels.tif`` (uint16; where mitochondria overlap the pixel goes to the
  brightest, see :mod:`samscope.simulate.mitochondria`): :func:`samscope.simulate.mitochondria`
  with the Table 1 parameters.

The values are exact integers (photon or camera counts), so the cast to uint16 loses nothing.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import tifffile

from samscope.simulate import mitochondria, nuclei

HERE = Path(__file__).resolve().parent
NUCLEI_SEED = 1
MITO_SEED = 0


def _tiff(array: np.ndarray, pixel_size_nm: float | None) -> bytes:
    """A zlib-compressed TIFF in memory (pixel size as XResolution/YResolution per cm)."""
    buf = io.BytesIO()
    kwargs = {}
    if pixel_size_nm is not None:
        res = 1e7 / pixel_size_nm
        kwargs = {"resolution": (res, res), "resolutionunit": "CENTIMETER"}
    tifffile.imwrite(buf, array, compression="zlib", compressionargs={"level": 9}, **kwargs)
    return buf.getvalue()


def _uint16(image: np.ndarray) -> np.ndarray:
    rounded = np.rint(image)
    if rounded.min() < 0 or rounded.max() > 65535 or not np.array_equal(rounded, image):
        raise RuntimeError("simulated counts are not exact 16-bit integers")
    return rounded.astype(np.uint16)


def build() -> dict[str, bytes]:
    """File name → bytes of every example."""
    [nuc] = nuclei(1, (256, 256), rng=NUCLEI_SEED)
    [mito] = mitochondria(1, (512, 512), rng=MITO_SEED)
    return {
        "nuclei.tif": _tiff(_uint16(nuc.image), nuc.pixel_size_nm),
        "nuclei_labels.tif": _tiff(nuc.labels, nuc.pixel_size_nm),
        "mitochondria.tif": _tiff(_uint16(mito.image), mito.pixel_size_nm),
        "mitochondria_labels.tif": _tiff(mito.labels, mito.pixel_size_nm),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args()
    files = build()
    if args.check:
        bad = [name for name, data in files.items() if (HERE / name).read_bytes() != data]
        for name in bad:
            print(f"differs: {name}")
        print("all examples are identical" if not bad else f"{len(bad)} example(s) differ")
        return 1 if bad else 0
    for name, data in files.items():
        tmp = HERE / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(HERE / name)
        print(f"{name}: {len(data) / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
