"""GUI-free state shared by the annotators: models, embeddings caches, committed objects, automatic runs.

Nothing here imports napari or Qt, so it is tested on its own; the widgets hold one of each and
show them. Every segmentation step is a library call.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError, SamscopeError

__all__ = [
    "AutomaticPrediction",
    "ObjectStore",
    "automatic_defaults",
    "cache_path_for",
    "load_model_for_gui",
    "model_choices",
    "postprocess",
    "predict",
]

#: Modes whose thresholds are applied to cached network outputs (changing one is cheap).
CHEAP_MODES = ("ais",)


# -- models --------------------------------------------------------------------------------------


def model_choices() -> list[str]:
    """Registered model names, the default first (shipped, cached, imported and test models)."""
    from samscope.models.registry import DEFAULT_MODEL, list_models

    names = [card.name for card in list_models()]
    return [DEFAULT_MODEL] + [n for n in names if n != DEFAULT_MODEL]


def load_model_for_gui(name_or_path: str, *, device: str | None = None):
    """Load a model by name or checkpoint file; a problem becomes one readable line.

    Returns
    -------
    SamscopeModel

    Raises
    ------
    SamscopeError
        Unknown or missing model (the message names ``samscope models import`` / ``fetch``),
        a damaged checkpoint. Never a bare traceback: anything else unexpected is wrapped.
    """
    from samscope.models.registry import load_model

    text = str(name_or_path).strip()
    if not text:
        raise InputError("choose a model (a name from the list or a checkpoint file)")
    try:
        return load_model(text, device=device)
    except SamscopeError:
        raise
    except (OSError, RuntimeError, KeyError) as err:
        raise InputError(f"cannot load model {text!r}: {type(err).__name__}: {err}") from err


def cache_path_for(name: str, data: Any, model: Any, scale: float = 1.0) -> Path:
    """Default embeddings cache of an image: ``cache_dir()/embeddings/NAME-MODEL-HASH[-xSCALE].zarr``.

    The data hash in the name means an edited image never meets its old cache, and the scale
    (when not 1) that embeddings made for another object size never meet it either; a cache
    chosen by hand is still checked by :func:`samscope.embeddings.compute_embeddings` (a stale
    one is refused with what differs).
    """
    from samscope.embeddings import data_hash
    from samscope.models.registry import cache_dir

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(name))[:60] or "image"
    digest = data_hash(data).split(":")[-1][:12]
    zoom = "" if float(scale) == 1.0 else f"-x{float(scale):.4g}"
    return cache_dir() / "embeddings" / f"{safe}-{model.name}-{digest}{zoom}.zarr"


# -- committed objects ---------------------------------------------------------------------------


@dataclass
class ObjectStore:
    """The committed objects of one image or stack, with undo.

    Attributes
    ----------
    labels : ndarray of uint32
        ``(H, W)`` or ``(P, H, W)``; 0 is background.
    scores : dict of int → float
        The decoder's predicted IoU of each committed object (1.0 for objects from elsewhere).
    prompts : dict of int → dict
        The prompts each object was made from (points, labels, boxes, plane), as saved.
    """

    labels: np.ndarray
    scores: dict[int, float] = field(default_factory=dict)
    prompts: dict[int, dict] = field(default_factory=dict)
    _history: list[tuple[int, np.ndarray]] = field(default_factory=list, repr=False)

    @classmethod
    def empty(cls, shape: tuple[int, ...]) -> ObjectStore:
        return cls(np.zeros(tuple(int(s) for s in shape), np.uint32))

    @property
    def next_id(self) -> int:
        """The next free object id (one above the largest)."""
        return int(self.labels.max()) + 1 if self.labels.size else 1

    @property
    def n_objects(self) -> int:
        return int(len(np.unique(self.labels))) - int((self.labels == 0).any())

    def commit(self, mask: np.ndarray, *, score: float = 1.0, prompts: dict | None = None) -> int:
        """Paint ``mask`` (where no object is yet) with the next free id; returns the id (0: empty)."""
        from samscope.labels import add_object

        self.labels, obj, where = add_object(self.labels, mask)
        if not obj:
            return 0
        self.scores[obj] = float(score)
        if prompts is not None:
            self.prompts[obj] = prompts
        self._history.append((obj, where))
        return obj

    def undo(self) -> int | None:
        """Remove the last committed object; returns its id (None when nothing is left to undo)."""
        if not self._history:
            return None
        obj, where = self._history.pop()
        here = self.labels.flat[where] == obj
        self.labels.flat[where[here]] = 0
        self.scores.pop(obj, None)
        self.prompts.pop(obj, None)
        return obj

    def replace_labels(self, labels: np.ndarray, scores: dict[int, float] | None = None) -> None:
        """Take ``labels`` (loaded, or an accepted automatic result) as the committed objects."""
        arr = np.asarray(labels)
        if arr.shape != self.labels.shape:
            raise InputError(f"labels of shape {arr.shape} do not fit {self.labels.shape}")
        self.labels = arr.astype(np.uint32, copy=True)
        ids = np.unique(self.labels[self.labels > 0])
        self.scores = {int(i): float((scores or {}).get(int(i), 1.0)) for i in ids}
        self.prompts = {}
        self._history.clear()

    def table(self, image: np.ndarray | None = None):
        """Per-object measures (:func:`samscope.analysis.measure.measure_objects`) plus ``score``."""
        from samscope.analysis.measure import measure_objects

        table = measure_objects(self.labels, image)
        ids = table["id"] if len(table) else np.zeros(0, np.int64)
        score = np.array([self.scores.get(int(i), np.nan) for i in ids], np.float64)
        return table.with_columns({"score": score})

    def save(self, folder: str | Path, stem: str, *, image: np.ndarray | None = None,
             pixel_size: Any = None, axes: str | None = None) -> dict[str, Path]:
        """Write ``STEM_labels.tif``, ``STEM_objects.csv`` and ``STEM_prompts.json`` (atomically).

        Returns the paths written, by kind (``labels``, ``table``, ``prompts``).
        """
        from samscope.evaluation.report import write_json
        from samscope.io import write_labels
        from samscope.pipeline import OutputPaths

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        outs = OutputPaths.for_stem(folder, stem)
        written = {
            "labels": write_labels(outs.labels, self.labels, axes=axes, pixel_size=pixel_size,
                                   overwrite=True),
        }
        prompts = folder / f"{stem}_prompts.json"
        written["prompts"] = write_json(prompts, {
            "objects": {str(k): v for k, v in sorted(self.prompts.items())},
            "scores": {str(k): v for k, v in sorted(self.scores.items())},
        })
        written["table"] = self.table(image).write_csv(outs.table)  # last: marks the image done
        return written


def read_prompts(path: str | Path) -> dict:
    """The ``{"objects": …, "scores": …}`` record :meth:`ObjectStore.save` writes."""
    return json.loads(Path(path).read_text())


# -- automatic segmentation in two halves --------------------------------------------------------


@dataclass(frozen=True)
class AutomaticPrediction:
    """The expensive half of an automatic run, kept so thresholds can change cheaply.

    ``maps`` is set for modes in :data:`CHEAP_MODES` (AIS: the instance-distance maps at the
    working scale); other modes keep only the image and run whole again.
    """

    mode: str
    image: np.ndarray
    model: Any
    diameter: float | None
    scale: float
    maps: np.ndarray | None = None

    @property
    def cheap(self) -> bool:
        return self.maps is not None


def automatic_defaults(model: Any, mode: str):
    """The mode's config with every card-calibrated field filled (what the widget shows)."""
    from samscope.instance.segment import config_class
    from samscope.instance.settings import resolve_settings

    return resolve_settings(config_class(mode)(), model.card)


def editable_fields(config: Any) -> list[tuple[str, type]]:
    """``(name, int|float|bool)`` of the config fields a form can edit."""
    out = []
    for f in fields(config):
        value = getattr(config, f.name)
        if isinstance(value, bool):
            out.append((f.name, bool))
        elif isinstance(value, int | np.integer):
            out.append((f.name, int))
        elif isinstance(value, float | np.floating):
            out.append((f.name, float))
    return out


def config_with(config: Any, values: dict[str, Any]):
    """``config`` with ``values`` replaced (validated by the config itself)."""
    return replace(config, **values)


def predict(image: np.ndarray, model: Any, mode: str, *, diameter: float | None = None,
            config: Any = None) -> tuple[AutomaticPrediction, Any]:
    """Run the expensive half (and, for modes that cannot split, the whole mode).

    Returns ``(prediction, instances)``: the instances of ``config`` (the card's defaults when
    None), and the prediction :func:`postprocess` re-thresholds.
    """
    from samscope.instance.segment import choose_mode, scaled_ais_maps

    chosen = choose_mode(model, mode)
    plane = np.asarray(image)
    if chosen in CHEAP_MODES:
        maps, used, scale = scaled_ais_maps(plane, model, diameter=diameter)
        pred = AutomaticPrediction(chosen, plane, model, used, scale, maps)
    else:
        pred = AutomaticPrediction(chosen, plane, model, diameter, 1.0, None)
    return pred, postprocess(pred, config)


def postprocess(pred: AutomaticPrediction, config: Any = None):
    """Instances from a prediction with ``config``: cheap (thresholds only) when ``pred.cheap``."""
    from samscope.instance.segment import ais_from_scaled_maps, segment

    if pred.cheap:
        cfg = config if config is not None else automatic_defaults(pred.model, pred.mode)
        cfg = cfg.resolve(pred.model.card.automatic) if hasattr(cfg, "resolve") else cfg
        result = ais_from_scaled_maps(pred.maps, pred.image.shape[:2], config=cfg)
        return replace(result, diameter=pred.diameter, scale=float(pred.scale))
    return segment(pred.image, pred.model, mode=pred.mode, config=config, diameter=pred.diameter)
