"""Every docstring example in ``src/samscope`` runs as part of the test suite (doctests)."""

import doctest
import importlib
import io
import pkgutil
from contextlib import redirect_stdout

import pytest

import samscope


def _modules() -> list[str]:
    names = [samscope.__name__]
    for info in pkgutil.walk_packages(samscope.__path__, prefix="samscope."):
        names.append(info.name)
    return sorted(names)


def _has_examples(name: str) -> bool:
    spec = importlib.util.find_spec(name)
    origin = getattr(spec, "origin", None)
    if not origin or not origin.endswith(".py"):
        return False
    with open(origin, encoding="utf-8") as f:
        return ">>>" in f.read()


MODULES = [m for m in _modules() if _has_examples(m)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    out = io.StringIO()
    with redirect_stdout(out):
        result = doctest.testmod(
            module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
        )
    assert result.failed == 0, out.getvalue()
