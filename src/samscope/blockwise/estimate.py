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

__all__ = ["estimate_image_diameter", "sample_blocks"]

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
