"""What the 2-D and 3-D annotators share: the header, edit and save rows, the prompt layers.

:class:`AnnotatorPanel` is the widget both annotators (and through the 3-D one the tracking
annotator) derive from: model row, image choice, cache field, prepare button, progress bar and
status line on top; commit / clear / undo buttons; an output folder with Save at the bottom;
and the napari layers every annotator works with (``committed objects``, ``current object``,
``box prompts``, ``point prompts``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from samscope.napari._qt import ModelRow

POINTS, BOXES, CURRENT, COMMITTED, AUTOMATIC = (
    "point prompts", "box prompts", "current object", "committed objects", "automatic",
)  # fmt: skip


class AnnotatorPanel(QWidget):
    """Base of the annotators: shared rows and layers (``self.viewer`` is the napari viewer)."""

    viewer = None

    # -- rows ---------------------------------------------------------------------------------

    def _build_header(self, lay: QVBoxLayout, model: str | None, *, cache_hint: str,
                      button: str, on_prepare, status: str) -> None:
        """Model, image, cache field, the prepare button, progress and status."""
        self.model_row = ModelRow(model)
        lay.addWidget(self.model_row)
        row = QHBoxLayout()
        row.addWidget(QLabel("image"))
        self.image_combo = QComboBox()
        row.addWidget(self.image_combo, 1)
        lay.addLayout(row)
        self.cache_edit = QLineEdit()
        self.cache_edit.setPlaceholderText(cache_hint)
        lay.addWidget(self.cache_edit)
        self.embed_button = QPushButton(button)
        self.embed_button.clicked.connect(on_prepare)
        lay.addWidget(self.embed_button)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        lay.addWidget(self.progress)
        self.status = QLabel(status)
        self.status.setWordWrap(True)
        lay.addWidget(self.status)

    def _edit_buttons(self, row: QHBoxLayout) -> None:
        """Commit [C], Clear [Shift-C] and Undo [Shift-U], added to ``row``."""
        self.commit_button = QPushButton("Commit [C]")
        self.commit_button.clicked.connect(self.commit)
        self.clear_button = QPushButton("Clear [Shift-C]")
        self.clear_button.clicked.connect(self.clear)
        self.undo_button = QPushButton("Undo [Shift-U]")
        self.undo_button.clicked.connect(self.undo)
        for w in (self.commit_button, self.clear_button, self.undo_button):
            row.addWidget(w)

    def _build_save_row(self, lay: QVBoxLayout, *, browse: bool = False) -> None:
        """The output folder field (with a folder dialog when ``browse``) and Save."""
        row = QHBoxLayout()
        self.save_edit = QLineEdit()
        self.save_edit.setPlaceholderText("output folder")
        row.addWidget(self.save_edit, 1)
        if browse:
            button = QPushButton("…")
            button.clicked.connect(self._browse_output)
            row.addWidget(button)
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(lambda: self.save())
        row.addWidget(self.save_button)
        lay.addLayout(row)

    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "output folder")
        if folder:
            self.save_edit.setText(folder)

    # -- state --------------------------------------------------------------------------------

    def _refresh_images(self, *_args) -> None:
        from napari.layers import Image

        names = [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]
        current = self.image_combo.currentText()
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        self.image_combo.addItems(names)
        if current in names:
            self.image_combo.setCurrentText(current)
        self.image_combo.blockSignals(False)

    def set_status(self, text: str, *, error: bool = False) -> None:
        """Show ``text`` in the status line (red for an error)."""
        self.status.setText(text)
        self.status.setStyleSheet("color: #e04040;" if error else "")

    def image_layer(self):
        """The chosen image layer, or None."""
        name = self.image_combo.currentText()
        if not name or name not in self.viewer.layers:
            return None
        return self.viewer.layers[name]

    def cache_choice(self) -> Path | None:
        """The embeddings cache typed in the cache field (None: empty)."""
        text = self.cache_edit.text().strip()
        return Path(text).expanduser() if text else None

    # -- layers -------------------------------------------------------------------------------

    def _add_missing_layers(self, labels: np.ndarray, shape: tuple[int, ...], *, negative: bool):
        """Add the committed / current / boxes / points layers that are not there yet.

        Returns the new (boxes, points) layers, None for each that was already there.
        """
        layers, ndim = self.viewer.layers, len(shape)
        if COMMITTED not in layers:
            self.viewer.add_labels(labels.copy(), name=COMMITTED)
        if CURRENT not in layers:
            self.viewer.add_labels(np.zeros(shape, np.uint16), name=CURRENT, opacity=0.6)
        boxes = points = None
        if BOXES not in layers:
            boxes = self.viewer.add_shapes(name=BOXES, ndim=ndim, edge_color="cyan",
                                           face_color="transparent", edge_width=2)
        if POINTS not in layers:
            points = self.viewer.add_points(
                np.zeros((0, ndim)), name=POINTS, ndim=ndim, size=max(4, min(shape[-2:]) // 60),
                features={"positive": np.zeros(0, bool)}, face_color="positive",
                face_color_cycle={True: "limegreen", False: "red"},
            )
            points.feature_defaults["positive"] = not negative
            points.mode = "add"
        return boxes, points

    def _sign_changed(self, negative: bool) -> None:
        if POINTS in self.viewer.layers:
            self.viewer.layers[POINTS].feature_defaults["positive"] = not negative
