"""Interactive tracking in 3-D + t: one prompt per nucleus, followed through t and through z.

:class:`VolumeTracker` takes a ``(T, Z, Y, X)`` series. A track starts from prompts on one plane
of one time point. At each time point every track is a 3-D object: its **key plane** (the plane
where it is largest) is tracked through time as the 2-D tracker does
(:mod:`samscope.multidim.track`: the previous key-plane mask, shifted by the smoothed motion of the
object's centroid, prompts the same plane of the next time point; the same stop, collision and
division rules, :mod:`samscope.multidim.track_rules`), and the new key-plane mask is then
propagated through z by the volume propagator (:class:`samscope.multidim.propagate.Propagator`,
µSAM's volumetric rule), so the object's planes follow it as it moves in z. All tracks of a time
point are decoded in batched calls, one per key plane, and propagated through z together.

Example (a TZYX series ``movie`` and a model)::

    from samscope.multidim.track3d import VolumeTracker

    tracker = VolumeTracker(model, movie, scale=0.375)
    a = tracker.add(0, 2, points=[[120, 88]])    # time point 0, plane 2, one click
    result = tracker.run()
    result.labels            # (T, Z, Y, X), ids = track ids
    tracker.info(a).stopped  # (time point, why) where the track ended

Prompts are in native pixels. Corrections of a 3-D track (re-prompting a time point) are made by
removing the track and adding it again from that time point; user-marked divisions are not built
for 3-D + t.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.multidim.lineage import Lineage, Track, TrackedSeries, make_continuous
from samscope.multidim.objects import ObjectPrompt, PlaneMask, PropagatedObject, Propagation
from samscope.multidim.stack import PlaneStack
from samscope.multidim.track import TrackInfo
from samscope.multidim.track_rules import (
    TrackingConfig,
    continuing_mask,
    division_pieces,
    interior_point,
    prompts_from,
    same_object,
    shift_mask,
    stop_reason,
)

__all__ = ["VolumeTracker"]


@dataclass
class _Track3:
    id: int
    anchor: int
    prompt: ObjectPrompt | None  # None: a daughter, started from ``seed``
    parent: int = 0
    seed: PlaneMask | None = None
    masks: dict[int, dict[int, PlaneMask]] = field(default_factory=dict)  # t → z → mask (work)
    keys: dict[int, int] = field(default_factory=dict)  # t → key plane
    motion: np.ndarray = field(default_factory=lambda: np.zeros(2))
    stopped: tuple[int, str] | None = None

    def key(self, t: int) -> int:
        """The plane tracked into ``t + 1``: where the object stands out most at ``t``."""
        if t in self.keys:
            return self.keys[t]
        planes = self.masks[t]
        return max(planes, key=lambda z: planes[z].area)


class VolumeTracker:
    """Follow prompted nuclei through a ``(T, Z, Y, X)`` series (module docstring).

    Parameters
    ----------
    model : SamscopeModel
    series : array-like
        ``(T, Z, Y, X)`` (or ``(T, Z, Y, X, C)``); read one time point at a time.
    config : TrackingConfig, optional
        Through time (prompts, stops, divisions), as for the 2-D tracker.
    propagation : PropagationConfig, optional
        Through z (the volume propagator's defaults when None).
    scale : float
        Resize factor of every plane before it is embedded.
    cache : path, optional
        A folder for the embeddings, one zarr store per time point (reused on the next run).
    batch_size : int
        Objects per decoder call.
    """

    def __init__(
        self,
        model: Any,
        series: Any,
        *,
        config: TrackingConfig | None = None,
        propagation: Any = None,
        scale: float = 1.0,
        cache: str | Path | None = None,
        batch_size: int = 32,
    ) -> None:
        shape = tuple(int(s) for s in np.shape(series))
        if len(shape) not in (4, 5):
            raise InputError(f"a 3-D + t series is (t, z, y, x) or (t, z, y, x, c); got shape {shape}")
        if min(shape) == 0:
            raise InputError(f"series of shape {shape} is empty")
        self.series = series if hasattr(series, "shape") else np.asarray(series)
        self.model = model
        self.config = config or TrackingConfig()
        self.propagation = propagation
        self.scale = float(scale)
        self.cache = Path(cache) if cache is not None else None
        self.batch_size = int(batch_size)
        self.n_frames = shape[0]
        self._axes = "ZYXC" if len(shape) == 5 else "ZYX"
        self._stacks: dict[int, PlaneStack] = {}
        self._tracks: dict[int, _Track3] = {}
        self._next = 1

    def stack(self, t: int) -> PlaneStack:
        """The planes of time point ``t`` (embeddings computed on demand, the last few kept)."""
        if t not in self._stacks:
            if len(self._stacks) >= 2:
                self._stacks.pop(min(self._stacks))
            cache = self.cache / f"t{t:04d}.zarr" if self.cache is not None else None
            self._stacks[t] = PlaneStack(np.asarray(self.series[t]), self.model, axes=self._axes,
                                         scale=self.scale, cache=cache, keep=8)  # fmt: skip
        return self._stacks[t]

    # -- editing --------------------------------------------------------------------------------

    def add(self, frame: int, plane: int, *, points: Any = None, labels: Any = None, box: Any = None,
            mask: Any = None) -> int:  # fmt: skip
        """Start a track from prompts on ``plane`` of time point ``frame``; returns its id."""
        if isinstance(frame, bool) or int(frame) != frame or not 0 <= int(frame) < self.n_frames:
            raise InputError(f"time point {frame} is not in the series (0 … {self.n_frames - 1})")
        if points is None and box is None and mask is None:
            raise InputError(f"time point {frame}: give points, a box or a mask for the object")
        from samscope.multidim.propagate import Propagator

        checker = Propagator.__new__(Propagator)  # its prompt checks on this time point's planes
        checker.stack = self.stack(int(frame))
        prompt = checker._checked(ObjectPrompt(plane, points, labels, box, mask))
        return self._new(int(frame), prompt, parent=0)

    def remove(self, track_id: int) -> None:
        """Drop a track and its descendants."""
        if int(track_id) not in self._tracks:
            raise InputError(f"no track {track_id}: the tracks are {tuple(sorted(self._tracks))}")
        for c in [t.id for t in self._tracks.values() if t.parent == track_id]:
            self.remove(c)
        self._tracks.pop(int(track_id))

    def info(self, track_id: int) -> TrackInfo:
        """Time points, parent, children and stop reason of a track."""
        tr = self._tracks.get(int(track_id))
        if tr is None:
            raise InputError(f"no track {track_id}: the tracks are {tuple(sorted(self._tracks))}")
        kids = tuple(sorted(t.id for t in self._tracks.values() if t.parent == tr.id))
        return TrackInfo(tr.id, tr.parent, tr.anchor, tuple(sorted(tr.masks)), tr.stopped, kids,
                         tr.prompt is not None)  # fmt: skip

    # -- running --------------------------------------------------------------------------------

    def run(self) -> TrackedSeries:
        """Follow every track from its anchor to the end; returns labels (T, Z, Y, X) and lineage."""
        for c in [t.id for t in self._tracks.values() if t.prompt is None]:
            self._tracks.pop(c, None)  # automatic daughters are found again
        for tr in self._tracks.values():
            tr.masks.clear()
            tr.stopped, tr.motion = None, np.zeros(2)
        if not self._tracks:
            raise InputError("no tracks: add prompts for at least one object")
        for t in range(min(tr.anchor for tr in self._tracks.values()), self.n_frames):
            seeds = self._step(t) if t > 0 else {}
            self._propagate(t, seeds)
        return self.result()

    def result(self) -> TrackedSeries:
        """Labels (ids = track ids) and lineage as they stand."""
        from samscope.labels import label_dtype

        ids = sorted(self._tracks)
        st0 = next(iter(self._stacks.values())) if self._stacks else self.stack(0)
        n_z = int(np.shape(self.series)[1])
        labels = np.zeros((self.n_frames, n_z, *st0.plane_shape), label_dtype(max(ids, default=0)))
        for t in range(self.n_frames):
            objs = tuple(PropagatedObject((0,), self._tracks[i].masks.get(t, {})) for i in ids)
            dense = Propagation(objs, (n_z, *st0.plane_shape), st0.work_shape).labels()
            lut = np.zeros(len(ids) + 1, np.int64)
            lut[1:] = ids
            labels[t] = lut[dense]
        tracks = []
        for i in ids:
            frames = sorted(self._tracks[i].masks)
            if frames:
                tracks.append(Track(i, frames[0], frames[-1], self._tracks[i].parent))
        present = {t.id for t in tracks}
        tracks = [Track(t.id, t.start, t.end, t.parent if t.parent in present else 0) for t in tracks]
        return make_continuous(labels, Lineage(tuple(tracks)))

    # -- internals ------------------------------------------------------------------------------

    def _new(self, frame: int, prompt: ObjectPrompt | None, *, parent: int, seed=None) -> int:
        tid = self._next
        self._next += 1
        self._tracks[tid] = _Track3(tid, frame, prompt, parent=parent, seed=seed)
        return tid

    def _decode(self, t, plane, boxes, points, labels, masks):
        from samscope.prompting import segment_objects

        emb, index = self.stack(t).embeddings(plane)
        return segment_objects(self.model, emb, boxes=boxes, points=points, labels=labels,
                               masks=masks, plane=index, batch_size=self.batch_size)  # fmt: skip

    def _step(self, t: int) -> dict[int, PlaneMask]:
        """The key-plane masks of every live track at ``t`` (stops and divisions applied)."""
        cfg = self.config
        work = self.stack(t).work_shape
        live = [tr for tr in sorted(self._tracks.values(), key=lambda r: r.id)
                if tr.stopped is None and (t - 1) in tr.masks and tr.anchor < t
                and (cfg.max_frames is None or t - tr.anchor <= cfg.max_frames)]  # fmt: skip
        by_plane: dict[int, list[_Track3]] = {}
        for tr in live:
            by_plane.setdefault(tr.key(t - 1), []).append(tr)
        seeds: dict[int, PlaneMask] = {}
        for z, group in sorted(by_plane.items()):
            shifted = [shift_mask(tr.masks[t - 1][z].dense(work), tr.motion) for tr in group]
            res = self._decode(t, z, *prompts_from(shifted, cfg, work))
            splits = []
            for j, tr in enumerate(group):
                mask, prev = res.masks[j].astype(bool), shifted[j]
                reason = stop_reason(cfg, prev, mask, float(res.iou[j]))
                if reason is not None:
                    tr.stopped = (t, reason)
                    continue
                parts = division_pieces(mask, prev, cfg) if cfg.detect_divisions else None
                if parts is not None:
                    splits.append((tr, parts))
                else:
                    mask = continuing_mask(mask, prev, cfg)
                seeds[tr.id] = PlaneMask.from_dense(z, mask, predicted_iou=float(res.iou[j]), overlap=1.0,
                                                    anchor=True)  # fmt: skip
            for tr, parts in self._confirmed(t, z, splits):  # the rest: one object, both pieces
                seeds.pop(tr.id)
                tr.stopped = (t, "divided")
                for part in parts:
                    seed = PlaneMask.from_dense(z, part, predicted_iou=1.0, overlap=1.0, anchor=True)
                    seeds[self._new(t, None, parent=tr.id, seed=seed)] = seed
        self._collisions(t, seeds)
        return seeds

    def _confirmed(self, t, z, splits):
        if not splits or not self.config.division_probe:
            return splits
        pts = np.array([interior_point(p) for _, parts in splits for p in parts])[:, None, :]
        res = self._decode(t, z, None, pts, np.ones((len(pts), 1), np.int64), None)
        return [s for k, s in enumerate(splits)
                if not same_object(s[1], (res.masks[2 * k], res.masks[2 * k + 1]))]  # fmt: skip

    def _collisions(self, t: int, seeds: dict[int, PlaneMask]) -> None:
        """Two key-plane masks on the same plane that share most of their pixels: the younger
        track ends."""
        work = self.stack(t).work_shape
        ids = sorted(seeds)
        dense = {i: seeds[i].dense(work) for i in ids}
        for k, a in enumerate(ids):
            for b in ids[k + 1 :]:
                if a not in seeds or b not in seeds or seeds[a].plane != seeds[b].plane:
                    continue
                inter = np.count_nonzero(dense[a] & dense[b])
                if inter > self.config.max_shared * max(min(seeds[a].area, seeds[b].area), 1):
                    seeds.pop(b)
                    if self._tracks[b].parent and self._tracks[b].anchor == t:
                        self._tracks.pop(b)  # a daughter that is another track's object
                    else:
                        self._tracks[b].stopped = (t, f"collided with track {a}")

    def _propagate(self, t: int, seeds: dict[int, PlaneMask]) -> None:
        """Propagate the key-plane masks (and the anchors prompted at ``t``) through z."""
        from samscope.multidim.propagate import Propagator

        st = self.stack(t)
        prop = Propagator(self.model, st, config=self.propagation, batch_size=self.batch_size)
        index: dict[int, int] = {}
        for tid, seed in seeds.items():
            native = st.mask_to_native(seed.dense(st.work_shape))
            if native.any():
                index[prop.add(ObjectPrompt(seed.plane, mask=native))] = tid
        for tr in self._tracks.values():
            if tr.anchor == t and tr.prompt is not None:
                index[prop.add(tr.prompt)] = tr.id
        if not index:
            return
        result = prop.run()
        images: dict[int, np.ndarray] = {}
        for i, tid in index.items():
            tr = self._tracks[tid]
            planes = {z: m for z, m in result.objects[i].masks.items() if m.area}
            if tid in seeds and seeds[tid].area:
                planes[seeds[tid].plane] = seeds[tid]  # the tracked plane as decoded, unresampled
            if not planes:
                tr.stopped = (t, "nothing found on any plane")
                continue
            tr.masks[t] = planes
            tr.keys[t] = _key_plane(st, planes, images, tr.keys.get(t - 1))
            if (t - 1) in tr.masks:
                d = _centroid3(planes) - _centroid3(tr.masks[t - 1])
                s = self.config.motion_smoothing
                tr.motion = d if t - 1 == tr.anchor else s * tr.motion + (1 - s) * d


def _key_plane(st: PlaneStack, planes: dict[int, PlaneMask], images: dict[int, np.ndarray],
               previous: int | None = None) -> int:
    """The plane to track: the previous key plane while the object still stands out there
    (contrast against its surroundings at least 0.8 of its best plane's), else the largest plane
    where it stands out. A blurred out-of-focus plane can be as large as the others, but its box
    catches neighbours; keeping the plane avoids jumping onto a plane where the mask leaked."""
    from samscope.multidim.link import object_contrast

    if len(planes) == 1:
        return next(iter(planes))
    contrast = {}
    for z, m in planes.items():
        if z not in images:
            images[z] = st.image(z)
        c = object_contrast(images[z], m.dense(st.work_shape))
        contrast[z] = c if np.isfinite(c) else -np.inf
    best = max(contrast.values())
    sharp = [z for z, c in contrast.items() if c >= 0.8 * best] if best > 0 else list(planes)
    if previous in sharp:
        return previous
    return max(sorted(sharp), key=lambda z: planes[z].area)


def _centroid3(planes: dict[int, PlaneMask]) -> np.ndarray:
    """Area-weighted ``(y, x)`` centroid of an object's planes."""
    total, acc = 0, np.zeros(2)
    for m in planes.values():
        ys, xs = np.nonzero(m.crop)
        acc += (ys.sum() + m.box[0] * len(ys), xs.sum() + m.box[1] * len(xs))
        total += len(ys)
    return acc / max(total, 1)
