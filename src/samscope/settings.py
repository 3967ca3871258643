"""One parser for every ``-s/--set FIELD=VALUE`` option and every typed config value.

``FIELD=VALUE`` strings (the CLI) and values from TOML/JSON files are converted to the type the
config dataclass declares for the field (``int``, ``float``, ``bool``, ``str``, ``X | None``,
``tuple[float, float]`` ranges written ``MIN,MAX``, ``tuple[str, ...]`` lists written ``a,b``),
so ``-s min_size=50`` means the same in ``segment``, ``simulate`` and ``train``. Unknown fields and
values of the wrong type are an :class:`~samscope.errors.InputError` that names the field and
lists the valid ones. Nested config dataclasses take dotted names (``appearance.gamma=0.8,1.2``).

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Demo:
...     min_size: int = 25
...     thresh: float | None = None
...     blur: tuple[float, float] = (0.0, 1.0)
...     fast: bool = False
>>> build_settings(Demo, parse_assignments(["min-size=5", "thresh=none", "blur=1,2", "fast=yes"]))
Demo(min_size=5, thresh=None, blur=(1.0, 2.0), fast=True)
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from samscope.errors import InputError

__all__ = ["build_settings", "coerce_value", "parse_assignments"]

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NONE = ("none", "null", "")


def parse_assignments(items: Iterable[str] | None, *, option: str = "--set") -> dict[str, str]:
    """``["a=1", "b-c = x"]`` → ``{"a": "1", "b_c": "x"}`` (dashes in names become underscores).

    Raises
    ------
    InputError
        For an item without ``=`` or with an empty name.
    """
    out: dict[str, str] = {}
    for item in items or ():
        if "=" not in item:
            raise InputError(f"{option} takes FIELD=VALUE, got {item!r}")
        key, raw = (s.strip() for s in item.split("=", 1))
        if not key:
            raise InputError(f"{option} takes FIELD=VALUE, got {item!r}")
        out[key.replace("-", "_")] = raw
    return out


def _union_args(kind: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(kind) is typing.Union or isinstance(kind, types.UnionType):
        return typing.get_args(kind)
    return None


def coerce_value(value: Any, kind: Any, where: str) -> Any:
    """Convert ``value`` (a CLI string or a parsed file value) to the type hint ``kind``.

    Raises
    ------
    InputError
        When it cannot be read as ``kind``; ``where`` names the field in the message.
    """
    args = _union_args(kind)
    if args is not None:
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            if type(None) in args:
                return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return coerce_value(value, rest[0], where)
        for candidate in rest:
            try:
                return coerce_value(value, candidate, where)
            except InputError:
                continue
        raise InputError(f"{where} cannot take {value!r}")
    origin = typing.get_origin(kind)
    if origin is typing.Literal:
        choices = typing.get_args(kind)
        if value not in choices:
            raise InputError(f"{where} must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin is tuple or kind is tuple:
        return _tuple(value, typing.get_args(kind), where)
    if kind is bool:
        return _bool(value, where)
    if kind is int:
        return _number(value, int, "an integer", where)
    if kind is float:
        return float(_number(value, float, "a number", where))
    if kind is str:
        if not isinstance(value, str):
            raise InputError(f"{where} must be a string, got {value!r}")
        return value
    if kind is Any:
        return value
    raise TypeError(f"unsupported field type {kind!r} for {where}")  # pragma: no cover


def _bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise InputError(f"{where} must be true or false, got {value!r}")


def _number(value: Any, kind: type, what: str, where: str) -> Any:
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            raise InputError(f"{where} must be {what}, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where} must be {what}, got {value!r}")
    if kind is int and not isinstance(value, int):
        raise InputError(f"{where} must be {what}, got {value!r}")
    return value


def _tuple(value: Any, args: tuple[Any, ...], where: str) -> tuple:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple):
        item = args[0] if args else str
        kind = "numbers" if item in (int, float) else "strings" if item is str else "values"
        raise InputError(f"{where} must be a list of {kind} (comma-separated), got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(coerce_value(v, args[0], where) for v in value)
    if args and len(value) == 1 and len(args) == 2 and args[0] == args[1]:
        value = [value[0], value[0]]  # "5" for a (min, max) range: both ends
    if args and len(value) != len(args):
        shape = "MIN,MAX" if len(args) == 2 else f"{len(args)} values"
        raise InputError(f"{where} takes {shape}, got {value!r}")
    kinds = args or (Any,) * len(value)
    return tuple(coerce_value(v, k, where) for v, k in zip(value, kinds, strict=True))


def build_settings(
    cls: type,
    values: Mapping[str, Any] | None,
    *,
    base: Any = None,
    what: str | None = None,
) -> Any:
    """An instance of the dataclass ``cls`` from field values (strings are converted).

    Parameters
    ----------
    cls : dataclass type
    values : mapping of str to value
        Field names (dotted for nested dataclass fields) to values.
    base : instance of cls, optional
        Start from this instance (``dataclasses.replace``) instead of the defaults.
    what : str, optional
        How messages name ``cls`` (default: its class name).

    Raises
    ------
    InputError
        For an unknown field (the message lists the valid ones) or an unreadable value.
    """
    name = what or cls.__name__
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in (values or {}).items():
        head, _, sub = key.partition(".")
        if head not in known:
            raise InputError(f"{name} has no setting {head!r}; its settings: {', '.join(known)}")
        if sub:
            nested.setdefault(head, {})[sub] = value
        else:
            top[head] = coerce_value(value, hints[head], key)
    for head, sub_values in nested.items():
        current = getattr(base, head, None) if base is not None else None
        if current is None:
            default = next(f for f in dataclasses.fields(cls) if f.name == head)
            if default.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                current = default.default_factory()  # type: ignore[misc]
            elif default.default is not dataclasses.MISSING:
                current = default.default
        if not dataclasses.is_dataclass(current):
            raise InputError(f"{name}.{head} has no fields; got {', '.join(sub_values)}")
        top[head] = build_settings(type(current), sub_values, base=current, what=f"{name}.{head}")
    if base is not None:
        return dataclasses.replace(base, **top)
    return cls(**top)
