"""SAM models: the registry of named models, loading, checkpoints and extra heads.

Importing this package is cheap (no torch); the names below load their module when first used.

>>> from samscope.models import get_card
>>> get_card("vit_b_lm").architecture
'vit_b'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["load_model", "list_models", "get_card", "ModelCard", "SamscopeModel"]

_LAZY = {
    "load_model": "samscope.models.registry",
    "list_models": "samscope.models.registry",
    "get_card": "samscope.models.registry",
    "ModelCard": "samscope.models.card",
    "SamscopeModel": "samscope.models.sam",
}

if TYPE_CHECKING:  # pragma: no cover
    from samscope.models.card import ModelCard
    from samscope.models.registry import get_card, list_models, load_model
    from samscope.models.sam import SamscopeModel


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'samscope.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
