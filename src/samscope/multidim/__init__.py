"""Stacks along an axis (z for volumes, t for time series): propagation of prompted objects,
automatic 3-D segmentation with objects whole in 3-D, tracking through time with divisions
(interactive: :mod:`samscope.multidim.track`; lineage types: :mod:`samscope.multidim.lineage`).

Layers: ``multidim`` sits above ``instance`` (models → embeddings → prompting → instance →
multidim). Nothing happens on import.
"""

from samscope.multidim.lineage import Lineage, Track, TrackedSeries, make_continuous, track_points
from samscope.multidim.link import (
    LinkConfig,
    link_planes,
    object_contrast,
    trim_faded,
    watershed_3d,
)
from samscope.multidim.linking import LinkerConfig, link_series
from samscope.multidim.propagate import (
    ObjectPrompt,
    PlaneMask,
    PropagatedObject,
    Propagation,
    PropagationConfig,
    Propagator,
    propagate,
)
from samscope.multidim.stack import PlaneStack
from samscope.multidim.track import Tracker, TrackInfo, TrackingConfig, track_objects
from samscope.multidim.track3d import VolumeTracker
from samscope.multidim.volume import (
    METHODS,
    VolumeResult,
    link_stack,
    segment_volume,
    volume_scale,
    z_scale_of,
)

__all__ = [
    "METHODS",
    "Lineage",
    "LinkConfig",
    "LinkerConfig",
    "ObjectPrompt",
    "PlaneMask",
    "PlaneStack",
    "Track",
    "TrackInfo",
    "TrackedSeries",
    "Tracker",
    "TrackingConfig",
    "VolumeTracker",
    "Propagation",
    "PropagatedObject",
    "PropagationConfig",
    "Propagator",
    "VolumeResult",
    "link_planes",
    "link_series",
    "link_stack",
    "make_continuous",
    "object_contrast",
    "propagate",
    "segment_volume",
    "track_objects",
    "track_points",
    "trim_faded",
    "volume_scale",
    "watershed_3d",
    "z_scale_of",
]
