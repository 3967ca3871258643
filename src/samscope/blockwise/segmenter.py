"""What segments one block: a model and mode (loaded once per process), or a fixed threshold.

A segmenter is a small picklable object with ``segment(block, axes) -> labels`` (local ids
``1..n``, same spatial shape as the block) and ``signature() -> dict`` (what an output records
so that a later run with other settings is refused). Dask ships the segmenter to each worker;
the model is loaded the first time a process uses it and kept for the rest of its blocks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from samscope.errors import InputError

__all__ = ["BlockSegmenter", "ModelSegmenter", "ThresholdSegmenter", "relabel_local"]

_MODELS: dict[tuple, Any] = {}
_LOCK = threading.Lock()


class BlockSegmenter(Protocol):
    """What :func:`samscope.blockwise.segment_blockwise` calls per block."""

    def segment(self, block: np.ndarray, axes: str) -> np.ndarray: ...

    def signature(self) -> dict: ...


def relabel_local(labels: np.ndarray) -> np.ndarray:
    """Labels as uint32 ids ``1..n`` in order of first appearance of their old ids' values."""
    from skimage.segmentation import relabel_sequential

    lab = np.asarray(labels)
    if lab.dtype.kind not in "iu":
        raise InputError(f"a segmenter returned labels of dtype {lab.dtype}, not integers")
    out, _, _ = relabel_sequential(lab)
    if int(out.max(initial=0)) >= 2**32:
        raise InputError("more than 2**32 objects in one block; use smaller blocks")
    return out.astype(np.uint32)


@dataclass(frozen=True)
class ThresholdSegmenter:
    """Objects = connected components of ``block > threshold`` (deterministic, model-free).

    For tests and benchmarks of the stitching: with a fixed threshold every block agrees with a
    whole-image run wherever it sees an object whole, so blockwise and whole-image results must
    be identical up to the ids.

    Parameters
    ----------
    threshold : float
    min_size : int
        Components with fewer pixels are dropped.
    """

    threshold: float
    min_size: int = 0

    def segment(self, block: np.ndarray, axes: str) -> np.ndarray:
        from scipy import ndimage as ndi

        arr = np.asarray(block)
        if axes == "YXC":
            arr = arr.mean(axis=-1)
        lab, _ = ndi.label(arr > self.threshold)
        if self.min_size > 1 and lab.max():
            areas = np.bincount(lab.ravel())
            lab[areas[lab] < self.min_size] = 0
        return relabel_local(lab)

    def signature(self) -> dict:
        return {"segmenter": "threshold", "threshold": float(self.threshold),
                "min_size": int(self.min_size)}


@dataclass(frozen=True)
class ModelSegmenter:
    """A samscope model and automatic mode, the same settings and object size for every block.

    Parameters
    ----------
    model : str
        Registered name or checkpoint file.
    checkpoint : str, optional
    device : str, optional
    mode : str
        A mode the model supports (resolve ``auto`` first: :meth:`resolved`).
    settings : tuple of (str, value)
        The mode's config fields (``min_size=50``), as given on the command line.
    diameter : float, optional
        Object diameter in pixels, applied to every block (estimate it once for the image:
        :func:`samscope.blockwise.estimate.estimate_image_diameter`); None for models that work
        at one scale.
    tile_shape, tile_halo : tuple of int, optional
        Tiling inside a block (the model card's default otherwise).
    threads : int, optional
        torch threads in the process that segments (Dask workers: the cores per worker).
    value_range : (float, float), optional
        Intensities mapped to 0 and 1 in every block (one range for the whole image:
        :func:`samscope.blockwise.estimate.estimate_value_range`), in place of each block's own
        percentiles, so blocks of uneven brightness see the same contrast. Used by the modes
        that embed the image (ais, amg, apg); distance and foreground window it their own way.
    precision : {"fp32", "bf16", "int8"}, optional
        The encoder's precision (:func:`samscope.models.registry.load_model`; None: the
        model's default). Recorded in :meth:`signature` when it is not fp32.
    """

    model: str
    checkpoint: str | None = None
    device: str | None = None
    mode: str = "auto"
    settings: tuple[tuple[str, Any], ...] = field(default=())
    diameter: float | None = None
    tile_shape: tuple[int, int] | None = None
    tile_halo: tuple[int, int] | None = None
    threads: int | None = None
    value_range: tuple[float, float] | None = None
    precision: str | None = None

    def loaded(self) -> tuple[Any, str, Any]:
        """``(model, mode, config)``, loaded once per process."""
        ident = (self.model, self.checkpoint, self.device, self.mode, self.settings,
                 self.precision)
        with _LOCK:
            if ident not in _MODELS:
                if self.threads:
                    import torch

                    torch.set_num_threads(int(self.threads))
                from samscope.instance.segment import choose_mode, config_class
                from samscope.models.registry import load_model
                from samscope.settings import build_settings

                net = load_model(self.model, checkpoint=self.checkpoint, device=self.device,
                                 precision=self.precision)
                mode = choose_mode(net, self.mode)
                config = None
                if self.settings:
                    config = build_settings(config_class(mode), dict(self.settings),
                                            what=f"mode {mode!r}")
                _MODELS[ident] = (net, mode, config)
            return _MODELS[ident]

    def resolved(self) -> ModelSegmenter:
        """This segmenter with ``mode="auto"`` replaced by the mode it picks for the model."""
        from dataclasses import replace

        _, mode, _ = self.loaded()
        return self if mode == self.mode else replace(self, mode=mode)

    def _plane(self, plane: np.ndarray) -> np.ndarray:
        from samscope.instance.segment import segment

        net, mode, config = self.loaded()
        kwargs = {} if self.diameter is None else {"diameter": float(self.diameter)}
        if self.value_range is not None and mode in ("ais", "amg", "apg") \
                and not np.all(plane == plane.flat[0]):
            return self._plane_in_range(plane, net, mode, config)
        result = segment(plane, net, mode=mode, config=config, tile_shape=self.tile_shape,
                         halo=self.tile_halo, **kwargs)
        return result.labels

    def _plane_in_range(self, plane: np.ndarray, net: Any, mode: str, config: Any) -> np.ndarray:
        """What :func:`samscope.instance.segment.segment` does, with embeddings normalised by
        :attr:`value_range` (``segment`` takes embeddings only at the image's own scale)."""
        from samscope.embeddings import compute_embeddings
        from samscope.instance.scale import rescale_instances, resize_plane, scale_for
        from samscope.instance.segment import ais_from_scaled_maps, segment

        card = getattr(net, "card", None)
        scale = scale_for(self.diameter, getattr(card, "working_diameter", None))
        work = plane if scale == 1.0 else resize_plane(plane, scale)
        emb = compute_embeddings(work, net, tile_shape=self.tile_shape, halo=self.tile_halo,
                                 value_range=self.value_range)
        if scale != 1.0 and mode == "ais":
            from samscope.instance.ais import AISConfig, predict_image_maps

            cfg = (config or AISConfig()).resolve(card.automatic)
            maps = predict_image_maps(net, emb)
            return ais_from_scaled_maps(maps, plane.shape[:2], config=cfg).labels
        # at the working scale now: segment() uses the embeddings as they are
        at_scale = {} if self.diameter is None else {
            "diameter": float(self.diameter) * scale}
        result = segment(work, net, mode=mode, config=config, embeddings=emb,
                         tile_shape=self.tile_shape, halo=self.tile_halo, **at_scale)
        if scale != 1.0:
            result = rescale_instances(result, plane.shape[:2])
        return result.labels

    def segment(self, block: np.ndarray, axes: str) -> np.ndarray:
        if axes != "ZYX":
            return relabel_local(self._plane(block))
        from samscope.labels import stack_labels
        from samscope.multidim import link_stack

        planes = [self._plane(block[k]) for k in range(block.shape[0])]
        linked, _ = link_stack(stack_labels(planes, stacked=True), block)
        return relabel_local(linked)

    def signature(self) -> dict:
        net, mode, config = self.loaded()
        import dataclasses

        from samscope.instance.segment import config_class
        from samscope.instance.settings import resolve_settings

        cfg = config if config is not None else config_class(mode)()
        effective = dataclasses.asdict(resolve_settings(cfg, getattr(net, "card", None)))
        precision = str(getattr(net, "precision", "fp32"))
        return {
            "segmenter": "model",
            "model": getattr(net, "name", self.model),
            "checkpoint": self.checkpoint,
            "mode": mode,
            "settings": {k: v for k, v in effective.items() if _plain(v)},
            "diameter": None if self.diameter is None else round(float(self.diameter), 3),
            "tile_shape": None if self.tile_shape is None else list(self.tile_shape),
            "tile_halo": None if self.tile_halo is None else list(self.tile_halo),
            **({} if self.value_range is None else
               {"value_range": [float(v) for v in self.value_range]}),
            # only when not fp32, so outputs made before precisions existed still resume
            **({} if precision == "fp32" else {"precision": precision}),
        }


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str | list | tuple)
