"""Small helpers shared by CLI commands (prompt strings, models, output names, image planes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from samscope.errors import InputError


def parse_rows(text: str | None, width: int, what: str) -> np.ndarray | None:
    """Parse ``"a,b;c,d"`` into an ``(N, width)`` float array (None for None/empty)."""
    if text is None or not text.strip():
        return None
    rows = []
    for chunk in text.replace(" ", "").split(";"):
        if not chunk:
            continue
        try:
            values = [float(v) for v in chunk.split(",")]
        except ValueError:
            raise InputError(
                f"cannot read {what} {chunk!r}: expected numbers separated by commas"
            ) from None
        if len(values) != width:
            raise InputError(f"each {what} needs {width} numbers, got {chunk!r}")
        rows.append(values)
    return np.array(rows, dtype=np.float64)


def parse_ints(text: str | None, what: str) -> np.ndarray | None:
    """Parse ``"1,0,1"`` into an int array."""
    if text is None or not text.strip():
        return None
    try:
        return np.array([int(v) for v in text.replace(" ", "").split(",") if v], dtype=np.int64)
    except ValueError:
        raise InputError(
            f"cannot read {what} {text!r}: expected integers separated by commas"
        ) from None


def parse_shape(text: str | None, what: str) -> tuple[int, int] | None:
    """Parse ``"512"`` or ``"512,384"`` into a 2-tuple."""
    if text is None:
        return None
    vals = parse_ints(text, what)
    if vals is None or len(vals) not in (1, 2) or (vals <= 0).any() and what != "halo":
        raise InputError(f"{what} must be one or two positive integers, got {text!r}")
    return (int(vals[0]), int(vals[-1]))


def load(model: str, checkpoint: Path | None, device: str | None):
    """Load a model by name or path, with an optional checkpoint override."""
    from samscope.models.registry import load_model

    return load_model(model, checkpoint=checkpoint, device=device)


def outputs_for(image: Path, outdir: Path) -> dict[str, Path]:
    """Output paths of one input image."""
    stem = image.name
    for suffix in (
        ".ome.tiff",
        ".ome.tif",
        ".tiff",
        ".tif",
        ".png",
        ".jpg",
        ".jpeg",
        ".zarr",
        ".npy",
        ".bmp",
    ):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    return {
        "labels": outdir / f"{stem}_labels.tif",
        "table": outdir / f"{stem}_objects.csv",
        "masks": outdir / f"{stem}_masks.tif",
        "overlay": outdir / f"{stem}_overlay.png",
    }


def planes_of(image) -> tuple[list, bool]:
    """2-D planes of an ImageData: one for YX/YXC, one per slice/frame for stacks."""
    axes = image.axes
    data = image.data
    if axes in ("YX", "YXC"):
        return [data], False
    if axes in ("ZYX", "TYX", "ZYXC", "TYXC"):
        return [data[i] for i in range(data.shape[0])], True
    raise InputError(
        f"cannot segment an image with axes {axes} (shape {tuple(data.shape)}); "
        "pass --axes, or select a channel / a single time point first"
    )
