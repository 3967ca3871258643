"""What every simulator shares: :class:`SimulatedSample`, configuration checks and seeding.

Every simulated sample ``i`` of a run with seed ``s`` is drawn from its own random stream,
``numpy.random.SeedSequence(s, spawn_key=(i,))`` (:func:`sample_rng`), so a sample depends only
on ``(s, i)``. :mod:`samscope.simulate.dataset` (dispatch, datasets on disk) re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

import numpy as np

from samscope.errors import InputError

__all__ = [
    "SimulatedSample",
    "check_camera",
    "check_count",
    "check_fraction",
    "check_positive",
    "check_range",
    "check_shape",
    "config_to_dict",
    "labels_dtype",
    "resolve_config",
    "sample_rng",
    "sample_seeds",
    "simulate_samples",
]


@dataclass(frozen=True, eq=False)
class SimulatedSample:
    """One simulated image with its instance ground truth.

    Attributes
    ----------
    image : numpy.ndarray
        float32 ``(y, x)`` raw photon-count-like intensities (Poisson noise included).
    labels : numpy.ndarray
        uint16 (uint32 beyond 65,535 objects) ``(y, x)`` label image, 0 = background. Where
        objects overlap, the simulator's documented tie rule decides.
    masks : numpy.ndarray or None
        bool ``(n, y, x)`` per-object masks that may overlap (mitochondria); ``None`` where objects
        never overlap (then ``labels`` is complete).
    foreground : numpy.ndarray
        bool ``(y, x)``: pixels that belong to at least one object.
    params : dict
        JSON-serialisable: the seed and sample index, every configuration field and every value
        drawn for this sample.
    pixel_size_nm : float
        Sample-space pixel size in nm.
    """

    image: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None
    foreground: np.ndarray
    params: dict = field(default_factory=dict)
    pixel_size_nm: float = 80.0

    @property
    def n_objects(self) -> int:
        """Number of objects (masks if present, else distinct labels)."""
        if self.masks is not None:
            return int(self.masks.shape[0])
        return int(np.count_nonzero(np.unique(self.labels)))


def check_range(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    exclusive: bool = False,
    maximum: float | None = None,
    integer: bool = False,
) -> tuple:
    """Validate a ``(min, max)`` parameter and return it as a tuple of float (or int).

    Raises :class:`~samscope.errors.InputError` with a message naming ``name`` when the value is
    not a pair, ``min > max``, or a bound is outside ``[minimum, maximum]``.
    """
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a (min, max) pair, got {value!r}") from None
    cast = int if integer else float
    try:
        lo_c, hi_c = cast(lo), cast(hi)
    except (TypeError, ValueError):
        raise InputError(f"{name} must hold numbers, got {value!r}") from None
    if integer and (lo_c != lo or hi_c != hi):
        raise InputError(f"{name} must hold integers, got {value!r}")
    if not (np.isfinite(lo_c) and np.isfinite(hi_c)):
        raise InputError(f"{name} must be finite, got {value!r}")
    if lo_c > hi_c:
        raise InputError(f"{name}: min ({lo_c}) is greater than max ({hi_c})")
    if minimum is not None:
        if exclusive and not lo_c > minimum:
            raise InputError(f"{name} must be > {minimum}, got {value!r}")
        if not exclusive and lo_c < minimum:
            raise InputError(f"{name} must be >= {minimum}, got {value!r}")
    if maximum is not None and hi_c > maximum:
        raise InputError(f"{name} must be <= {maximum}, got {value!r}")
    return (lo_c, hi_c)


def check_shape(shape: Any, *, minimum: int = 16) -> tuple[int, int]:
    """Validate an image shape ``(y, x)``."""
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape must be two integers (y, x), got {shape!r}") from None
    if h < minimum or w < minimum:
        raise InputError(f"shape must be at least {minimum}×{minimum} pixels, got {shape!r}")
    return (h, w)


def config_to_dict(config: Any) -> dict:
    """JSON-serialisable dictionary of a (nested) configuration dataclass."""
    out: dict[str, Any] = {}
    for f in fields(config):
        v = getattr(config, f.name)
        if is_dataclass(v):
            v = config_to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out


def resolve_config(cls: type, config: Any, overrides: dict) -> Any:
    """``config`` (or ``cls()``) with ``overrides`` applied; unknown names are an InputError."""
    if config is None:
        config = cls()
    elif not isinstance(config, cls):
        raise InputError(f"config must be a {cls.__name__}, got {type(config).__name__}")
    if overrides:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InputError(
                f"unknown {cls.__name__} parameter(s): {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        config = replace(config, **overrides)
    return config


def sample_seeds(n: int, rng: int | np.random.Generator | None) -> tuple[int, list[int]]:
    """Root seed and sample indices for ``n`` samples drawn with ``rng``.

    An ``int`` is the root seed itself; a Generator (or ``None``, fresh entropy) supplies one.
    Sample ``i`` is then drawn from ``SeedSequence(seed, spawn_key=(i,))``.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InputError(f"n (number of samples) must be a positive integer, got {n!r}")
    if rng is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    elif isinstance(rng, np.random.Generator):
        seed = int(rng.integers(2**63))
    elif isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        if rng < 0:
            raise InputError(f"rng seed must be >= 0, got {rng}")
        seed = int(rng)
    else:
        raise InputError(f"rng must be an int, a numpy Generator or None, got {type(rng).__name__}")
    return seed, list(range(int(n)))


def sample_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of sample ``index`` of a run with root ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(index),)))


def labels_dtype(n: int) -> type:
    """uint16 for up to 65,535 objects, else uint32 (:func:`samscope.labels.label_dtype`)."""
    from samscope.labels import label_dtype

    return label_dtype(n).type


def check_fraction(name: str, value: float, *, high: float = 1.0) -> None:
    """Raise an InputError unless ``0 <= value <= high``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not 0 <= v <= high:
        raise InputError(f"{name} must be in [0, {high}], got {value!r}")


def check_camera(cfg: Any) -> None:
    """Check the blur and camera ranges widefield simulators share (``blur_px``, ``gain``,
    ``offset``, ``read_noise``) and store them back as float pairs on the frozen ``cfg``."""
    s = object.__setattr__
    s(cfg, "blur_px", check_range("blur_px", cfg.blur_px, minimum=0, maximum=20))
    s(cfg, "gain", check_range("gain", cfg.gain, minimum=0, exclusive=True))
    s(cfg, "offset", check_range("offset", cfg.offset, minimum=0, maximum=60000))
    s(cfg, "read_noise", check_range("read_noise", cfg.read_noise, minimum=0))


def check_count(name: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an int; InputError unless it is a whole number >= ``minimum`` (not a bool)."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive(name: str, value: Any) -> None:
    """InputError unless ``value`` is a number > 0."""
    if not float(value) > 0:
        raise InputError(f"{name} must be > 0, got {value!r}")


def simulate_samples(
    one, cls: type, n: int, shape: Any, rng: Any, config: Any, overrides: dict
) -> list[SimulatedSample]:
    """``n`` samples of the simulator ``one(shape, cfg, seed=, index=)`` with config class ``cls``.

    The body of every public simulator function (``nuclei``, ``cells``, ``mitochondria``,
    :func:`samscope.simulate.dataset.simulate`): validate the configuration and shape, draw the root seed,
    simulate sample by sample.
    """
    cfg = resolve_config(cls, config, overrides)
    shape = check_shape(shape)
    seed, indices = sample_seeds(n, rng)
    return [one(shape, cfg, seed=seed, index=i) for i in indices]
