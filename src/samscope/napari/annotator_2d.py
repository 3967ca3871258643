"""The 2-D annotator: embeddings in the background, prompts → live mask, commit, automatic modes.

Layers it adds to the viewer (the µSAM layout): ``point prompts`` (green positive, red
negative: tick *negative points* or press ``N`` / ``P`` before clicking), ``box prompts``
(rectangles: one object per box), ``current object`` (the live mask), ``committed objects`` (the
annotation) and, after automatic segmentation, ``automatic``. Keys: ``C`` commit, ``Shift-C``
clear the prompts, ``Shift-U`` undo the last commit.

Clicks on one object are corrections (:func:`samscope.prompt_corrections.refine`): each new point
is decoded with the previous logits and changes the live mask only near the click; removing or
moving a point decodes the object afresh.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from samscope.napari._panel import (  # the layer names, importable from here as before
    AUTOMATIC,
    BOXES,
    COMMITTED,
    CURRENT,
    POINTS,
    AnnotatorPanel,
)
from samscope.napari._qt import Background, SettingsForm, error_line, fill_table
from samscope.napari.session import ObjectStore

TABLE_COLUMNS = ("id", "area_px", "volume_vox", "score")
_DONE_ACTIONS = ("added", "removed", "changed")


def show_labels(layer, new: np.ndarray) -> None:
    """Put ``new`` into a Labels layer, uploading only the changed region when it is small."""
    old = layer.data
    if old.shape != new.shape or old.dtype != new.dtype:
        layer.data = new.copy()
        return
    diff = old != new
    n = int(np.count_nonzero(diff))
    if n == 0:
        return
    if n > diff.size // 4:
        layer.data = new.copy()
    else:
        layer.data_setitem(np.nonzero(diff), new[diff])


def prepare(model_name: str, model: Any, data: np.ndarray, axes: str, cache: Path | None,
            name: str = "image", diameter: float | None = None):
    """Worker body: load the model (unless given), then compute or load the embeddings.

    The embeddings are made at the object-size scale, as ``samscope prompt`` makes them
    (:func:`samscope.instance.scale.prompt_scale`: ``diameter``, else the model's estimate; a
    cache chosen by hand keeps its own scale), so a click on a 80-px nucleus is decoded at the
    model's working size. The default cache's name carries the scale.
    """
    from samscope.embeddings import compute_embeddings
    from samscope.instance.scale import prompt_scale
    from samscope.napari.session import cache_path_for, load_model_for_gui

    if model is None or model.name != model_name:
        model = load_model_for_gui(model_name)
    scale, used = prompt_scale(np.asarray(data), model, diameter=diameter, cache=cache)
    path = cache if cache is not None else cache_path_for(name, data, model, scale=scale)
    yield ("cache", path)
    yield ("scale", scale, used)
    emb = compute_embeddings(data, model, axes=axes, cache=path, scale=scale)
    return model, emb


class Annotator2D(AnnotatorPanel):
    """Interactive and automatic segmentation of a 2-D image (see the module docstring).

    Parameters
    ----------
    napari_viewer : napari.Viewer
    model : str, optional
        Model name or checkpoint to preselect.
    """

    def __init__(self, napari_viewer, model: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.model = None
        self.embeddings = None
        self.store: ObjectStore | None = None
        self.current = None  # (masks (K, H, W), scores (K,), prompts dict) of the live object
        self.live = None  # ObjectState of the live object (points + box), corrected click by click
        self.prediction = None  # AutomaticPrediction of the last automatic run
        self.automatic = None  # its Instances
        self.last_latency_ms: float | None = None
        self.cache_path: Path | None = None
        self.background = Background(self._show_error)
        self._image_name: str | None = None
        self._clearing = False
        self._generation = 0  # results of embeddings for an image no longer shown are dropped
        self._build_ui(model)
        self._progress_timer = QTimer(self)
        self._progress_timer.setInterval(150)
        self._progress_timer.timeout.connect(self._poll_progress)
        self._bind_keys()
        self.viewer.layers.events.inserted.connect(self._refresh_images)
        self.viewer.layers.events.removed.connect(self._refresh_images)
        self._refresh_images()

    # -- UI -----------------------------------------------------------------------------------

    def _build_ui(self, model: str | None) -> None:
        lay = QVBoxLayout(self)
        self._build_header(lay, model, cache_hint="embeddings cache (.zarr): automatic",
                           button="Compute embeddings", on_prepare=self.compute_embeddings,
                           status="choose a model and an image, then compute the embeddings")

        box = QGroupBox("interactive")
        b = QVBoxLayout(box)
        self.negative_check = QCheckBox("negative points (N / P)")
        self.negative_check.toggled.connect(self._sign_changed)
        b.addWidget(self.negative_check)
        row = QHBoxLayout()
        self._edit_buttons(row)
        b.addLayout(row)
        lay.addWidget(box)

        box = QGroupBox("automatic")
        b = QVBoxLayout(box)
        row = QHBoxLayout()
        row.addWidget(QLabel("mode"))
        self.mode_combo = QComboBox()
        self.mode_combo.addItem("auto")
        row.addWidget(self.mode_combo, 1)
        row.addWidget(QLabel("diameter"))
        self.diameter_spin = QDoubleSpinBox()
        self.diameter_spin.setRange(0, 10000)
        self.diameter_spin.setSpecialValueText("auto")
        self.diameter_spin.setToolTip("typical object diameter in pixels (0: estimated)")
        row.addWidget(self.diameter_spin)
        b.addLayout(row)
        self.auto_button = QPushButton("Segment automatically")
        self.auto_button.clicked.connect(self.segment_automatically)
        b.addWidget(self.auto_button)
        self.settings = SettingsForm(self._thresholds_changed)
        b.addWidget(self.settings)
        self.accept_button = QPushButton("Accept automatic → committed")
        self.accept_button.clicked.connect(self.accept_automatic)
        b.addWidget(self.accept_button)
        lay.addWidget(box)

        self.table = QTableWidget(0, 0)
        self.table.setMinimumHeight(120)
        lay.addWidget(self.table)
        self._build_save_row(lay, browse=True)
        lay.addStretch(1)

    def _bind_keys(self) -> None:
        binds = {"c": self.commit, "Shift-C": self.clear, "Shift-U": self.undo,
                 "n": lambda: self.negative_check.setChecked(True),
                 "p": lambda: self.negative_check.setChecked(False)}
        for key, fn in binds.items():
            self.viewer.bind_key(key, lambda _viewer, fn=fn: fn(), overwrite=True)

    def _show_error(self, err: BaseException) -> None:
        self._progress_timer.stop()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.set_status(error_line(err), error=True)

    # -- image and embeddings -----------------------------------------------------------------

    def image_data(self) -> tuple[np.ndarray, str]:
        layer = self.image_layer()
        if layer is None:
            from samscope.errors import InputError

            raise InputError("add an image layer to the viewer first")
        data = np.asarray(layer.data)
        axes = "YXC" if layer.rgb else "YX"
        if data.ndim != (3 if layer.rgb else 2):
            from samscope.errors import InputError

            raise InputError(f"the 2-D annotator takes one plane; {layer.name!r} has shape "
                             f"{data.shape} (use the 3-D or tracking annotator)")
        return data, axes

    def compute_embeddings(self) -> None:
        """Load the model and compute (or read from the cache) the image's embeddings, in the background."""
        try:
            data, axes = self.image_data()
        except Exception as err:  # noqa: BLE001 - shown in the widget
            self._show_error(err)
            return
        cache = self.cache_choice()
        self._image_name = self.image_combo.currentText()
        self.embeddings = None
        self._generation += 1
        generation = self._generation
        self.progress.setRange(0, 0)  # busy until the cache reports its size
        self.set_status(f"loading {self.model_row.name()} and computing embeddings …")
        self.background.run(prepare, self.model_row.name(), self.model, data, axes, cache,
                            self._image_name or "image", self.diameter_spin.value() or None,
                            done=lambda result: self._on_ready(result, generation),
                            yielded=self._on_yield)
        self._progress_timer.start()

    def _on_yield(self, item) -> None:
        if item and item[0] == "cache":
            self.cache_path = Path(item[1])
        elif item and item[0] == "scale" and item[1] != 1.0:
            size = f"objects of about {item[2]:.0f} px: " if item[2] else ""
            self.set_status(f"{size}embedding at ×{item[1]:.3g} (the model's working size) …")

    def _poll_progress(self) -> None:
        from samscope.embeddings import cache_progress

        if self.cache_path is None or not self.cache_path.exists():
            return
        got = cache_progress(self.cache_path)
        if got is not None and got[1] > 0:
            self.progress.setRange(0, got[1])
            self.progress.setValue(got[0])

    def _on_ready(self, result, generation: int | None = None) -> None:
        if generation is not None and generation != self._generation:
            return  # another image was opened meanwhile
        self._progress_timer.stop()
        self.model, self.embeddings = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        from samscope.instance.modes import supported_modes

        self.mode_combo.clear()
        self.mode_combo.addItems(["auto", *supported_modes(self.model)])
        shape = tuple(self.embeddings.plane_shape)
        if self.store is None or self.store.labels.shape != shape:
            self.store = ObjectStore.empty(shape)
        self._ensure_layers(shape)
        self._update_table()
        repaired = f"; repaired {len(self.embeddings.repaired)} piece(s)" if self.embeddings.repaired else ""
        scale = "" if self.embeddings.scale == 1.0 else f" at ×{self.embeddings.scale:.3g}"
        self.set_status(f"ready: {self.model.name}{scale}, embeddings in {self.cache_path}{repaired}. "
                        "Click points or draw boxes; C commits.")
        self.update_current()

    def reset_image(self, labels: np.ndarray | None = None) -> None:
        """Forget the embeddings and objects (a new image); optional labels to start from."""
        self.embeddings = None
        self._generation += 1
        self.prediction = self.automatic = None
        self.store = None
        if labels is not None:
            self.store = ObjectStore.empty(labels.shape)
            self.store.replace_labels(labels)
        self._clear_prompt_layers()

    # -- layers --------------------------------------------------------------------------------

    def _ensure_layers(self, shape: tuple[int, int]) -> None:
        layers = self.viewer.layers
        if COMMITTED in layers:
            show_labels(layers[COMMITTED], self.store.labels)
        if CURRENT in layers:
            show_labels(layers[CURRENT], np.zeros(shape, np.uint16))
        boxes, points = self._add_missing_layers(self.store.labels, shape,
                                                 negative=self.negative_check.isChecked())
        if boxes is not None:
            boxes.events.data.connect(self._prompts_changed)
            boxes.mode = "add_rectangle"
        if points is not None:
            points.events.data.connect(self._prompts_changed)
            self.viewer.layers.selection.active = points

    def _prompts_changed(self, event) -> None:
        action = getattr(getattr(event, "action", None), "value", "changed")
        if action in _DONE_ACTIONS and not self._clearing:
            self.update_current()

    def prompts(self) -> dict:
        """The prompts in the layers: ``points`` (N, 2), ``labels`` (N,), ``boxes`` (M, 4)."""
        pts = np.zeros((0, 2))
        lab = np.zeros(0, np.int64)
        boxes = np.zeros((0, 4))
        if POINTS in self.viewer.layers:
            layer = self.viewer.layers[POINTS]
            pts = np.asarray(layer.data, float).reshape(-1, 2)
            lab = np.asarray(layer.features["positive"], bool).astype(np.int64) if len(pts) else lab
        if BOXES in self.viewer.layers:
            rects = [np.asarray(s, float) for s in self.viewer.layers[BOXES].data]
            if rects:
                boxes = np.array([[r[:, 0].min(), r[:, 1].min(), r[:, 0].max(), r[:, 1].max()]
                                  for r in rects])
        return {"points": pts, "labels": lab, "boxes": boxes}

    # -- interactive ---------------------------------------------------------------------------

    def update_current(self) -> None:
        """Decode the prompts into the live mask (one object, or one per box without points)."""
        if self.embeddings is None or CURRENT not in self.viewer.layers:
            return
        from samscope.prompt_corrections import refine
        from samscope.prompting import segment_from_boxes

        p = self.prompts()
        h, w = self.embeddings.plane_shape
        layer = self.viewer.layers[CURRENT]
        previous, self.live = self.live, None
        if len(p["points"]) == 0 and len(p["boxes"]) == 0:
            self.current = None
            show_labels(layer, np.zeros((h, w), np.uint16))
            return
        start = time.perf_counter()
        try:
            if len(p["points"]) == 0 or len(p["boxes"]) > 1:
                result = segment_from_boxes(self.model, self.embeddings, p["boxes"])
                masks, scores = result.masks, result.iou
                label_image = np.zeros((h, w), np.uint16)
                for i, m in enumerate(masks, 1):
                    label_image[m & (label_image == 0)] = i
            else:
                if not (p["labels"] == 1).any() and len(p["boxes"]) == 0:
                    self.current = None
                    show_labels(layer, np.zeros((h, w), np.uint16))
                    self.set_status("add a positive point (or a box) for the object")
                    return
                # a new click on the live object corrects it (previous logits, local update)
                self.live = refine(
                    self.model, self.embeddings, p["points"], p["labels"],
                    p["boxes"][0] if len(p["boxes"]) else None, previous,
                )
                masks, scores = self.live.mask[None], np.array([self.live.score])
                label_image = masks[0].astype(np.uint16)
        except Exception as err:  # noqa: BLE001 - a bad prompt is shown, never raised in Qt
            self._show_error(err)
            return
        self.current = (masks, scores, {k: v.tolist() for k, v in p.items()})
        show_labels(layer, label_image)
        self.last_latency_ms = (time.perf_counter() - start) * 1000
        self.set_status(f"{len(masks)} object(s), predicted IoU "
                        + ", ".join(f"{s:.2f}" for s in scores)
                        + f" ({self.last_latency_ms:.0f} ms); C commits")

    def commit(self) -> list[int]:
        """Move the live object(s) into ``committed objects`` with the next free ids."""
        if self.current is None or self.store is None:
            self.set_status("nothing to commit: add prompts first")
            return []
        masks, scores, prompts = self.current
        ids = [self.store.commit(m, score=float(s), prompts=prompts) for m, s in zip(masks, scores, strict=True)]
        ids = [i for i in ids if i]
        self._clear_prompt_layers()
        self._labels_changed()
        self.set_status(f"committed object(s) {', '.join(map(str, ids)) or '(none: already covered)'}")
        return ids

    def clear(self) -> None:
        """Remove the prompts and the live mask."""
        self._clear_prompt_layers()

    def undo(self) -> int | None:
        """Remove the last committed object."""
        if self.store is None:
            return None
        obj = self.store.undo()
        self._labels_changed()
        self.set_status(f"removed object {obj}" if obj else "nothing to undo")
        return obj

    def _clear_prompt_layers(self) -> None:
        layers = self.viewer.layers
        self.current = None
        self.live = None
        self._clearing = True
        try:
            if POINTS in layers and len(layers[POINTS].data):
                layers[POINTS].data = np.zeros((0, 2))
            if BOXES in layers and len(layers[BOXES].data):
                layers[BOXES].data = []
        finally:
            self._clearing = False
        if CURRENT in layers:
            show_labels(layers[CURRENT], np.zeros(layers[CURRENT].data.shape, np.uint16))

    def _labels_changed(self) -> None:
        if COMMITTED in self.viewer.layers and self.store is not None:
            show_labels(self.viewer.layers[COMMITTED], self.store.labels)
        self._update_table()

    def _update_table(self) -> None:
        if self.store is None:
            return
        fill_table(self.table, self.store.table(), TABLE_COLUMNS)

    # -- automatic -----------------------------------------------------------------------------

    def segment_automatically(self) -> None:
        """Run the chosen mode in the background; thresholds can then be changed cheaply."""
        if self.model is None or self.embeddings is None:
            self.set_status("compute the embeddings first", error=True)
            return
        from samscope.napari.session import predict

        data, _ = self.image_data()
        diameter = self.diameter_spin.value() or None
        mode = self.mode_combo.currentText() or "auto"
        self.set_status(f"automatic segmentation ({mode}) …")
        self.auto_button.setEnabled(False)
        self.background.run(predict, data, self.model, mode, diameter=diameter,
                            done=self._on_automatic)

    def _on_automatic(self, result) -> None:
        from samscope.napari.session import automatic_defaults

        self.auto_button.setEnabled(True)
        self.prediction, instances = result
        self.settings.blockSignals(True)
        self.settings.show_config(automatic_defaults(self.model, self.prediction.mode))
        self.settings.blockSignals(False)
        self._show_automatic(instances)

    def _show_automatic(self, instances) -> None:
        self.automatic = instances
        if AUTOMATIC in self.viewer.layers:
            self.viewer.layers[AUTOMATIC].data = instances.labels
        else:
            self.viewer.add_labels(instances.labels, name=AUTOMATIC, opacity=0.5)
        how = "thresholds only" if self.prediction.cheap else "whole mode"
        size = f", diameter {instances.diameter:.1f} px" if instances.diameter else ""
        self.set_status(f"automatic ({self.prediction.mode}): {instances.n} object(s){size}; "
                        f"changing a setting re-runs {how}")

    def _thresholds_changed(self) -> None:
        if self.prediction is None:
            return
        from samscope.napari.session import postprocess

        try:
            config = self.settings.config()
        except Exception as err:  # noqa: BLE001 - an invalid value is shown
            self._show_error(err)
            return
        self.background.run(postprocess, self.prediction, config, done=self._show_automatic)

    def accept_automatic(self) -> None:
        """Commit every automatic object (where nothing is committed yet)."""
        if self.automatic is None or self.store is None:
            self.set_status("run automatic segmentation first")
            return
        labels, scores = self.automatic.labels, self.automatic.scores
        if self.store.n_objects == 0:
            self.store.replace_labels(labels, {i + 1: float(s) for i, s in enumerate(scores)})
        else:
            from scipy import ndimage as ndi

            for i, sl in enumerate(ndi.find_objects(labels), 1):
                if sl is not None:
                    mask = np.zeros(labels.shape, bool)
                    mask[sl] = labels[sl] == i
                    self.store.commit(mask, score=float(scores[i - 1]))
        self._labels_changed()
        self.set_status(f"{self.store.n_objects} committed object(s)")

    # -- saving --------------------------------------------------------------------------------

    def save(self, folder: str | Path | None = None, stem: str | None = None) -> dict[str, Path]:
        """Write labels, table and prompts to ``folder`` (the output field when None)."""
        if self.store is None:
            self.set_status("nothing to save yet", error=True)
            return {}
        folder = Path(folder) if folder is not None else Path(self.save_edit.text().strip() or ".")
        stem = stem or self._image_name or self.image_combo.currentText() or "image"
        layer = self.image_layer()
        image = np.asarray(layer.data) if layer is not None and not layer.rgb else None
        try:
            written = self.store.save(folder, stem, image=image)
        except Exception as err:  # noqa: BLE001 - a write that failed is shown
            self._show_error(err)
            return {}
        self.set_status(f"saved {written['labels'].name}, {written['table'].name}, "
                        f"{written['prompts'].name} in {folder}")
        return written
