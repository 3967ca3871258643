"""Shrink each object to its bright core: a per-object Otsu cut on the image (pure numpy/scipy).

Why: planes of a 3-D stack away from focus (e.g. the top and bottom planes of a confocal
nucleus stack) show each nucleus as a wide, dim halo. A segmentation model outlines the halo,
while a reference made from the 3-D object outlines the much smaller section through it, so the
masks are right in number and place but too large (CHO planes z 3: 10 of 10 nuclei found, mSA
0.13). Cutting each object at an intensity threshold chosen on its own neighbourhood moves the
border to where the intensity falls, and leaves sharp, in-focus objects almost unchanged.

For each object of ``labels``:

1. the image is smoothed (Gaussian, ``sigma`` pixels) and the object's bounding box grown by
   ``grow`` times half its larger side;
2. the threshold is ``mix`` × Otsu's threshold of the grown box + (1 − ``mix``) × its minimum
   (``mix`` < 1 is a gentler cut);
3. the object keeps its pixels above the threshold, holes filled, largest 8-connected part.

Objects darker than their surroundings (phase contrast, bright-field: the object's mean is not
above the mean of the rest of its grown box) are left as they are, as are objects the cut would
empty or shrink below ``min_keep`` of their area.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from samscope.errors import InputError

__all__ = ["refine_to_core"]


def refine_to_core(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    mix: float = 0.7,
    grow: float = 1.0,
    sigma: float = 2.0,
    min_keep: float = 0.2,
) -> np.ndarray:
    """Each bright object cut to where its intensity stands above its neighbourhood's Otsu level.

    Parameters
    ----------
    image : numpy.ndarray, (H, W)
        The grey image the labels belong to.
    labels : numpy.ndarray of int, (H, W)
        Instance labels (0 background).
    mix : float in [0, 1]
        Weight of Otsu's threshold against the neighbourhood's minimum (1: Otsu's own).
    grow : float >= 0
        The neighbourhood: the object's box grown by ``grow`` × half its larger side.
    sigma : float >= 0
        Gaussian smoothing of the image first (pixels).
    min_keep : float in [0, 1]
        An object the cut would shrink below this fraction of its area is kept whole.

    Returns
    -------
    numpy.ndarray
        New labels (same dtype and ids; an object only loses pixels).

    Examples
    --------
    >>> yy, xx = np.mgrid[:40, :40]
    >>> blur = np.exp(-((yy - 20) ** 2 + (xx - 20) ** 2) / (2 * 6.0**2))  # a dim, wide halo
    >>> labels = ((yy - 20) ** 2 + (xx - 20) ** 2 < 15**2).astype(np.int32)
    >>> int(labels.sum()), int((refine_to_core(blur, labels) > 0).sum())  # the halo cut to its core
    (697, 373)
    """
    from skimage.filters import threshold_otsu

    img = np.asarray(image)
    lab = np.asarray(labels)
    if img.ndim != 2 or lab.shape != img.shape:
        raise InputError(f"image and labels must be 2-D of one shape, got {img.shape} and {lab.shape}")
    if not (0.0 <= mix <= 1.0 and grow >= 0 and sigma >= 0 and 0.0 <= min_keep <= 1.0):
        raise InputError("mix and min_keep must be in [0, 1], grow and sigma >= 0")
    smooth = ndi.gaussian_filter(img.astype(np.float32), sigma) if sigma > 0 else img.astype(np.float32)
    out = lab.copy()
    eight = np.ones((3, 3), bool)
    for index, sl in enumerate(ndi.find_objects(lab), start=1):
        if sl is None:
            continue
        g = int(grow * max(sl[0].stop - sl[0].start, sl[1].stop - sl[1].start) / 2)
        box = tuple(slice(max(s.start - g, 0), min(s.stop + g, n)) for s, n in zip(sl, lab.shape, strict=True))
        region, obj = smooth[box], lab[box] == index
        rest = region[~obj]
        if rest.size == 0 or float(region[obj].mean()) <= float(rest.mean()):
            continue  # dark on bright (or no surround): not a blurred fluorescent halo
        lo = float(region.min())
        thr = mix * float(threshold_otsu(region)) + (1.0 - mix) * lo if region.max() > lo else lo
        keep = ndi.binary_fill_holes(obj & (region > thr))
        parts, n = ndi.label(keep, structure=eight)
        if n > 1:
            keep = parts == int(np.argmax(np.bincount(parts.ravel())[1:])) + 1
        area = int(np.count_nonzero(obj))
        if np.count_nonzero(keep) < max(1, min_keep * area):
            continue
        view = out[box]
        view[obj & ~keep] = 0
    return out
