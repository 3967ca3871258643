"""Automatic linking of a segmented time series into tracks with divisions (laptrack).

:func:`link_series` takes a label series whose ids are per frame (as any automatic segmentation
gives them), describes every object by its centroid and size, measures the overlap of every pair
of objects in consecutive frames, and hands the linking to **laptrack** (Fukai & Kaminishi 2023:
the linear-assignment tracker of Jaqaman et al. 2008, as TrackMate's LAP tracker): frame-to-frame
assignment, then gap closing (an object missed in up to ``max_gap`` frames) and splitting
(divisions) on the segments. The cost of linking two objects is their squared centroid distance
(z scaled by ``z_scale``). What samscope knows from the masks goes in as *known links*: two
objects of consecutive frames whose IoU exceeds ``link_iou`` (0.5: such a partner is unique on
both sides, since two disjoint objects cannot each cover more than half of the union with a
third) are linked outright, and the assignment only decides the rest (crowded neighbours, fast
movers, divisions: a daughter covers at most half of its mother, so IoU ≤ 0.5 keeps a division
open). A per-pair cost mixing overlap and distance would need a Python callback for every pair
(laptrack's ``metric``): measured 39 s for 20 frames × 200 objects against < 1 s this way. A division links a mother's last object to a daughter's
first within ``max_division_distance``; the daughters become the mother's children in the
lineage.

Why laptrack: a well-kept (BSD, 2023–2026 releases), pure-Python package whose dependencies
(networkx, pandas, scikit-learn, pydantic) are light next to btrack's compiled core or ultrack's
ILP solver and database, and whose LAP formulation is the one the CTC's TrackMate entries use.
Measured on simulated nuclei and CHO, see ``benchmarks/eval_tracking.py`` and the issue-13 note.

Examples
--------
>>> frames = np.zeros((3, 1, 12), np.uint16)
>>> frames[0, 0, 1:3] = 5; frames[1, 0, 2:4] = 2; frames[2, 0, 3:5] = 7   # one object moving
>>> tracked = link_series(frames)                                        # doctest: +SKIP
>>> tracked.lineage.table().tolist()                                     # doctest: +SKIP
[[1, 0, 2, 0]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from samscope.errors import InputError
from samscope.multidim.lineage import Lineage, Track, TrackedSeries, make_continuous

__all__ = ["LinkerConfig", "ObjectTable", "link_series", "object_tables"]


@dataclass(frozen=True)
class LinkerConfig:
    """Linking thresholds (distances in pixels; field names are ``samscope track``'s flags).

    Attributes
    ----------
    max_distance : float or None
        Largest centroid move between frames; None: 1.0 × the median object diameter.
    link_iou : float or None
        Objects of consecutive frames overlapping with an IoU above this are linked outright
        (the assignment decides the rest); None: distance only.
    max_gap : int
        Close gaps of up to this many missing frames (0, the default: none). A closed gap keeps a
        cell's identity but does not raise TRA (the reference has no edge across a gap, so the
        parent link that records it counts as a redundant edge), and laptrack's gap closing is
        its slow step (per-segment pandas: ≈ 27 of 46 s for 10 HeLa frames under load).
    divisions : bool
        Detect divisions (laptrack's splitting).
    max_daughters_area : float
        A division is kept only if its daughters' first areas add up to at most this multiple of
        the mother's last area, and the smaller sister is at least ``min_sister_ratio`` of the
        larger; otherwise the closer daughter continues the mother's track and the other starts
        a track of its own (an object that appears next to another is not its daughter).
    min_sister_ratio : float
    max_division_distance : float or None
        Largest distance from a mother's last centroid to a daughter's first; None: 0.75 × the
        median object diameter. Also the cost scale of starting a segment: a gap is closed when
        the object moved less than this (and less than 1.5 × ``max_distance``).
    min_area : int
        Objects smaller than this (pixels or voxels) are not tracked.
    z_scale : float
        Plane spacing over the in-plane pixel size (3-D + t).
    """

    max_distance: float | None = None
    link_iou: float | None = 0.5
    max_gap: int = 0
    divisions: bool = True
    max_daughters_area: float = 1.5
    min_sister_ratio: float = 0.4
    max_division_distance: float | None = None
    min_area: int = 0
    z_scale: float = 1.0

    def __post_init__(self) -> None:
        for name in ("max_distance", "max_division_distance"):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and v > 0):
                raise InputError(f"{name} must be a positive number or None, got {v}")
        if self.link_iou is not None and not 0 <= self.link_iou < 1:
            raise InputError(f"link_iou must be in [0, 1) or None, got {self.link_iou}")
        if self.max_gap < 0 or int(self.max_gap) != self.max_gap:
            raise InputError(f"max_gap must be a whole number >= 0, got {self.max_gap}")
        if self.min_area < 0:
            raise InputError(f"min_area must be >= 0, got {self.min_area}")
        if not (np.isfinite(self.z_scale) and self.z_scale > 0):
            raise InputError(f"z_scale must be a positive number, got {self.z_scale}")


@dataclass(frozen=True)
class ObjectTable:
    """The objects of one frame: ids, centroids (z scaled) and sizes."""

    ids: np.ndarray
    centroids: np.ndarray  # (n, ndim)
    areas: np.ndarray


def object_tables(labels: np.ndarray, *, z_scale: float = 1.0, min_area: int = 0) -> list[ObjectTable]:
    """Per frame: the ids, centroids and sizes of its objects (see :class:`ObjectTable`)."""
    out = []
    for t in range(len(labels)):
        frame = np.asarray(labels[t])
        flat = frame.ravel()
        counts = np.bincount(flat)
        ids = np.flatnonzero(counts)
        ids = ids[(ids > 0) & (counts[ids] >= max(min_area, 1))]
        cents = np.zeros((ids.size, frame.ndim))
        if ids.size:
            fg = np.flatnonzero(flat)
            which = flat[fg]
            for d, coord in enumerate(np.unravel_index(fg, frame.shape)):
                cents[:, d] = np.bincount(which, weights=coord, minlength=counts.size)[ids] / counts[ids]
            if frame.ndim == 3:
                cents[:, 0] *= z_scale
        out.append(ObjectTable(ids, cents, counts[ids]))
    return out


def _pair_iou(a: np.ndarray, b: np.ndarray, ta: ObjectTable, tb: ObjectTable) -> dict[tuple[int, int], float]:
    """IoU of every overlapping pair (index in ``ta``, index in ``tb``) of two frames."""
    fa, fb = a.ravel(), b.ravel()
    both = (fa > 0) & (fb > 0)
    if not both.any():
        return {}
    big = int(fb.max()) + 1
    key = fa[both].astype(np.int64) * big + fb[both]
    keys, inter = np.unique(key, return_counts=True)
    ia, ib = keys // big, keys % big
    pos_a = {int(i): k for k, i in enumerate(ta.ids)}
    pos_b = {int(i): k for k, i in enumerate(tb.ids)}
    out = {}
    for x, y, n in zip(ia.tolist(), ib.tolist(), inter.tolist(), strict=True):
        if x in pos_a and y in pos_b:
            i, j = pos_a[x], pos_b[y]
            out[(i, j)] = n / (ta.areas[i] + tb.areas[j] - n)
    return out


def _sure_pairs(pairs: dict[tuple[int, int], float], threshold: float) -> list[tuple[int, int]]:
    """Pairs above ``threshold`` that are each other's best match (unique on both sides)."""
    best_a: dict[int, tuple[float, int]] = {}
    best_b: dict[int, tuple[float, int]] = {}
    for (i, j), v in pairs.items():
        if v > best_a.get(i, (-1.0, -1))[0]:
            best_a[i] = (v, j)
        if v > best_b.get(j, (-1.0, -1))[0]:
            best_b[j] = (v, i)
    return sorted((i, j) for (i, j), v in pairs.items()
                  if v > threshold and best_a[i][1] == j and best_b[j][1] == i)  # fmt: skip


def link_series(labels: np.ndarray, *, config: LinkerConfig | None = None) -> TrackedSeries:
    """Link the objects of a segmented series into tracks with divisions (module docstring).

    Parameters
    ----------
    labels : numpy.ndarray
        ``(T, Y, X)`` or ``(T, Z, Y, X)`` integer labels, ids per frame (any ids; ids that are
        already tracks are re-linked all the same).
    config : LinkerConfig, optional

    Returns
    -------
    TrackedSeries
        Labels whose ids are track ids (1 … n, tracks continuous; a closed gap becomes a new
        track whose parent is the part before it, as the Cell Tracking Challenge's format
        needs) and the lineage.

    Raises
    ------
    InputError
        Not a series of label images (fewer than 2 frames, not integer, not 3-D or 4-D).
    """
    try:
        from laptrack import LapTrack
    except ImportError as err:  # an optional dependency
        raise InputError(
            "automatic tracking needs laptrack: pip install 'samscope[track]' (or pip install laptrack)"
        ) from err

    cfg = config or LinkerConfig()
    labels = np.asarray(labels)
    if labels.ndim not in (3, 4):
        raise InputError(f"a label series is (t, y, x) or (t, z, y, x); got shape {labels.shape}")
    if labels.shape[0] < 2:
        raise InputError("a label series for tracking needs at least two frames")
    if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool:
        raise InputError(f"labels must be integers, got {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise InputError("labels must be >= 0")
    tables = object_tables(labels, z_scale=cfg.z_scale, min_area=cfg.min_area)
    n_obj = sum(t.ids.size for t in tables)
    out_dtype = np.uint32 if n_obj >= 65535 else np.uint16
    if n_obj == 0:
        return TrackedSeries(np.zeros(labels.shape, out_dtype), Lineage(()))
    areas = np.concatenate([t.areas for t in tables]).astype(np.float64)
    ndim_sp = labels.ndim - 1
    if ndim_sp == 3:  # equivalent sphere of the (z-scaled) volume
        diam = float(np.median(2 * (3 * areas * cfg.z_scale / (4 * np.pi)) ** (1 / 3)))
    else:
        diam = float(np.median(2 * np.sqrt(areas / np.pi)))
    max_d = cfg.max_distance if cfg.max_distance is not None else 1.0 * diam
    max_div = cfg.max_division_distance if cfg.max_division_distance is not None else 0.75 * diam

    known = []
    if cfg.link_iou is not None:
        for t in range(len(tables) - 1):
            pairs = _pair_iou(labels[t], labels[t + 1], tables[t], tables[t + 1])
            known += [((t, i), (t + 1, j)) for i, j in _sure_pairs(pairs, cfg.link_iou)]
    coords = [t.centroids.astype(np.float64) for t in tables]
    tracker = LapTrack(
        metric="sqeuclidean",
        cutoff=max_d**2,
        gap_closing_metric="sqeuclidean",
        gap_closing_cutoff=(max_d * 1.5) ** 2 if cfg.max_gap > 0 else False,
        gap_closing_max_frame_count=int(cfg.max_gap) + 1 if cfg.max_gap > 0 else 1,
        splitting_metric="sqeuclidean",
        splitting_cutoff=max_div**2 if cfg.divisions else False,
        merging_cutoff=False,
        # explicit alternatives (laptrack's default is a percentile of the candidate costs,
        # which makes a division depend on how many other candidates there are): a daughter
        # splits off a mother, or a gap closes, when its cost is below max_division_distance²
        segment_start_cost=max_div**2,
        segment_end_cost=max_div**2,
        no_splitting_cost=max_div**2,
        no_merging_cost=max_div**2,
    )
    graph = tracker.predict(coords, connected_edges=known or None, split_merge_validation=False)
    return _to_series(graph, labels, tables, out_dtype, cfg)


def _check_divisions(parents, parent_ids, track_of, tables, cfg) -> None:
    """Undo splits whose daughters do not look like two halves of the mother (in place)."""
    first_node: dict[int, tuple[int, int]] = {}
    for node in sorted(track_of):
        first_node.setdefault(track_of[node], node)
    by_mother: dict[int, list[int]] = {}
    for child, mother in parent_ids.items():
        by_mother.setdefault(mother, []).append(child)
    for mother, kids in by_mother.items():
        mnode = parents[kids[0]]
        m_area = float(tables[mnode[0]].areas[mnode[1]])
        m_pos = tables[mnode[0]].centroids[mnode[1]]
        areas = [float(tables[first_node[k][0]].areas[first_node[k][1]]) for k in kids]
        ok = (len(kids) >= 2 and sum(areas) <= cfg.max_daughters_area * m_area
              and min(areas) >= cfg.min_sister_ratio * max(areas))  # fmt: skip
        if ok:
            continue
        dist = [float(np.hypot(*(tables[first_node[k][0]].centroids[first_node[k][1]] - m_pos)[-2:]))
                for k in kids]  # fmt: skip
        keep = kids[int(np.argmin(dist))]
        for node, tid in list(track_of.items()):  # the closer daughter continues the mother
            if tid == keep:
                track_of[node] = mother
        for k in kids:
            parent_ids.pop(k, None)
            parents.pop(k, None)
        for c, p in list(parent_ids.items()):
            if p == keep:
                parent_ids[c] = mother


def _to_series(graph, labels: np.ndarray, tables: list[ObjectTable], dtype, cfg: LinkerConfig) -> TrackedSeries:
    """Segments of laptrack's graph (nodes ``(frame, index)``) as tracks; splits as parents."""
    succ: dict[tuple[int, int], list[tuple[int, int]]] = {}
    pred: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for a, b in graph.edges():
        a, b = (tuple(map(int, a)), tuple(map(int, b)))
        if a[0] > b[0]:
            a, b = b, a
        succ.setdefault(a, []).append(b)
        pred.setdefault(b, []).append(a)
    nodes = sorted(tuple(map(int, n)) for n in graph.nodes())
    track_of: dict[tuple[int, int], int] = {}
    parents: dict[int, int] = {}
    next_id = 1
    for n in nodes:  # in time order: a segment's first node comes before the rest
        if n in track_of:
            continue
        p = pred.get(n, [])
        tid = next_id
        next_id += 1
        if len(p) == 1 and len(succ.get(p[0], [])) >= 2:
            parents[tid] = p[0]  # resolved to a track id below
        node = n
        while True:
            track_of[node] = tid
            s = succ.get(node, [])
            if len(s) != 1 or len(pred.get(s[0], [])) != 1:
                break
            node = s[0]
    parent_ids = {c: track_of[p] for c, p in parents.items()}
    _check_divisions(parents, parent_ids, track_of, tables, cfg)
    out = np.zeros(labels.shape, dtype)
    for t, table in enumerate(tables):
        if not table.ids.size:
            continue
        lut = np.zeros(int(labels[t].max()) + 1, np.int64)
        for k, i in enumerate(table.ids.tolist()):
            lut[i] = track_of.get((t, k), 0)
        out[t] = lut[labels[t]]
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for (t, _), tid in track_of.items():
        first[tid] = min(first.get(tid, t), t)
        last[tid] = max(last.get(tid, t), t)
    tracks = tuple(Track(tid, first[tid], last[tid], parent_ids.get(tid, 0)) for tid in first)
    return make_continuous(out, Lineage(tracks))
