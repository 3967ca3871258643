"""Assertions shared by the reliability cases."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Result:
    """What one ``samscope`` process did."""

    args: tuple[str, ...]
    rc: int | str
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def __str__(self) -> str:  # shown when an assertion fails
        return f"samscope {' '.join(self.args)}\n-> exit {self.rc}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def expect_error(res: Result, *fragments: str, rc: int = 2) -> None:
    """A clear error: the exit status, an ``error:`` line with every fragment, no traceback."""
    assert "Traceback" not in res.text, str(res)
    assert res.rc == rc, str(res)
    lines = [line for line in res.err.splitlines() if line.startswith("error:")]
    assert lines, str(res)
    message = res.err[res.err.index("error:"):]
    for fragment in fragments:
        assert fragment.lower() in message.lower(), f"{fragment!r} not in the message\n{res}"


def expect_ok(res: Result, *fragments: str) -> None:
    """Success: status 0, no traceback, every fragment in stdout."""
    assert "Traceback" not in res.text, str(res)
    assert res.rc == 0, str(res)
    for fragment in fragments:
        assert fragment.lower() in res.out.lower(), f"{fragment!r} not in stdout\n{res}"


def files_in(folder: Path) -> list[str]:
    """Everything under ``folder`` (relative, sorted; hidden temporary files included)."""
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))
