"""Which automatic segmentation modes a model supports, and the error when it does not.

- ``amg`` (automatic mask generation) and ``foreground`` (foreground-prompted) need only SAM's
  prompt decoder, which every model has;
- ``ais`` and ``apg`` need the instance-distance head (``model.instance_head``);
- ``distance`` needs the distance-map head (``model.distance_head``);
- ``concept`` (every object of a text phrase, :mod:`samscope.instance.concept`) needs SAM3's
  detector (``model.concept_model``); a SAM3 model runs only that mode.
"""

from __future__ import annotations

from typing import Any

from samscope.errors import InputError

__all__ = ["MODES", "require_mode", "supported_modes"]

#: Every automatic mode, in the order they are listed to users.
MODES = ("amg", "ais", "apg", "distance", "foreground", "concept")

#: The model attribute each mode needs beyond SAM's own decoder.
_NEEDS = {"ais": "instance_head", "apg": "instance_head", "distance": "distance_head", "concept": "concept_model"}


def supported_modes(model: Any) -> tuple[str, ...]:
    """The automatic modes ``model`` can run, in the order of :data:`MODES`.

    Parameters
    ----------
    model : SamscopeModel
        Any object with the optional ``instance_head`` / ``distance_head`` attributes.

    Returns
    -------
    tuple of str
    """
    if getattr(model, "concept_model", None) is not None and not hasattr(model, "decode"):
        return ("concept",)  # SAM3's detector alone (samscope.models.sam3.ConceptModel)
    return tuple(
        mode
        for mode in MODES
        if mode not in _NEEDS or getattr(model, _NEEDS[mode], None) is not None
    )


def require_mode(model: Any, mode: str) -> None:
    """Raise :class:`InputError`, listing the supported modes, unless ``model`` supports ``mode``."""
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; modes are: {', '.join(MODES)}")
    supported = supported_modes(model)
    if mode not in supported:
        name = getattr(getattr(model, "card", None), "name", None) or type(model).__name__
        need = _NEEDS.get(mode, "SAM prompt decoder").replace("_", " ")
        raise InputError(
            f"model {name!r} has no {need}, so it cannot run mode {mode!r}; "
            f"it supports: {', '.join(supported)}"
        )
