"""Evaluation tables on screen and on disk, and the plots that go with them.

Tables are lists of flat dicts (one row per image or per iteration, same keys in every row).
Every file is written atomically: to a temporary file in the target folder, then
:func:`os.replace`, so an interrupted run never leaves a half-written table. Plots use
matplotlib's Agg canvas directly, imported on first use (no global backend switch).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "format_table",
    "mean_row",
    "plot_curves",
    "write_csv",
    "write_json",
]

Row = Mapping[str, Any]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`samscope.io.atomic_target`), making its folder."""
    from samscope.io import atomic_target

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path, overwrite=True) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _plain(value: Any) -> Any:
    """JSON-safe version of numpy scalars/arrays and non-finite floats (→ None)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (numpy values converted, NaN/inf as null)."""
    return atomic_write_text(path, json.dumps(_plain(obj), indent=2, allow_nan=False) + "\n")


def _columns(rows: Sequence[Row], columns: Sequence[str] | None) -> list[str]:
    if columns is not None:
        return list(columns)
    out: list[str] = []
    for row in rows:
        out.extend(k for k in row if k not in out)
    return out


def write_csv(
    path: str | os.PathLike, rows: Sequence[Row], *, columns: Sequence[str] | None = None
) -> Path:
    """Write rows as CSV with a header; floats in full precision (``repr``)."""
    cols = _columns(rows, columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _plain(row.get(k, "")) for k in cols})
    return atomic_write_text(path, buf.getvalue())


def _cell(value: Any, digits: int) -> str:
    value = _plain(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "" if value is None else str(value)


def format_table(
    rows: Sequence[Row], *, columns: Sequence[str] | None = None, digits: int = 3
) -> str:
    """Rows as an aligned plain-text table (numbers right-aligned).

    Examples
    --------
    >>> print(format_table([{"image": "a", "msa": 0.5}, {"image": "bb", "msa": 0.25}]))
    image    msa
    a      0.500
    bb     0.250
    """
    cols = _columns(rows, columns)
    cells = [[_cell(row.get(c), digits) for c in cols] for row in rows]
    numeric = [
        all(isinstance(_plain(row.get(c)), int | float) for row in rows if row.get(c) is not None)
        for c in cols
    ]
    width = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(cols)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, width, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(cols), *(line(r) for r in cells)])


def mean_row(rows: Sequence[Row], *, label_key: str, label: str = "mean") -> dict[str, Any]:
    """A row with the mean of every numeric column over ``rows`` (booleans and text skipped)."""
    out: dict[str, Any] = {label_key: label}
    for key in _columns(rows, None):
        if key == label_key:
            continue
        values = [_plain(r.get(key)) for r in rows]
        if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out[key] = float(np.mean(values))
    return out


def plot_curves(
    path: str | os.PathLike,
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    ylim: tuple[float, float] | None = (0.0, 1.0),
) -> Path:
    """Line plot of named ``(x, y)`` curves, saved as PNG (or any format matplotlib knows).

    Used for SA against the IoU threshold (``samscope evaluate``) and mSA/SA50 against the
    prompting iteration (``samscope evaluate-interactive``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 4.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, (x, y) in curves.items():
        style = {"color": "black", "linewidth": 2.0} if name == "mean" else {"linewidth": 1.0}
        ax.plot(list(x), list(y), marker="o", markersize=3, label=name, **style)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png")
    return atomic_write_bytes(path, buf.getvalue())
