"""Point prompts decoded in batches with an IoU gate before the up-scaling (AMG's grid).

For a point prompt, SAM's decoder spends more than half of its multiply–accumulates and most
of its memory traffic in the up-scaling: two transposed convolutions from the ``g × g`` image
tokens to ``4g × 4g × C/8`` features (with a layer norm and GELUs on them) and the hypernetwork
product. The predicted IoU is read from the IoU token *before* that, so a caller that drops every
candidate at or below an IoU threshold (AMG) need not up-scale prompts none of whose ``K``
candidates passes it. :class:`GatedPointDecoder` runs the reassociated decoder
(:func:`samscope.models.decoder.decode_reassociated`) to the IoU, asks a gate which prompts to keep and
up-scales only those, pass by pass (while the pass's image tokens are still in cache). The kept
prompts' logits are exactly those of :class:`~samscope.models.decoder.PointDecoder` (same
operations on the same rows).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from samscope.models.decoder import PointDecoder, decode_reassociated, upscale_and_predict

__all__ = ["Gate", "GatedPointDecoder", "iou_gate"]

#: ``gate(iou, index) -> keep``: predicted IoU ``(p, K)`` of a pass's prompts and their indices
#: ``(p,)`` into the call's points; returns a bool array ``(p,)`` of the prompts to up-scale.
Gate = Callable[[np.ndarray, np.ndarray], np.ndarray]


def iou_gate(thresh: float) -> Gate:
    """Keep the prompts with a candidate of predicted IoU ``> thresh`` (AMG's filter).

    >>> iou_gate(0.8)(np.array([[0.9, 0.1], [0.5, 0.8]]), np.arange(2)).tolist()
    [True, False]
    """

    def gate(iou: np.ndarray, index: np.ndarray) -> np.ndarray:
        return (np.asarray(iou) > thresh).any(axis=1)

    return gate


class GatedPointDecoder(PointDecoder):
    """:class:`~samscope.models.decoder.PointDecoder` that up-scales only the prompts a gate keeps.

    Same parameters as ``PointDecoder``; called with a gate it returns the kept rows only.
    """

    def decode(self, points_xy: np.ndarray, multimask: bool, gate: Gate | None = None):
        """Decode ``(P, 2)`` points ``(x, y)`` (input pixels).

        Parameters
        ----------
        points_xy : ndarray, (P, 2)
        multimask : bool
        gate : Gate, optional
            Which prompts to up-scale; None = all.

        Returns
        -------
        logits : torch.Tensor
            ``(R, K, 4g, 4g)`` float32 logits of the kept prompts.
        iou : torch.Tensor
            ``(P, K)`` float32 predicted IoU of every prompt.
        rows : ndarray of int64, (R,)
            The kept prompts, increasing.
        """
        n = len(points_xy)
        # without the reassociated path (or a gate) decode everything, then select the rows
        if gate is None or not self.fast:
            logits, iou = self(points_xy, multimask)
            if gate is None:
                return logits, iou, np.arange(n)
            rows = np.flatnonzero(gate(iou.numpy(), np.arange(n)))
            return logits[torch.from_numpy(rows)], iou, rows
        pts = torch.as_tensor(np.asarray(points_xy, np.float32)).reshape(-1, 1, 2)
        labels = torch.ones(pts.shape[0], 1, dtype=torch.long)
        sparse, _ = self.model.embed_prompts(points=pts, labels=labels)
        dec = self.model.sam.mask_decoder
        logits, ious, rows, start = [], [], [], 0
        with torch.inference_mode(), self.model.autocast():
            while start < n:
                chunk = self._next_chunk()
                part = sparse[start : start + chunk]
                t0 = time.perf_counter()
                keys, hyper, iou = decode_reassociated(dec, self.cache, part, None, multimask, upscale=False)
                if len(part) == chunk:  # the transformer's cost per prompt decides the pass size
                    cost = (time.perf_counter() - t0) / chunk
                    old = self._cost[chunk]
                    self._cost[chunk] = cost if old == 0 else 0.5 * old + 0.5 * cost
                iou = iou.float()
                index = np.arange(start, start + len(part))
                keep = np.flatnonzero(gate(iou.numpy(), index))
                if len(keep):
                    sel = torch.from_numpy(keep)
                    hires = getattr(self.cache, "hires", None)  # SAM2's image-side maps, shared
                    logits.append(upscale_and_predict(dec, keys[sel], hyper[sel], self.cache.grid,
                                                       hires=hires))  # fmt: skip
                    rows.append(index[keep])
                ious.append(iou)
                start += len(part)
        k = ious[0].shape[1] if ious else (3 if multimask else 1)
        side = 4 * self.cache.grid
        out = torch.cat(logits).float() if logits else torch.zeros((0, k, side, side))
        iou_all = torch.cat(ious) if ious else torch.zeros((0, k))
        return out, iou_all, np.concatenate(rows) if rows else np.zeros(0, np.int64)
