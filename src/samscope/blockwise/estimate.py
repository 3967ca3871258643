"""One object size for the whole image, estimated on a few sample blocks before any block runs.

Scale-aware models resize each image so its objects reach their working size; if every block
estimated its own size, neighbouring blocks would segment at different scales and disagree on
their overlaps. So the diameter is estimated once, on up to ``samples`` block cores spread over
the image (the middle plane of a volume's block), and the median is given to every block.
"""

from __future__ import annotations

import logging

import numpy as np

from samscope.blockwise.grid import BlockGrid
from samscope.blockwise.source import ImageSource
from samscope.errors import InputError

__all__ = ["estimate_image_diameter", "estimate_value_range", "sample_blocks"]

log = logging.getLogger(__name__)


def sample_blocks(grid: BlockGrid, samples: int) -> list[int]:
    """Up to ``samples`` block indices spread evenly over the grid (C order), the middle first."""
    n = len(grid)
    if samples >= n:
        picks = list(range(n))
    else:
        picks = sorted({int(round(x)) for x in np.linspace(0, n - 1, samples + 2)[1:-1]})
    middle = n // 2
    return sorted(picks, key=lambda k: (k != middle, k))


def estimate_image_diameter(
    source: ImageSource, model, grid: BlockGrid, *, samples: int = 3
) -> float | None:
    """The median of :func:`samscope.instance.scale.estimate_diameter` over sample block cores.

    Parameters
    ----------
    source : ImageSource
    model : SamscopeModel
        A scale-aware model (card ``working_diameter``) with an instance head.
    grid : BlockGrid
    samples : int
        Blocks looked at.

    Returns
    -------
    float or None
        None when no sample block shows an object (the blocks then run at the model's scale).
    """
    from samscope.instance.scale import estimate_diameter

    found = []
    for k in sample_blocks(grid, samples):
        block = grid.block_at(k)
        region = source.read(block.core_slices)
        if source.spatial_axes == "ZYX":
            region = region[region.shape[0] // 2]
        if region.size == 0 or np.all(region == region.flat[0]):
            continue
        est = estimate_diameter(region, model)
        if est.diameter is not None and np.isfinite(est.diameter):
            found.append(float(est.diameter))
    if not found:
        log.info("no objects in the sample blocks: the blocks run at the model's own scale")
        return None
    return float(np.median(found))


def check_diameter(model, diameter: float | None) -> None:
    """A given diameter needs a scale-aware model (same message as ``samscope segment``)."""
    card = getattr(model, "card", None)
    if diameter is not None and not getattr(card, "working_diameter", None):
        raise InputError(
            f"model {getattr(card, 'name', model)!r} works at one scale (its card has no working "
            "diameter), so --diameter cannot be applied; use a scale-aware model such as "
            "samscope-generalist"
        )


def estimate_value_range(source: ImageSource, model, grid: BlockGrid, *, samples: int = 9,
                         values_per_block: int = 1_000_000) -> tuple[float, float] | None:
    """One intensity range for every block: the model's normalisation percentiles over a sample.

    Up to ``samples`` block cores spread over the image are read (a volume's blocks: every
    plane), each thinned with a stride to about ``values_per_block`` values, and the card's
    ``low_percentile`` / ``high_percentile`` taken over all of them together — what a
    whole-image run normalises with (:func:`samscope.embeddings.plane_value_range`), without
    reading the whole image.

    Returns
    -------
    (float, float) or None
        None when the sample is constant (the blocks then use their own ranges).

    Raises
    ------
    InputError
        NaN or infinite values in a sample block.
    """
    from samscope.image import intensity_range

    norm = model.card.normalisation
    parts = []
    for k in sample_blocks(grid, samples):
        region = np.asarray(source.read(grid.block_at(k).core_slices))
        if region.ndim == 3 and source.spatial_axes == "YX":  # RGB(A): one range, 3 channels
            region = region[..., :3]
        if region.dtype.kind == "f" and not np.isfinite(region).all():
            raise InputError("the image has NaN or infinite values; clean or mask them first")
        flat = region.ravel()
        step = max(1, flat.size // values_per_block)
        parts.append(flat[::step].astype(np.float64))
    if not parts:
        return None
    lo, hi = intensity_range(np.concatenate(parts), low=norm.low_percentile,
                             high=norm.high_percentile)
    if not hi > lo:
        return None
    return float(lo), float(hi)
