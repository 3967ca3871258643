"""The log of a training run: ``metrics.csv`` (one row per step and per validation) and its plot.

Rows are appended as the run goes; a resumed run first drops the rows written after its last
checkpoint (:func:`truncate_rows`), so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

__all__ = ["CSV_FIELDS", "append_row", "plot_metrics", "truncate_rows"]

CSV_FIELDS = (
    "kind", "step", "time_s", "lr", "loss", "mask_loss", "iou_loss", "instance_loss",
    "distance_loss", "train_dice", "val_dice", "val_dice_point", "val_dice_box", "val_msa",
    "val_msa_instance", "val_msa_distance", "val_loss", "metric", "steps_per_s", "peak_memory_mb",
)  # fmt: skip


def append_row(path: Path, row: dict) -> None:
    """Append ``row`` (missing fields empty, NaN empty) to the CSV at ``path``, header first."""
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({k: _fmt(row.get(k)) for k in CSV_FIELDS})


def truncate_rows(path: Path, step: int) -> None:
    """Drop rows past ``step`` (they were written after the checkpoint a run resumes from)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["step"]) <= step]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def plot_metrics(csv_path: Path, out: Path, metric: str) -> None:
    """Loss (training steps) and the validation metric against the step."""
    if not csv_path.exists():
        return
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    train = [(int(r["step"]), float(r["loss"])) for r in rows if r["kind"] == "train" and r["loss"]]
    val = [(int(r["step"]), float(r["metric"])) for r in rows if r["kind"] == "val" and r["metric"]]
    fig = Figure(figsize=(10, 3.6))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    if train:
        ax1.plot(*zip(*train, strict=True), lw=0.8)
    ax1.set(xlabel="step", ylabel="training loss", title="loss")
    if val:
        ax2.plot(*zip(*val, strict=True), marker="o")
    ax2.set(xlabel="step", ylabel=f"validation {metric}", title=f"validation {metric}")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
