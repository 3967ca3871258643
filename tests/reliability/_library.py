"""The unusual and broken inputs of the reliability suite, made once per session.

Every file is small (≤ 400² pixels) so each case runs in well under a second. ``digest`` hashes
the whole folder: cases read these files and must never change one byte of them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image


def blobs(shape=(120, 160), seed=1, dtype=np.uint16, centres=((40, 50), (80, 110))):
    """A dim background with bright round objects (what the shipped model segments)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = 1000 + rng.normal(0, 20, shape)
    for cy, cx in centres:
        img += 3000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 150.0)
    return img.astype(dtype)


def _tif(path: Path, data, **kwargs) -> None:
    tifffile.imwrite(path, data, **kwargs)


def build(lib: Path) -> None:  # noqa: PLR0915 - one flat list of files
    """Write every input file into ``lib``."""
    lib.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    good = blobs()
    _tif(lib / "cells.tif", good)
    _tif(lib / "blobs400.tif", blobs((400, 400), centres=((100, 100), (300, 120), (200, 300))))
    _tif(lib / "cells_zlib.tif", good, compression="zlib")
    _tif(lib / "cells_bigendian.tif", good.astype(">u2"), byteorder=">")
    _tif(lib / "cells.ome.tif", good[None], ome=True, metadata={"axes": "ZYX"})
    np.save(lib / "cells.npy", good)
    Image.fromarray((good // 16).astype(np.uint8)).save(lib / "cells_gray8.png")
    Image.fromarray(good).save(lib / "cells_16bit.png")
    rgb = np.stack([(good // 16).astype(np.uint8)] * 3, -1)
    Image.fromarray(rgb).save(lib / "cells_rgb.png")
    Image.fromarray(np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], -1)).save(
        lib / "cells_rgba.png"
    )
    Image.fromarray(rgb).save(lib / "cells.jpg", quality=95)
    Image.fromarray((good // 16).astype(np.uint8)).save(lib / "cells.bmp")
    planes = np.stack([good, blobs(seed=2), blobs(seed=3)])
    _tif(lib / "stack.tif", planes, photometric="minisblack", metadata={"axes": "ZYX"})
    _tif(lib / "planar_rgb16.tif", planes, photometric="rgb", planarconfig="separate")
    _tif(lib / "cells with space é.tif", good)
    (lib / "linked.tif").symlink_to(lib / "cells.tif")
    (lib / "dangling.tif").symlink_to(lib / "no-such-file.tif")

    # values
    f = good.astype(np.float32)
    nan = f.copy()
    nan[5, 5] = np.nan
    _tif(lib / "nan.tif", nan)
    inf = f.copy()
    inf[7, 9] = np.inf
    _tif(lib / "inf.tif", inf)
    ninf = f.copy()
    ninf[7, 9] = -np.inf
    _tif(lib / "neginf.tif", ninf)
    _tif(lib / "allnan.tif", np.full((64, 64), np.nan, np.float32))
    _tif(lib / "huge1e300.tif", rng.random((64, 64)) * 1e300)
    _tif(lib / "huge1e39.tif", rng.random((64, 64)) * 1e39)
    _tif(lib / "tiny1e-300.tif", rng.random((64, 64)) * 1e-300)
    _tif(lib / "negative.tif", f - 5000)
    _tif(lib / "zeros.tif", np.zeros((64, 64), np.uint16))
    _tif(lib / "constant_float.tif", np.ones((64, 64), np.float32))
    np.save(lib / "bool.npy", good > 2000)
    _tif(lib / "uint32.tif", good.astype(np.uint32) * 60000)
    _tif(lib / "int8.tif", (good.astype(np.int32) // 64 - 64).astype(np.int8))
    _tif(lib / "float16.tif", f.astype(np.float16))
    _tif(lib / "float64.tif", good.astype(np.float64))
    np.save(lib / "int64_huge.npy", good.astype(np.int64) * 10**14)
    np.save(lib / "complex.npy", good.astype(np.complex64))
    np.save(lib / "strings.npy", np.array([["a", "b"], ["c", "d"]]))

    # shapes
    _tif(lib / "one_pixel.tif", np.array([[5]], np.uint16))
    _tif(lib / "one_row.tif", good[:1])
    _tif(lib / "two_by_two.tif", good[:2, :2])
    _tif(lib / "thin_3x500.tif", blobs((3, 500), centres=()))
    np.save(lib / "five_d.npy", rng.integers(0, 1000, (2, 2, 3, 16, 16), dtype=np.uint16))
    np.save(lib / "four_d_5ch.npy", rng.integers(0, 1000, (2, 16, 16, 5), dtype=np.uint16))
    np.save(lib / "empty_0x10.npy", np.zeros((0, 10), np.uint16))
    np.save(lib / "scalar.npy", np.array(3))
    _tif(lib / "tyx.tif", np.stack([good, good]), imagej=True, metadata={"axes": "TYX"})
    _tif(lib / "yxc_2ch.tif", np.stack([good, good], -1), metadata={"axes": "YXC"})

    # broken files
    (lib / "empty.tif").write_bytes(b"")
    (lib / "empty.png").write_bytes(b"")
    (lib / "random.tif").write_bytes(rng.bytes(5000))
    (lib / "random.png").write_bytes(rng.bytes(5000))
    (lib / "text.tif").write_text("this is not an image\n")
    raw = (lib / "cells.tif").read_bytes()
    (lib / "truncated.tif").write_bytes(raw[: len(raw) // 3])
    raw = (lib / "cells_16bit.png").read_bytes()
    (lib / "truncated.png").write_bytes(raw[: len(raw) // 2])
    raw = (lib / "cells.npy").read_bytes()
    (lib / "truncated.npy").write_bytes(raw[: len(raw) // 2])
    (lib / "image.xyz").write_bytes(b"\x00" * 100)
    (lib / "folder.tif").mkdir()
    (lib / "no_suffix").write_bytes((lib / "cells.tif").read_bytes())

    # zarr
    import zarr

    z = zarr.open_array(str(lib / "cells.zarr"), mode="w", shape=good.shape, dtype=good.dtype)
    z[:] = good
    g = zarr.open_group(str(lib / "two_arrays.zarr"), mode="w")
    g.create_array("raw", shape=good.shape, dtype=good.dtype)[:] = good
    g.create_array("other", shape=good.shape, dtype=good.dtype)[:] = good

    # labels (for evaluate / baseline), models, configs
    labels = (good > 2000).astype(np.uint16)
    _tif(lib / "labels.tif", labels)
    _tif(lib / "labels_float.tif", labels.astype(np.float32) + 0.5)
    (lib / "random.pt").write_bytes(rng.bytes(20000))
    (lib / "empty.pt").write_bytes(b"")
    (lib / "text.pt").write_text("not a model\n")
    import torch

    torch.save({"a": torch.zeros(3)}, lib / "not_sam.pt")
    raw = (lib / "not_sam.pt").read_bytes()
    (lib / "truncated.pt").write_bytes(raw[: len(raw) // 2])
    (lib / "model_folder.pt").mkdir()
    (lib / "bad_syntax.toml").write_text("[data\nx = \n")
    (lib / "unknown_section.toml").write_text("[nonsense]\nx = 1\n")
    (lib / "unknown_field.toml").write_text("[optim]\nnot_a_field = 1\n")
    (lib / "wrong_type.toml").write_text('[optim]\nlr = "fast"\n')
    (lib / "negative_steps.toml").write_text("[run]\nmax_steps = -5\n")
    (lib / "manifest.json").write_text(json.dumps({"what": "library"}))


def digest(lib: Path) -> dict[str, str]:
    """sha256 of every file under ``lib`` (symlinks by their target path)."""
    out = {}
    for path in sorted(Path(lib).rglob("*")):
        key = str(path.relative_to(lib))
        if path.is_symlink():
            out[key] = "link:" + str(path.readlink())
        elif path.is_file():
            out[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            out[key] = "dir"
    return out
