"""Automatic tracking of a time series from file to CTC result folder: :func:`track_series`.

One call does what ``samscope track SERIES -o OUT`` does::

    from samscope.pipeline.tracking import TrackRequest, track_series
    result = track_series(TrackRequest("movie.tif", output="OUT"))

1. read the series (``TYX``, ``TYXC`` or ``TZYX``; ``--axes`` when the file does not say);
2. segment every frame with the model and its automatic mode (:func:`segment_frames`: one object
   size for the whole series, estimated once, so that frames are segmented alike; a ``TZYX``
   series is segmented volume by volume with objects whole in 3-D,
   :func:`samscope.multidim.segment_volume`), or read the user's segmentation (``labels``);
3. link the objects of consecutive frames into tracks with divisions
   (:func:`samscope.multidim.link_series`, laptrack underneath);
4. write the Cell Tracking Challenge result format (``OUT/mask000.tif …``, ``OUT/res_track.txt``),
   a napari Tracks CSV (``OUT/tracks.csv``) and a record (``OUT/tracking.json``), each atomically.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import InputError
from samscope.models.registry import DEFAULT_MODEL

__all__ = ["TrackRequest", "TrackResult", "read_series", "segment_frames", "track_series"]

SERIES_AXES = ("TYX", "TYXC", "TZYX", "TZYXC")


@dataclass(frozen=True)
class TrackRequest:
    """What to track and how.

    Parameters
    ----------
    series : Path
        A time series file (``TYX``, ``TYXC``, ``TZYX``), or a folder of one file per frame
        (sorted by name, e.g. a CTC sequence ``t000.tif …``).
    output : Path
        Result folder (CTC layout).
    labels : Path, optional
        An existing segmentation (a label series file or folder, ids per frame or already
        tracks): skip the model, only link.
    model, checkpoint, device, mode, settings
        Model and automatic mode for segmenting (``samscope segment``'s meaning).
    diameter : float, optional
        Object diameter in pixels (None: estimated once for the series).
    axes : str, optional
        Axes of the series file when it does not say.
    z_scale : float, optional
        ``TZYX``: plane spacing over the in-plane pixel size (None: from the file, else 1).
    link : LinkerConfig, optional
        Linking settings (:class:`samscope.multidim.linking.LinkerConfig`); its ``z_scale`` is
        replaced by the series' (``z_scale`` here).
    overwrite : bool
        Replace an existing result in ``output``.
    fewer_tiles : bool
        AIS on 2-D frames: the fewest encoder inputs per frame (:func:`fitted_tiles`; HeLa
        700 × 1100: 15 tiles instead of 20, ≈ 25 % less encoder time) at a narrower halo. Opt-in:
        on HeLa's tuning frames 12–13 it costs 0.010 mSA.
    """

    series: Path
    output: Path
    labels: Path | None = None
    model: Any = DEFAULT_MODEL
    checkpoint: Path | None = None
    device: str | None = None
    mode: str = "auto"
    settings: Mapping[str, Any] | None = None
    diameter: float | None = None
    axes: str | None = None
    z_scale: float | None = None
    link: Any = None
    overwrite: bool = False
    fewer_tiles: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "series", Path(self.series))
        object.__setattr__(self, "output", Path(self.output))
        if self.labels is not None:
            object.__setattr__(self, "labels", Path(self.labels))
        if self.diameter is not None and not (math.isfinite(self.diameter) and self.diameter > 0):
            raise InputError(f"diameter must be a positive number, got {self.diameter}")


@dataclass(frozen=True)
class TrackResult:
    """What :func:`track_series` did.

    Attributes
    ----------
    tracked : TrackedSeries
        Labels with track ids and the lineage.
    files : dict of str to Path
    seconds : dict of str to float
        Wall time of ``read``, ``segment``, ``link``, ``write``.
    diameter : float or None
        Object size used for segmenting.
    """

    tracked: Any
    files: dict[str, Path]
    seconds: dict[str, float] = field(default_factory=dict)
    diameter: float | None = None


def read_series(path: str | os.PathLike, *, axes: str | None = None, labels: bool = False):
    """A time series from a file or a folder of frames: ``(data, axes)``.

    Parameters
    ----------
    path : path
        A ``TYX``/``TYXC``/``TZYX`` file, or a folder with one 2-D or 3-D file per frame.
    axes : str, optional
        Axes of the file (or of each frame file in a folder, without ``T``).
    labels : bool
        Read label images (integer ids).

    Returns
    -------
    (numpy.ndarray, str)

    Raises
    ------
    InputError
        A single frame, frames of different shapes, axes that are not a series.
    """
    from samscope.io import list_images, read_image, read_labels

    path = Path(path)
    if not path.exists():
        raise InputError(f"'{path}' does not exist")
    if path.is_dir() and not _is_zarr(path):
        files = sorted(list_images([path]))
        if not files:
            raise InputError(f"'{path}' holds no image files")
        frames, shapes = [], set()
        for f in files:
            if labels:
                arr = read_labels(f, axes=axes)
                frame_axes = "ZYX" if arr.ndim == 3 else "YX"
            else:
                img = read_image(f, axes=axes)
                arr, frame_axes = np.asarray(img.data), img.axes
            frames.append(arr)
            shapes.add(arr.shape)
        if len(shapes) > 1:
            raise InputError(
                f"the frames in '{path}' have different shapes {sorted(shapes)}; a series needs "
                "frames of one shape"
            )
        data, series_axes = np.stack(frames), "T" + frame_axes
    else:
        if labels:
            data = read_labels(path, axes=axes)
            series_axes = axes or {3: "TYX", 4: "TZYX"}.get(data.ndim, "")
        else:
            img = read_image(path, axes=axes)
            data, series_axes = np.asarray(img.data), img.axes
            if series_axes == "ZYX" and axes is None:  # a 3-D file without metadata: frames first
                series_axes = "TYX"
            elif series_axes == "ZYXC" and axes is None:
                series_axes = "TYXC"
    if series_axes not in SERIES_AXES:
        raise InputError(
            f"'{path}' has axes {series_axes or '?'} (shape {tuple(data.shape)}); tracking needs a "
            f"time series ({', '.join(SERIES_AXES)}); pass --axes, e.g. --axes TZYX"
        )
    if data.shape[0] < 2:
        raise InputError(f"'{path}' has a single frame; tracking needs at least two")
    return data, series_axes


def _is_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or (path / ".zarray").exists() or (path / "zarr.json").exists()


def segment_frames(
    data: np.ndarray,
    axes: str,
    model: Any,
    *,
    mode: str = "auto",
    config: Any = None,
    diameter: float | None = None,
    z_scale: float | None = None,
    progress: Callable[[int, int], None] | None = None,
    fewer_tiles: bool = False,
) -> tuple[np.ndarray, float | None]:
    """Segment every frame of a series: ``(labels (T, ...), diameter used)``; ids per frame.

    One object size for the whole series: ``diameter`` given, or estimated once (on the frame
    with the largest intensity spread) for a scale-aware model, so that every frame is resized
    alike. ``TZYX`` frames are segmented as volumes (objects whole in 3-D, ``z_scale`` the plane
    spacing over the pixel size). Empty or constant frames give empty labels.

    Parameters
    ----------
    data : numpy.ndarray
        ``(T, Y, X)``, ``(T, Y, X, C)`` or ``(T, Z, Y, X)``.
    axes : str
    model : SamscopeModel
    mode, config
        Automatic mode and its thresholds.
    diameter : float, optional
    z_scale : float, optional
    progress : callable, optional
        ``progress(done, total)`` after each frame.
    fewer_tiles : bool
        2-D frames in AIS: :func:`fitted_tiles` instead of the card's tiles.
    """
    from samscope.labels import label_dtype

    n = int(data.shape[0])
    spreads = [float(np.ptp(np.asarray(data[t], dtype=np.float32))) for t in range(n)]
    volumes = axes.startswith("TZ")
    if diameter is None and getattr(getattr(model, "card", None), "working_diameter", None):
        best = int(np.argmax(spreads))
        if spreads[best] > 0:
            from samscope.instance.scale import estimate_diameter

            probe = np.asarray(data[best])
            if volumes:  # the plane with the largest spread of that volume
                probe = probe[int(np.argmax([np.ptp(p) for p in probe]))]
            if getattr(model, "instance_head", None) is not None:
                diameter = estimate_diameter(probe, model).diameter
    out = []
    for t in range(n):
        frame = np.asarray(data[t])
        if spreads[t] == 0:
            out.append(np.zeros(frame.shape[: (3 if volumes else 2)], np.uint32))
        elif volumes:
            from samscope.multidim import segment_volume

            kw = {"diameter": diameter} if diameter is not None else {}
            res = segment_volume(frame, model, mode=mode, config=config, z_scale=z_scale, **kw)
            out.append(res.labels)
        else:
            kw = {"diameter": diameter} if diameter is not None else {}
            out.append(_segment_frame(frame, model, mode, config, kw, fewer_tiles=fewer_tiles))
        if progress is not None:
            progress(t + 1, n)
    top = max(int(o.max()) for o in out)
    return np.stack([o.astype(label_dtype(top), copy=False) for o in out]), diameter


BORDER_FRACTION = 0.05


def _segment_frame(
    frame: np.ndarray, model: Any, mode: str, config: Any, kw: dict, *, fewer_tiles: bool = False
) -> np.ndarray:
    """One 2-D frame's labels. With the model's own AIS settings, nuclei cut by the image border
    are kept down to ``BORDER_FRACTION`` of a typical nucleus's area (the card's ``min_size`` is
    for whole objects; a time series' ground truth follows a nucleus until it has left)."""
    from samscope.instance.segment import choose_mode, segment

    auto = getattr(getattr(model, "card", None), "automatic", None)
    if fewer_tiles and choose_mode(model, mode) == "ais":
        kw = {**kw, **fitted_tiles(frame.shape[:2], model, kw.get("diameter"))}
    if config is not None or not getattr(auto, "min_size", 0) or choose_mode(model, mode) != "ais":
        return segment(frame, model, mode=mode, config=config, **kw).labels
    from samscope.instance.ais import AISConfig

    res = segment(frame, model, mode="ais", config=AISConfig(min_size=0), **kw)
    return keep_border_fragments(res.labels, *fragment_sizes(model, res.diameter, res.scale))


#: Smallest halo of the fitted tile layout (:func:`fitted_tiles`).
FITTED_MIN_HALO = 8


def fitted_tiles(shape: tuple[int, int], model: Any, diameter: float | None) -> dict[str, Any]:
    """``tile_shape``/``halo`` for AIS on a frame of ``shape``: the fewest encoder inputs.

    The card's fixed tiles leave a last row or column that is mostly padding (HeLa 700 × 1100:
    4 × 5 tiles of 224 + 2 × 16); :func:`samscope.tiling.fitted_tiling` spreads the frame over
    the fewest tiles that fit the encoder input (3 × 5 there), on the grid the frame is
    segmented at (resized by the object size). Empty (the card's tiling) for an untiled model,
    an unknown diameter of a scale-aware model (the frame's own estimate decides its size), or a
    frame that fits one input. AIS only (its maps are blended across seams; instance modes
    stitch whole objects and want halos wider than an object). The halo is narrower (HeLa: 11 px
    across rows instead of 16), which costs accuracy: on HeLa's tuning frames 12–13, mSA 0.789
    → 0.778 (``benchmarks/check_speed_settings.py tiling``), hence opt-in
    (``TrackRequest.fewer_tiles``, ``samscope track --fewer-tiles``).
    """
    from samscope.instance.scale import scale_for
    from samscope.tiling import fitted_tiling

    card = getattr(model, "card", None)
    side = getattr(model, "image_size", None)
    working = getattr(card, "working_diameter", None)
    if getattr(card, "tile_shape", None) is None or not side or (working and not diameter):
        return {}
    s = scale_for(diameter, working)
    work = tuple(max(1, int(round(int(n) * s))) for n in shape)
    tile, halo = fitted_tiling(work, int(side), min_halo=FITTED_MIN_HALO)
    return {} if tile is None else {"tile_shape": tile, "halo": halo}


def fragment_sizes(model: Any, diameter: float | None, scale: float | None) -> tuple[float, float]:
    """``(min_size, border_min_size)`` in native pixels for :func:`keep_border_fragments`: the
    card's ``min_size`` (given at the working scale, where objects are ``working_diameter``
    across) for whole objects, ``BORDER_FRACTION`` of a nucleus of ``diameter`` on the border.

    The card's size is converted by the objects' size, not by the resize factor: an image whose
    resize was skipped (objects within the scale tolerance of the working size) keeps the
    threshold in proportion to its objects (24.5 px nuclei: 153 px, not 200; a daughter just
    after a division is about half a nucleus)."""
    card = getattr(model, "card", None)
    min_size = float(getattr(getattr(card, "automatic", None), "min_size", 0) or 0)
    working = getattr(card, "working_diameter", None)
    if diameter and working:  # also when the resize was skipped as too small to matter
        interior = min_size * (float(diameter) / float(working)) ** 2
    else:
        interior = min_size / float(scale or 1.0) ** 2
    border = BORDER_FRACTION * np.pi / 4 * diameter**2 if diameter else BORDER_FRACTION * interior
    return interior, min(border, interior)


def keep_border_fragments(labels: np.ndarray, min_size: float, border_min_size: float) -> np.ndarray:
    """Drop objects under ``min_size`` pixels, except those touching the image border, which
    only need ``border_min_size`` (nuclei partly outside the image). Ids are kept.

    Parameters
    ----------
    labels : numpy.ndarray, (Y, X)
    min_size, border_min_size : float

    Returns
    -------
    numpy.ndarray
        A copy without the dropped objects.
    """
    labels = np.asarray(labels)
    if not labels.any():
        return labels.copy()
    sizes = np.bincount(labels.ravel())
    edge = np.zeros(sizes.size, bool)
    for side in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        edge[np.unique(side)] = True
    need = np.where(edge, border_min_size, min_size)
    drop = (sizes < need) & (sizes > 0)
    drop[0] = False
    out = labels.copy()
    out[drop[labels]] = 0
    return out


def _z_scale(path: Path, axes: str | None, given: float | None) -> float:
    if given is not None:
        if not (math.isfinite(given) and given > 0):
            raise InputError(f"z-scale must be a positive number, got {given}")
        return float(given)
    from samscope.io import read_image

    try:
        img = read_image(path, axes=axes, lazy=True)
    except InputError:
        return 1.0
    size = img.pixel_size
    if size is None or "Z" not in img.axes or len(size) < 3:
        return 1.0
    z, x = float(size[0]), float(size[-1])
    return z / x if math.isfinite(z) and math.isfinite(x) and z > 0 and x > 0 else 1.0


def track_series(
    request: TrackRequest,
    *,
    progress: Callable[[str, int, int], None] | None = None,
) -> TrackResult:
    """Segment (or read) every frame, link into tracks with divisions, write the CTC result.

    Parameters
    ----------
    request : TrackRequest
    progress : callable, optional
        ``progress(stage, done, total)``: stage ``segment`` after each frame, ``link`` and
        ``write`` once.

    Returns
    -------
    TrackResult

    Raises
    ------
    InputError
        Before any model loads: an existing result without ``overwrite``, an output that is an
        input, a series that is a single frame or not a series, frames of different shapes,
        labels that do not match the series; then any error of the model or mode.
    """
    from samscope.io import atomic_target
    from samscope.io.tracks import write_ctc, write_napari_tracks
    from samscope.multidim.linking import LinkerConfig, link_series

    req = request
    out = req.output
    inputs = [req.series] + ([req.labels] if req.labels is not None else [])
    for p in inputs:
        if p.exists() and out.resolve() == p.resolve():
            raise InputError(f"the output folder '{out}' is an input; choose another -o")
    if out.is_file():
        raise InputError(f"'{out}' is a file; the output is a folder")
    if (out / "res_track.txt").exists() and not req.overwrite:
        raise InputError(f"'{out}' already holds a tracking result; pass --overwrite to replace it")
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    data, axes = read_series(req.series, axes=req.axes)
    z_scale = _z_scale(req.series, req.axes, req.z_scale) if axes.startswith("TZ") else 1.0
    seconds["read"] = time.perf_counter() - t0
    diameter = req.diameter
    t0 = time.perf_counter()
    if req.labels is not None:
        labels, _ = read_series(req.labels, labels=True)
        want = data.shape[: 4 if axes.startswith("TZ") else 3]
        if labels.shape != want:
            raise InputError(
                f"the labels '{req.labels}' have shape {labels.shape} but the series has {want}"
            )
        model_name = None
    else:
        from samscope.pipeline.segmentation import SegmentRequest, resolve_model

        net, mode, config = resolve_model(SegmentRequest(
            [req.series], model=req.model, checkpoint=req.checkpoint, device=req.device,
            mode=req.mode, settings=req.settings, diameter=req.diameter,
        ))  # fmt: skip
        model_name = getattr(net, "name", str(req.model))
        labels, diameter = segment_frames(
            data, axes, net, mode=mode, config=config, diameter=req.diameter, z_scale=z_scale,
            progress=None if progress is None else (lambda d, n: progress("segment", d, n)),
            fewer_tiles=req.fewer_tiles,
        )  # fmt: skip
    seconds["segment"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    from dataclasses import replace

    link = replace(req.link or LinkerConfig(), z_scale=z_scale)  # the series' own z spacing
    tracked = link_series(labels, config=link)
    seconds["link"] = time.perf_counter() - t0
    if progress is not None:
        progress("link", 1, 1)
    t0 = time.perf_counter()
    files = {"masks": out}
    written = write_ctc(out, tracked, overwrite=req.overwrite or not (out / "res_track.txt").exists())
    files["res_track"] = written[-1]
    files["tracks_csv"] = write_napari_tracks(out / "tracks.csv", tracked, overwrite=True)
    seconds["write"] = time.perf_counter() - t0
    record = {
        "series": str(req.series), "axes": axes, "labels": None if req.labels is None else str(req.labels),
        "model": model_name, "mode": None if req.labels is not None else req.mode,
        "diameter_px": diameter, "z_scale": z_scale, "link": asdict(link),
        "fewer_tiles": bool(req.fewer_tiles),
        "n_frames": int(len(labels)), "n_tracks": tracked.n_tracks,
        "n_divisions": tracked.lineage.n_divisions, "seconds": seconds,
    }  # fmt: skip
    import json

    with atomic_target(out / "tracking.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(record, indent=1))
    files["record"] = out / "tracking.json"
    if progress is not None:
        progress("write", 1, 1)
    return TrackResult(tracked, files, seconds, diameter)
