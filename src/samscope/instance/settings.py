"""One way to resolve a mode's settings against the model card, and the value checks they share.

Every mode's config dataclass leaves the fields a model card calibrates as ``None``;
:func:`resolve_settings` fills them — for every mode the same way: a config may say how its
fields follow from the card (a ``card_defaults(card)`` method, e.g. the foreground mode derives
its point spacing from the card's pixel size); otherwise each None field takes the card's
:class:`~samscope.models.card.AutomaticDefaults` value of the same name. Either way, the card's
``mode_settings`` for the config's mode (values calibrated for that mode alone) win over both.
Without a card, µSAM's published defaults (``AutomaticDefaults()``) apply.

>>> from samscope.instance.ais import AISConfig
>>> resolve_settings(AISConfig(min_size=5)).foreground_thresh, resolve_settings(AISConfig(min_size=5)).min_size
(0.5, 5)
"""

from __future__ import annotations

import math
from dataclasses import fields, replace
from numbers import Real
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.models.card import AutomaticDefaults

__all__ = [
    "automatic_defaults",
    "check_count",
    "check_sigma",
    "check_unit",
    "mode_of",
    "mode_settings",
    "resolve_settings",
]

#: The mode each config class belongs to (a config may also say so itself with ``MODE``).
_MODE_OF = {
    "AISConfig": "ais",
    "APGConfig": "apg",
    "AMGConfig": "amg",
    "DistanceConfig": "distance",
    "ForegroundConfig": "foreground",
    "ConceptConfig": "concept",
}


def automatic_defaults(card: Any = None) -> AutomaticDefaults:
    """The automatic-mode defaults of ``card`` (a ModelCard, an AutomaticDefaults or None)."""
    if card is None:
        return AutomaticDefaults()
    if isinstance(card, AutomaticDefaults):
        return card
    found = getattr(card, "automatic", None)
    return found if found is not None else AutomaticDefaults()


def mode_of(config: Any) -> str | None:
    """The automatic mode a config dataclass belongs to (None when unknown)."""
    return getattr(config, "MODE", None) or _MODE_OF.get(type(config).__name__)


def mode_settings(card: Any, mode: str | None) -> dict[str, Any]:
    """The values ``card`` calibrated for ``mode`` alone (its ``mode_settings`` triples).

    >>> auto = AutomaticDefaults(mode_settings=(("apg", "min_size", 50), ("distance", "peak_thresh", 0.3)))
    >>> mode_settings(auto, "apg")
    {'min_size': 50}
    """
    triples = getattr(automatic_defaults(card), "mode_settings", ()) or ()
    return {str(name): value for m, name, value in triples if m == mode}


def resolve_settings(config: Any, card: Any = None) -> Any:
    """``config`` with every None field taken from the model card (µSAM's defaults without one).

    Parameters
    ----------
    config : a mode's config dataclass (AISConfig, APGConfig, AMGConfig, ForegroundConfig, …)
    card : ModelCard, AutomaticDefaults or None

    Returns
    -------
    The same type, fields that were set kept.
    """
    hook = getattr(config, "card_defaults", None)
    if hook is not None:
        values = hook(card)
    else:
        auto = automatic_defaults(card)
        values = {f.name: getattr(auto, f.name) for f in fields(auto)}
    values = {**values, **mode_settings(card, mode_of(config))}
    unset = {
        f.name: values[f.name]
        for f in fields(config)
        if getattr(config, f.name) is None and f.name in values
    }
    return replace(config, **unset) if unset else config


def check_unit(name: str, value: object) -> None:
    """Raise :class:`InputError` unless ``value`` is a real number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) <= 1.0:
        raise InputError(f"{name} must be a number in [0, 1], got {value!r}")


def check_sigma(name: str, value: object) -> None:
    """Raise :class:`InputError` unless ``value`` is a finite real number >= 0."""
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(float(value))
        or float(value) < 0
    ):
        raise InputError(f"{name} must be a finite number >= 0, got {value!r}")


def check_count(name: str, value: object, *, minimum: int = 0) -> None:
    """Raise :class:`InputError` unless ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}, got {value!r}")
