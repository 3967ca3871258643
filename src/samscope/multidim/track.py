"""Interactive tracking: prompt an object on one frame of a time series and follow it forward,
through divisions, many tracks at once.

µSAM's tracking annotator (seed 002) projects each object's mask to the next frame with a linear
motion model and stops where the object leaves, dies or divides. :class:`Tracker` does that for
many tracks at once: on every frame, every live track is prompted with its previous mask (box,
optionally the mask itself), shifted by its exponentially smoothed centroid motion
(``motion_smoothing`` 0.5, µSAM's value), and all of them are decoded in one batched call
(:func:`samscope.prompting.segment_objects`). A track ends where its mask becomes too small (it
left the image), where the decoder's predicted IoU or the overlap with the shifted previous mask
falls too low (it vanished), where it grows too much (a leak) or where it collides with an older
track. A **division** is detected when the new mask falls apart into two well-separated daughters
of plausible size that the model also sees as two objects (:func:`~samscope.multidim.track_rules.
division_pieces`: not two fragments of one textured nucleus, not a neighbour caught by the box),
or when it shrinks sharply and a probe prompt in the part of the previous mask it lost finds a
sister object there; the mother then ends and both daughters are followed as its children. A
piece far from the rest of a mask that is not a division is dropped. 3-D + t:
:mod:`samscope.multidim.track3d`. The user can
also mark a division (:meth:`Tracker.divide`), end a track (:meth:`Tracker.end`) or correct it on
any frame (:meth:`Tracker.correct`): the track is recomputed from that frame on (its
automatically found descendants are dropped and found again), and nothing before it changes.

Example (a TYX series ``movie`` and a model)::

    from samscope.models.registry import load_model
    from samscope.multidim.track import Tracker

    model = load_model("samscope-generalist")
    tracker = Tracker(model, movie, axes="TYX")      # scale= for a scale-aware model's size
    a = tracker.add(0, points=[[120, 88]])           # one click on frame 0 -> track id 1
    b = tracker.add(0, box=[30, 40, 70, 90])         # a box -> track id 2
    result = tracker.run()                           # follows both, batched, frame by frame
    result.labels          # (T, Y, X) labels whose ids are track ids
    result.lineage.table() # rows L B E P, as the Cell Tracking Challenge's res_track.txt
    tracker.info(a).stopped                          # (frame, why) where track a ended
    tracker.correct(a, 7, points=[[131, 95]])        # fix frame 7: track a is redone from 7 on
    tracker.divide(b, 12, [dict(points=[[40, 60]]), dict(points=[[52, 71]])])  # mark a division
    result = tracker.run()                           # only what changed is decoded again

Each call's prompts are in native pixels of the frame. Pure numpy here; the model is only used
through :class:`~samscope.multidim.stack.PlaneStack` (embeddings per frame, computed lazily).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.multidim.lineage import Lineage, Track, TrackedSeries, make_continuous
from samscope.multidim.objects import ObjectPrompt, PlaneMask, PropagatedObject, Propagation
from samscope.multidim.stack import PlaneStack
from samscope.multidim.track_rules import (
    TrackingConfig,
    continuing_mask,
    division_pieces,
    interior_point,
    largest_component,
    mask_centroid,
    prompts_from,
    same_object,
    shift_mask,
    stop_reason,
)

__all__ = ["TrackInfo", "Tracker", "TrackingConfig", "track_objects"]


@dataclass(frozen=True)
class TrackInfo:
    """What the tracker knows about one track.

    Attributes
    ----------
    id : int
        Its label in the result.
    parent : int
        The track it divided from (0: none).
    anchor : int
        The frame of its prompts (or where a division started it).
    frames : tuple of int
        Frames where it is present.
    stopped : (int, str) or None
        The frame where it was no longer found and why (None: it reached the last frame or a
        limit).
    children : tuple of int
    user : bool
        Started by the user's prompts (False: a daughter found automatically).
    """

    id: int
    parent: int
    anchor: int
    frames: tuple[int, ...]
    stopped: tuple[int, str] | None
    children: tuple[int, ...]
    user: bool


@dataclass
class _Track:
    id: int
    anchor: int
    prompt: ObjectPrompt | None  # None: started from a mask (an automatic daughter)
    parent: int = 0
    user: bool = True
    masks: dict[int, PlaneMask] = field(default_factory=dict)
    stopped: tuple[int, str] | None = None
    end: int | None = None  # user: absent from this frame on
    end_reason: str = ""
    motion: np.ndarray = field(default_factory=lambda: np.zeros(2))
    seed_mask: PlaneMask | None = None
    dirty: bool = True


class Tracker:
    """Follow prompted objects forward through a time series, with divisions (module docstring).

    Parameters
    ----------
    model : SamscopeModel
    series : PlaneStack or array-like
        ``(T, Y, X)`` (or ``(T, Y, X, C)``) frames, or a :class:`PlaneStack` (reuse embeddings,
        resize to a model's working scale with ``scale``).
    axes : str, optional
        ``TYX`` or ``TYXC`` when ``series`` is an array (default ``TYX`` for 3-D arrays).
    config : TrackingConfig, optional
    scale : float
        Resize factor of every frame before it is embedded (see :class:`PlaneStack`).
    batch_size : int
        Objects per decoder call.
    """

    def __init__(
        self,
        model: Any,
        series: PlaneStack | Any,
        *,
        axes: str | None = None,
        config: TrackingConfig | None = None,
        scale: float = 1.0,
        batch_size: int = 32,
    ) -> None:
        if isinstance(series, PlaneStack):
            self.stack = series
        else:
            shape = getattr(getattr(series, "data", series), "shape", None) or np.shape(series)
            if axes is None and not hasattr(series, "axes"):
                axes = {3: "TYX", 4: "TYXC"}.get(len(shape))
                if axes is None:
                    raise InputError(
                        f"a series for tracking is (t, y, x) or (t, y, x, c); got shape {tuple(shape)}"
                    )
            self.stack = PlaneStack(series, model, axes=axes, scale=scale)
        self.model = model
        self.config = config or TrackingConfig()
        self.batch_size = int(batch_size)
        self._tracks: dict[int, _Track] = {}
        self._next = 1

    # -- editing --------------------------------------------------------------------------------

    def add(
        self,
        frame: int,
        *,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        mask: Any = None,
    ) -> int:
        """Start a track from prompts on ``frame``; returns its id (1, 2, …).

        Parameters
        ----------
        frame : int
        points : array-like, (N, 2), optional
            ``(y, x)`` clicks; ``labels`` 1 positive (default) / 0 negative.
        box : array-like, (4,), optional
            ``(y0, x0, y1, x1)``.
        mask : array-like of bool, (Y, X), optional
            The object's mask (used as is unless points or a box come with it).
        """
        prompt = self._prompt(frame, points, labels, box, mask)
        tid = self._new_track(prompt.plane, prompt, parent=0, user=True)
        return tid

    def correct(
        self,
        track_id: int,
        frame: int,
        *,
        points: Any = None,
        labels: Any = None,
        box: Any = None,
        mask: Any = None,
    ) -> None:
        """Give new prompts for ``track_id`` on ``frame``; the track is redone from there.

        A frame before the track's anchor moves its anchor there (the track then starts on
        ``frame``). Automatically found daughters after ``frame`` are dropped (found again on
        :meth:`run`); daughters the user marked stay.
        """
        tr = self._get(track_id)
        prompt = self._prompt(frame, points, labels, box, mask)
        if frame < tr.anchor:
            tr.masks.clear()
        self._truncate(tr, frame)
        tr.anchor, tr.prompt, tr.seed_mask, tr.dirty = frame, prompt, None, True
        if tr.end is not None and tr.end <= frame:
            tr.end = None

    def end(self, track_id: int, frame: int) -> None:
        """Mark ``track_id`` absent from ``frame`` on (it left or died); later frames are dropped."""
        tr = self._get(track_id)
        frame = self.stack.check_plane(frame)
        if frame <= tr.anchor:
            raise InputError(
                f"track {track_id} starts on frame {tr.anchor}; end it on a later frame, or remove it"
            )
        self._truncate(tr, frame)
        tr.end, tr.end_reason = frame, "ended by the user"

    def divide(self, track_id: int, frame: int, daughters: Sequence[Mapping[str, Any]]) -> tuple[int, ...]:
        """Mark that ``track_id`` divides into ``daughters`` on ``frame``; returns their ids.

        Parameters
        ----------
        track_id : int
        frame : int
            The daughters' first frame (the mother's last is ``frame - 1``).
        daughters : sequence of mappings
            Prompts of each daughter on ``frame``: keys ``points``, ``labels``, ``box``, ``mask``.
        """
        tr = self._get(track_id)
        frame = self.stack.check_plane(frame)
        if frame <= tr.anchor:
            raise InputError(f"track {track_id} starts on frame {tr.anchor}; it cannot divide on frame {frame}")
        if len(daughters) < 2:
            raise InputError("a division needs prompts for at least two daughters")
        prompts = [self._prompt(frame, **dict(d)) for d in daughters]
        self.end(track_id, frame)
        for c in self._children(track_id):  # a new division replaces the old one
            self._remove(c)
        tr.end_reason = "divided (marked by the user)"
        return tuple(self._new_track(frame, p, parent=track_id, user=True) for p in prompts)

    def remove(self, track_id: int) -> None:
        """Drop a track and its descendants."""
        self._get(track_id)
        self._remove(track_id)

    @property
    def track_ids(self) -> tuple[int, ...]:
        return tuple(sorted(self._tracks))

    def info(self, track_id: int) -> TrackInfo:
        """Frames, parent, children and stop reason of a track."""
        tr = self._get(track_id)
        frames = tuple(sorted(f for f, m in tr.masks.items() if m.area))
        stopped = tr.stopped
        if stopped is None and tr.end is not None:
            stopped = (tr.end, tr.end_reason)
        return TrackInfo(tr.id, tr.parent, tr.anchor, frames, stopped,
                         self._children(tr.id), tr.user)  # fmt: skip

    # -- running --------------------------------------------------------------------------------

    def run(self) -> TrackedSeries:
        """Decode what changed and follow every unfinished track forward; returns the result."""
        dirty = [t for t in self._tracks.values() if t.dirty]
        if dirty:
            self._start(dirty)
            self._sweep(min(t.anchor for t in dirty))
        return self.result()

    def result(self) -> TrackedSeries:
        """Labels (ids = track ids) and lineage as they stand, without running anything."""
        st = self.stack
        ids = sorted(self._tracks)
        objs = tuple(
            PropagatedObject((self._tracks[i].anchor,), dict(sorted(self._tracks[i].masks.items())))
            for i in ids
        )
        prop = Propagation(objs, (st.n_planes, *st.plane_shape), st.work_shape)
        dense = prop.labels()
        lut = np.zeros(len(ids) + 1, np.int64)
        lut[1:] = ids
        from samscope.labels import label_dtype

        labels = lut[dense].astype(label_dtype(max(ids, default=0)))
        tracks = []
        for i in ids:
            tr = self._tracks[i]
            frames = [f for f, m in tr.masks.items() if m.area]
            if frames:
                tracks.append(Track(i, min(frames), max(frames), tr.parent))
        present = {t.id for t in tracks}
        tracks = [Track(t.id, t.start, t.end, t.parent if t.parent in present else 0) for t in tracks]
        return make_continuous(labels, Lineage(tuple(tracks)))

    # -- internals ------------------------------------------------------------------------------

    def _get(self, track_id: int) -> _Track:
        tr = self._tracks.get(int(track_id))
        if tr is None:
            raise InputError(f"no track {track_id}: the tracks are {self.track_ids}")
        return tr

    def _children(self, track_id: int) -> tuple[int, ...]:
        return tuple(sorted(t.id for t in self._tracks.values() if t.parent == track_id))

    def _remove(self, track_id: int) -> None:
        for c in self._children(track_id):
            self._remove(c)
        self._tracks.pop(track_id, None)

    def _truncate(self, tr: _Track, frame: int) -> None:
        """Forget ``tr`` from ``frame`` on, and its automatic descendants."""
        for f in [f for f in tr.masks if f >= frame]:
            del tr.masks[f]
        tr.stopped = None
        for c in self._children(tr.id):
            if not self._tracks[c].user:
                self._remove(c)
            elif self._tracks[c].anchor <= frame:  # a user division before the correction
                self._remove(c)

    def _new_track(self, frame: int, prompt: ObjectPrompt | None, *, parent: int, user: bool,
                   seed: PlaneMask | None = None) -> int:  # fmt: skip
        tid = self._next
        self._next += 1
        self._tracks[tid] = _Track(tid, frame, prompt, parent=parent, user=user, seed_mask=seed)
        return tid

    def _prompt(self, frame, points=None, labels=None, box=None, mask=None) -> ObjectPrompt:
        from samscope.multidim.propagate import Propagator

        frame = self.stack.check_plane(frame)
        if points is None and box is None and mask is None:
            raise InputError(f"frame {frame}: give points, a box or a mask for the object")
        checker = Propagator.__new__(Propagator)  # reuse its prompt checks, nothing else
        checker.stack = self.stack
        checked = checker._checked(ObjectPrompt(frame, points, labels, box, mask))
        if checked.mask is not None and checked.points is None and checked.box is None and not checked.mask.any():
            raise InputError(f"frame {frame}: an empty mask does not start a track")
        return checked

    def _limit(self, tr: _Track) -> int:
        """Last frame ``tr`` may reach."""
        last = self.stack.n_planes - 1
        if self.config.max_frames is not None:
            last = min(last, tr.anchor + self.config.max_frames)
        if tr.end is not None:
            last = min(last, tr.end - 1)
        return last

    def _start(self, tracks: list[_Track]) -> None:
        """Decode the anchors of ``tracks`` (batched per frame and prompt kind)."""
        st = self.stack
        groups: dict[tuple, list[_Track]] = {}
        for tr in tracks:
            for f in [f for f in tr.masks if f >= tr.anchor]:
                del tr.masks[f]
            tr.motion = np.zeros(2)
            if tr.seed_mask is not None:
                tr.masks[tr.anchor] = tr.seed_mask
                continue
            pr = tr.prompt
            if pr.points is None and pr.box is None:
                m = st.mask_to_work(pr.mask)
                tr.masks[tr.anchor] = PlaneMask.from_dense(tr.anchor, m, predicted_iou=1.0, overlap=1.0, anchor=True)
                continue
            single = pr.box is None and len(pr.points) == 1
            key = (tr.anchor, pr.box is not None, pr.points is not None, pr.mask is not None, single)
            groups.setdefault(key, []).append(tr)
        for (frame, has_box, has_pts, has_mask, single), group in sorted(groups.items(), key=lambda kv: kv[0][0]):
            boxes = np.stack([st.box_to_work(t.prompt.box) for t in group]) if has_box else None
            points = labels = None
            if has_pts:
                m = max(len(t.prompt.points) for t in group)
                points = np.zeros((len(group), m, 2))
                labels = np.full((len(group), m), -1, np.int64)
                for j, t in enumerate(group):
                    points[j, : len(t.prompt.points)] = st.points_to_work(t.prompt.points)
                    labels[j, : len(t.prompt.labels)] = t.prompt.labels
            masks = np.stack([st.mask_to_work(t.prompt.mask) for t in group]) if has_mask else None
            res = self._decode(frame, boxes, points, labels, masks, multimask=single)
            for j, t in enumerate(group):
                t.masks[frame] = PlaneMask.from_dense(
                    frame, largest_component(res.masks[j]), predicted_iou=float(res.iou[j]),
                    overlap=1.0, anchor=True,
                )  # fmt: skip

    def _decode(self, plane, boxes, points, labels, masks, *, multimask=False):
        from samscope.prompting import segment_objects

        emb, index = self.stack.embeddings(plane)
        return segment_objects(
            self.model, emb, boxes=boxes, points=points, labels=labels, masks=masks,
            multimask=multimask, plane=index, batch_size=self.batch_size,
        )  # fmt: skip

    def _live(self, tr: _Track, frame: int) -> bool:
        prev = tr.masks.get(frame - 1)
        return (
            tr.stopped is None
            and tr.anchor < frame <= self._limit(tr)
            and frame not in tr.masks
            and prev is not None
            and prev.area > 0
        )

    def _sweep(self, first: int) -> None:
        """Frames ``first + 1 …`` in order: every live track is decoded there, in one batch."""
        for frame in range(first + 1, self.stack.n_planes):
            live = [t for t in sorted(self._tracks.values(), key=lambda t: t.id) if self._live(t, frame)]
            for t in self._tracks.values():
                if t.anchor == frame and t.dirty and frame in t.masks:
                    t.dirty = False
            if live:
                self._step(frame, live)
        for t in self._tracks.values():
            t.dirty = False

    def _step(self, frame: int, live: list[_Track]) -> None:
        cfg = self.config
        h, w = self.stack.work_shape
        shifted = [shift_mask(t.masks[frame - 1].dense((h, w)), t.motion) for t in live]
        boxes, points, labels, masks = prompts_from(shifted, cfg, (h, w))
        res = self._decode(frame, boxes, points, labels, masks)
        new: dict[int, np.ndarray] = {}
        scores: dict[int, float] = {}
        probes: list[tuple[_Track, np.ndarray, np.ndarray]] = []
        splits: list[tuple[_Track, tuple[np.ndarray, np.ndarray], float]] = []
        for j, t in enumerate(live):
            mask, prev = res.masks[j].astype(bool), shifted[j]
            reason = stop_reason(cfg, prev, mask, float(res.iou[j]))
            if reason is not None:
                t.stopped = (frame, reason)
                continue
            new[t.id], scores[t.id] = mask, float(res.iou[j])
            if cfg.detect_divisions:
                parts = division_pieces(mask, prev, cfg)
                if parts is not None:
                    splits.append((t, parts, float(res.iou[j])))
                    continue
                new[t.id] = mask = continuing_mask(mask, prev, cfg)
                if mask.sum() < cfg.division_shrink * prev.sum():
                    probes.append((t, prev, mask))
        for t, parts, score in self._confirmed(frame, splits):
            new.pop(t.id), scores.pop(t.id)
            self._divided(t, frame, parts, score)
        if probes:
            self._probe_sisters(frame, probes, new, scores)
        self._commit(frame, new, scores)

    def _confirmed(self, frame, splits):
        """The candidate divisions whose pieces the model sees as two objects."""
        if not splits or not self.config.division_probe:
            return splits
        pts = np.array([interior_point(p) for _, parts, _ in splits for p in parts])[:, None, :]
        res = self._decode(frame, None, pts, np.ones((len(pts), 1), np.int64), None)
        return [s for k, s in enumerate(splits)
                if not same_object(s[1], (res.masks[2 * k], res.masks[2 * k + 1]))]  # fmt: skip

    def _probe_sisters(self, frame, probes, new, scores) -> None:
        """Point prompts in the part of each shrunken track's previous mask that it lost."""
        from scipy import ndimage as ndi

        cfg = self.config
        todo, pts = [], []
        for t, prev, mask in probes:
            rest = prev & ~ndi.binary_dilation(mask, iterations=2)
            lab, n = ndi.label(rest)
            if not n:
                continue
            sizes = np.bincount(lab.ravel())[1:]
            k = int(np.argmax(sizes)) + 1
            if sizes[k - 1] < max(cfg.min_area, cfg.division_min_fraction * mask.sum()):
                continue
            dist = ndi.distance_transform_edt(lab == k)
            todo.append((t, prev, mask))
            pts.append(np.unravel_index(int(np.argmax(dist)), dist.shape))
        if not todo:
            return
        points = np.array(pts, np.float64)[:, None, :]
        res = self._decode(frame, None, points, np.ones((len(todo), 1), np.int64), None)
        for j, (t, prev, mask) in enumerate(todo):
            sister = res.masks[j].astype(bool) & ~mask
            a, b = int(sister.sum()), int(mask.sum())
            if a < max(cfg.min_area, cfg.division_min_fraction * b) or a > b / cfg.division_min_fraction:
                continue
            if np.count_nonzero(sister & prev) < 0.5 * a:  # not where the mother was
                continue
            if any(np.count_nonzero(sister & m) > 0.5 * a for tid, m in new.items() if tid != t.id):
                continue  # another track's object
            new.pop(t.id, None)
            scores.pop(t.id, None)
            self._divided(t, frame, (mask, sister), float(res.iou[j]))

    def _divided(self, t: _Track, frame: int, parts: Sequence[np.ndarray], score: float) -> None:
        t.stopped = (frame, "divided")
        for part in parts:
            seed = PlaneMask.from_dense(frame, part, predicted_iou=score, overlap=1.0, anchor=False)
            cid = self._new_track(frame, None, parent=t.id, user=False, seed=seed)
            child = self._tracks[cid]
            child.masks[frame] = seed
            child.motion = np.zeros(2)
            child.dirty = False

    def _commit(self, frame: int, new: dict[int, np.ndarray], scores: dict[int, float]) -> None:
        cfg = self.config
        ids = sorted(new)
        # collisions with tracks already on this frame (anchors, daughters) or with each other
        taken = [(tid, tr.masks[frame].dense(self.stack.work_shape))
                 for tid, tr in self._tracks.items() if frame in tr.masks and tr.masks[frame].area]  # fmt: skip
        for tid in ids:
            mask = new[tid]
            area = int(mask.sum())
            hit = None
            for oid, other in taken:
                inter = int(np.count_nonzero(mask & other))
                if inter > cfg.max_shared * max(min(area, int(other.sum())), 1):
                    hit = oid
                    break
            t = self._tracks[tid]
            if hit is not None and hit < tid:
                t.stopped = (frame, f"collided with track {hit}")
                continue
            if hit is not None:  # an older track takes the object from a younger one
                other = self._tracks[hit]
                other.masks.pop(frame, None)
                other.stopped = (frame, f"collided with track {tid}")
                for c in self._children(hit):
                    if not self._tracks[c].user and self._tracks[c].anchor >= frame:
                        self._remove(c)
                taken = [(o, m) for o, m in taken if o != hit]
            prev = t.masks[frame - 1]
            pm = PlaneMask.from_dense(frame, mask, predicted_iou=scores[tid], overlap=1.0, anchor=False)
            d = mask_centroid(pm) - mask_centroid(prev)
            s = cfg.motion_smoothing
            t.motion = d if frame - 1 == t.anchor else s * t.motion + (1 - s) * d
            t.masks[frame] = pm
            taken.append((tid, mask))


def track_objects(
    model: Any,
    series: PlaneStack | Any,
    prompts: Sequence[Mapping[str, Any]],
    *,
    axes: str | None = None,
    config: TrackingConfig | None = None,
    scale: float = 1.0,
) -> TrackedSeries:
    """Track objects given by prompts on their first frames, in one call.

    Parameters
    ----------
    model : SamscopeModel
    series : array-like or PlaneStack
        ``(T, Y, X)`` frames.
    prompts : sequence of mappings
        One per track: ``frame`` and any of ``points``, ``labels``, ``box``, ``mask``.
    axes, config, scale
        As for :class:`Tracker`.

    Returns
    -------
    TrackedSeries
        ``.labels`` (ids = track ids) and ``.lineage`` (divisions as parent links).

    Examples
    --------
    >>> result = track_objects(model, movie, [{"frame": 0, "points": [[40, 50]]}])  # doctest: +SKIP
    >>> result.lineage.table()                                                      # doctest: +SKIP
    """
    if not prompts:
        raise InputError("no objects to track: give prompts for at least one object")
    tracker = Tracker(model, series, axes=axes, config=config, scale=scale)
    for p in prompts:
        p = dict(p)
        if "frame" not in p:
            raise InputError("each object's prompts need a 'frame'")
        tracker.add(p.pop("frame"), **p)
    return tracker.run()
