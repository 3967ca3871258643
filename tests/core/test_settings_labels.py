"""The one settings parser (``-s FIELD=VALUE`` everywhere) and the one label-dtype rule."""

from dataclasses import dataclass, field

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.labels import label_dtype, stack_labels
from samscope.settings import build_settings, coerce_value, parse_assignments


@dataclass(frozen=True)
class Inner:
    gamma: tuple[float, float] = (0.5, 2.0)


@dataclass(frozen=True)
class Outer:
    min_size: int = 25
    thresh: float | None = None
    names: tuple[str, ...] = ()
    fast: bool = False
    inner: Inner = field(default_factory=Inner)


def test_strings_follow_the_declared_types_and_nested_fields():
    cfg = build_settings(Outer, parse_assignments(
        ["min-size=5", "thresh=0.3", "names=a b.tif, c", "fast=on", "inner.gamma=1"]
    ))  # fmt: skip
    assert cfg == Outer(5, 0.3, ("a b.tif", "c"), True, Inner((1.0, 1.0)))
    assert build_settings(Outer, {"thresh": "none"}).thresh is None
    assert coerce_value(3, float, "x") == 3.0 and isinstance(coerce_value(3, float, "x"), float)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["bogus=1"], "no setting 'bogus'; its settings: min_size"),
        (["min_size=1.5"], "min_size must be an integer"),
        (["fast=maybe"], "fast must be true or false"),
        (["inner.gamma=1,2,3"], "MIN,MAX"),
        (["thresh"], "FIELD=VALUE"),
    ],
)
def test_bad_settings_name_the_field(items, message):
    with pytest.raises(InputError, match=message):
        build_settings(Outer, parse_assignments(items))


def test_one_label_dtype_rule():
    assert [label_dtype(n) for n in (0, 65535, 65536, 2**32 - 1, 2**32)] == [
        np.uint16, np.uint16, np.uint32, np.uint32, np.uint64,
    ]  # fmt: skip
    with pytest.raises(InputError):
        label_dtype(2**64)
    stack = stack_labels([np.array([[70000]]), np.array([[1]])], stacked=True)
    assert stack.dtype == np.uint32 and stack.shape == (2, 1, 1)
