"""Block geometry: an image split into cores that tile it, each read with a halo around it.

Pure numpy / Python. A block's *core* is its share of the output (cores tile the image without
overlap); its *outer* region is the core grown by the halo on every side (clipped at the image
border) and is what the block's segmenter sees. With ``2 * halo <= block`` on every axis only
direct neighbours (sharing a face, an edge or a corner) have overlapping outer regions, which is
what :mod:`samscope.blockwise.stitch` matches.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from samscope.errors import InputError

__all__ = ["Block", "BlockGrid", "as_tuple"]


def as_tuple(value: int | tuple[int, ...] | list[int], ndim: int, what: str) -> tuple[int, ...]:
    """``value`` as one int per axis: an int is the same on every axis, a sequence has one per axis."""
    if isinstance(value, bool):
        raise InputError(f"{what} must be an integer or one integer per axis, got {value!r}")
    if isinstance(value, int | np.integer):
        return (int(value),) * ndim
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be an integer or one integer per axis, got {value!r}") from None
    if len(out) != ndim:
        raise InputError(f"{what} needs {ndim} value(s) for a {ndim}-D image, got {len(out)}: {value!r}")
    return out


@dataclass(frozen=True)
class Block:
    """One block of a :class:`BlockGrid`.

    Attributes
    ----------
    index : tuple of int
        Position in the grid.
    flat : int
        Position in C order (the block's name in the output).
    core : tuple of (int, int)
        ``[start, stop)`` per axis of the block's share of the output.
    outer : tuple of (int, int)
        The core grown by the halo, clipped to the image.
    """

    index: tuple[int, ...]
    flat: int
    core: tuple[tuple[int, int], ...]
    outer: tuple[tuple[int, int], ...]

    @property
    def core_slices(self) -> tuple[slice, ...]:
        """Slices of the core in image coordinates."""
        return tuple(slice(a, b) for a, b in self.core)

    @property
    def outer_slices(self) -> tuple[slice, ...]:
        """Slices of the outer region in image coordinates."""
        return tuple(slice(a, b) for a, b in self.outer)

    @property
    def core_in_outer(self) -> tuple[slice, ...]:
        """Slices of the core inside the outer region's array."""
        return tuple(slice(c0 - o0, c1 - o0) for (c0, c1), (o0, _) in zip(self.core, self.outer, strict=True))

    @property
    def outer_shape(self) -> tuple[int, ...]:
        """Shape of the outer region."""
        return tuple(b - a for a, b in self.outer)


def intersect(a: tuple[tuple[int, int], ...], b: tuple[tuple[int, int], ...]):
    """The intersection of two boxes (``[start, stop)`` per axis), or None when empty."""
    out = tuple((max(a0, b0), min(a1, b1)) for (a0, a1), (b0, b1) in zip(a, b, strict=True))
    return out if all(lo < hi for lo, hi in out) else None


def local_slices(box, origin_box) -> tuple[slice, ...]:
    """Slices of ``box`` inside an array that covers ``origin_box``."""
    return tuple(slice(lo - o0, hi - o0) for (lo, hi), (o0, _) in zip(box, origin_box, strict=True))


@dataclass(frozen=True)
class BlockGrid:
    """Blocks of ``block`` pixels (the last one on an axis may be smaller) with a ``halo``.

    Parameters
    ----------
    shape : tuple of int
        Spatial shape of the image, ``(y, x)`` or ``(z, y, x)``.
    block : tuple of int
        Core size per axis.
    halo : tuple of int
        Overlap added on each side per axis; ``2 * halo <= block``, and at least 1 on an axis split
        into several blocks.

    Raises
    ------
    InputError
        A block larger than the image, a halo larger than half a block, a zero halo on a split
        axis, non-positive sizes.

    Examples
    --------
    >>> g = BlockGrid((100, 250), (64, 128), (8, 8))
    >>> g.counts, len(g), g.block_at(1).core, g.block_at(1).outer
    ((2, 2), 4, ((0, 64), (128, 250)), ((0, 72), (120, 250)))
    """

    shape: tuple[int, ...]
    block: tuple[int, ...]
    halo: tuple[int, ...]

    def __post_init__(self) -> None:
        shape = tuple(int(s) for s in self.shape)
        if len(shape) not in (2, 3) or any(s < 1 for s in shape):
            raise InputError(f"blockwise segmentation takes a 2-D or 3-D image, got shape {shape}")
        block = as_tuple(self.block, len(shape), "block size")
        halo = as_tuple(self.halo, len(shape), "halo")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "block", block)
        object.__setattr__(self, "halo", halo)
        names = "ZYX"[-len(shape):]
        for axis, n, b, h in zip(names, shape, block, halo, strict=True):
            if b < 1:
                raise InputError(f"block size must be positive, got {b} on axis {axis}")
            if b > n:
                raise InputError(
                    f"block size {b} is larger than the image ({n} px on axis {axis}, shape "
                    f"{shape}); use a smaller --block-size, or segment the image whole (no "
                    "--block-size, an output folder instead of a .zarr)"
                )
            if h < 0:
                raise InputError(f"halo must be >= 0, got {h} on axis {axis}")
            if 2 * h > b:
                raise InputError(
                    f"halo {h} on axis {axis} is more than half the block size {b}: each pixel "
                    "would be segmented up to "
                    f"{(1 + 2 * h / b) ** len(shape):.0f}× and non-neighbouring blocks would overlap; "
                    "use a halo of about twice the object diameter and blocks at least twice as large"
                )
            if h == 0 and n > b:
                raise InputError(
                    f"halo 0 on axis {axis}, which is split into {-(-n // b)} blocks: objects "
                    "crossing block borders cannot be matched without an overlap"
                )

    @cached_property
    def counts(self) -> tuple[int, ...]:
        """Number of blocks per axis."""
        return tuple(-(-n // b) for n, b in zip(self.shape, self.block, strict=True))

    def __len__(self) -> int:
        return int(np.prod(self.counts))

    def block_at(self, flat: int) -> Block:
        """The block at C-order position ``flat``."""
        if not 0 <= flat < len(self):
            raise IndexError(f"block {flat} of {len(self)}")
        index = tuple(int(i) for i in np.unravel_index(flat, self.counts))
        core = tuple(
            (i * b, min((i + 1) * b, n)) for i, b, n in zip(index, self.block, self.shape, strict=True)
        )
        outer = tuple(
            (max(0, c0 - h), min(n, c1 + h))
            for (c0, c1), h, n in zip(core, self.halo, self.shape, strict=True)
        )
        return Block(index, int(flat), core, outer)

    def __iter__(self):
        return (self.block_at(i) for i in range(len(self)))

    def flat_of(self, index: tuple[int, ...]) -> int:
        """C-order position of a grid index."""
        return int(np.ravel_multi_index(index, self.counts))

    def neighbours(self, flat: int, *, forward: bool = False) -> list[int]:
        """Blocks sharing a face, edge or corner with block ``flat`` (``forward``: later ones only)."""
        index = self.block_at(flat).index
        out = []
        for step in itertools.product((-1, 0, 1), repeat=len(index)):
            if not any(step):
                continue
            j = tuple(i + s for i, s in zip(index, step, strict=True))
            if all(0 <= v < c for v, c in zip(j, self.counts, strict=True)):
                k = self.flat_of(j)
                if not forward or k > flat:
                    out.append(k)
        return sorted(out)

    def overlap(self, a: int, b: int):
        """The region both blocks' outer regions cover (None when they do not overlap)."""
        return intersect(self.block_at(a).outer, self.block_at(b).outer)
