"""Small helpers shared by CLI commands (prompt strings, models, batch-run reports)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from samscope.errors import InputError

#: ``--precision`` of every command that runs a model (see :mod:`samscope.models.sam`).
PrecisionOpt = Annotated[
    str | None,
    typer.Option(
        "--precision",
        help="Encoder/decoder arithmetic: fp32, bf16 or int8 (CPU; default fp32 on the CPU, "
        "bf16 on CUDA).",
    ),
]


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


def load(model: str, checkpoint: Path | None, device: str | None, precision: str | None = None):
    """Load a model by name or path, with an optional checkpoint override and precision."""
    from samscope.models.registry import load_model

    return load_model(model, checkpoint=checkpoint, device=device, precision=precision)


class RunReport:
    """Listens to a batch run (:class:`samscope.pipeline.ProgressEvent`): tqdm bars and lines.

    Says how many images were already done before the run starts, draws bars for two or more
    images (planes: two or more planes) and prints one line per finished image (none when
    ``quiet``). Use as a context manager so the bars close when the run ends or fails.
    """

    def __init__(self, desc: str, *, done_text: str, quiet: bool = False) -> None:
        self.desc, self.done_text, self.quiet = desc, done_text, quiet
        self.n_skipped = 0
        self.n_todo = self.n_finished = 0
        self._images = self._planes = None
        from samscope.cli import _interrupt

        _interrupt.report(self._finished)  # what an interruption message says was finished

    def _finished(self) -> str:
        before = f" ({self.n_skipped} done before this run)" if self.n_skipped else ""
        return f"{self.desc}: {self.n_finished} of {self.n_todo} image(s) finished and written{before}"

    def __call__(self, event) -> None:
        import typer
        from tqdm.auto import tqdm

        if event.stage == "skipped":
            self.n_skipped += 1
        elif event.stage == "start":
            self.n_todo = event.n_images
            if self.n_skipped:
                typer.echo(f"{self.n_skipped} of {self.n_skipped + event.n_images} image(s) "
                           f"{self.done_text} (use --overwrite to redo)")  # fmt: skip
            self._images = tqdm(total=event.n_images, desc=self.desc, unit="image",
                                disable=self.quiet or event.n_images < 2)  # fmt: skip
        elif event.stage == "image":
            self._close_planes()
            self._planes = tqdm(total=event.n_planes, desc="planes", unit="plane", leave=False,
                                disable=self.quiet or event.n_planes < 2)  # fmt: skip
        elif event.stage == "plane" and self._planes is not None:
            self._planes.update(1)
        elif event.stage == "done":
            self.n_finished += 1
            self._close_planes()
            if self._images is not None:
                self._images.update(1)
            if not self.quiet:
                typer.echo(image_line(event.record))

    def _close_planes(self) -> None:
        if self._planes is not None:
            self._planes.close()
            self._planes = None

    def __enter__(self) -> RunReport:
        return self

    def __exit__(self, *exc) -> None:
        self._close_planes()
        if self._images is not None:
            self._images.close()


def image_line(record) -> str:
    """``a.tif: 12 object(s), diameter 23.0 px → out/a_labels.tif``."""
    size = "" if record.diameter is None else f", diameter {record.diameter:.1f} px"
    return f"{record.input.name}: {record.n_objects} object(s){size} → {record.outputs.labels}"


def summary_lines(result) -> list[str]:
    """The last lines of a batch run: inputs left out, and what was done."""
    lines = []
    if result.dropped:
        names = ", ".join(p.name for p in result.dropped[:5])
        lines.append(f"left out {len(result.dropped)} file(s) that are outputs of other inputs: "
                     f"{names}{' …' if len(result.dropped) > 5 else ''}")  # fmt: skip
    lines.append(f"done: {len(result.done)} image(s) segmented with {result.method}, "
                 f"{result.n_objects} object(s)")  # fmt: skip
    return lines
