"""The loop every batch run shares: read each image, segment its planes, write its outputs.

What differs between runs (a model mode, a classical baseline) is passed in as two functions:
``segment_plane`` (one 2-D plane → :class:`PlaneOutput`) and ``write`` (the image's planes and
their outputs → files and an :class:`ImageRecord`). Cancellation is checked before each image and
each plane; an image is written only when all its planes are done, so a cancelled or interrupted
run never leaves a partial image behind and a re-run resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from samscope.io import ImageData
from samscope.pipeline.inputs import InputFile
from samscope.pipeline.outputs import OutputPaths
from samscope.pipeline.planes import planes_of
from samscope.pipeline.progress import Cancel, Progress, ProgressEvent, is_cancelled

__all__ = ["BatchResult", "ImageRecord", "PlaneOutput", "run_images"]


@dataclass(frozen=True)
class PlaneOutput:
    """What segmenting one 2-D plane gave.

    Attributes
    ----------
    labels : ndarray
        ``(y, x)`` label image.
    rows : list of dict
        Per-object rows (:func:`samscope.instance.object_table`); empty when not measured.
    masks : ndarray or None
        ``(n, y, x)`` overlapping masks (uint8) for modes that keep them.
    diameter : float or None
        Object diameter in pixels of the input that the mode used (None: not scale-aware).
    scale : float
        Rescale factor applied before segmenting (1.0: none).
    """

    labels: np.ndarray
    rows: list[dict] = field(default_factory=list)
    masks: np.ndarray | None = None
    diameter: float | None = None
    scale: float = 1.0


@dataclass(frozen=True)
class ImageRecord:
    """The outcome of one image of a batch run.

    Attributes
    ----------
    input : Path
    outputs : OutputPaths
    status : {"done", "skipped"}
        ``skipped``: its outputs existed and ``overwrite`` was off (a resumed run).
    n_objects : int
        Objects found (over all planes).
    n_planes : int
    pixel_size_nm : float or None
        In-plane pixel size used (``--pixel-size`` or the file's).
    diameter : float or None
        Object diameter in pixels used (the median over planes for stacks).
    scale : float or None
        Rescale factor applied (the median over planes).
    written : tuple of Path
        The files written.
    seconds : float
    """

    input: Path
    outputs: OutputPaths
    status: Literal["done", "skipped"]
    n_objects: int = 0
    n_planes: int = 0
    pixel_size_nm: float | None = None
    diameter: float | None = None
    scale: float | None = None
    written: tuple[Path, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class BatchResult:
    """The outcome of a batch run.

    Attributes
    ----------
    records : tuple of ImageRecord
        One per image, skipped ones included, in input order (images not reached after a
        cancellation are absent).
    method : str
        What segmented: ``"MODEL (MODE)"`` or the baseline's name.
    dropped : tuple of Path
        Inputs left out because they are outputs of another input of the batch.
    cancelled : bool
        The run stopped early on request.
    """

    records: tuple[ImageRecord, ...]
    method: str = ""
    dropped: tuple[Path, ...] = ()
    cancelled: bool = False

    @property
    def done(self) -> list[ImageRecord]:
        """Records of the images segmented in this run."""
        return [r for r in self.records if r.status == "done"]

    @property
    def skipped(self) -> list[ImageRecord]:
        """Records of the images whose outputs existed."""
        return [r for r in self.records if r.status == "skipped"]

    @property
    def n_objects(self) -> int:
        """Objects found in this run."""
        return sum(r.n_objects for r in self.done)


SegmentPlane = Callable[[np.ndarray, ImageData, bool], PlaneOutput]
WriteImage = Callable[
    [InputFile, OutputPaths, ImageData, Sequence[np.ndarray], Sequence[PlaneOutput], bool],
    tuple[Path, ...],
]


def median_or_none(values: Sequence[float | None]) -> float | None:
    """Median of the values that are not None (None when there are none)."""
    known = [float(v) for v in values if v is not None]
    return float(np.median(known)) if known else None


def run_images(
    todo: Sequence[tuple[InputFile, OutputPaths]],
    *,
    read: Callable[[Path], ImageData],
    segment_plane: SegmentPlane,
    write: WriteImage,
    pixel_size: Callable[[ImageData], float | None] = lambda image: None,
    progress: Progress = None,
    cancel: Cancel = None,
) -> tuple[list[ImageRecord], bool]:
    """Segment and write each image of ``todo``; returns the records and whether it was cancelled."""
    emit: Callable[..., Any] = (lambda **kw: progress(ProgressEvent(**kw))) if progress else (
        lambda **kw: None
    )
    n = len(todo)
    emit(stage="start", n_images=n)
    records: list[ImageRecord] = []
    for i, (item, outs) in enumerate(todo):
        if is_cancelled(cancel):
            return records, True
        start = time.perf_counter()
        image = read(item.path)
        planes, stacked = planes_of(image)
        emit(stage="image", index=i, n_images=n, path=item.path, n_planes=len(planes))
        results: list[PlaneOutput] = []
        for p, plane in enumerate(planes):
            if p and is_cancelled(cancel):
                return records, True
            results.append(segment_plane(plane, image, stacked))
            emit(stage="plane", index=i, n_images=n, path=item.path, plane=p,
                 n_planes=len(planes))  # fmt: skip
        written = write(item, outs, image, planes, results, stacked)
        record = ImageRecord(
            input=item.path,
            outputs=outs,
            status="done",
            n_objects=sum(_count(r) for r in results),
            n_planes=len(planes),
            pixel_size_nm=pixel_size(image),
            diameter=median_or_none([r.diameter for r in results]),
            scale=median_or_none([r.scale for r in results]) if results else None,
            written=written,
            seconds=time.perf_counter() - start,
        )
        records.append(record)
        emit(stage="done", index=i, n_images=n, path=item.path, n_planes=len(planes),
             record=record)  # fmt: skip
    return records, False


def _count(result: PlaneOutput) -> int:
    if result.rows:
        return len(result.rows)
    return int(result.labels.max()) if result.labels.size else 0
