"""The tracking annotator: follow an object through a time-lapse, mark divisions, export CTC.

Built on :class:`samscope.multidim.track.Tracker` (issue 13). Click an object on any frame and
press *Track object* (``S``): it is followed forward, batched frame by frame, divisions found
automatically where the mask falls apart. Prompts added on a later frame correct the lineage's
track there (it is redone from that frame on). *Mark division* takes the positive points on the
shown frame as the daughters' first prompts; *End track* ends the track present on the shown
frame. *Commit* (``C``) keeps the lineage and starts the next; *Undo* removes the last lineage.
The ``tracks`` layer (napari Tracks) shows every track with its lineage graph; *Export* writes
the Cell Tracking Challenge result folder (``mask*.tif``, ``res_track.txt``) and napari's
Tracks CSV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from qtpy.QtWidgets import QHBoxLayout, QPushButton

from samscope.napari.annotator_2d import BOXES, COMMITTED, CURRENT, POINTS, show_labels
from samscope.napari.annotator_3d import Annotator3D

TRACKS = "tracks"


def run_tracker(tracker):
    """Worker body: follow every changed track; returns the :class:`TrackedSeries`."""
    return tracker.run()


class TrackingAnnotator(Annotator3D):
    """Interactive tracking with lineages (see the module docstring)."""

    axis_name = "t"

    def __init__(self, napari_viewer, model: str | None = None, parent=None):
        super().__init__(napari_viewer, model=model, parent=parent)
        self.auto_box.hide()
        self.segment_button.setText("Track object [S]")
        self.tracker = None
        self.root: int | None = None  # first track of the lineage being edited
        self.committed_roots: list[int] = []
        self.series = None  # the last TrackedSeries
        row = QHBoxLayout()
        self.divide_button = QPushButton("Mark division")
        self.divide_button.clicked.connect(self.mark_division)
        self.end_button = QPushButton("End track")
        self.end_button.clicked.connect(self.end_track)
        self.export_button = QPushButton("Export CTC")
        self.export_button.clicked.connect(lambda: self.save())
        for w in (self.divide_button, self.end_button, self.export_button):
            row.addWidget(w)
        self.extra_layout.addLayout(row)
        self.set_status("choose a model and a time-lapse (t, y, x), then press Prepare")

    # -- lineage bookkeeping -------------------------------------------------------------------

    def lineage_ids(self, root: int | None) -> list[int]:
        """``root`` and all its descendants."""
        if root is None or self.tracker is None or root not in self.tracker.track_ids:
            return []
        out, todo = [], [root]
        while todo:
            t = todo.pop()
            out.append(t)
            todo.extend(self.tracker.info(t).children)
        return sorted(out)

    def track_at(self, frame: int, point: np.ndarray | None = None) -> int | None:
        """The current lineage's track on ``frame`` (the one under ``point`` when several)."""
        ids = self.lineage_ids(self.root)
        present = [t for t in ids if frame in self.tracker.info(t).frames]
        if point is not None and self.series is not None and present:
            y, x = (int(round(v)) for v in point)
            h, w = self.series.labels.shape[1:]
            if 0 <= y < h and 0 <= x < w:
                under = int(self.series.labels[frame, y, x])
                if under in present:
                    return under
        if present:
            return present[0]
        earlier = [t for t in ids if self.tracker.info(t).anchor <= frame]
        return earlier[-1] if earlier else (ids[0] if ids else None)

    # -- actions -------------------------------------------------------------------------------

    def segment_object(self) -> None:
        """Start the lineage from the prompts, or correct it on frames whose prompts changed."""
        prompts = self.prompts_to_run("click the object on a frame first")
        if prompts is None:
            return
        from samscope.multidim.track import Tracker

        try:
            if self.tracker is None:
                self.tracker = Tracker(self.model, self.stack)
            for frame in sorted(prompts):
                p = prompts[frame]
                if self._sent.get(frame) == repr(p):
                    continue
                kw = {"points": p.get("points"), "labels": p.get("labels"), "box": p.get("box")}
                if self.root is None:
                    self.root = self.tracker.add(frame, **kw)
                else:
                    first = p["points"][0] if p.get("points") is not None else None
                    self.tracker.correct(self.track_at(frame, first), frame, **kw)
                self._sent[frame] = repr(p)
        except Exception as err:  # noqa: BLE001 - shown in the widget
            self._show_error(err)
            return
        self._run()

    def mark_division(self) -> None:
        """The positive points on the shown frame are the daughters of the track before it."""
        if self.tracker is None or self.root is None:
            self.set_status("track an object first", error=True)
            return
        frame = int(self.viewer.dims.current_step[0])
        p = self.plane_prompts().get(frame, {})
        pts = p.get("points")
        pos = pts[np.asarray(p.get("labels"), bool)] if pts is not None else np.zeros((0, 2))
        if len(pos) < 2:
            self.set_status("click each daughter (positive points) on the frame they appear", error=True)
            return
        try:
            mother = self.track_at(frame - 1)
            self.tracker.divide(mother, frame, [{"points": [q]} for q in pos])
        except Exception as err:  # noqa: BLE001
            self._show_error(err)
            return
        self._sent[frame] = repr(p)
        self._run()

    def end_track(self) -> None:
        """End the lineage's track present on the shown frame there."""
        if self.tracker is None or self.root is None:
            return
        frame = int(self.viewer.dims.current_step[0])
        try:
            self.tracker.end(self.track_at(frame), frame)
        except Exception as err:  # noqa: BLE001
            self._show_error(err)
            return
        self._run()

    def _run(self) -> None:
        self.segment_button.setEnabled(False)
        self.set_status("tracking …")
        self.background.run(run_tracker, self.tracker, done=self._on_tracked)

    def _on_tracked(self, series) -> None:
        from samscope.multidim.lineage import track_points

        self.segment_button.setEnabled(True)
        self.series = series
        labels = np.asarray(series.labels)
        current = np.isin(labels, self.lineage_ids(self.root))
        committed = np.isin(labels, [t for r in self.committed_roots for t in self.lineage_ids(r)])
        show_labels(self.viewer.layers[CURRENT], np.where(current, labels, 0).astype(np.uint16))
        show_labels(self.viewer.layers[COMMITTED], np.where(committed, labels, 0).astype(np.uint32))
        data = track_points(labels)
        graph = series.lineage.graph()
        if TRACKS in self.viewer.layers:
            self.viewer.layers.remove(TRACKS)
        if len(data):
            self.viewer.add_tracks(data, graph=graph, name=TRACKS, tail_length=10)
        ids = self.lineage_ids(self.root)
        spans = ", ".join(f"{t}: {self.tracker.info(t).frames[0]}–{self.tracker.info(t).frames[-1]}"
                          for t in ids if self.tracker.info(t).frames)
        self.set_status(f"lineage {spans or '(empty)'}; correct on any frame, C commits")

    def commit(self) -> int:
        """Keep the current lineage; the next prompts start a new one."""
        if self.root is None:
            self.set_status("nothing to commit: track an object first")
            return 0
        root = self.root
        self.committed_roots.append(root)
        self.root = None
        self._clear_prompts()
        if self.series is not None:
            self._on_tracked(self.tracker.result())
        self.set_status(f"committed lineage of track {root}")
        return root

    def clear(self) -> None:
        """Drop the lineage being edited and the prompts."""
        if self.root is not None and self.tracker is not None:
            self.tracker.remove(self.root)
        self.root = None
        self._clear_prompts()
        if self.tracker is not None:
            self._on_tracked(self.tracker.result())

    def undo(self) -> int | None:
        """Remove the last committed lineage."""
        if not self.committed_roots or self.tracker is None:
            return None
        root = self.committed_roots.pop()
        self.tracker.remove(root)
        self._on_tracked(self.tracker.result())
        return root

    def _clear_prompts(self) -> None:
        self._sent = {}
        layers = self.viewer.layers
        if POINTS in layers:
            layers[POINTS].data = np.zeros((0, 3))
        if BOXES in layers:
            layers[BOXES].data = []

    def save(self, folder=None, stem: str | None = None) -> dict:
        """Export every track: CTC result folder ``STEM_ctc/`` and ``STEM_tracks.csv``."""
        if self.tracker is None:
            self.set_status("nothing to export yet", error=True)
            return {}
        from samscope.io.tracks import write_ctc, write_napari_tracks

        folder = Path(folder) if folder is not None else Path(self.save_edit.text().strip() or ".")
        stem = stem or self.image_combo.currentText() or "tracks"
        series = self.tracker.result()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            ctc = write_ctc(folder / f"{stem}_ctc", series, overwrite=True)
            csv = write_napari_tracks(folder / f"{stem}_tracks.csv", series, overwrite=True)
        except Exception as err:  # noqa: BLE001
            self._show_error(err)
            return {}
        self.set_status(f"exported {series.n_tracks} track(s) to {folder}")
        return {"ctc": folder / f"{stem}_ctc", "files": ctc, "tracks": csv}
