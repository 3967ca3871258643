"""Simulated user prompts for training: clicks inside objects, boxes, corrective clicks.

Everything works on batches of ``P`` objects at once, on the tensors' device, with an explicit
:class:`torch.Generator`: a random pixel of each mask is the ``argmax`` of uniform noise inside it,
so there is no Python loop over objects.

Coordinates are ``(y, x)`` pixel indices of the grid the masks live on; boxes are
``(y0, x0, y1, x1)`` with exclusive ``y1``/``x1`` (as :mod:`samscope.prompting`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["boxes_from_masks", "central_points", "corrective_points", "random_points"]


def _pick(region: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One uniformly random ``True`` pixel per row of ``region`` ``(P, N)`` (row 0 if none)."""
    noise = torch.rand(region.shape, generator=generator, device=region.device)
    return torch.where(region, noise, torch.full_like(noise, -1.0)).argmax(dim=1)


def random_points(
    masks: torch.Tensor, *, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random pixel inside each mask.

    Parameters
    ----------
    masks : torch.Tensor
        bool ``(P, H, W)``.
    generator : torch.Generator, optional
        On the masks' device.

    Returns
    -------
    points : torch.Tensor
        long ``(P, 2)`` ``(y, x)``.
    valid : torch.Tensor
        bool ``(P,)``: False for empty masks (their point is ``(0, 0)``).
    """
    p, h, w = masks.shape
    flat = masks.reshape(p, h * w)
    index = _pick(flat, generator)
    return torch.stack([index // w, index % w], dim=1), flat.any(dim=1)


def central_points(masks: torch.Tensor) -> torch.Tensor:
    """The most interior pixel of each mask (maximum of its distance transform), as a user clicks.

    Parameters
    ----------
    masks : numpy.ndarray or torch.Tensor
        bool ``(P, H, W)``.

    Returns
    -------
    torch.Tensor
        long ``(P, 2)`` ``(y, x)`` (on the CPU).
    """
    import numpy as np
    from scipy import ndimage as ndi

    data = masks.cpu().numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)
    out = np.zeros((len(data), 2), np.int64)
    for i, m in enumerate(data):
        if m.any():
            d = ndi.distance_transform_edt(np.pad(m, 1))[1:-1, 1:-1]
            out[i] = np.unravel_index(int(np.argmax(d)), m.shape)
    return torch.from_numpy(out)


def boxes_from_masks(
    masks: torch.Tensor,
    *,
    distortion: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Bounding boxes of masks, each side optionally pushed outwards at random (µSAM).

    Parameters
    ----------
    masks : torch.Tensor
        bool ``(P, H, W)``, non-empty.
    distortion : float
        Each side moves out by ``U(0, distortion)`` times the box's extent along that axis,
        clipped to the grid (µSAM's ``box_distortion_factor``, 0.025 by default there).
    generator : torch.Generator, optional

    Returns
    -------
    torch.Tensor
        float32 ``(P, 4)`` ``(y0, x0, y1, x1)``, ``y1``/``x1`` exclusive.
    """
    p, h, w = masks.shape
    rows, cols = masks.any(dim=2), masks.any(dim=1)  # (P, H), (P, W)
    ar_h = torch.arange(h, device=masks.device)
    ar_w = torch.arange(w, device=masks.device)
    big = torch.tensor(1 << 30, device=masks.device)
    y0 = torch.where(rows, ar_h, big).amin(dim=1)
    y1 = torch.where(rows, ar_h, -1).amax(dim=1) + 1
    x0 = torch.where(cols, ar_w, big).amin(dim=1)
    x1 = torch.where(cols, ar_w, -1).amax(dim=1) + 1
    boxes = torch.stack([y0, x0, y1, x1], dim=1).float()
    if distortion > 0:
        extent = torch.stack([y1 - y0, x1 - x0, y1 - y0, x1 - x0], dim=1).float()
        push = torch.rand((p, 4), generator=generator, device=masks.device) * distortion * extent
        sign = torch.tensor([-1.0, -1.0, 1.0, 1.0], device=masks.device)
        boxes = (boxes + sign * push).round()
        upper = torch.tensor([h, w, h, w], device=masks.device, dtype=boxes.dtype)
        boxes = torch.minimum(boxes.clamp(min=0), upper)
    return boxes


def corrective_points(
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    margin: int = 3,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One positive and one negative corrective click per object, from the error regions.

    As in the µSAM preprint (Archit et al. 2025, Methods, step d) and µSAM's
    ``IterativePromptGenerator``: the positive click lies where the object was missed (target and not predicted), the negative click where the
    prediction is wrong (predicted and not target). Without such a region: positive from the
    correctly predicted object, else anywhere in the object; negative from the background inside
    the object's bounding box grown by ``margin`` pixels, else anywhere in the background.

    Parameters
    ----------
    prediction, target : torch.Tensor
        bool ``(P, H, W)``.
    margin : int
        Growth of the bounding box for the negative fallback.
    generator : torch.Generator, optional

    Returns
    -------
    points : torch.Tensor
        long ``(P, 2, 2)``: ``[:, 0]`` the positive, ``[:, 1]`` the negative click, ``(y, x)``.
    labels : torch.Tensor
        long ``(P, 2)``: ``[1, 0]`` per object.
    """
    p, h, w = target.shape
    pred = prediction.reshape(p, h * w)
    tgt = target.reshape(p, h * w)
    missed = tgt & ~pred
    wrong = pred & ~tgt

    def first_nonempty(*regions: torch.Tensor) -> torch.Tensor:
        out = regions[-1]
        for region in reversed(regions[:-1]):
            out = torch.where(region.any(dim=1, keepdim=True), region, out)
        return out

    positive = first_nonempty(missed, tgt & pred, tgt, torch.ones_like(tgt))
    # background ring around the object: its bounding box grown by `margin`, minus the object
    grown = F.max_pool2d(
        target[:, None].float(), kernel_size=2 * margin + 1, stride=1, padding=margin
    )[:, 0]
    rows = grown.amax(dim=2) > 0  # (P, H)
    cols = grown.amax(dim=1) > 0  # (P, W)
    box = (rows[:, :, None] & cols[:, None, :]).reshape(p, h * w)
    negative = first_nonempty(wrong, box & ~tgt, ~tgt, torch.ones_like(tgt))
    pos = _pick(positive, generator)
    neg = _pick(negative, generator)
    index = torch.stack([pos, neg], dim=1)
    points = torch.stack([index // w, index % w], dim=-1)
    labels = torch.tensor([1, 0], device=target.device).expand(p, 2)
    return points, labels
