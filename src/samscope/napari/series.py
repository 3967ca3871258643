"""The image-series annotator: a folder of images, next / previous, each image saved as you go.

Every image is annotated with the 2-D annotator embedded below the series controls. Moving to
another image (or pressing *Save*) writes the current one's ``STEM_labels.tif``,
``STEM_objects.csv`` and ``STEM_prompts.json`` into the output folder; opening the folder again
resumes at the first image without a table (the table is written last, so it marks an image
done) and shows the labels of images already annotated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from samscope.napari.annotator_2d import Annotator2D

SERIES_LAYER = "series image"


class SeriesAnnotator(QWidget):
    """Annotate a folder of 2-D images one after the other (see the module docstring).

    Parameters
    ----------
    napari_viewer : napari.Viewer
    model : str, optional
    folder, output : str or Path, optional
        Open this folder at once (output default: ``FOLDER/annotations``).
    """

    def __init__(self, napari_viewer, model: str | None = None, folder=None, output=None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer = napari_viewer
        self.files: list[Path] = []
        self.index = -1
        self.output: Path | None = None
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.folder_edit = QLineEdit(str(folder) if folder else "")
        self.folder_edit.setPlaceholderText("folder of images")
        self.output_edit = QLineEdit(str(output) if output else "")
        self.output_edit.setPlaceholderText("output folder (default FOLDER/annotations)")
        self.open_button = QPushButton("Open")
        self.open_button.clicked.connect(lambda: self.open_folder())
        row.addWidget(self.folder_edit, 1)
        row.addWidget(self.open_button)
        lay.addLayout(row)
        lay.addWidget(self.output_edit)
        row = QHBoxLayout()
        self.prev_button = QPushButton("◀ Previous")
        self.prev_button.clicked.connect(self.previous)
        self.position = QLabel("no folder open")
        self.next_button = QPushButton("Next ▶")
        self.next_button.clicked.connect(self.next)
        row.addWidget(self.prev_button)
        row.addWidget(self.position, 1)
        row.addWidget(self.next_button)
        lay.addLayout(row)
        self.annotator = Annotator2D(napari_viewer, model=model)
        lay.addWidget(self.annotator)
        if folder:
            self.open_folder(folder, output)

    # -- navigation ----------------------------------------------------------------------------

    def open_folder(self, folder=None, output=None) -> None:
        """List the folder's images and show the first one not yet annotated."""
        from samscope.io import list_images

        folder = Path(folder or self.folder_edit.text().strip()).expanduser()
        out_text = str(output) if output else self.output_edit.text().strip()
        self.output = Path(out_text).expanduser() if out_text else folder / "annotations"
        self.folder_edit.setText(str(folder))
        self.output_edit.setText(str(self.output))
        try:
            files = list_images(folder)
        except Exception as err:  # noqa: BLE001 - shown in the widget
            self.annotator._show_error(err)
            return
        self.files = [f for f in files if self.output not in f.parents]
        if not self.files:
            self.annotator.set_status(f"no images in {folder}", error=True)
            return
        todo = [i for i, f in enumerate(self.files) if not self._outputs(f).table.exists()]
        self.index = -1
        self.show_image(todo[0] if todo else len(self.files) - 1)
        if not todo:
            self.annotator.set_status(f"all {len(self.files)} images are annotated; showing the last")

    def _outputs(self, path: Path):
        from samscope.pipeline import OutputPaths, output_stem

        return OutputPaths.for_stem(self.output, output_stem(path))

    def done(self) -> list[bool]:
        """Whether each image's outputs exist."""
        return [self._outputs(f).table.exists() for f in self.files]

    def next(self) -> None:
        if self.index + 1 < len(self.files):
            self.show_image(self.index + 1)

    def previous(self) -> None:
        if self.index > 0:
            self.show_image(self.index - 1)

    def save_current(self) -> None:
        """Write the current image's labels, table and prompts."""
        if self.index >= 0 and self.annotator.store is not None:
            from samscope.pipeline import output_stem

            self.annotator.save(self.output, output_stem(self.files[self.index]))

    def show_image(self, index: int) -> None:
        """Save the current image, then show image ``index`` with its saved labels."""
        from samscope.io import read_image, read_labels

        self.save_current()
        path = self.files[index]
        try:
            image = read_image(path)
        except Exception as err:  # noqa: BLE001 - an unreadable file is shown, not raised
            self.annotator._show_error(err)
            return
        data = np.asarray(image.data)
        labels = None
        saved = self._outputs(path).labels
        if saved.exists():
            labels = np.asarray(read_labels(saved).data)
        self.index = index
        layers = self.viewer.layers
        rgb = image.axes == "YXC"
        if SERIES_LAYER in layers and layers[SERIES_LAYER].rgb == rgb:
            layers[SERIES_LAYER].data = data
            layers[SERIES_LAYER].reset_contrast_limits()
        else:
            if SERIES_LAYER in layers:
                layers.remove(SERIES_LAYER)
            self.viewer.add_image(data, name=SERIES_LAYER, rgb=rgb)
            self.viewer.layers.move(self.viewer.layers.index(SERIES_LAYER), 0)
        self.annotator.image_combo.setCurrentText(SERIES_LAYER)
        self.annotator.reset_image(labels)
        self.annotator._image_name = path.stem
        state = "annotated" if self._outputs(path).table.exists() else "new"
        self.position.setText(f"{index + 1} / {len(self.files)}: {path.name} ({state})")
        self.annotator.save_edit.setText(str(self.output))
        self.annotator.compute_embeddings()
