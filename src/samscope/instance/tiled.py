"""Stitching automatic segmentations of overlapping tiles into one result (pure numpy).

Two strategies, one per kind of mode:

- **Dense maps** (AIS's foreground/distance maps, SAMCell's distance map): each tile predicts
  maps over its outer (halo) region; :func:`blend_tile_maps` averages them with weights that
  ramp down towards a tile's *cut* borders (borders inside the image), and the watershed then
  runs once on the blended whole-image maps — objects across seams come out whole by
  construction.
- **Instances** (AMG, APG, foreground prompting): each tile segments its outer region;
  :func:`stitch_tile_instances` keeps an object in the one tile whose *inner* region holds the
  centre of the object's bounding box, so an object that crosses a seam but fits within the
  halo is taken whole from the tile that sees it whole, and never twice. Objects that touch a
  cut border of their tile (larger than the halo allows) are kept too, truncated, rather than
  lost; choose a halo larger than the largest object.
"""

from __future__ import annotations

import numpy as np

from samscope.instance.instances import CroppedMasks, Instances
from samscope.tiling import Tile

__all__ = ["blend_tile_maps", "stitch_tile_instances", "tile_weights"]


def tile_weights(tile: Tile, shape: tuple[int, int]) -> np.ndarray:
    """Blending weights over ``tile``'s outer region: a cosine ramp over the halo at cut borders.

    Borders on the image edge get no ramp (no other tile covers them). Weights are > 0
    everywhere so every pixel has a defined blended value.

    Returns
    -------
    ndarray of float32, the outer region's shape
    """
    h, w = shape
    oy0, ox0, oy1, ox1 = tile.outer
    iy0, ix0, iy1, ix1 = tile.inner
    axes = []
    for lo_o, hi_o, lo_i, hi_i, n in ((oy0, oy1, iy0, iy1, h), (ox0, ox1, ix0, ix1, w)):
        length = hi_o - lo_o
        r = np.ones(length, np.float32)
        # ramp across the overlap on each cut side: width = 2 × halo, centred on the inner edge
        # (clipped to the tile: a last tile can be shorter than its ramps)
        if lo_o > 0 and lo_i > lo_o:
            width = 2 * (lo_i - lo_o)
            ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(width, dtype=np.float32) + 0.5) / width)
            m = min(width, length)
            r[:m] = np.minimum(r[:m], ramp[:m])
        if hi_o < n and hi_o > hi_i:
            width = 2 * (hi_o - hi_i)
            ramp = 0.5 + 0.5 * np.cos(np.pi * (np.arange(width, dtype=np.float32) + 0.5) / width)
            m = min(width, length)
            r[length - m :] = np.minimum(r[length - m :], ramp[width - m :])
        axes.append(np.maximum(r, 1e-4))
    return axes[0][:, None] * axes[1][None, :]


def blend_tile_maps(
    shape: tuple[int, int], tiles: list[Tile], maps: list[np.ndarray]
) -> np.ndarray:
    """Weighted average of per-tile maps over the whole image.

    Parameters
    ----------
    shape : (int, int)
        Image shape ``(H, W)``.
    tiles : list of Tile
    maps : list of ndarray, each ``(c, h, w)``
        ``maps[i]`` covers ``tiles[i].outer``.

    Returns
    -------
    ndarray of float32, ``(c, H, W)``
    """
    if not maps:
        raise ValueError("no tiles to blend")
    c = maps[0].shape[0]
    out = np.zeros((c,) + tuple(shape), np.float32)
    total = np.zeros(tuple(shape), np.float32)
    for tile, m in zip(tiles, maps, strict=True):
        if m.shape[1:] != tile.outer_shape:
            raise ValueError(f"map of shape {m.shape[1:]} does not cover tile {tile.outer}")
        w = tile_weights(tile, shape)
        ys, xs = tile.outer_slices
        out[:, ys, xs] += m * w
        total[ys, xs] += w
    out /= total
    return out


def _object_masks(inst: Instances) -> tuple[np.ndarray, list[np.ndarray]]:
    """Boxes and cropped masks of every object of a tile result."""
    if inst.masks is not None:
        return inst.masks.boxes, list(inst.masks.crops)
    from scipy import ndimage as ndi

    boxes, crops = [], []
    slices = ndi.find_objects(inst.labels, max_label=inst.n)
    for i, sl in enumerate(slices, start=1):
        if sl is None:
            boxes.append((0, 0, 0, 0))
            crops.append(np.zeros((0, 0), bool))
            continue
        boxes.append((sl[0].start, sl[1].start, sl[0].stop, sl[1].stop))
        crops.append(inst.labels[sl] == i)
    return np.array(boxes, np.int64).reshape(-1, 4), crops


def stitch_tile_instances(
    shape: tuple[int, int],
    tiles: list[Tile],
    results: list[Instances],
    *,
    mode: str = "",
    keep_masks: bool | None = None,
) -> Instances:
    """Merge per-tile instance segmentations into one, each object taken from one tile.

    Parameters
    ----------
    shape : (int, int)
        Image shape.
    tiles : list of Tile
    results : list of Instances
        ``results[i]`` in the coordinates of ``tiles[i].outer``.
    mode : str
        Recorded on the result.
    keep_masks : bool, optional
        Keep overlapping masks in the result (default: when the tiles' results have them).

    Returns
    -------
    Instances
    """
    boxes, crops, scores = [], [], []
    for tile, inst in zip(tiles, results, strict=True):
        if inst.labels.shape != tile.outer_shape:
            raise ValueError(
                f"result of shape {inst.labels.shape} does not cover tile {tile.outer}"
            )
        tboxes, tcrops = _object_masks(inst)
        oy, ox = tile.outer[:2]
        iy0, ix0, iy1, ix1 = tile.inner
        for box, crop, score in zip(tboxes, tcrops, inst.scores, strict=True):
            if crop.size == 0 or not crop.any():
                continue
            cy = oy + (box[0] + box[2]) / 2.0
            cx = ox + (box[1] + box[3]) / 2.0
            # centres exactly on a seam go to the tile below/right (inner ends are exclusive)
            if not (iy0 <= cy < iy1 or (cy == iy1 == shape[0])) or not (
                ix0 <= cx < ix1 or (cx == ix1 == shape[1])
            ):
                continue
            boxes.append((box[0] + oy, box[1] + ox, box[2] + oy, box[3] + ox))
            crops.append(crop)
            scores.append(score)
    if keep_masks is None:
        keep_masks = any(r.masks is not None for r in results)
    masks = CroppedMasks(tuple(shape), np.array(boxes, np.int64).reshape(-1, 4), tuple(crops))
    merged = Instances.from_masks(masks, np.array(scores, np.float32), mode=mode)
    if keep_masks:
        return merged
    return Instances(merged.labels, merged.scores, None, mode)
