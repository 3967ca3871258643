"""Training in the loop: fine-tune the current model on the images annotated so far.

Pick the folder of images and the folder the annotators saved into (the series annotator's
output), the base model and the number of steps, and press *Train*. The run
(:func:`samscope.napari.train_loop.fine_tune`) works in the background with the step and loss
shown, can be cancelled (the last checkpoint is kept), and ends with one-click IoU on the
annotated images before and after; the fine-tuned model is saved as a loadable checkpoint
(``RUN/run/model.pt``) and the annotators given to the widget switch to it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from samscope.napari._qt import Background, ModelRow, error_line


class TrainingWidget(QWidget):
    """Fine-tune on annotated images (see the module docstring).

    Parameters
    ----------
    napari_viewer : napari.Viewer
    model : str, optional
        Base model to preselect.
    annotators : list of widgets, optional
        Annotators (with a ``model_row``) switched to the fine-tuned model when it is ready.
    """

    def __init__(self, napari_viewer, model: str | None = None, annotators=None,
                 images=None, annotations=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.annotators = list(annotators or [])
        self.result = None
        self.losses: list[tuple[int, float]] = []
        self._events: list[tuple[int, int, float]] = []
        self._stage = ""
        self._cancel = threading.Event()
        self.background = Background(self._show_error)
        lay = QVBoxLayout(self)
        self.model_row = ModelRow(model)
        lay.addWidget(self.model_row)
        form = QFormLayout()
        self.images_edit = QLineEdit(str(images or ""))
        self.annotations_edit = QLineEdit(str(annotations or ""))
        self.annotations_edit.setPlaceholderText("default IMAGES/annotations")
        self.run_edit = QLineEdit()
        self.run_edit.setPlaceholderText("default ANNOTATIONS/finetune")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 100000)
        self.steps_spin.setValue(100)
        self.patch_spin = QSpinBox()
        self.patch_spin.setRange(32, 4096)
        self.patch_spin.setValue(256)
        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(1e-7, 1.0)
        self.lr_spin.setValue(1e-5)
        for label, w in (("images", self.images_edit), ("annotations", self.annotations_edit),
                         ("run folder", self.run_edit), ("steps", self.steps_spin),
                         ("patch size", self.patch_spin), ("learning rate", self.lr_spin)):
            form.addRow(label, w)
        lay.addLayout(form)
        row = QHBoxLayout()
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.train_button)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        lay.addWidget(self.progress)
        self.loss_label = QLabel("loss: –")
        lay.addWidget(self.loss_label)
        self.status = QLabel("annotate and save some images, then train")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        lay.addStretch(1)
        self._timer = QTimer(self)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self._poll)

    def _show_error(self, err: BaseException) -> None:
        self._timer.stop()
        self.train_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.status.setText(error_line(err))
        self.status.setStyleSheet("color: #e04040;")

    def _folders(self) -> tuple[Path, Path, Path]:
        images = Path(self.images_edit.text().strip()).expanduser()
        ann_text = self.annotations_edit.text().strip()
        annotations = Path(ann_text).expanduser() if ann_text else images / "annotations"
        run_text = self.run_edit.text().strip()
        run = Path(run_text).expanduser() if run_text else annotations / "finetune"
        return images, annotations, run

    def start(self) -> None:
        """Start fine-tuning in the background."""
        from samscope.napari.train_loop import annotated_pairs, fine_tune

        try:
            images, annotations, run = self._folders()
            pairs = annotated_pairs(images, annotations)
        except Exception as err:  # noqa: BLE001
            self._show_error(err)
            return
        self._cancel.clear()
        self._events.clear()
        self.losses.clear()
        self.result = None
        steps = self.steps_spin.value()
        self.progress.setRange(0, steps)
        self.progress.setValue(0)
        self.train_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setStyleSheet("")
        self.status.setText(f"{len(pairs)} annotated image(s)")
        self.background.run(
            fine_tune, self.model_row.name(), pairs, run, steps=steps,
            patch_size=self.patch_spin.value(), lr=self.lr_spin.value(),
            on_step=lambda *e: self._events.append(e), cancel=self._cancel,
            on_stage=self._set_stage, done=self._on_done,
        )
        self._timer.start()

    def _set_stage(self, text: str) -> None:
        self._stage = text  # read by the timer in the GUI thread

    def cancel(self) -> None:
        """Stop after the current step (the last checkpoint is kept)."""
        self._cancel.set()
        self.status.setText("cancelling after this step …")

    def _poll(self) -> None:
        while self._events:
            step, steps, loss = self._events.pop(0)
            self.losses.append((step, loss))
            self.progress.setValue(step)
            self.loss_label.setText(f"step {step} / {steps}, loss {loss:.4f}")
        if self._stage and not self._cancel.is_set():
            self.status.setText(self._stage)

    def _on_done(self, result) -> None:
        self._poll()
        self._timer.stop()
        self.result = result
        self.train_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if result.cancelled:
            kept = f"; checkpoint kept at {result.checkpoint}" if result.checkpoint else ""
            self.status.setText(f"cancelled after {result.steps} step(s){kept}")
            return
        for annotator in self.annotators:
            annotator.model_row.set(str(result.model_path))
        self.status.setText(
            f"one click per object, mean IoU on the annotated images: before {result.before:.3f}, "
            f"after {result.after:.3f}. Saved {result.model_path}"
            + ("; the annotators now use it (recompute the embeddings)" if self.annotators else "")
        )
