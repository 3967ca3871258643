"""Tile geometry for images larger than one encoder input (pure numpy).

A :class:`TileGrid` cuts a ``(H, W)`` image into tiles of ``tile_shape`` ("inner" regions that
partition the image) and grows each by ``halo`` on every side ("outer" regions, clipped to the
image) — the outer region is what gets embedded; the inner region is what a tile is responsible
for when results are stitched. Coordinates are ``(y, x)``; boxes ``(y0, x0, y1, x1)`` with
exclusive ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from samscope.errors import InputError

__all__ = ["Tile", "TileGrid", "blend_weights", "fitted_tiling", "window_around"]


@dataclass(frozen=True)
class Tile:
    """One tile: its grid index, inner region and outer (halo) region as ``(y0, x0, y1, x1)``."""

    index: int
    grid_position: tuple[int, int]
    inner: tuple[int, int, int, int]
    outer: tuple[int, int, int, int]

    @property
    def outer_slices(self) -> tuple[slice, slice]:
        """Slices of the outer region in image coordinates."""
        y0, x0, y1, x1 = self.outer
        return slice(y0, y1), slice(x0, x1)

    @property
    def inner_slices(self) -> tuple[slice, slice]:
        """Slices of the inner region in image coordinates."""
        y0, x0, y1, x1 = self.inner
        return slice(y0, y1), slice(x0, x1)

    @property
    def inner_in_outer(self) -> tuple[slice, slice]:
        """Slices of the inner region in the outer region's own coordinates."""
        y0, x0, y1, x1 = self.inner
        oy, ox = self.outer[:2]
        return slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox)

    @property
    def outer_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the outer region."""
        y0, x0, y1, x1 = self.outer
        return y1 - y0, x1 - x0

    def contains_box(self, box: np.ndarray, *, region: str = "outer") -> bool:
        """Whether ``box`` lies entirely inside the tile's ``outer`` or ``inner`` region."""
        y0, x0, y1, x1 = self.outer if region == "outer" else self.inner
        b = np.asarray(box, dtype=float)
        return bool(b[0] >= y0 and b[1] >= x0 and b[2] <= y1 and b[3] <= x1)


@dataclass(frozen=True)
class TileGrid:
    """Regular tiling of a 2-D image with halos.

    Parameters
    ----------
    shape : (int, int)
        Image shape ``(H, W)``.
    tile_shape : (int, int)
        Inner tile size.
    halo : (int, int)
        Overlap added on each side.

    Examples
    --------
    >>> grid = TileGrid((100, 150), (64, 64), (8, 8))
    >>> len(grid), grid.grid_shape
    (6, (2, 3))
    >>> grid.tiles[0].outer, grid.tiles[0].inner
    ((0, 0, 72, 72), (0, 0, 64, 64))
    """

    shape: tuple[int, int]
    tile_shape: tuple[int, int]
    halo: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        if len(self.shape) != 2 or min(self.shape) <= 0:
            raise InputError(f"tiling needs a positive 2-D shape, got {self.shape}")
        if len(self.tile_shape) != 2 or min(self.tile_shape) <= 0:
            raise InputError(f"tile_shape must be two positive ints, got {self.tile_shape}")
        if len(self.halo) != 2 or min(self.halo) < 0:
            raise InputError(f"halo must be two non-negative ints, got {self.halo}")

    @property
    def grid_shape(self) -> tuple[int, int]:
        """Number of tiles along y and x."""
        return tuple(int(np.ceil(s / t)) for s, t in zip(self.shape, self.tile_shape, strict=True))

    def __len__(self) -> int:
        gy, gx = self.grid_shape
        return gy * gx

    def __iter__(self) -> Iterator[Tile]:
        return iter(self.tiles)

    @property
    def tiles(self) -> list[Tile]:
        """All tiles in row-major order."""
        (h, w), (th, tw), (hy, hx) = self.shape, self.tile_shape, self.halo
        gy, gx = self.grid_shape
        out = []
        for iy in range(gy):
            for ix in range(gx):
                y0, x0 = iy * th, ix * tw
                y1, x1 = min(y0 + th, h), min(x0 + tw, w)
                outer = (max(0, y0 - hy), max(0, x0 - hx), min(h, y1 + hy), min(w, x1 + hx))
                out.append(Tile(iy * gx + ix, (iy, ix), (y0, x0, y1, x1), outer))
        return out

    def tile_at(self, point_yx: np.ndarray) -> Tile:
        """The tile whose inner region contains the point ``(y, x)``."""
        y, x = (float(v) for v in np.asarray(point_yx).ravel()[:2])
        h, w = self.shape
        if not (0 <= y < h and 0 <= x < w):
            raise InputError(f"point (y={y}, x={x}) lies outside the image of shape {self.shape}")
        iy, ix = int(y // self.tile_shape[0]), int(x // self.tile_shape[1])
        return self.tiles[iy * self.grid_shape[1] + ix]

    def margin(self, tile: Tile, box: np.ndarray) -> float:
        """Distance from ``box`` to the nearest border of ``tile``'s outer region that lies inside the image.

        Borders on the image edge do not count (an object cannot continue there). Negative when
        the box crosses a cut border.
        """
        (h, w) = self.shape
        y0, x0, y1, x1 = tile.outer
        b = np.asarray(box, dtype=float)
        gaps = []
        if y0 > 0:
            gaps.append(b[0] - y0)
        if x0 > 0:
            gaps.append(b[1] - x0)
        if y1 < h:
            gaps.append(y1 - b[2])
        if x1 < w:
            gaps.append(x1 - b[3])
        return float(min(gaps)) if gaps else float("inf")

    def best_tile_for_box(self, box: np.ndarray) -> Tile:
        """The tile that sees ``box`` with the largest margin to its cut borders."""
        tiles = self.tiles
        margins = [self.margin(t, box) for t in tiles]
        return tiles[int(np.argmax(margins))]


def fitted_tiling(
    shape: tuple[int, int], side: int, *, min_halo: int = 8
) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
    """The fewest tiles whose outer regions fit one ``side``² encoder input: ``(tile_shape, halo)``.

    A fixed ``tile_shape`` (say 224 with a 16 px halo for a 256² input) leaves a last row or
    column that is mostly padding (700 px: four rows, the fourth 28 px wide). Here each axis gets
    the smallest count ``n`` of equal tiles ``ceil(size / n)`` that still leaves a halo of at least
    ``min_halo`` on each side within ``side``; the halo is then as wide as the input allows
    (700 px: three rows of 234 with an 11 px halo; 1100 px: five columns of 220, halo 18).

    Parameters
    ----------
    shape : (int, int)
        Image shape ``(H, W)``.
    side : int
        Encoder input side (the outer region of every tile fits in it).
    min_halo : int
        Smallest halo accepted at a cut border.

    Returns
    -------
    ((int, int), (int, int)) or (None, None)
        Per-axis ``tile_shape`` and ``halo`` for :class:`TileGrid`; ``(None, None)`` when the
        image fits one input (no tiling).

    Examples
    --------
    >>> fitted_tiling((700, 1100), 256)
    ((234, 220), (11, 18))
    >>> fitted_tiling((200, 256), 256)
    (None, None)
    """
    side, min_halo = int(side), int(min_halo)
    if side <= 2 * min_halo:
        raise InputError(f"an encoder input of {side} px leaves no room for a {min_halo} px halo")
    if max(int(s) for s in shape) <= side:
        return None, None
    tiles, halos = [], []
    for size in (int(s) for s in shape):
        n = max(1, int(np.ceil((size - 2 * min_halo) / (side - 2 * min_halo))))
        while True:
            tile = int(np.ceil(size / n))
            if n == 1 or tile + 2 * min_halo <= side:
                break
            n += 1
        tiles.append(tile)
        halos.append(0 if n == 1 else (side - tile) // 2)
    return (tiles[0], tiles[1]), (halos[0], halos[1])


def window_around(
    box: np.ndarray, shape: tuple[int, int], size: tuple[int, int], *, pad: float = 0.25
) -> tuple[int, int, int, int]:
    """A window of at least ``size`` (clipped to the image) centred on ``box`` grown by ``pad``.

    Used when an object is larger than any tile's outer region: the window is embedded on
    demand (downscaled to the encoder input if it is larger than the tile).

    Returns
    -------
    (y0, x0, y1, x1)
    """
    b = np.asarray(box, dtype=float)
    h, w = shape
    out = []
    for lo, hi, n, s in ((b[0], b[2], h, size[0]), (b[1], b[3], w, size[1])):
        extent = max(s, (hi - lo) * (1 + 2 * pad))
        extent = min(extent, n)
        centre = (lo + hi) / 2
        start = int(round(centre - extent / 2))
        start = min(max(start, 0), n - int(extent))
        out.append((start, start + int(extent)))
    (y0, y1), (x0, x1) = out
    return y0, x0, y1, x1


def blend_weights(shape: tuple[int, int], halo: tuple[int, int]) -> np.ndarray:
    """Smooth blending weights for overlapping dense predictions (e.g. distance maps).

    A separable cosine ramp over ``halo`` pixels at each edge, 1 inside; never exactly zero so
    that pixels covered by a single tile keep their value after normalising by the weight sum.

    Returns
    -------
    ndarray of float32, ``shape``
    """
    ramps = []
    for n, hw in zip(shape, halo, strict=True):
        r = np.ones(n, np.float32)
        hw = min(hw, n // 2)
        if hw > 0:
            t = (np.arange(hw, dtype=np.float32) + 0.5) / hw
            ramp = 0.5 - 0.5 * np.cos(np.pi * t)
            r[:hw] = ramp
            r[n - hw :] = ramp[::-1]
        ramps.append(np.maximum(r, 1e-3))
    return ramps[0][:, None] * ramps[1][None, :]
