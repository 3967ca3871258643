"""Images of any size: blockwise segmentation, in one process or on Dask, stitched exactly.

The image is read block by block (:mod:`~samscope.blockwise.source`), each block segmented with
a halo around its core (:mod:`~samscope.blockwise.grid`, :mod:`~samscope.blockwise.segmenter`;
the model loaded once per process, the object size estimated once for the image), neighbouring
blocks' objects matched on their overlaps and merged by union-find into globally unique,
sequential ids (:mod:`~samscope.blockwise.stitch`), and the labels written into a chunked
OME-Zarr as the blocks finish, with a record of finished blocks so that an interrupted run
resumes (:mod:`~samscope.blockwise.store`). :func:`segment_blockwise` runs it all
(:mod:`~samscope.blockwise.run`); :func:`~samscope.blockwise.cluster.dask_client` makes the
Dask cluster (local, an existing scheduler, or SLURM/LSF/PBS through dask-jobqueue).

Importing this package loads numpy only; zarr, scipy, torch and dask load on first use.
"""

from __future__ import annotations

from samscope.blockwise.grid import Block, BlockGrid
from samscope.blockwise.run import (
    BlockwiseRequest,
    BlockwiseResult,
    PhaseProgress,
    segment_blockwise,
)
from samscope.blockwise.segmenter import ModelSegmenter, ThresholdSegmenter
from samscope.blockwise.source import ImageSource
from samscope.blockwise.stitch import global_lookups, match_overlap, stitch_in_memory
from samscope.blockwise.store import BlockStore

__all__ = [
    "Block",
    "BlockGrid",
    "BlockStore",
    "BlockwiseRequest",
    "BlockwiseResult",
    "ImageSource",
    "ModelSegmenter",
    "PhaseProgress",
    "ThresholdSegmenter",
    "global_lookups",
    "match_overlap",
    "segment_blockwise",
    "stitch_in_memory",
]
