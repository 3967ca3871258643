"""Open napari with an image and the right annotator (what ``samscope annotate`` runs)."""

from __future__ import annotations

from pathlib import Path

from samscope.errors import InputError

MODES = ("auto", "2d", "3d", "track", "series")


def annotator_for(axes: str) -> str:
    """The annotator an image's axes call for: ``2d`` (YX, YXC), ``3d`` (Z…), ``track`` (T…)."""
    if axes in ("YX", "YXC"):
        return "2d"
    if axes.startswith("Z") and axes.lstrip("Z") in ("YX", "YXC"):
        return "3d"
    if axes.startswith("T") and axes.lstrip("T") in ("YX", "YXC"):
        return "track"
    raise InputError(
        f"images with axes {axes!r} have no annotator; the annotators take YX, ZYX or TYX "
        "(optionally RGB): choose a channel or convert the file"
    )


def open_annotator(path: str | Path, *, model: str | None = None, mode: str = "auto",
                   viewer=None, show: bool = True):
    """A napari viewer with ``path`` and the annotator for it docked; returns ``(viewer, widget)``.

    A folder opens the series annotator with the training-in-the-loop widget beside it (as
    ``widget.trainer``), reading the images and annotations the series writes.

    Parameters
    ----------
    path : path
        An image file (or zarr store), or a folder of images (the series annotator).
    model : str, optional
        Model name or checkpoint file preselected in the widget.
    mode : {"auto", "2d", "3d", "track", "series"}
        ``auto`` chooses from the image's axes (a folder: ``series``).
    viewer : napari.Viewer, optional
        Use this viewer instead of a new one.
    """
    if mode not in MODES:
        raise InputError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path} does not exist")
    import napari

    is_folder = path.is_dir() and not path.name.lower().endswith(".zarr")
    if mode == "auto" and is_folder:
        mode = "series"
    if mode == "series":
        if not is_folder:
            raise InputError(f"--mode series takes a folder of images; {path} is a file")
        from samscope.napari.series import SeriesAnnotator
        from samscope.napari.training import TrainingWidget

        viewer = viewer or napari.Viewer(show=show)
        widget = SeriesAnnotator(viewer, model=model, folder=path)
        viewer.window.add_dock_widget(widget, name="samscope series", area="right")
        trainer = TrainingWidget(viewer, model=model, annotators=[widget.annotator],
                                 images=path, annotations=widget.output)
        widget.trainer = trainer  # training in the loop on what the series saved
        viewer.window.add_dock_widget(trainer, name="samscope training", area="right",
                                      tabify=True)
        return viewer, widget
    from samscope.io import read_image

    image = read_image(path)
    chosen = annotator_for(image.axes) if mode == "auto" else mode
    viewer = viewer or napari.Viewer(show=show)
    from samscope.pipeline import output_stem

    name = output_stem(path)
    viewer.add_image(image.data, name=name, rgb=image.axes.endswith("C"))
    if chosen == "2d":
        from samscope.napari.annotator_2d import Annotator2D as Widget
    elif chosen == "3d":
        from samscope.napari.annotator_3d import Annotator3D as Widget
    else:
        from samscope.napari.tracking import TrackingAnnotator as Widget
    widget = Widget(viewer, model=model)
    widget.image_combo.setCurrentText(name)
    viewer.window.add_dock_widget(widget, name=f"samscope {chosen}", area="right")
    return viewer, widget
