"""samscope: Segment Anything for the microscope.

Nothing happens on import: heavy modules (torch, transformers) load when first used.

>>> import samscope
>>> samscope.__version__
'0.1.0'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "load_model",
    "compute_embeddings",
    "segment_from_prompts",
    "segment",
    "read_image",
]

_LAZY = {
    "load_model": ("samscope.models.registry", "load_model"),
    "compute_embeddings": ("samscope.embeddings", "compute_embeddings"),
    "segment_from_prompts": ("samscope.prompting", "segment_from_prompts"),
    "read_image": ("samscope.io", "read_image"),
    "segment": ("samscope.instance.segment", "segment"),
}

if TYPE_CHECKING:  # pragma: no cover
    from samscope.embeddings import compute_embeddings
    from samscope.instance.segment import segment
    from samscope.io import read_image
    from samscope.models.registry import load_model
    from samscope.prompting import segment_from_prompts


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'samscope' has no attribute {name!r}")
