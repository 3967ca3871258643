"""Click-to-add and click-to-remove on a finished 2-D result, written back as the pipeline would.

Adding is one point prompt (:func:`samscope.prompting.segment_from_prompts`, best of three
masks) on the image's embeddings, computed on the first click and cached in the session folder
(:func:`samscope.embeddings.compute_embeddings` with ``cache=``; for a scale-aware model at the
scale :func:`samscope.instance.scale.interactive_scale` derives from the diameter the
segmentation used). The new object takes the free
pixels of its mask (label images) or joins the overlapping masks (modes that keep them, whose
labels are repainted by :meth:`samscope.instance.instances.Instances.from_masks`). Removing clears one id.
The outputs are then rewritten with the library's writers, atomically and in the pipeline's
order (labels, masks, overlay, record, table last): labels keep their pixel size, the table is
:func:`samscope.instance.instances.object_table`, the overlay :func:`samscope.analysis.write_overlay`, and
the record lists every edit.
"""

from __future__ import annotations

import json
import math
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from samscope.errors import CacheMismatchError, InputError
from samscope.web.sessions import SessionFiles
from samscope.web.store import ImageRow

__all__ = ["EditResult", "Editor"]


@dataclass(frozen=True)
class EditResult:
    """What an edit did."""

    action: str
    object_id: int
    area: int
    n_objects: int
    score: float | None = None


@dataclass
class _Result:
    labels: np.ndarray
    axes: str
    pixel_size: Any
    masks: np.ndarray | None
    scores: dict[int, float]
    record: dict


class Editor:
    """Edits of results, one at a time per image, with the last few embeddings in memory.

    Parameters
    ----------
    keep : int
        Embeddings kept in memory (the least recently used are dropped; the zarr cache stays).
    """

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self._embeddings: OrderedDict[str, Any] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, image_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(image_id, threading.Lock())

    def _embed(self, files: SessionFiles, row: ImageRow, plane: np.ndarray, model,
               diameter: float | None) -> Any:
        from samscope.embeddings import compute_embeddings
        from samscope.instance.scale import interactive_scale

        # a scale-aware model is prompted at its working size, from the diameter the
        # segmentation used (no new estimate)
        scale, _ = interactive_scale(plane, model, diameter=diameter) if diameter else (1.0, None)
        key = f"{row.id}:{getattr(model, 'weights_hash', '')}:{scale:.4f}"
        with self._guard:
            emb = self._embeddings.pop(key, None)
        if emb is None:
            cache = files.cache(row.stem)
            cache.parent.mkdir(parents=True, exist_ok=True)
            try:
                emb = compute_embeddings(plane, model, cache=cache, scale=scale)
            except CacheMismatchError:  # another model or scale, or not a cache: start again
                shutil.rmtree(cache, ignore_errors=True)
                emb = compute_embeddings(plane, model, cache=cache, scale=scale)
        with self._guard:
            self._embeddings[key] = emb
            while len(self._embeddings) > self.keep:
                self._embeddings.popitem(last=False)
        return emb

    def add(self, files: SessionFiles, row: ImageRow, model, y: float, x: float) -> EditResult:
        """Add the object a click at ``(y, x)`` points at.

        Raises
        ------
        InputError
            Outside the image, on an existing object, a stack, or when the prompt finds
            nothing new there.
        """
        from samscope.labels import add_object
        from samscope.prompting import segment_from_prompts
        from samscope.web.views import image_planes

        with self.lock(row.id):
            outs = files.outputs(row)
            res = _load(outs)
            h, w = res.labels.shape
            yi, xi = int(math.floor(y)), int(math.floor(x))
            if not (0 <= yi < h and 0 <= xi < w):
                raise InputError(f"({y:g}, {x:g}) is outside the image ({h}×{w})")
            if res.labels[yi, xi]:
                raise InputError(f"object {int(res.labels[yi, xi])} is already there")
            plane = image_planes(files.upload(row.stem, row.filename))[0]
            diameter = res.record.get("diameter_px")
            emb = self._embed(files, row, plane, model,
                              float(diameter) if isinstance(diameter, int | float) else None)
            pred = segment_from_prompts(model, emb, points=np.array([[yi + 0.5, xi + 0.5]]),
                                        multimask=True)
            mask = pred.best_mask
            score = float(pred.iou[pred.best])
            new_id = max([0, *res.scores, int(res.labels.max())]) + 1
            if res.masks is not None:
                if not mask.any():
                    raise InputError("no object found at this point")
                res.masks = np.concatenate([res.masks, mask[None].astype(res.masks.dtype)])
                new_id = len(res.masks)
            else:
                res.labels, painted, _ = add_object(res.labels, mask, object_id=new_id)
                if not painted:
                    raise InputError("no new object found at this point")
            res.scores[new_id] = score
            edit = {"action": "add", "point": [yi, xi], "id": new_id, "score": round(score, 5)}
            n, area = _write(outs, res, plane, edit, new_id)
            return EditResult("add", new_id, area, n, score)

    def remove(self, files: SessionFiles, row: ImageRow, object_id: int) -> EditResult:
        """Remove object ``object_id``.

        Raises
        ------
        InputError
            For an id that is not in the result, or a stack.
        """
        from samscope.web.views import image_planes

        with self.lock(row.id):
            outs = files.outputs(row)
            res = _load(outs)
            oid = int(object_id)
            if res.masks is not None:
                if not (1 <= oid <= len(res.masks)) or not res.masks[oid - 1].any():
                    raise InputError(f"there is no object {oid}")
                res.masks[oid - 1] = 0
            else:
                hit = res.labels == oid
                if oid < 1 or not hit.any():
                    raise InputError(f"there is no object {oid}")
                res.labels[hit] = 0
            plane = image_planes(files.upload(row.stem, row.filename))[0]
            n, _ = _write(outs, res, plane, {"action": "remove", "id": oid}, oid)
            return EditResult("remove", oid, 0, n)


def _load(outs) -> _Result:
    from samscope.analysis.table import read_csv_rows
    from samscope.io import read_image

    if not outs.table.is_file():
        raise InputError("this image has no finished result to edit")
    lab = read_image(outs.labels)
    labels = np.array(lab.data)
    if labels.ndim != 2:
        raise InputError("click editing works on 2-D images; this result is a stack")
    scores = {}
    for r in read_csv_rows(outs.table):
        try:
            scores[int(r["id"])] = float(r.get("score") or "nan")
        except (KeyError, ValueError):
            continue
    masks = None
    if outs.masks.is_file():
        masks = np.array(read_image(outs.masks).data)
        masks = masks[None] if masks.ndim == 2 else masks
    record = json.loads(outs.record.read_text(encoding="utf-8")) if outs.record.is_file() else {}
    return _Result(labels, lab.axes, lab.pixel_size, masks, scores, record)


def _write(outs, res: _Result, plane: np.ndarray, edit: dict, object_id: int) -> tuple[int, int]:
    """Rewrite the outputs as the pipeline does (table last); returns (objects, object's area)."""
    from samscope.analysis import write_overlay
    from samscope.evaluation.report import write_csv, write_json
    from samscope.instance.instances import CroppedMasks, Instances, object_table
    from samscope.io import write_image, write_labels
    from samscope.labels import stack_labels
    from samscope.pipeline.segmentation import TABLE_COLUMNS

    if res.masks is not None:
        top = len(res.masks)
        scores = np.array([res.scores.get(i, 1.0) for i in range(1, top + 1)], np.float32)
        inst = Instances.from_masks(CroppedMasks.from_dense(res.masks.astype(bool)), scores)
        labels = stack_labels([inst.labels], stacked=False)
    else:
        labels = stack_labels([res.labels], stacked=False)
        top = int(labels.max()) if labels.size else 0
        top = max(top, *res.scores) if res.scores else top
        scores = np.array([res.scores.get(i, 1.0) for i in range(1, top + 1)], np.float32)
        inst = Instances(labels, scores)
    write_labels(outs.labels, labels, axes=res.axes, pixel_size=res.pixel_size, overwrite=True)
    if res.masks is not None:
        px = res.pixel_size
        mask_px = None if px is None else (math.nan, *tuple(px)[-2:])
        write_image(outs.masks, res.masks.astype(np.uint8), axes="ZYX", pixel_size=mask_px,
                    overwrite=True)
    write_overlay(outs.overlay, plane, labels, masks=res.masks, overwrite=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # ids removed by edits: empty
        rows = object_table(inst)
    record = dict(res.record)
    record["n_objects"] = len(rows)
    record["edits"] = [*record.get("edits", []), edit]
    write_json(outs.record, record)
    write_csv(outs.table, rows, columns=list(TABLE_COLUMNS))  # last: marks the image done
    area = next((int(r["area"]) for r in rows if int(r["id"]) == object_id), 0)
    return len(rows), area
