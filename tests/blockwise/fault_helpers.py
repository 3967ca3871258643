"""What the Dask fault tests share: a slow threshold segmenter and a small image of blobs.

Register this module with ``cloudpickle.register_pickle_by_value`` before submitting its
segmenter: Dask workers cannot import ``tests/``.
"""

import time
from dataclasses import dataclass

import numpy as np
import tifffile

from samscope.blockwise import ThresholdSegmenter


@dataclass(frozen=True)
class SlowThreshold(ThresholdSegmenter):
    """A threshold segmenter that takes a while per block (so workers die mid-run)."""

    delay: float = 0.3

    def segment(self, block, axes):
        time.sleep(self.delay)
        return super().segment(block, axes)


def blob_image(path, seed: int):
    """A 192² uint8 TIFF of smoothed random blobs at ``path``; returns the path."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    img = ndi.uniform_filter((rng.random((192, 192)) > 0.6).astype(np.uint8) * 200, 5)
    tifffile.imwrite(path, img)
    return path
