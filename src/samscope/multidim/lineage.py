"""Lineages of tracked objects: tracks (first frame, last frame, parent) and label series whose
ids are track ids.

A *label series* is a ``(T, Y, X)`` or ``(T, Z, Y, X)`` integer array in which the same id marks
the same object in every frame it appears (0 = background). A :class:`Lineage` says, for each id,
its first and last frame and its parent (the object it divided from, 0 for none): the Cell
Tracking Challenge's ``L B E P`` rows of ``res_track.txt`` / ``man_track.txt``. A division is a
parent with two (or more) children that start in the frame after the parent's last.
:class:`TrackedSeries` pairs the two. Pure numpy.

Examples
--------
>>> frames = np.zeros((4, 1, 6), np.uint16)
>>> frames[:2, 0, 1:3] = 1                        # track 1 in frames 0-1, then it divides
>>> frames[2:, 0, 0] = 2; frames[2:, 0, 3] = 3    # daughters 2 and 3 in frames 2-3
>>> lin = Lineage.from_labels(frames, parents={2: 1, 3: 1})
>>> lin.table().tolist()
[[1, 0, 1, 0], [2, 2, 3, 1], [3, 2, 3, 1]]
>>> lin.divisions()
{1: (2, 3)}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from samscope.errors import InputError

__all__ = ["Lineage", "Track", "TrackedSeries", "make_continuous", "track_points"]


@dataclass(frozen=True)
class Track:
    """One track: an object from its first to its last frame.

    Attributes
    ----------
    id : int
        Its label in every frame.
    start, end : int
        First and last frame (inclusive).
    parent : int
        The track it divided from (0: none).
    """

    id: int
    start: int
    end: int
    parent: int = 0


@dataclass(frozen=True)
class Lineage:
    """All tracks of a series, sorted by id (see the module docstring)."""

    tracks: tuple[Track, ...]

    def __post_init__(self) -> None:
        tracks = tuple(sorted(self.tracks, key=lambda t: t.id))
        object.__setattr__(self, "tracks", tracks)
        ids = [t.id for t in tracks]
        if len(set(ids)) != len(ids):
            raise InputError("a lineage lists a track id twice")
        span = {t.id: t for t in tracks}
        for t in tracks:
            if t.id <= 0:
                raise InputError(f"track ids must be positive, got {t.id}")
            if t.end < t.start or t.start < 0:
                raise InputError(f"track {t.id}: frames {t.start}–{t.end} are not a range")
            if t.parent:
                p = span.get(t.parent)
                if p is None:
                    raise InputError(f"track {t.id} has parent {t.parent}, which is not a track")
                if p.end >= t.start:
                    raise InputError(
                        f"track {t.id} starts in frame {t.start} but its parent {t.parent} "
                        f"ends in frame {p.end}; a parent must end before its children start"
                    )

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_table(cls, table: np.ndarray) -> Lineage:
        """From ``(n, 4)`` rows ``L B E P`` (``man_track.txt``)."""
        arr = np.asarray(table)
        if arr.size == 0:
            return cls(())
        if arr.ndim != 2 or arr.shape[1] != 4:
            raise InputError(f"a track table has rows of 4 numbers (L B E P), got shape {arr.shape}")
        return cls(tuple(Track(int(L), int(B), int(E), int(P)) for L, B, E, P in arr))

    @classmethod
    def from_labels(
        cls, labels: np.ndarray, *, parents: Mapping[int, int] | None = None
    ) -> Lineage:
        """Tracks of a label series (ids are tracks) with optional ``{child: parent}`` links."""
        first: dict[int, int] = {}
        last: dict[int, int] = {}
        for t in range(len(labels)):
            for label in np.unique(np.asarray(labels[t])).tolist():
                if label:
                    first.setdefault(int(label), t)
                    last[int(label)] = t
        parents = dict(parents or {})
        return cls(tuple(Track(i, first[i], last[i], int(parents.get(i, 0))) for i in first))

    # -- queries --------------------------------------------------------------------------------

    def table(self) -> np.ndarray:
        """``(n, 4)`` int64 rows ``L B E P``."""
        rows = [(t.id, t.start, t.end, t.parent) for t in self.tracks]
        return np.array(rows, np.int64).reshape(-1, 4)

    def __len__(self) -> int:
        return len(self.tracks)

    def get(self, track_id: int) -> Track:
        """The track with this id."""
        for t in self.tracks:
            if t.id == track_id:
                return t
        raise InputError(f"no track {track_id}")

    def children(self, track_id: int) -> tuple[int, ...]:
        """Ids of the tracks whose parent is ``track_id``."""
        return tuple(t.id for t in self.tracks if t.parent == track_id)

    def divisions(self) -> dict[int, tuple[int, ...]]:
        """``{parent: children}`` for every parent with at least two children."""
        kids: dict[int, list[int]] = {}
        for t in self.tracks:
            if t.parent:
                kids.setdefault(t.parent, []).append(t.id)
        return {p: tuple(c) for p, c in sorted(kids.items()) if len(c) >= 2}

    @property
    def n_divisions(self) -> int:
        """Parents with at least two children."""
        return len(self.divisions())

    def roots(self) -> tuple[int, ...]:
        """Tracks without a parent (the first of each lineage tree)."""
        return tuple(t.id for t in self.tracks if not t.parent)

    def graph(self) -> dict[int, list[int]]:
        """``{child: [parent]}``: the ``graph`` argument of napari's Tracks layer."""
        return {t.id: [t.parent] for t in self.tracks if t.parent}


@dataclass(frozen=True)
class TrackedSeries:
    """A label series whose ids are track ids, and its lineage.

    Attributes
    ----------
    labels : numpy.ndarray
        ``(T, Y, X)`` or ``(T, Z, Y, X)``.
    lineage : Lineage
    """

    labels: np.ndarray
    lineage: Lineage

    @property
    def n_frames(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_tracks(self) -> int:
        return len(self.lineage)


def make_continuous(labels: np.ndarray, lineage: Lineage) -> TrackedSeries:
    """Split tracks with gaps (frames where their id is missing) into separate tracks.

    The Cell Tracking Challenge's format needs every track present in every frame from its first
    to its last. After a gap the object continues under a new id whose parent is the part before
    the gap (a gap closed by the linker stays a link, marked as a parent link); the children of the
    original track then hang from its last part.

    Parameters
    ----------
    labels : numpy.ndarray, (T, ...)
    lineage : Lineage

    Returns
    -------
    TrackedSeries
        New labels (a copy when anything changed) and lineage.
    """
    present: dict[int, list[int]] = {}
    for t in range(len(labels)):
        for label in _ids(labels[t]):
            present.setdefault(label, []).append(t)
    spans = {tr.id: tr for tr in lineage.tracks}
    unknown = sorted(set(present) - set(spans))
    if unknown:
        raise InputError(f"label {unknown[0]} appears in the series but not in the lineage")
    next_id = max([*present, *spans, 0]) + 1
    out = None
    pieces: dict[int, list[tuple[int, int, int]]] = {}  # old id → (new id, start, end)
    for tid, frames in present.items():
        runs, start = [], frames[0]
        for a, b in zip(frames, frames[1:], strict=False):
            if b != a + 1:
                runs.append((start, a))
                start = b
        runs.append((start, frames[-1]))
        ids = [tid]
        for _ in runs[1:]:
            ids.append(next_id)
            next_id += 1
        pieces[tid] = [(i, s, e) for i, (s, e) in zip(ids, runs, strict=True)]
        if len(runs) > 1:
            if out is None:
                out = labels.copy()
            for new, s, e in pieces[tid][1:]:
                for t in range(s, e + 1):
                    out[t][labels[t] == tid] = new
    tracks = []
    for tid, parts in pieces.items():
        parent = spans[tid].parent
        if parent in pieces:
            parent = pieces[parent][-1][0]
        elif parent:
            parent = 0  # the parent never appears in the labels
        for k, (new, s, e) in enumerate(parts):
            p = parent if k == 0 else parts[k - 1][0]
            if p:
                pend = _end_of(pieces, p)
                if pend >= s:
                    p = 0
            tracks.append(Track(new, s, e, p))
    return TrackedSeries(labels if out is None else out, Lineage(tuple(tracks)))


def _ids(frame: np.ndarray) -> list[int]:
    """The non-zero ids of a label image (bincount: faster than unique for small ids)."""
    flat = np.asarray(frame).ravel()
    if flat.size == 0:
        return []
    top = int(flat.max())
    if top < 4 * flat.size + 1024:
        ids = np.flatnonzero(np.bincount(flat))
    else:
        ids = np.unique(flat)
    return [int(i) for i in ids if i > 0]


def _end_of(pieces: dict[int, list[tuple[int, int, int]]], new_id: int) -> int:
    for parts in pieces.values():
        for i, _, e in parts:
            if i == new_id:
                return e
    return -1


def track_points(labels: np.ndarray) -> np.ndarray:
    """Centroid of every object in every frame: rows ``(track_id, t, [z,] y, x)``.

    The ``data`` of napari's Tracks layer, sorted by track id then frame.

    Parameters
    ----------
    labels : numpy.ndarray, (T, Y, X) or (T, Z, Y, X)

    Returns
    -------
    numpy.ndarray, float64, shape (n, labels.ndim + 1)
    """
    from scipy import ndimage as ndi

    rows = []
    for t in range(len(labels)):
        frame = np.asarray(labels[t])
        ids = np.unique(frame)
        ids = ids[ids > 0]
        if not ids.size:
            continue
        cents = np.array(ndi.center_of_mass(np.ones(frame.shape), frame, ids)).reshape(ids.size, -1)
        rows.append(np.column_stack([ids, np.full(ids.size, t), cents]))
    if not rows:
        return np.zeros((0, labels.ndim + 1))
    data = np.concatenate(rows).astype(np.float64)
    return data[np.lexsort((data[:, 1], data[:, 0]))]
