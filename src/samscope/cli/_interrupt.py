"""What an interrupted command had finished: commands report it, ``samscope``'s entry point says it.

A command registers a *reporter* — a function returning one short phrase about what is already
complete and kept (``"3 of 10 image(s) segmented into out/"``) — before its long work starts.
When the run is interrupted (Ctrl-C, SIGTERM), :mod:`samscope.cli.main` calls the reporters and
prints one line: the signal, what finished, and that re-running the same command resumes.
Reporters read the state on disk, so the line is true whenever the interruption came.

Nothing here imports anything heavy; the state is per process.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["clear", "report", "summary"]

_reporters: list[Callable[[], str | None]] = []


def report(reporter: Callable[[], str | None]) -> None:
    """Register a function that says what is finished so far (None: nothing worth saying)."""
    _reporters.append(reporter)


def clear() -> None:
    """Forget every reporter (between in-process runs, e.g. in tests)."""
    _reporters.clear()


def summary() -> str:
    """What the registered reporters say, joined; ``"nothing was finished"`` without any.

    A reporter that fails is skipped: the interruption message must always be printed.
    """
    parts = []
    for reporter in _reporters:
        try:
            text = reporter()
        except Exception:  # noqa: BLE001 - never mask the interruption itself
            text = None
        if text:
            parts.append(text)
    return "; ".join(parts) if parts else "nothing was finished"
