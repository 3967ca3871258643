"""Stacks along an axis (z for volumes, t for time series): propagation of prompted objects,
automatic 3-D segmentation with objects whole in 3-D.

Layers: ``multidim`` sits above ``instance`` (models → embeddings → prompting → instance →
multidim). Nothing happens on import.
"""

from samscope.multidim.link import (
    LinkConfig,
    link_planes,
    object_contrast,
    trim_faded,
    watershed_3d,
)
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
    "LinkConfig",
    "ObjectPrompt",
    "PlaneMask",
    "PlaneStack",
    "Propagation",
    "PropagatedObject",
    "PropagationConfig",
    "Propagator",
    "VolumeResult",
    "link_planes",
    "link_stack",
    "object_contrast",
    "propagate",
    "segment_volume",
    "trim_faded",
    "volume_scale",
    "watershed_3d",
    "z_scale_of",
]
