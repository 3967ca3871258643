"""Progress reports and cancellation of a batch run (what a GUI, a web app or the CLI listens to)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["Cancel", "Progress", "ProgressEvent", "is_cancelled"]

#: A cancellation flag: a :class:`threading.Event` (set it to stop) or a callable returning True.
Cancel = threading.Event | Callable[[], bool] | None


@dataclass(frozen=True)
class ProgressEvent:
    """One step of a batch run.

    Attributes
    ----------
    stage : {"start", "image", "plane", "done", "skipped"}
        ``start``: the run begins (``n_images`` to do); ``image``: image ``index`` was read and
        has ``n_planes`` planes; ``plane``: plane ``plane`` of it is finished; ``done``: its
        outputs are written (``record`` set); ``skipped``: its outputs existed (resumed runs).
    index : int
        Position of the image among those to do (0-based).
    n_images : int
        Images to do in this run (skipped ones not counted).
    path : Path or None
        The image.
    plane, n_planes : int
        Plane finished (0-based) and planes of the image.
    record : object, optional
        The image's record (:class:`samscope.pipeline.ImageRecord`) at ``done``.
    """

    stage: Literal["start", "image", "plane", "done", "skipped"]
    index: int = 0
    n_images: int = 0
    path: Path | None = None
    plane: int = 0
    n_planes: int = 0
    record: Any = None


#: A progress callback: called with every :class:`ProgressEvent` (exceptions propagate).
Progress = Callable[[ProgressEvent], None] | None


def is_cancelled(cancel: Cancel) -> bool:
    """True when ``cancel`` (an Event or a callable) asks the run to stop.

    >>> import threading
    >>> flag = threading.Event(); is_cancelled(flag), is_cancelled(None)
    (False, False)
    >>> flag.set(); is_cancelled(flag), is_cancelled(lambda: True)
    (True, True)
    """
    if cancel is None:
        return False
    if isinstance(cancel, threading.Event):
        return cancel.is_set()
    return bool(cancel())
