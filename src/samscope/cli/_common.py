"""Small helpers shared by CLI commands (parsing prompt strings, loading models)."""

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
