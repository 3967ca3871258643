"""The 3-D annotator: prompt an object on any plane, propagate it through the volume, correct it.

Prompts are drawn on the plane shown (points and boxes carry their plane). *Segment object*
(``S``) decodes every plane with prompts as an anchor and propagates the object through the
volume (:class:`samscope.multidim.Propagator`, in the background); prompts added on another plane
afterwards are corrections: that plane becomes an anchor and only the planes nearer to it are
redone. ``C`` commits the object (next free id), ``Shift-C`` clears, ``Shift-U`` undoes a commit.
Embeddings are computed plane by plane on demand (or all at once into a cache when a cache
path is given), so opening a large volume does not block the viewer. *Segment volume* runs
:func:`samscope.multidim.segment_volume` (every plane, objects linked in 3-D).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from samscope.napari._panel import AUTOMATIC, BOXES, COMMITTED, CURRENT, POINTS, AnnotatorPanel
from samscope.napari._qt import Background, error_line, fill_table
from samscope.napari.annotator_2d import TABLE_COLUMNS, show_labels
from samscope.napari.session import ObjectStore


def prepare_stack(model_name: str, model, data, axes: str, cache: Path | None):
    """Worker body: the model and a :class:`~samscope.multidim.PlaneStack` at the working scale."""
    from samscope.multidim import PlaneStack, volume_scale
    from samscope.napari.session import load_model_for_gui

    if model is None or model.name != model_name:
        model = load_model_for_gui(model_name)
    probe = PlaneStack(data, model, axes=axes)
    factor, _ = volume_scale(probe, model)
    stack = PlaneStack(data, model, axes=axes, scale=factor, cache=cache)
    return model, stack


def run_propagation(propagator, index: int):
    """Worker body: propagate and return object ``index``'s 3-D mask and mean predicted IoU."""
    result = propagator.run()
    obj = result.objects[index]
    scores = [m.predicted_iou for m in obj.masks.values() if m.area]
    return result.mask(index), float(np.mean(scores)) if scores else 0.0


class Annotator3D(AnnotatorPanel):
    """Interactive and automatic segmentation of a volume (see the module docstring)."""

    axis_name = "z"

    def __init__(self, napari_viewer, model: str | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.model = None
        self.stack = None
        self.store: ObjectStore | None = None
        self.propagator = None
        self.object_index: int | None = None
        self._sent: dict[int, str] = {}  # plane → prompts already given to the propagator
        self.current_score = 0.0
        self.automatic = None
        self.background = Background(self._show_error)
        self._build_ui(model)
        binds = {"s": self.segment_object, "c": self.commit, "Shift-C": self.clear,
                 "Shift-U": self.undo}
        for key, fn in binds.items():
            self.viewer.bind_key(key, lambda _v, fn=fn: fn(), overwrite=True)
        self.viewer.layers.events.inserted.connect(self._refresh_images)
        self.viewer.layers.events.removed.connect(self._refresh_images)
        self._refresh_images()

    @property
    def embeddings(self):
        """The prepared stack (None until ready); named like the 2-D annotator's for the tests."""
        return self.stack

    def _build_ui(self, model) -> None:
        lay = QVBoxLayout(self)
        self._build_header(lay, model, cache_hint="embeddings cache (.zarr): none, planes on demand",
                           button="Prepare", on_prepare=self.prepare,
                           status="choose a model and a volume, then press Prepare")
        box = QGroupBox("interactive")
        b = QVBoxLayout(box)
        self.negative_button = QPushButton("negative points")
        self.negative_button.setCheckable(True)
        self.negative_button.toggled.connect(self._sign_changed)
        b.addWidget(self.negative_button)
        row = QHBoxLayout()
        self.segment_button = QPushButton("Segment object [S]")
        self.segment_button.clicked.connect(self.segment_object)
        row.addWidget(self.segment_button)
        self._edit_buttons(row)
        b.addLayout(row)
        lay.addWidget(box)
        box = self.auto_box = QGroupBox("automatic")
        b = QVBoxLayout(box)
        row = QHBoxLayout()
        row.addWidget(QLabel("method"))
        self.method_combo = QComboBox()
        from samscope.multidim import METHODS

        self.method_combo.addItems(list(METHODS))
        row.addWidget(self.method_combo, 1)
        b.addLayout(row)
        self.auto_button = QPushButton("Segment volume")
        self.auto_button.clicked.connect(self.segment_automatically)
        b.addWidget(self.auto_button)
        self.accept_button = QPushButton("Accept automatic → committed")
        self.accept_button.clicked.connect(self.accept_automatic)
        b.addWidget(self.accept_button)
        lay.addWidget(box)
        self.extra_layout = QVBoxLayout()  # subclasses add their own controls here
        lay.addLayout(self.extra_layout)
        self.table = QTableWidget(0, 0)
        lay.addWidget(self.table)
        self._build_save_row(lay)
        lay.addStretch(1)

    def _show_error(self, err: BaseException) -> None:
        self.progress.setRange(0, 1)
        self.set_status(error_line(err), error=True)
        self.segment_button.setEnabled(True)
        self.auto_button.setEnabled(True)

    # -- preparing -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Load the model and set up the stack (embeddings per plane on demand), in the background."""
        layer = self.image_layer()
        if layer is None:
            self.set_status("add a volume to the viewer first", error=True)
            return
        data = layer.data
        axes = f"{self.axis_name.upper()}YX" + ("C" if layer.rgb else "")
        if np.ndim(data) != len(axes):
            self.set_status(f"{layer.name!r} has shape {np.shape(data)}, not {axes}", error=True)
            return
        cache = self.cache_choice()
        self.stack = None
        self.progress.setRange(0, 0)
        self.set_status(f"loading {self.model_row.name()} …")
        self.background.run(prepare_stack, self.model_row.name(), self.model, data, axes, cache,
                            done=self._on_ready)

    def _on_ready(self, result) -> None:
        self.model, self.stack = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        shape = (self.stack.n_planes, *self.stack.plane_shape)
        if self.store is None or self.store.labels.shape != shape:
            self.store = ObjectStore.empty(shape)
        self._add_missing_layers(self.store.labels, shape, negative=self.negative_button.isChecked())
        scale = "" if self.stack.scale == 1.0 else f" at ×{self.stack.scale:.2f}"
        self.set_status(f"ready: {self.model.name}{scale}; prompt an object on any plane, S "
                        "propagates it")
        self._update_table()

    # -- interactive ---------------------------------------------------------------------------

    def plane_prompts(self) -> dict[int, dict]:
        """Prompts by plane: ``{plane: {"points", "labels", "box"}}`` (a box per plane at most)."""
        out: dict[int, dict] = {}
        layers = self.viewer.layers
        if POINTS in layers and len(layers[POINTS].data):
            data = np.asarray(layers[POINTS].data, float)
            signs = np.asarray(layers[POINTS].features["positive"], bool)
            for z in np.unique(np.rint(data[:, 0]).astype(int)):
                on = np.rint(data[:, 0]).astype(int) == z
                out.setdefault(int(z), {})["points"] = data[on, 1:]
                out[int(z)]["labels"] = signs[on].astype(np.int64)
        if BOXES in layers:
            for rect in layers[BOXES].data:
                r = np.asarray(rect, float)
                z = int(np.rint(r[0, 0]))
                out.setdefault(z, {})["box"] = np.array(
                    [r[:, 1].min(), r[:, 2].min(), r[:, 1].max(), r[:, 2].max()])
        return out

    def prompts_to_run(self, missing: str) -> dict[int, dict] | None:
        """The plane prompts when a run can start (stack ready, nothing running, some prompt);
        otherwise None, with the reason (``missing`` when there is no prompt) in the status."""
        if self.stack is None:
            self.set_status("press Prepare first", error=True)
            return None
        if self.background.busy:
            return None
        prompts = self.plane_prompts()
        if not prompts:
            self.set_status(missing)
            return None
        return prompts

    def segment_object(self) -> None:
        """Propagate the current object from its prompts (new anchors are corrections)."""
        prompts = self.prompts_to_run("add points or a box on a plane first")
        if prompts is None:
            return
        from samscope.multidim import ObjectPrompt, Propagator

        try:
            items = {z: ObjectPrompt(z, points=p.get("points"), labels=p.get("labels"),
                                     box=p.get("box")) for z, p in prompts.items()}
            if self.propagator is None:
                self.propagator = Propagator(self.model, self.stack)
                self.object_index = self.propagator.add(list(items.values()))
            else:
                for z, item in items.items():
                    if self._sent.get(z) != repr(prompts[z]):
                        self.propagator.correct(self.object_index, item)
        except Exception as err:  # noqa: BLE001 - a bad prompt is shown
            self._show_error(err)
            return
        self._sent = {z: repr(p) for z, p in prompts.items()}
        self.segment_button.setEnabled(False)
        self.set_status("propagating …")
        self.background.run(run_propagation, self.propagator, self.object_index,
                            done=self._on_propagated)

    def _on_propagated(self, result) -> None:
        mask, score = result
        self.segment_button.setEnabled(True)
        self.current_mask = mask
        self.current_score = score
        show_labels(self.viewer.layers[CURRENT], mask.astype(np.uint16))
        planes = np.flatnonzero(mask.any(axis=(1, 2)))
        extent = f"planes {planes[0]}–{planes[-1]}" if planes.size else "no plane"
        self.set_status(f"object on {extent} (mean predicted IoU {score:.2f}); add prompts on "
                        "another plane to correct, C commits")

    def commit(self) -> int:
        """Commit the propagated object with the next free id."""
        if self.store is None or self.object_index is None or not hasattr(self, "current_mask"):
            self.set_status("nothing to commit: segment an object first")
            return 0
        prompts = {str(z): {k: np.asarray(v).tolist() for k, v in p.items()}
                   for z, p in self.plane_prompts().items()}
        obj = self.store.commit(self.current_mask, score=self.current_score, prompts=prompts)
        self.clear()
        show_labels(self.viewer.layers[COMMITTED], self.store.labels)
        self._update_table()
        self.set_status(f"committed object {obj}")
        return obj

    def clear(self) -> None:
        """Forget the current object and its prompts."""
        self.propagator = None
        self.object_index = None
        self._sent = {}
        if hasattr(self, "current_mask"):
            del self.current_mask
        layers = self.viewer.layers
        if POINTS in layers:
            layers[POINTS].data = np.zeros((0, 3))
        if BOXES in layers:
            layers[BOXES].data = []
        if CURRENT in layers:
            show_labels(layers[CURRENT], np.zeros(layers[CURRENT].data.shape, np.uint16))

    def undo(self) -> int | None:
        if self.store is None:
            return None
        obj = self.store.undo()
        show_labels(self.viewer.layers[COMMITTED], self.store.labels)
        self._update_table()
        return obj

    def _update_table(self) -> None:
        if self.store is not None:
            fill_table(self.table, self.store.table(), TABLE_COLUMNS)

    # -- automatic -----------------------------------------------------------------------------

    def segment_automatically(self) -> None:
        """Segment every object of the volume in 3-D, in the background."""
        if self.stack is None:
            self.set_status("press Prepare first", error=True)
            return
        from samscope.multidim import segment_volume

        self.auto_button.setEnabled(False)
        self.set_status("segmenting the volume …")
        self.background.run(segment_volume, self.stack, self.model,
                            method=self.method_combo.currentText(), done=self._on_automatic)

    def _on_automatic(self, result) -> None:
        self.auto_button.setEnabled(True)
        self.automatic = result.labels
        if AUTOMATIC in self.viewer.layers:
            self.viewer.layers[AUTOMATIC].data = result.labels
        else:
            self.viewer.add_labels(result.labels, name=AUTOMATIC, opacity=0.5)
        self.set_status(f"automatic ({result.method}, {result.mode}): {result.n_objects} object(s)")

    def accept_automatic(self) -> None:
        if self.automatic is None or self.store is None:
            return
        if self.store.n_objects == 0:
            self.store.replace_labels(self.automatic)
        else:
            for i in np.unique(self.automatic[self.automatic > 0]):
                self.store.commit(self.automatic == i)
        show_labels(self.viewer.layers[COMMITTED], self.store.labels)
        self._update_table()

    # -- saving --------------------------------------------------------------------------------

    def save(self, folder=None, stem: str | None = None) -> dict:
        if self.store is None:
            return {}
        folder = Path(folder) if folder is not None else Path(self.save_edit.text().strip() or ".")
        stem = stem or self.image_combo.currentText() or "volume"
        try:
            written = self.store.save(folder, stem, axes=f"{self.axis_name.upper()}YX")
        except Exception as err:  # noqa: BLE001
            self._show_error(err)
            return {}
        self.set_status(f"saved {written['labels'].name} and {written['table'].name} in {folder}")
        return written
