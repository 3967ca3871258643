"""Images in and out: TIFF / OME-TIFF / ImageJ TIFF, PNG / JPEG / BMP, NumPy and zarr / OME-Zarr.

Readers return :class:`ImageData` (pixels, samscope axis letters from ``"TZYXC"``, pixel size in
nanometres); writers are atomic (temporary file beside the target, then ``os.replace``) and refuse
to overwrite unless asked. Inputs are never modified. Bad input raises
:class:`samscope.errors.InputError` naming the file, the axis or value, and what was expected.

Importing this package loads numpy only; tifffile, zarr and Pillow load on first use.

>>> import numpy as np
>>> from samscope.io import ImageData
>>> ImageData(np.zeros((4, 5), np.uint8), "YX").ndim_spatial
2
"""

from __future__ import annotations

from samscope.io._atomic import atomic_target
from samscope.io._core import (
    AXES,
    COLOUR_CHANNELS,
    ImageData,
    LazyView,
    array_axes,
    as_float,
    canonical_axes,
    check_axes,
    colour_to_grey,
    default_axes,
    has_colour_axis,
    is_constant,
    move_axes,
    to_nm,
    validate_image,
)
from samscope.io._read import (
    DEFAULT_PATTERNS,
    SUPPORTED,
    check_labels,
    label_dtype,
    list_images,
    read_image,
    read_labels,
)
from samscope.io._write import write_image, write_labels

__all__ = [
    "AXES",
    "COLOUR_CHANNELS",
    "DEFAULT_PATTERNS",
    "SUPPORTED",
    "ImageData",
    "LazyView",
    "array_axes",
    "as_float",
    "atomic_target",
    "canonical_axes",
    "check_axes",
    "check_labels",
    "colour_to_grey",
    "default_axes",
    "has_colour_axis",
    "is_constant",
    "label_dtype",
    "list_images",
    "move_axes",
    "read_image",
    "read_labels",
    "to_nm",
    "validate_image",
    "write_image",
    "write_labels",
]
