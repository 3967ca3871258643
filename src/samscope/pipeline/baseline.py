"""Classical baselines over a batch of images: :func:`baseline_batch` (``samscope baseline``).

The same inputs, names, checks, resume and atomic writes as :func:`segment_batch`; it writes
only ``IMAGE_labels.tif`` (with the pixel size), or the one ``output`` file for a single input.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samscope.errors import InputError
from samscope.io import ImageData
from samscope.pipeline.engine import BatchResult, ImageRecord, PlaneOutput, run_images
from samscope.pipeline.inputs import collect_inputs
from samscope.pipeline.outputs import check_locations, plan_outputs
from samscope.pipeline.planes import label_axes, label_pixel_size, pixel_size_nm
from samscope.pipeline.progress import Cancel, Progress, ProgressEvent

__all__ = ["BaselineRequest", "baseline_batch"]

#: Output suffixes that make ``output`` a label file (one input) rather than a folder.
FILE_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class BaselineRequest:
    """A classical segmentation run (no model).

    Parameters
    ----------
    method : str
        A name of :data:`samscope.instance.classical.BASELINES`.
    inputs : sequence of str or Path
    output : Path
        Output folder, or a ``.tif`` file for one input.
    smoothing : float
        Gaussian sigma in pixels before Otsu.
    min_size : int
        Smallest object (and hole) kept, in pixels.
    axes : str, optional
    channel : int, optional
        Channel to segment in multichannel images (RGB images are averaged to grey).
    overwrite : bool
    """

    method: str
    inputs: Sequence[str | os.PathLike]
    output: Path
    smoothing: float = 1.0
    min_size: int = 10
    axes: str | None = None
    channel: int | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        from samscope.instance.classical import BASELINES

        if self.method not in BASELINES:
            raise InputError(
                f"unknown baseline {self.method!r}; choose one of: {', '.join(sorted(BASELINES))}"
            )
        entries = [self.inputs] if isinstance(self.inputs, str | os.PathLike) else self.inputs
        object.__setattr__(self, "inputs", tuple(entries))
        object.__setattr__(self, "output", Path(self.output))


def baseline_batch(
    request: BaselineRequest, *, progress: Progress = None, cancel: Cancel = None
) -> BatchResult:
    """Segment every image of ``request`` with a classical baseline and write its labels.

    Parameters, return value and cancellation as for :func:`samscope.pipeline.segment_batch`.

    Raises
    ------
    InputError
        Before anything is computed: an unknown method, a ``.tif`` output for several inputs or
        an existing one without ``overwrite``, clashing names, unwritable locations; then bad
        images (several channels without ``channel``, …) or settings.
    """
    from samscope.instance.classical import BASELINES

    inputs = collect_inputs(request.inputs)
    single = request.output if request.output.suffix.lower() in FILE_SUFFIXES else None
    if single is not None:
        if len(inputs) != 1:
            raise InputError(
                f"output {single} is a file but {len(inputs)} images were given; "
                "pass a folder as -o for several images"
            )
        if single.exists() and not request.overwrite:
            raise InputError(f"{single} exists; pass --overwrite to replace it")
    plan = plan_outputs(
        inputs, None if single else request.output, single_file=single, writes=("labels",)
    )
    todo = [(i, o) for i, o in plan.items if request.overwrite or not o.labels.exists()]
    skipped = [ImageRecord(i.path, o, "skipped") for i, o in plan.items if (i, o) not in todo]
    check_locations(outs.labels for _, outs in todo)
    if progress is not None:
        for i, r in enumerate(skipped):
            progress(ProgressEvent(stage="skipped", index=i, path=r.input, record=r))
    run = BASELINES[request.method]

    def segment_plane(plane: np.ndarray, image: ImageData, stacked: bool) -> PlaneOutput:
        labels = run(_grey(plane, image), smoothing=request.smoothing, min_size=request.min_size)
        return PlaneOutput(labels=labels)

    def write(item, outs, image, planes, results, stacked) -> tuple[Path, ...]:
        from samscope.io import write_labels
        from samscope.labels import stack_labels

        labels = stack_labels([r.labels for r in results], stacked=stacked)
        axes = label_axes(image, labels.ndim)
        outs.labels.parent.mkdir(parents=True, exist_ok=True)
        pixel = label_pixel_size(image) if axes else None
        return (write_labels(outs.labels, labels, axes=axes, pixel_size=pixel, overwrite=True),)

    def read(path: Path) -> ImageData:
        from samscope.io import read_image

        return read_image(path, axes=request.axes, channel=request.channel)

    done, cancelled = run_images(
        todo, read=read, segment_plane=segment_plane, write=write,
        pixel_size=pixel_size_nm, progress=progress, cancel=cancel,
    )  # fmt: skip
    order = {item.path: i for i, (item, _) in enumerate(plan.items)}
    return BatchResult(
        records=tuple(sorted([*skipped, *done], key=lambda r: order[r.input])),
        method=request.method,
        dropped=tuple(i.path for i in plan.dropped),
        cancelled=cancelled,
    )


def _grey(plane: np.ndarray, image: ImageData) -> np.ndarray:
    """A 2-D plane: colour (RGB) planes averaged; other channel axes are an error."""
    plane = np.asarray(plane)
    if plane.ndim == 2:
        return plane
    if image.rgb:
        return plane[..., :3].astype(np.float32).mean(axis=-1)
    raise InputError(
        f"{image.path}: the baselines segment one channel; the image has {plane.shape[-1]} "
        "channels (axis C): pass --channel N"
    )
