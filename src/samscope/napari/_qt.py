"""Small Qt pieces the widgets share: background work, the model row, the settings form, tables."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from samscope.errors import SamscopeError

log = logging.getLogger(__name__)


def error_line(err: BaseException) -> str:
    """One line for the status label: samscope's own message, else the type and message."""
    if isinstance(err, SamscopeError):
        return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"{type(err).__name__}: {err}"


class Background:
    """Runs functions in napari worker threads; keeps them alive and reports through callbacks.

    ``busy`` is True while any job runs; ``wait_idle`` (tests) polls until none does.
    """

    def __init__(self, on_error: Callable[[BaseException], None]) -> None:
        self._workers: list[Any] = []
        self._on_error = on_error

    @property
    def busy(self) -> bool:
        return bool(self._workers)

    def run(self, fn: Callable, *args, done: Callable[[Any], None] | None = None,
            yielded: Callable[[Any], None] | None = None, **kwargs):
        """Start ``fn(*args, **kwargs)`` (a function, or a generator whose yields are progress)."""
        from napari.qt.threading import create_worker

        worker = create_worker(fn, *args, _start_thread=False, _ignore_errors=True, **kwargs)
        if done is not None:
            worker.returned.connect(done)
        if yielded is not None and hasattr(worker, "yielded"):
            worker.yielded.connect(yielded)
        worker.errored.connect(self._on_error)
        worker.finished.connect(lambda: self._forget(worker))
        self._workers.append(worker)
        worker.start()
        return worker

    def _forget(self, worker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)

    def quit(self) -> None:
        for worker in list(self._workers):
            worker.quit()


class ModelRow(QWidget):
    """An editable list of model names (a checkpoint path may be typed in)."""

    def __init__(self, default: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from samscope.napari.session import model_choices

        self.combo = QComboBox()
        self.combo.setEditable(True)
        self.combo.addItems(model_choices())
        if default:
            self.set(default)
        self.combo.setToolTip("a registered model name, or the path of a checkpoint file")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(QLabel("model"))
        lay.addWidget(self.combo, 1)

    def name(self) -> str:
        return self.combo.currentText().strip()

    def set(self, name: str) -> None:
        if self.combo.findText(name) < 0:
            self.combo.addItem(name)
        self.combo.setCurrentText(name)


class SettingsForm(QWidget):
    """Spin boxes / check boxes for a config dataclass's numeric fields; ``changed`` is debounced."""

    def __init__(self, on_change: Callable[[], None], parent: QWidget | None = None,
                 delay_ms: int = 150) -> None:
        super().__init__(parent)
        self._layout = QFormLayout(self)
        self._widgets: dict[str, Any] = {}
        self._config = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(on_change)

    def show_config(self, config: Any) -> None:
        from samscope.napari.session import editable_fields

        while self._layout.rowCount():
            self._layout.removeRow(0)
        self._widgets.clear()
        self._config = config
        for name, kind in editable_fields(config):
            value = getattr(config, name)
            if kind is bool:
                w = QCheckBox()
                w.setChecked(bool(value))
                w.toggled.connect(self._timer.start)
            elif kind is int:
                w = QSpinBox()
                w.setRange(0, 10**7)
                w.setValue(int(value))
                w.valueChanged.connect(self._timer.start)
            else:
                w = QDoubleSpinBox()
                w.setDecimals(3)
                w.setRange(0.0, 10**6)
                w.setSingleStep(0.05)
                w.setValue(float(value))
                w.valueChanged.connect(self._timer.start)
            self._widgets[name] = w
            self._layout.addRow(name.replace("_", " "), w)

    def widget(self, name: str):
        return self._widgets[name]

    def config(self) -> Any:
        """The shown config with the edited values (validated by its dataclass)."""
        from samscope.napari.session import config_with

        if self._config is None:
            return None
        values = {}
        for name, w in self._widgets.items():
            values[name] = w.isChecked() if isinstance(w, QCheckBox) else w.value()
        return config_with(self._config, values)


def fill_table(widget: QTableWidget, table: Any, columns: tuple[str, ...]) -> None:
    """Show the ``columns`` of a :class:`samscope.analysis.table.Table` (missing ones skipped)."""
    cols = [c for c in columns if c in table]
    widget.setColumnCount(len(cols))
    widget.setHorizontalHeaderLabels(cols)
    widget.setRowCount(len(table))
    for j, c in enumerate(cols):
        values = table[c] if len(table) else []
        for i, v in enumerate(values):
            text = str(int(v)) if c in _INT_COLUMNS else f"{float(v):.3f}"
            item = QTableWidgetItem(text)
            item.setFlags(item.flags() & ~Qt.ItemIsEditable)
            widget.setItem(i, j, item)


_INT_COLUMNS = ("id", "area_px", "volume_vox")
