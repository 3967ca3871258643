"""Session folders on disk and what is read from them: outputs of an image, reports, zips.

One folder per session under ``DATA/sessions/ID/``::

    uploads/STEM/STEM.tif        the uploaded image (stored under its safe name)
    results/STEM/STEM_*          what samscope.pipeline.segment_batch wrote for it
    cache/STEM.zarr              its embeddings (made on the first click)
    reports/NAME/                samscope.analysis.analyze_results' report for a download
    downloads/NAME.zip           the zip served for a download

Every path is built from a session id of the store's alphabet and a stem made by
:func:`samscope.web.uploads.sanitise_name`, and checked to stay inside the session folder, so no
request names a file outside it. Sessions never share a folder.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from samscope.errors import InputError
from samscope.web.store import ImageRow
from samscope.web.uploads import safe_child

__all__ = ["SessionFiles", "build_zip"]

_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def check_id(value: str, what: str = "id") -> str:
    """``value`` when it is a store id (letters, digits, ``_``, ``-``), else InputError."""
    if not _ID.match(value or ""):
        raise InputError(f"not a valid {what}")
    return value


@dataclass(frozen=True)
class SessionFiles:
    """The folder of one session.

    Parameters
    ----------
    root : Path
        ``DATA/sessions``.
    sid : str
        Session id.
    """

    root: Path
    sid: str

    def __post_init__(self) -> None:
        check_id(self.sid, "session id")

    @property
    def folder(self) -> Path:
        return self.root / self.sid

    def _sub(self, *parts: str) -> Path:
        path = self.folder
        for p in parts:
            path = safe_child(path, p)
        if self.folder.resolve() not in (path.resolve(), *path.resolve().parents):
            raise InputError("path leaves the session folder")
        return path

    def upload(self, stem: str, filename: str) -> Path:
        return self._sub("uploads", stem, filename)

    def results(self, stem: str) -> Path:
        return self._sub("results", stem)

    def results_root(self) -> Path:
        return self._sub("results")

    def cache(self, stem: str) -> Path:
        return self._sub("cache", f"{stem}.zarr")

    def report(self, name: str) -> Path:
        return self._sub("reports", name)

    def download(self, name: str) -> Path:
        return self._sub("downloads", f"{name}.zip")

    def outputs(self, image: ImageRow):
        """The :class:`samscope.pipeline.OutputPaths` of an image (the pipeline's own names)."""
        from samscope.pipeline import collect_inputs, plan_outputs

        upload = self.upload(image.stem, image.filename)
        plan = plan_outputs(collect_inputs([upload]), self.results(image.stem))
        return plan.items[0][1]


def result_files(files: SessionFiles, image: ImageRow) -> list[Path]:
    """The files the pipeline (and edits) wrote for an image, in a stable order."""
    folder = files.results(image.stem)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _stamp(images: Sequence[ImageRow]) -> str:
    return json.dumps([[im.id, im.version] for im in images])


def build_zip(files: SessionFiles, images: Sequence[ImageRow], name: str, *,
              flat: bool = False) -> Path:
    """A zip of the images' results and one HTML report over them (reused while unchanged).

    Layout: ``STEM/STEM_labels.tif``, ``_objects.csv``, ``_overlay.png``, ``_segmentation.json``
    (``_masks.tif`` for overlapping modes) per image, and ``report/`` with what
    ``samscope analyze`` writes (``report.html``, ``images.csv``, ``objects.csv``,
    ``conditions.csv``, ``plots/``). ``flat`` (one image): its files at the top level.

    Raises
    ------
    InputError
        When none of ``images`` is done.
    """
    from samscope.io import atomic_target

    done = [im for im in images if im.state == "done"]
    if not done:
        raise InputError("no finished results to download yet")
    target = files.download(name)
    stamp_path = target.with_suffix(".stamp")
    stamp = _stamp(done)
    if target.is_file() and stamp_path.is_file() and stamp_path.read_text() == stamp:
        return target
    report_dir, notes = _report(files, done, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    single = flat and len(done) == 1
    with atomic_target(target, overwrite=True) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for im in done:
                for path in result_files(files, im):
                    zf.write(path, path.name if single else f"{im.stem}/{path.name}")
            if report_dir is not None:
                for path in sorted(report_dir.rglob("*")):
                    if path.is_file() and not path.name.startswith("."):
                        zf.write(path, f"report/{path.relative_to(report_dir).as_posix()}")
            if notes:
                zf.writestr("NOTES.txt", "\n".join(notes) + "\n")
    stamp_path.write_text(stamp)
    return target


def _report(files: SessionFiles, done: Sequence[ImageRow], name: str):
    """``samscope analyze``'s report over the images (conditions: the folders they came from)."""
    from samscope.analysis import analyze_results
    from samscope.errors import SamscopeError

    out = files.report(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    if len(done) == 1:
        source, pairs = files.results(done[0].stem), [(done[0].stem, done[0].condition)]
    else:
        source = files.results_root()
        pairs = [(f"{im.stem}/{im.stem}", im.condition) for im in done]
    try:
        analyze_results(source, out, conditions=pairs, overwrite=True)
    except SamscopeError as err:
        return None, [f"no report: {err}"]
    return out, []
