"""SAM2's video memory as a propagator: objects carried through planes (z) or frames (t).

The prompt-projection propagator (:mod:`samscope.multidim.propagate`) decodes every plane from
prompts made of the neighbouring plane's mask. SAM2 (Ravi et al. 2024) instead keeps a *memory*
per object: each decoded plane is encoded (its image features and the object's mask) into a
memory bank, and the next plane's image features attend to that bank and to the object pointers
of earlier planes before the mask decoder runs, with no prompt at all. Its decoder also says
whether the object is present (an *object score* logit), which gives a natural stop rule.

:class:`MemoryPropagator` runs that with ``transformers.Sam2VideoModel`` and has the same inputs
and outputs as :class:`~samscope.multidim.propagate.Propagator` (``add``, ``correct``,
``remove_anchor``, ``run`` → :class:`~samscope.multidim.objects.Propagation`), so the 3-D and
tracking code paths can choose it: ``propagate(..., propagator="sam2-memory")``, CLI
``samscope prompt VOLUME --plane K ... --propagate --propagator sam2-memory``.

What it does, following Meta's video predictor (``SAM2VideoPredictor``, sam2 1.1.0):

1. every object's anchors (planes with the user's prompts) are *conditioning frames*: decoded
   from their points/box (a box is two corner points, labels 2 and 3), or taken as given from a
   mask, without memory;
2. a forward sweep from each object's earliest anchor to the last plane, then (``directions=
   "both"``) a backward sweep from the same anchor to plane 0, each plane decoded from memory;
   anchors met on the way are reused, not decoded again. All conditioning frames are in every
   plane's memory (also those on the other side), with the ``num_maskmem - 1`` most recently
   tracked planes, as in SAM2.
3. An object stops (and is not decoded further in that direction) where SAM2's object score is
   below ``min_object_score`` (SAM2 says: absent), where its mask is smaller than ``min_area``
   or grows by more than ``max_growth``, at an anchor with an empty mask (the user said: absent)
   and after ``max_planes``. Objects are independent in SAM2 (each has its own memory); many are
   swept together so that every plane's image features are computed once per sweep and shared.

A correction (:meth:`MemoryPropagator.correct`) re-runs that object through the whole stack:
SAM2's memory links all its planes. Other objects are kept.

Planes are embedded at SAM2's square input size (``config.image_size``, 1024 for Meta's models;
the plane is stretched, as Meta's predictor does) with ImageNet normalisation, after the stack's
intensities are put into [0, 1] with one range for the whole stack (1st–99.8th percentile of a
sample of planes): the memory compares planes, so they must share a scale.

``transformers`` and ``torch`` are imported on first use.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.multidim.objects import ObjectPrompt, PlaneMask, Propagation
from samscope.multidim.propagate import (
    DIRECTIONS,
    PropagationConfig,
    Propagator,
    plane_iou,
    prompt_absent,
)
from samscope.multidim.stack import PlaneStack

__all__ = [
    "PROPAGATORS",
    "MemoryConfig",
    "MemoryPropagator",
    "memory_propagate",
    "propagate_with",
    "video_model_of",
]

log = logging.getLogger(__name__)

#: The propagators the 3-D and tracking paths can choose from.
PROPAGATORS = ("projection", "sam2-memory")

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class MemoryConfig:
    """How SAM2's memory propagation runs and when an object ends.

    Attributes
    ----------
    directions : str
        ``both`` (volumes), ``forward`` (time series: increasing plane index) or ``backward``.
    min_object_score : float
        Stop where SAM2's object-score logit is below this (0: SAM2's own "absent" decision;
        ``-inf``: never).
    mask_threshold : float
        Logit above which a pixel belongs to the mask.
    min_area : int
        Stop where the mask has fewer pixels (at the working resolution).
    max_growth : float or None
        Stop where the area grows by more than this factor from the previous plane (None: never).
    max_planes : int or None
        Propagate at most this many planes from the anchor in each direction.
    feature_cache : int
        Planes whose image features stay in memory (SAM2 reads each plane once per sweep).
    """

    directions: str = "both"
    min_object_score: float = 0.0
    mask_threshold: float = 0.0
    min_area: int = 10
    max_growth: float | None = 4.0
    max_planes: int | None = None
    feature_cache: int = 2

    def __post_init__(self) -> None:
        if self.directions not in DIRECTIONS:
            raise InputError(f"directions must be one of {DIRECTIONS}, got {self.directions!r}")
        if math.isnan(self.min_object_score):
            raise InputError("min_object_score must be a number (or -inf), got nan")
        if not math.isfinite(self.mask_threshold):
            raise InputError(f"mask_threshold must be finite, got {self.mask_threshold}")
        if self.min_area < 0:
            raise InputError(f"min_area must be >= 0, got {self.min_area}")
        if self.max_growth is not None and not self.max_growth > 1:
            raise InputError(f"max_growth must be > 1 or None, got {self.max_growth}")
        if self.max_planes is not None and self.max_planes < 0:
            raise InputError(f"max_planes must be >= 0 or None, got {self.max_planes}")
        if self.feature_cache < 1:
            raise InputError(f"feature_cache must be >= 1, got {self.feature_cache}")

    @classmethod
    def from_propagation(cls, config: PropagationConfig) -> MemoryConfig:
        """The settings a :class:`PropagationConfig` shares with this one (the rest default)."""
        return cls(
            directions=config.directions, min_area=config.min_area,
            max_growth=config.max_growth, max_planes=config.max_planes,
        )  # fmt: skip


def video_model_of(model: Any) -> Any:
    """The ``transformers.Sam2VideoModel`` behind ``model``.

    Parameters
    ----------
    model : Sam2VideoModel or SamscopeModel
        A ``Sam2VideoModel``, or a samscope model that holds one: attribute ``video_model`` (or
        a method ``video_model()``), or its ``sam`` module itself.

    Raises
    ------
    InputError
        ``model`` has no SAM2 video memory (e.g. a SAM1 ViT).
    """
    from transformers import Sam2VideoModel

    if isinstance(model, Sam2VideoModel):
        return model
    got = getattr(model, "video_model", None)
    if callable(got) and not isinstance(got, Sam2VideoModel):
        got = got()
    if isinstance(got, Sam2VideoModel):
        return got
    if isinstance(getattr(model, "sam", None), Sam2VideoModel):  # a samscope model built on one
        return model.sam
    name = getattr(getattr(model, "card", None), "name", None) or type(model).__name__
    if getattr(getattr(getattr(model, "sam", None), "config", None), "model_type", None) == "sam2":
        raise InputError(
            f"model {name!r} was loaded as a SAM2 image model, without SAM2's memory modules; build "
            "it with samscope.models.sam2_convert.build_sam2_video_model for the 'sam2-memory' propagator"
        )
    raise InputError(
        f"model {name!r} has no SAM2 video memory, so it cannot run the 'sam2-memory' propagator; "
        "use a SAM2 model (e.g. sam2.1_hiera_t) or --propagator projection"
    )


class _Frames:
    """Planes of a stack as SAM2 input tensors ``(3, S, S)``, made on demand (a small LRU)."""

    def __init__(self, stack: PlaneStack, size: int, device: Any, keep: int = 2) -> None:
        from samscope.image import intensity_range

        self.stack, self.size, self.device, self.keep = stack, int(size), device, max(1, keep)
        n = stack.n_planes
        picks = sorted({int(round(v)) for v in np.linspace(0, n - 1, min(n, 8))})
        sample = np.concatenate([np.asarray(stack.image(k), np.float32).ravel() for k in picks])
        self.range = intensity_range(sample)
        self._lru: OrderedDict[int, Any] = OrderedDict()

    def __len__(self) -> int:
        return self.stack.n_planes

    def __getitem__(self, plane: int) -> Any:
        got = self._lru.pop(plane, None)
        if got is None:
            got = preprocess_plane(self.stack.image(plane), self.size, self.range).to(self.device)
        self._lru[plane] = got
        while len(self._lru) > self.keep:
            self._lru.popitem(last=False)
        return got


def preprocess_plane(image: np.ndarray, size: int, value_range: tuple[float, float]) -> Any:
    """One plane as SAM2's input: ``(3, size, size)`` float32, ImageNet-normalised.

    Parameters
    ----------
    image : ndarray
        ``(H, W)`` or ``(H, W, C)``.
    size : int
        SAM2's square input side.
    value_range : (float, float)
        Intensities mapped to 0 and 1 (clipped).
    """
    import torch
    import torch.nn.functional as F

    from samscope.image import normalize_percentile, to_rgb

    x = normalize_percentile(np.asarray(image), value_range=value_range)
    rgb = torch.from_numpy(np.ascontiguousarray(to_rgb(x), dtype=np.float32)).permute(2, 0, 1)
    if tuple(rgb.shape[1:]) != (size, size):
        rgb = F.interpolate(rgb[None], size=(size, size), mode="bilinear", align_corners=False,
                            antialias=True)[0]  # fmt: skip
    mean = torch.tensor(_IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(_IMAGENET_STD).view(3, 1, 1)
    return (rgb - mean) / std


class MemoryPropagator(Propagator):
    """Interactive propagation with SAM2's video memory (same interface as :class:`Propagator`).

    Parameters
    ----------
    model : Sam2VideoModel or SamscopeModel
        See :func:`video_model_of`.
    stack : PlaneStack or array-like
    config : MemoryConfig or PropagationConfig, optional
        A :class:`PropagationConfig` lends its shared settings
        (:meth:`MemoryConfig.from_propagation`).
    axes : str, optional
    keep_logits : bool
        Keep every decoded plane's low-resolution mask logits (``logits[(object, plane)]``, a
        numpy array), e.g. to compare with Meta's predictor.

    Examples
    --------
    >>> prop = MemoryPropagator(video_model, volume)          # doctest: +SKIP
    >>> a = prop.add(ObjectPrompt(12, points=[[40, 50]]))     # doctest: +SKIP
    >>> labels = prop.run().labels()                          # doctest: +SKIP
    """

    def __init__(
        self,
        model: Any,
        stack: PlaneStack | Any,
        *,
        config: MemoryConfig | PropagationConfig | None = None,
        axes: str | None = None,
        keep_logits: bool = False,
    ) -> None:
        self.video = video_model_of(model)
        super().__init__(model, stack, axes=axes)
        if isinstance(config, PropagationConfig):
            config = MemoryConfig.from_propagation(config)
        self.memory_config = config or MemoryConfig()
        # the base class's rules (directions, max_planes) where they are read
        self.config = PropagationConfig(directions=self.memory_config.directions,
                                        max_planes=self.memory_config.max_planes)  # fmt: skip
        self.keep_logits = bool(keep_logits)
        self.logits: dict[tuple[int, int], np.ndarray] = {}
        self.timings: dict[str, float] = {"planes": 0.0, "seconds": 0.0}

    # -- running --------------------------------------------------------------------------------

    def run(self) -> Propagation:
        """Propagate the objects that changed (each through the whole stack); returns all."""
        import time

        import torch

        todo = sorted(i for i, a in self._dirty.items() if a)
        if todo:
            t0 = time.perf_counter()
            with torch.inference_mode():
                self._run(todo)
            self.timings["seconds"] += time.perf_counter() - t0
        self._dirty.clear()
        return self.result()

    def _session(self) -> Any:
        from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession

        video = self.video
        param = next(video.parameters())
        size = _image_size(video)
        session = Sam2VideoInferenceSession(
            video=None, video_height=size, video_width=size, inference_device=param.device,
            inference_state_device=param.device, video_storage_device=param.device,
            dtype=param.dtype, max_vision_features_cache_size=self.memory_config.feature_cache,
        )  # fmt: skip
        session.processed_frames = _Frames(self.stack, size, param.device, keep=2)
        return session

    def _run(self, todo: list[int]) -> None:
        import torch

        cfg = self.memory_config
        session = self._session()
        size = _image_size(self.video)
        present: dict[int, list[int]] = {}  # object -> its anchors with something in them
        by_plane: dict[int, list[int]] = {}
        for i in todo:
            obj = self._objects[i]
            obj.masks.clear()
            obj.stopped.clear()
            for k in [k for k in self.logits if k[0] == i]:
                del self.logits[k]
            idx = session.obj_id_to_idx(i)
            for plane, pr in sorted(obj.anchors.items()):
                if prompt_absent(pr):
                    obj.masks[plane] = PlaneMask.from_dense(plane, np.zeros(self.stack.work_shape, bool),
                                                            predicted_iou=1.0, overlap=1.0, anchor=True)  # fmt: skip
                    obj.stopped[plane] = "absent (marked by the user)"
                    continue
                if pr.points is None and pr.box is None:
                    m = torch.from_numpy(self.stack.mask_to_work(pr.mask).astype(np.float32))[None, None]
                    m = torch.nn.functional.interpolate(m, size=(size, size), mode="bilinear",
                                                        align_corners=False, antialias=True)  # fmt: skip
                    session.add_mask_inputs(idx, plane, (m >= 0.5).float())
                else:
                    if pr.mask is not None:
                        log.warning("object %d, plane %d: SAM2 takes points/box or a mask; the mask is ignored",
                                    i, plane)  # fmt: skip
                    session.add_point_inputs(idx, plane, self._point_inputs(pr, size))
                present.setdefault(i, []).append(plane)
                by_plane.setdefault(plane, []).append(i)
        for plane in sorted(by_plane):  # the conditioning frames, without memory
            self._step(session, plane, by_plane[plane], cond=True, reverse=False)
        st = self.stack
        chains: dict[tuple[int, bool], list[int]] = {}
        for i, planes in present.items():
            obj = self._objects[i]
            absent = sorted(p for p, pr in obj.anchors.items() if prompt_absent(pr))
            start_up = planes[0] if cfg.directions != "backward" else planes[-1]
            for up in (True, False):
                if (up and cfg.directions == "backward") or (not up and cfg.directions == "forward"):
                    continue
                start = start_up
                if up:
                    end = min([p - 1 for p in absent if p > start] + [st.n_planes - 1])
                    seg = list(range(start + 1, end + 1))
                else:
                    end = max([p + 1 for p in absent if p < start] + [0])
                    seg = list(range(start - 1, end - 1, -1))
                if cfg.max_planes is not None:
                    seg = seg[: cfg.max_planes]
                if obj.masks.get(start) is not None and obj.masks[start].area:
                    chains[(i, up)] = seg
        for up in (True, False):
            order = range(st.n_planes) if up else range(st.n_planes - 1, -1, -1)
            for plane in order:
                todo_here = [i for (i, u), seg in chains.items() if u == up and seg and seg[0] == plane]
                if not todo_here:
                    continue
                for i in todo_here:
                    chains[(i, up)].pop(0)
                reuse = [i for i in todo_here if plane in present.get(i, ())]  # anchors: kept as decoded
                run = [i for i in todo_here if i not in reuse]
                if run:
                    self._step(session, plane, run, cond=False, reverse=not up, chains=chains, up=up)

    def _point_inputs(self, pr: ObjectPrompt, size: int) -> dict:
        import torch

        h, w = self.stack.work_shape
        scale = np.array([size / w, size / h])
        coords, labels = [], []
        if pr.box is not None:
            b = self.stack.box_to_work(pr.box)
            coords += [[b[1], b[0]], [b[3], b[2]]]
            labels += [2, 3]
        if pr.points is not None:
            pts = self.stack.points_to_work(pr.points)
            coords += [[p[1], p[0]] for p in pts]
            labels += [int(v) for v in pr.labels]
        xy = np.asarray(coords, np.float64) * scale
        return {
            "point_coords": torch.tensor(xy, dtype=torch.float32).view(1, 1, -1, 2),
            "point_labels": torch.tensor(labels, dtype=torch.int32).view(1, 1, -1),
        }

    def _step(self, session, plane: int, objects: list[int], *, cond: bool, reverse: bool,
              chains=None, up: bool = True) -> None:  # fmt: skip
        """Decode ``objects`` on ``plane`` (as Sam2VideoModel.forward does, for these objects only)."""
        import torch.nn.functional as F

        video, cfg = self.video, self.memory_config
        need_mem, masks_mem, scores_mem, from_pts = [], [], [], []
        h, w = self.stack.work_shape
        step = -1 if up else 1
        for i in objects:
            idx = session.obj_id_to_idx(i)
            pts = session.point_inputs_per_obj[idx].get(plane) if cond else None
            msk = session.mask_inputs_per_obj[idx].get(plane) if cond else None
            out = video._run_single_frame_inference(
                inference_session=session, obj_idx=idx, frame_idx=plane, batch_size=1,
                is_init_cond_frame=cond, point_inputs=pts, mask_inputs=msk, reverse=reverse,
            )  # fmt: skip
            session.store_output(idx, plane, output_value=out, is_conditioning_frame=cond)
            if not cond:
                session.frames_tracked_per_obj[idx][plane] = {"reverse": reverse}
            if video.num_maskmem > 0:
                need_mem.append(idx)
                masks_mem.append(out["high_res_masks"])
                scores_mem.append(out["object_score_logits"])
                from_pts.append(pts is not None or msk is not None)
            low = out["pred_masks"]
            if self.keep_logits:
                self.logits[(i, plane)] = low[0, 0].float().cpu().numpy()
            score = float(out["object_score_logits"].reshape(-1)[0])
            dense = F.interpolate(low.float(), size=(h, w), mode="bilinear", align_corners=False)[0, 0]
            new = (dense > cfg.mask_threshold).cpu().numpy()
            obj = self._objects[i]
            prob = 1.0 / (1.0 + math.exp(-max(min(score, 50.0), -50.0)))
            if cond:
                obj.masks[plane] = PlaneMask.from_dense(plane, new, predicted_iou=prob, overlap=1.0, anchor=True)
                continue
            prev = obj.masks.get(plane + step)
            reason = self._stop_reason(prev, new, score)
            self.timings["planes"] += 1
            if reason is not None:
                obj.stopped[plane] = reason
                chains[(i, up)] = []
                continue
            overlap = plane_iou(prev, new) if prev is not None else 0.0
            obj.masks[plane] = PlaneMask.from_dense(plane, new, predicted_iou=prob, overlap=overlap, anchor=False)
        video._batch_encode_memories(
            inference_session=session, frame_idx=plane, objects_needing_memory_encoding=need_mem,
            high_res_masks_for_memory=masks_mem, object_score_logits_for_memory=scores_mem,
            is_mask_from_pts_per_obj=from_pts,
        )  # fmt: skip

    def _stop_reason(self, prev: PlaneMask | None, new: np.ndarray, score: float) -> str | None:
        cfg = self.memory_config
        if score < cfg.min_object_score:
            return f"SAM2 object score {score:.2f} < {cfg.min_object_score} (absent)"
        area = int(np.count_nonzero(new))
        if area < max(1, cfg.min_area) and cfg.min_area > 0:
            return f"mask of {area} px (min_area {cfg.min_area})"
        if cfg.max_growth is not None and prev is not None and prev.area:
            ratio = area / prev.area
            if ratio > cfg.max_growth:
                return f"area grew ×{ratio:.2f} (max_growth {cfg.max_growth})"
        return None


def _image_size(video: Any) -> int:
    size = video.config.image_size
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def memory_propagate(
    model: Any,
    stack: PlaneStack | Any,
    objects: Sequence[ObjectPrompt | Sequence[ObjectPrompt]],
    *,
    config: MemoryConfig | PropagationConfig | None = None,
    axes: str | None = None,
) -> Propagation:
    """Segment objects through a stack with SAM2's memory (see :func:`~samscope.multidim.propagate`).

    Parameters
    ----------
    model : Sam2VideoModel or SamscopeModel
    stack : PlaneStack or array-like
    objects : sequence
        One entry per object: an :class:`ObjectPrompt`, or several (on different planes).
    config : MemoryConfig or PropagationConfig, optional
    axes : str, optional

    Returns
    -------
    Propagation

    Raises
    ------
    InputError
        No objects, a model without SAM2 memory, prompts outside the stack.
    """
    prop = MemoryPropagator(model, stack, config=config, axes=axes)
    if not objects:
        raise InputError("no objects to propagate: give prompts for at least one object")
    for obj in objects:
        prop.add(obj)
    return prop.run()


def propagate_with(propagator: str, model: Any, stack: Any, objects: Sequence, **kw: Any) -> Propagation:
    """Run the propagator named ``propagator`` (one of :data:`PROPAGATORS`)."""
    if propagator not in PROPAGATORS:
        raise InputError(f"unknown propagator {propagator!r}; choose one of: {', '.join(PROPAGATORS)}")
    if propagator == "sam2-memory":
        kw.pop("batch_size", None)
        return memory_propagate(model, stack, objects, **kw)
    from samscope.multidim.propagate import propagate

    return propagate(model, stack, objects, **kw)
