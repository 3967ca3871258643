"""AMG's candidate masks kept compact at low resolution (:class:`AMGPrediction`), and how one is
rebuilt and upsampled exactly (:func:`unpack_logits`, :func:`evaluate_candidate`).

Split from :mod:`samscope.instance.amg` (prediction and post-processing there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from samscope.instance.postprocess import upsample_logit_values
from samscope.models.card import AutomaticDefaults

__all__ = ["AMGPrediction", "Candidates", "evaluate_candidate", "unpack_logits"]


@dataclass(frozen=True)
class AMGPrediction:
    """Decoder output of AMG, enough to re-threshold without the network.

    Candidate ``i`` is mask ``k`` of a decoded point. Its low-resolution logits are kept inside
    ``low_boxes[i]`` (the nodes above ``−offset`` plus one node of margin, clipped to the nodes
    that reach the region) and compactly: for every node, which of the intervals cut at
    ``−offset``, 0 and ``+offset`` holds it (two bits), and the exact values of the nodes
    at the corners of cells that one of those levels crosses. That is exactly what decides the
    upsampled mask (level 0) and SAM's stability score (levels ``±offset``), so
    :meth:`crop_logits` rebuilds logits with the decoder's mask and stability, and
    :func:`amg_postprocess` computes both on the upsampled survivors only. Candidates without a
    node above 0 (empty masks) are not kept, nor, with ``AMGConfig.iou_gate`` (the default),
    those at or below the prediction's ``pred_iou_thresh``.

    Attributes
    ----------
    image_shape : (int, int)
        ``(H, W)`` of the segmented region (the tile's outer region).
    crop_boxes : ndarray of int64, (c, 4)
        ``(y0, x0, y1, x1)`` of each crop in image coordinates (row 0 = the whole region).
    input_size, low_res : int
        Encoder input side ``S`` and decoder logit side ``L``.
    crop_index : ndarray of int64, (n,)
        Crop of each candidate.
    points : ndarray of float64, (n, 2)
        ``(y, x)`` of the prompt in image coordinates.
    iou : ndarray of float32, (n,)
        Predicted IoU.
    low_boxes : ndarray of int64, (n, 4)
        ``(r0, c0, r1, c1)`` of the kept logits on the ``L × L`` grid.
    levels : tuple of ndarray of uint8
        Packed bits ``(2, h·w)``: the interval index (0–3) of each node, low bit first.
    band : tuple of ndarray of uint8
        Packed bits ``(h·w,)``: node is a corner of a cell one of the levels crosses.
    values : tuple of ndarray of float32
        The logits of the ``band`` nodes, raster order.
    stability_offset : float
    defaults : AutomaticDefaults
        The model card's thresholds (used where the config leaves them None).
    n_prompts : int
        Point prompts decoded (the network's work).
    n_points : int
        Grid points considered (decoded or skipped).
    """

    image_shape: tuple[int, int]
    crop_boxes: np.ndarray
    input_size: int
    low_res: int
    crop_index: np.ndarray
    points: np.ndarray
    iou: np.ndarray
    low_boxes: np.ndarray
    levels: tuple[np.ndarray, ...]
    band: tuple[np.ndarray, ...]
    values: tuple[np.ndarray, ...]
    stability_offset: float = 1.0
    defaults: AutomaticDefaults = field(default_factory=AutomaticDefaults)
    n_prompts: int = 0
    n_points: int = 0

    def __len__(self) -> int:
        return len(self.iou)

    @property
    def nbytes(self) -> int:
        """Memory held by the stored candidates."""
        arrays = (self.crop_index, self.points, self.iou, self.low_boxes)
        packed = sum(a.nbytes for part in (self.levels, self.band, self.values) for a in part)
        return packed + sum(a.nbytes for a in arrays)

    def crop_logits(self, i: int) -> np.ndarray:
        """Logits ``(h, w)`` of candidate ``i`` inside ``low_boxes[i]``: exact on the band, a
        value of the same interval elsewhere (so the upsampled mask and stability are the
        decoder's)."""
        r0, c0, r1, c1 = (int(v) for v in self.low_boxes[i])
        shape = (r1 - r0, c1 - c0)
        return unpack_logits(self.levels[i], self.band[i], self.values[i], shape, self.stability_offset)

    @classmethod
    def empty(
        cls, image_shape: tuple[int, int], input_size: int, low_res: int, defaults: AutomaticDefaults
    ) -> AMGPrediction:
        """No candidates (an empty or constant image)."""
        h, w = image_shape
        return cls(
            tuple(image_shape), np.array([[0, 0, h, w]], np.int64), input_size, low_res,
            np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros(0, np.float32),
            np.zeros((0, 4), np.int64), (), (), (), defaults=defaults,
        )  # fmt: skip


def unpack_logits(levels, band, values, shape, offset: float) -> np.ndarray:
    """Rebuild a candidate's node logits (see :class:`AMGPrediction`)."""
    n = shape[0] * shape[1]
    bits = np.unpackbits(levels.reshape(2, -1), axis=1, count=n)
    cls = (bits[0] + 2 * bits[1]).reshape(shape)
    # one value inside each interval: (-inf, -o], (-o, 0], (0, o], (o, inf)
    reps = np.array([-offset - 1.0, -offset / 2, offset / 2, offset + 1.0], np.float32)
    out = reps[cls]
    out[np.unpackbits(band, count=n).reshape(shape).astype(bool)] = values
    return out


def evaluate_candidate(node_logits, origin, ay, ax, offset: float):
    """Upsample one candidate: ``(box, mask cropped to box, stability)`` (SAM's definitions)."""
    (y0, x0), values = upsample_logit_values(node_logits, origin, ay, ax)
    union = int(np.count_nonzero(values > -offset))
    stability = int(np.count_nonzero(values > offset)) / union if union else 0.0
    mask = values > 0
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return (0, 0, 0, 0), np.zeros((0, 0), bool), stability
    xs = np.flatnonzero(mask.any(axis=0))
    box = (y0 + ys[0], x0 + xs[0], y0 + ys[-1] + 1, x0 + xs[-1] + 1)
    return box, mask[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1], stability


class Candidates:
    """Accumulates the candidates of decoded batches (low-resolution, cropped, compact)."""

    def __init__(self, offset: float) -> None:
        self.offset = offset
        self.crop_index: list[np.ndarray] = []
        self.points: list[np.ndarray] = []
        self.iou: list[np.ndarray] = []
        self.low_boxes: list[np.ndarray] = []
        self.levels: list[np.ndarray] = []
        self.band: list[np.ndarray] = []
        self.values: list[np.ndarray] = []

    def add(self, logits, iou, points_yx: np.ndarray, crop: int, valid: tuple[int, int],
            min_iou: float | None = None):
        """Add a batch; returns the indices (into this batch's P×K) that were kept.

        Candidates without a positive node are not kept, nor, with ``min_iou``, those of
        predicted IoU ``<= min_iou`` (AMG's IoU filter applied at prediction).
        """
        ny, nx = valid
        p, k = iou.shape
        flat_iou = torch.as_tensor(iou).reshape(-1).float()
        lg = torch.as_tensor(logits).reshape(p * k, *logits.shape[2:])
        rows = None
        if min_iou is not None:  # select before any copy
            rows = torch.from_numpy(np.flatnonzero(flat_iou.numpy() > min_iou))
            lg = lg[rows]
        lg = lg[:, :ny, :nx].float()
        keep = np.flatnonzero((lg > 0).flatten(1).any(dim=1).numpy())
        lg = lg[torch.from_numpy(keep)]
        if rows is not None:
            keep = rows.numpy()[keep]
        off = self.offset
        # interval of each node: 0 (<= -off), 1 (<= 0), 2 (<= off), 3 (> off)
        cls = (lg > -off).to(torch.uint8) + (lg > 0).to(torch.uint8) + (lg > off).to(torch.uint8)
        a, b, c, d = cls[:, :-1, :-1], cls[:, :-1, 1:], cls[:, 1:, :-1], cls[:, 1:, 1:]
        crossed = torch.minimum(torch.minimum(a, b), torch.minimum(c, d)) != torch.maximum(
            torch.maximum(a, b), torch.maximum(c, d)
        )  # a level crosses the cell
        band = torch.zeros(lg.shape, dtype=torch.bool)
        band[:, :-1, :-1] |= crossed
        band[:, :-1, 1:] |= crossed
        band[:, 1:, :-1] |= crossed
        band[:, 1:, 1:] |= crossed
        outer = cls > 0
        rows_np, cols_np = outer.any(dim=2).numpy(), outer.any(dim=1).numpy()
        cls_np, band_np, lg_np = cls.numpy(), band.numpy(), lg.numpy()
        boxes = np.zeros((len(keep), 4), np.int64)
        for j in range(len(keep)):
            ys, xs = np.flatnonzero(rows_np[j]), np.flatnonzero(cols_np[j])
            r0, c0 = max(ys[0] - 1, 0), max(xs[0] - 1, 0)
            r1, c1 = min(ys[-1] + 2, ny), min(xs[-1] + 2, nx)
            boxes[j] = (r0, c0, r1, c1)
            inband = band_np[j, r0:r1, c0:c1]
            node = cls_np[j, r0:r1, c0:c1].ravel()
            self.levels.append(np.packbits(np.stack([node & 1, node >> 1]), axis=1))
            self.band.append(np.packbits(inband))
            self.values.append(lg_np[j, r0:r1, c0:c1][inband])
        self.low_boxes.append(boxes)
        self.crop_index.append(np.full(len(keep), crop, np.int64))
        self.points.append(np.repeat(points_yx, k, axis=0)[keep])
        self.iou.append(flat_iou.numpy()[keep])
        return keep

    def finish(self, **kw) -> AMGPrediction:
        def cat(parts, shape, dtype):
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype)

        return AMGPrediction(
            crop_index=cat(self.crop_index, (0,), np.int64),
            points=cat(self.points, (0, 2), np.float64),
            iou=cat(self.iou, (0,), np.float32),
            low_boxes=cat(self.low_boxes, (0, 4), np.int64),
            levels=tuple(self.levels),
            band=tuple(self.band),
            values=tuple(self.values),
            stability_offset=self.offset,
            **kw,
        )
