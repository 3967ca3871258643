"""Image container, axis strings, units and value checks shared by the readers and writers.

numpy only: the format libraries (tifffile, zarr, Pillow) are imported where they are used.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError

#: samscope's axis letters in their canonical order.
AXES = "TZYXC"
#: the spatial axes, in the order of :attr:`ImageData.pixel_size`.
SPATIAL_AXES = "ZYX"

# Lengths in nanometres per unit, for OME, OME-Zarr and ImageJ unit names (matched lower-case).
_NM_PER_UNIT = {
    "pm": 1e-3, "picometer": 1e-3, "picometre": 1e-3,
    "å": 0.1, "angstrom": 0.1, "ångström": 0.1,
    "nm": 1.0, "nanometer": 1.0, "nanometre": 1.0, "nanometers": 1.0, "nanometres": 1.0,
    "µm": 1e3, "μm": 1e3, "um": 1e3, "micron": 1e3, "microns": 1e3, "micrometer": 1e3,
    "micrometre": 1e3, "micrometers": 1e3, "micrometres": 1e3,
    "mm": 1e6, "millimeter": 1e6, "millimetre": 1e6,
    "cm": 1e7, "centimeter": 1e7, "centimetre": 1e7,
    "m": 1e9, "meter": 1e9, "metre": 1e9,
    "inch": 2.54e7, "in": 2.54e7,
}  # fmt: skip


@dataclass(frozen=True, eq=False)
class ImageData:
    """Pixels with their axes, physical pixel size and source.

    Parameters
    ----------
    data : numpy.ndarray or array-like
        The pixels, shaped as ``axes`` says. With ``read_image(..., lazy=True)`` this is a lazy
        array (``numpy.memmap``, ``zarr.Array`` or a read-only view over one) that supports
        ``shape``, ``dtype``, ``ndim``, basic indexing and ``numpy.asarray``.
    axes : str
        One letter per axis of ``data``, a subsequence of ``"TZYXC"`` in that order (time, depth,
        rows, columns, channels), always containing ``Y`` and ``X``: e.g. ``"YX"``, ``"ZYX"``,
        ``"TYX"``, ``"YXC"``, ``"TZYXC"``.
    pixel_size : tuple of float or None
        Physical pixel size in nanometres per spatial axis, in the order (z, y, x) restricted to the
        spatial axes present (so (y, x) for ``"YX"``). ``None`` when the file does not say; the
        z entry is ``nan`` when the file gives y and x but no z spacing.
    path : pathlib.Path or None
        The file the pixels came from.
    rgb : bool
        True when the ``C`` axis holds the red, green, blue samples of a colour image (PNG, JPEG,
        RGB TIFF) rather than separate fluorescence channels.
    """

    data: Any
    axes: str
    pixel_size: tuple[float, ...] | None = None
    path: Path | None = None
    rgb: bool = False

    def __post_init__(self) -> None:
        if not hasattr(self.data, "shape") or not hasattr(self.data, "dtype"):
            object.__setattr__(self, "data", np.asarray(self.data))
        if self.path is not None and not isinstance(self.path, Path):
            object.__setattr__(self, "path", Path(self.path))
        if self.pixel_size is not None:
            object.__setattr__(self, "pixel_size", tuple(float(v) for v in self.pixel_size))
        source = self.path if self.path is not None else "image"
        object.__setattr__(self, "axes", check_axes(self.axes, tuple(self.data.shape),
                                                    source=source))
        if self.axes != canonical_axes(self.axes):
            raise InputError(
                f"{_name(source)}: axes {self.axes!r} are not in samscope's order {AXES!r}; "
                f"use move_axes(data, {self.axes!r}, {canonical_axes(self.axes)!r})"
            )
        if self.pixel_size is not None:
            n = sum(a in SPATIAL_AXES for a in self.axes)
            if len(self.pixel_size) != n:
                raise InputError(
                    f"{_name(source)}: pixel_size {self.pixel_size} has {len(self.pixel_size)} "
                    f"values, expected {n} (one per spatial axis of {self.axes!r})"
                )
        if self.rgb and "C" not in self.axes:
            raise InputError(f"{_name(source)}: rgb=True needs a C axis, got axes {self.axes!r}")

    @property
    def spatial_axes(self) -> str:
        """The spatial axes present, e.g. ``"ZYX"`` or ``"YX"``."""
        return "".join(a for a in self.axes if a in SPATIAL_AXES)

    @property
    def ndim_spatial(self) -> int:
        """Number of spatial axes: 2 for an image, 3 for a volume."""
        return len(self.spatial_axes)

    @property
    def is_rgb(self) -> bool:
        """True when the channel axis holds the colours of an RGB image."""
        return self.rgb

    @property
    def is_lazy(self) -> bool:
        """True when ``data`` is not an in-memory ``numpy.ndarray`` (memory maps count as lazy)."""
        return not isinstance(self.data, np.ndarray) or isinstance(self.data, np.memmap)

    def shape_of(self, axis: str) -> int:
        """Size of ``axis`` (one of ``"TZYXC"``); 1 when the axis is absent."""
        axis = axis.upper()
        if len(axis) != 1 or axis not in AXES:
            raise InputError(f"unknown axis {axis!r}; expected one of {AXES!r}")
        return int(self.data.shape[self.axes.index(axis)]) if axis in self.axes else 1


def _name(source: Any) -> str:
    return f"'{source}'" if isinstance(source, Path) else str(source)


def canonical_axes(axes: str) -> str:
    """Return the letters of ``axes`` in samscope's order ``"TZYXC"``.

    >>> canonical_axes("CZYX")
    'ZYXC'
    """
    return "".join(a for a in AXES if a in axes.upper())


def check_axes(axes: str, shape: tuple[int, ...], *, source: Any = "image") -> str:
    """Validate an axis string against an array shape and return it upper-cased.

    Parameters
    ----------
    axes : str
        Axis letters, any order, e.g. ``"zyx"`` or ``"CYX"``.
    shape : tuple of int
        The array's shape; ``len(axes)`` must equal ``len(shape)``.
    source : str or pathlib.Path
        Named in the error message.

    Raises
    ------
    InputError
        When a letter is not one of ``TZYXC``, repeats, ``Y`` or ``X`` is missing, or the length
        does not match the number of dimensions.
    """
    where = _name(source)
    if not isinstance(axes, str):
        raise InputError(f"{where}: axes must be a string such as 'ZYX', got {axes!r}")
    up = axes.upper()
    bad = sorted({a for a in up if a not in AXES})
    if bad:
        raise InputError(
            f"{where}: unknown axis letter(s) {''.join(bad)!r} in axes {axes!r}; "
            f"expected letters from {AXES!r}"
        )
    if len(set(up)) != len(up):
        raise InputError(f"{where}: axes {axes!r} repeat a letter; each axis may appear once")
    if "Y" not in up or "X" not in up:
        raise InputError(f"{where}: axes {axes!r} must contain both 'Y' and 'X'")
    if len(up) != len(shape):
        raise InputError(
            f"{where}: axes {axes!r} name {len(up)} dimension(s) but the data has shape "
            f"{tuple(shape)} ({len(shape)}-D); give one letter per dimension"
        )
    return up


#: Lengths of a last axis that holds colour (RGB, RGBA).
COLOUR_CHANNELS = (3, 4)


def has_colour_axis(shape: tuple[int, ...], dtype: Any = None) -> bool:
    """The one RGB rule: a last axis of length 3 or 4 (of a 3-D or larger array) is colour.

    With ``dtype`` (arrays read from files without axis metadata) only a uint8 array counts:
    a 16-bit stack of 3 planes is not a colour image.

    >>> has_colour_axis((64, 64, 3)), has_colour_axis((64, 64, 3), np.uint16), has_colour_axis((3, 64))
    (True, False, False)
    """
    return (
        len(shape) >= 3
        and int(shape[-1]) in COLOUR_CHANNELS
        and (dtype is None or np.dtype(dtype) == np.uint8)
    )


def array_axes(shape: tuple[int, ...], axes: str | None = None, *, dtype: Any = None,
               colour: bool = True, source: Any = "image") -> str:
    """The axes of an array: ``axes`` checked against ``shape``, else the one rule.

    2-D → ``"YX"``; 3-D → ``"YXC"`` with a colour axis (:func:`has_colour_axis`), else ``"ZYX"``;
    4-D with a colour axis → ``"ZYXC"`` (``colour=False``: never a colour axis). Anything else
    raises :class:`InputError` asking for ``axes=``. Every place that decides axes or RGB from a shape (the modes, embeddings,
    overlays, training data, the readers) uses this rule.

    >>> array_axes((64, 64)), array_axes((64, 64, 3)), array_axes((5, 64, 64)), array_axes((5, 8, 8, 4))
    ('YX', 'YXC', 'ZYX', 'ZYXC')
    """
    if axes is not None:
        return check_axes(axes, shape, source=source)
    ndim = len(shape)
    colour = colour and has_colour_axis(shape, dtype)
    if ndim == 2:
        return "YX"
    if ndim == 3:
        return "YXC" if colour else "ZYX"
    if ndim == 4 and colour:
        return "ZYXC"
    raise InputError(
        f"{_name(source)}: cannot tell the axes of an image of shape {tuple(shape)}: expected (y, x), "
        "(y, x, 3), (z|t, y, x) or (z|t, y, x, 3); pass axes="
    )


def colour_to_grey(arr: np.ndarray) -> np.ndarray:
    """A ``(y, x, 3|4)`` colour plane as float32 grey (mean of R, G, B); other arrays unchanged."""
    if arr.ndim == 3 and has_colour_axis(arr.shape):
        return arr[..., :3].astype(np.float32).mean(axis=-1)
    return arr


def default_axes(shape: tuple[int, ...], dtype: Any, *, source: Any = "image",
                 allow_rgb: bool = True) -> str:
    """Axes assumed for an array whose file carries no axis metadata.

    2-D → ``"YX"``; 3-D → ``"YXC"`` when the last dimension is 3 or 4 and the dtype is uint8 (an RGB
    image), else ``"ZYX"``; 4-D uint8 with a last dimension of 3 or 4 → ``"ZYXC"``. Anything else is
    ambiguous and raises :class:`InputError` asking for ``axes=``.
    """
    ndim = len(shape)
    try:
        return array_axes(shape, dtype=np.dtype(dtype), colour=allow_rgb)
    except InputError:
        pass
    raise InputError(
        f"{_name(source)}: cannot tell the axes of a {ndim}-D array of shape {tuple(shape)} "
        "(expected a 2-D YX image, a 3-D ZYX stack or a YXC colour image); "
        "pass axes=, e.g. axes='TZYX' or axes='ZYXC'"
    )


def fill_unknown_axes(axes: str, shape: tuple[int, ...], *, source: Any = "image") -> str:
    """Name the one ``?`` letter of a partly known axis string (tifffile's ``Q``/``I``).

    A single unknown axis becomes ``Z`` (else ``T``, else ``C``, whichever is free), as a plain
    multi-page TIFF is a z-stack. Two or more unknown axes are ambiguous: :class:`InputError`
    asks for ``axes=``.
    """
    unknown = [i for i, a in enumerate(axes) if a == "?"]
    if not unknown:
        return axes
    free = [a for a in "ZTC" if a not in axes]
    if len(unknown) > 1 or not free:
        raise InputError(
            f"{_name(source)}: cannot tell the axes of shape {tuple(shape)} from the file "
            f"(known: {axes.replace('?', '·')!r}); pass axes= with one letter of {AXES!r} per "
            "dimension, e.g. axes='TZYX'"
        )
    return axes.replace("?", free[0])


def move_axes(data: Any, axes: str, target: str) -> np.ndarray:
    """Reorder ``data`` from ``axes`` to ``target``, adding or dropping singleton axes.

    Parameters
    ----------
    data : array-like
        Array with one dimension per letter of ``axes``.
    axes : str
        Current axis letters, e.g. ``"TYX"``.
    target : str
        Wanted axis letters, e.g. ``"TZYXC"``. Letters missing from ``axes`` become size-1 axes;
        letters of ``axes`` missing from ``target`` must have size 1 and are dropped.

    Returns
    -------
    numpy.ndarray
        A view of ``data`` (no copy for numpy input) with ``len(target)`` dimensions.

    >>> move_axes(np.zeros((5, 4, 3)), "TYX", "TZYXC").shape
    (5, 1, 4, 3, 1)
    """
    arr = np.asarray(data)
    src = check_axes(axes, arr.shape, source="move_axes")
    tgt = target.upper()
    if len(set(tgt)) != len(tgt) or any(a not in AXES for a in tgt):
        raise InputError(f"move_axes: target {target!r} must be unique letters from {AXES!r}")
    dropped = [a for a in src if a not in tgt]
    for a in dropped:
        if arr.shape[src.index(a)] != 1:
            raise InputError(
                f"move_axes: cannot drop axis {a!r} of size {arr.shape[src.index(a)]} going "
                f"from {axes!r} to {target!r}; select one index along it first"
            )
    if dropped:
        arr = arr.squeeze(axis=tuple(src.index(a) for a in dropped))
        src = "".join(a for a in src if a not in dropped)
    arr = np.transpose(arr, [src.index(a) for a in tgt if a in src])
    new = tuple(i for i, a in enumerate(tgt) if a not in src)
    return np.expand_dims(arr, new) if new else arr


def to_nm(value: Any, unit: str | None) -> float | None:
    """Convert a length in ``unit`` to nanometres; ``None`` when the unit is unknown or absent."""
    if unit is None or value is None:
        return None
    name = str(unit).strip()
    if "\\u" in name:  # ImageJ writes e.g. '\\u00B5m'
        name = name.encode("ascii", "backslashreplace").decode("unicode_escape")
    factor = _NM_PER_UNIT.get(name.lower()) or _NM_PER_UNIT.get(name)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if factor is None or not math.isfinite(v) or v <= 0:
        return None
    return float(f"{v * factor:.7g}")  # drop rational-tag rounding noise (650.0000001 → 650)


def _spatial_count(axes: str) -> int:
    return sum(a in SPATIAL_AXES for a in axes)


def validate_image(data: Any, *, name: str | None = None, spatial_ndim: int | None = None,
                   axes: str | None = None) -> None:
    """Raise :class:`InputError` when ``data`` cannot be segmented.

    Parameters
    ----------
    data : numpy.ndarray or ImageData
        The image. For an :class:`ImageData` its ``axes`` and ``path`` are used.
    name : str, optional
        How the image is named in messages (default: the file name, else ``"image"``).
    spatial_ndim : int, optional
        Required number of spatial axes: 2 for (Y, X), 3 for (Z, Y, X). Without ``axes`` a 2-D
        image may also be (Y, X, C) with 3 or 4 channels (and a volume (Z, Y, X, C)).
    axes : str, optional
        Axis letters of ``data``; when given, its spatial letters are counted.

    Raises
    ------
    InputError
        For an empty array (a zero-size axis), a complex or non-numeric dtype, the wrong number of
        dimensions, or NaN / infinite values (the message says how many). Lazy data (memory maps,
        zarr arrays, :class:`LazyView`) is checked by shape and dtype only, so that a huge image is
        not read whole. A constant image is *not* an error: see :func:`is_constant`.
    """
    if isinstance(data, ImageData):
        axes = data.axes if axes is None else axes
        name = name or (data.path.name if data.path is not None else None)
        data = data.data
    label = f"{name or 'image'}"
    shape = tuple(data.shape)
    dtype = np.dtype(data.dtype)
    if dtype.kind == "c":
        raise InputError(f"{label}: complex dtype {dtype} is not supported; pass the magnitude "
                         "(numpy.abs) or the real part")
    if dtype.kind not in "biuf":
        raise InputError(f"{label}: dtype {dtype} is not a numeric image type "
                         "(expected bool, integer or float)")
    if 0 in shape:
        zero = ", ".join(f"axis {i}{f' ({axes[i]})' if axes else ''}"
                         for i, n in enumerate(shape) if n == 0)
        raise InputError(f"{label} is empty: {zero} has size 0 (shape {shape})")
    if axes is not None:
        up = check_axes(axes, shape, source=label)
        if spatial_ndim is not None and _spatial_count(up) != spatial_ndim:
            raise InputError(
                f"{label}: expected {spatial_ndim} spatial axes, got axes {up!r} with shape "
                f"{shape} ({_spatial_count(up)} spatial)"
            )
    elif spatial_ndim is not None:
        ok = len(shape) == spatial_ndim or (len(shape) == spatial_ndim + 1 and has_colour_axis(shape))
        if not ok:
            want = "(Y, X)" if spatial_ndim == 2 else "(Z, Y, X)" if spatial_ndim == 3 else \
                f"{spatial_ndim} spatial axes"
            raise InputError(
                f"{label}: expected a {spatial_ndim}-D image {want}, optionally with a last axis "
                f"of 3 or 4 channels; got shape {shape} ({len(shape)}-D)"
            )
    elif len(shape) < 2:
        raise InputError(f"{label}: expected at least 2-D (Y, X); got shape {shape}")
    if dtype.kind == "f" and isinstance(data, np.ndarray) and not isinstance(data, np.memmap):
        finite = np.isfinite(data)
        if not finite.all():
            n_nan = int(np.count_nonzero(np.isnan(data)))
            n_inf = int(data.size - np.count_nonzero(finite) - n_nan)
            if n_nan == data.size:
                raise InputError(f"{label}: all {data.size} values are NaN")
            raise InputError(
                f"{label}: contains {n_nan} NaN and {n_inf} infinite value(s) out of {data.size}; "
                "replace or mask them (e.g. numpy.nan_to_num) first"
            )


def is_constant(data: Any) -> bool:
    """True when every finite value of ``data`` is the same (or there is none).

    Automatic segmentation returns an empty result for such an image instead of failing. Lazy
    data is read whole.
    """
    arr = np.asarray(data.data if isinstance(data, ImageData) else data)
    if arr.size == 0:
        return True
    if arr.dtype.kind == "f":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            arr = arr[np.isfinite(arr)]
        if arr.size == 0:
            return True
    return bool(arr.min() == arr.max())


def as_float(data: Any) -> np.ndarray:
    """Return ``data`` as float32 without rescaling or wrap-around.

    float32 input is returned as is (no copy); integers keep their values (uint16 stays in
    0..65535; integers above 2**24 lose precision), bool becomes 0.0/1.0.

    Raises
    ------
    InputError
        For complex or non-numeric dtypes, and float64 values outside the float32 range.
    """
    arr = np.asarray(data.data if isinstance(data, ImageData) else data)
    if arr.dtype == np.float32:
        return arr
    if arr.dtype.kind not in "biuf":
        raise InputError(f"as_float: dtype {arr.dtype} is not a numeric image type")
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 4 and arr.size:
        with np.errstate(invalid="ignore"):
            big = np.nanmax(np.abs(np.where(np.isfinite(arr), arr, 0)))
        if big > np.finfo(np.float32).max:
            raise InputError(f"as_float: values up to {big:g} do not fit float32; rescale first")
    return arr.astype(np.float32)


class LazyView:
    """A read-only lazy view of a lazy array: axes reordered, some fixed at an index.

    Only basic indexing (integers, slices, ``...``) is supported; each access reads just the
    requested part of ``base``.

    Parameters
    ----------
    base : array-like
        The stored array (e.g. ``zarr.Array``).
    perm : tuple of int
        ``perm[i]`` is the ``base`` axis shown as axis ``i`` of the view.
    fixed : dict of int to int, optional
        ``base`` axes held at one index (e.g. the selected channel); not part of the view.
    """

    def __init__(self, base: Any, perm: tuple[int, ...], fixed: dict[int, int] | None = None):
        self.base = base
        self.perm = tuple(int(p) for p in perm)
        self.fixed = dict(fixed or {})
        if sorted([*self.perm, *self.fixed]) != list(range(len(base.shape))):
            raise ValueError(f"perm {perm} and fixed {fixed} do not cover shape {base.shape}")
        self.shape = tuple(int(base.shape[p]) for p in self.perm)
        self.dtype = np.dtype(base.dtype)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"LazyView(shape={self.shape}, dtype={self.dtype}, base={type(self.base).__name__})"

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = next(j for j, k in enumerate(key) if k is Ellipsis)
            key = key[:i] + (slice(None),) * (self.ndim - len(key) + 1) + key[i + 1:]
        key = key + (slice(None),) * (self.ndim - len(key))
        if len(key) != self.ndim or not all(isinstance(k, slice | int | np.integer) for k in key):
            raise IndexError("LazyView supports integers, slices and ... only")
        base_key: list[Any] = [slice(None)] * len(self.base.shape)
        for axis, index in self.fixed.items():
            base_key[axis] = index
        for i, k in enumerate(key):
            base_key[self.perm[i]] = k
        out = np.asarray(self.base[tuple(base_key)])
        kept_base = [b for b, k in enumerate(base_key) if not isinstance(k, int | np.integer)]
        kept_view = [self.perm[i] for i, k in enumerate(key) if not isinstance(k, int | np.integer)]
        return np.transpose(out, [kept_base.index(b) for b in kept_view])

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self[...]
        return out if dtype is None else out.astype(dtype)


@dataclass(frozen=True, eq=False)
class RawImage:
    """What a format reader found, before axes are resolved and put in samscope's order.

    ``axes`` is in stored order, may contain ``?`` for axes the file does not name, or is None when
    the file says nothing; ``pixel_size`` maps ``"Z"``/``"Y"``/``"X"`` to nanometres.
    """

    data: Any
    axes: str | None = None
    pixel_size: dict[str, float] | None = None
    rgb: bool = False
