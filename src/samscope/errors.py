"""Exceptions raised by samscope.

Every error derives from :class:`SamscopeError` (a ``ValueError``), so callers can catch one type,
and the CLI turns it into a one-line message with exit code 2 instead of a traceback.
"""

from __future__ import annotations


class SamscopeError(ValueError):
    """Base class of samscope's user-facing errors (bad input, missing model, stale cache)."""


class InputError(SamscopeError):
    """An input (image, labels, prompt, parameter) is not what was expected."""


class ModelNotFoundError(SamscopeError):
    """A named model is neither in the cache nor importable offline."""


class CheckpointError(SamscopeError):
    """A checkpoint file cannot be loaded strictly into the requested architecture."""


class CacheMismatchError(SamscopeError):
    """An embeddings cache was made for other data, another model or other settings, or is corrupt."""
