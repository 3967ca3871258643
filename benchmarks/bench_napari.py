"""napari 2-D annotator on a 1024² image: prompt → mask latency and automatic segmentation time.

Opens the 2-D annotator in a napari viewer (no window needed: Qt's offscreen platform, a virtual
X display is started when there is none — napari's canvas needs OpenGL), computes the
embeddings of a simulated 1024² nuclei image with the chosen model, then clicks ``--clicks``
nuclei one by one as a user does (a point added to the ``point prompts`` layer) and measures

- **decode + layer**: from the click to the ``current object`` layer holding the new mask
  (the widget's own decode and the changed-region upload, all in the GUI thread);
- **visible**: the same plus the Qt events that draw the canvas (``processEvents``);
- **automatic**: the chosen automatic mode on the whole image in the background, and the
  longest gap between GUI timer ticks meanwhile (the UI stays responsive when that is small).

Medians over the clicks are printed and written as JSON (``--out``). Numbers from a busy
machine say little: run it on a quiet one (``--threads`` sets torch's threads).

    python benchmarks/bench_napari.py
    python benchmarks/bench_napari.py --model samscope-lm --clicks 30 --out napari_bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np


def _display():
    """A virtual display when there is none (napari's canvas needs OpenGL through X)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if os.environ.get("DISPLAY"):
        return None
    try:
        from pyvirtualdisplay import Display
    except ImportError:
        return None
    display = Display(visible=False, size=(1600, 1000))
    display.start()
    return display


def _wait(app, widget, timeout=600.0) -> None:
    end = time.perf_counter() + timeout
    while widget.background.busy or (hasattr(widget, "embeddings") and widget.embeddings is None):
        app.processEvents()
        time.sleep(0.01)
        if time.perf_counter() > end:
            raise TimeoutError("the widget did not finish")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="samscope-generalist")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--clicks", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    display = _display()
    import torch
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    import napari
    from samscope.napari.annotator_2d import CURRENT, POINTS, Annotator2D
    from samscope.simulate import nuclei

    if args.threads:
        torch.set_num_threads(args.threads)
    [sample] = nuclei(1, (args.size, args.size), rng=3)
    image = np.rint(sample.image).astype(np.uint16)
    viewer = napari.Viewer(show=False)
    app = QApplication.instance()
    viewer.add_image(image, name="nuclei")
    widget = Annotator2D(viewer, model=args.model)
    viewer.window.add_dock_widget(widget)
    t0 = time.perf_counter()
    widget.compute_embeddings()
    _wait(app, widget)
    embed_s = time.perf_counter() - t0

    from scipy import ndimage as ndi

    ids = np.unique(sample.labels[sample.labels > 0])
    rng = np.random.default_rng(0)
    picks = rng.choice(ids, size=min(args.clicks, ids.size), replace=False)
    decode, visible = [], []
    points = viewer.layers[POINTS]
    for obj in picks:
        mask = sample.labels == obj
        dist = ndi.distance_transform_edt(mask)
        y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
        start = time.perf_counter()
        points.add([[float(y), float(x)]])
        decode.append((time.perf_counter() - start) * 1000)
        app.processEvents()
        visible.append((time.perf_counter() - start) * 1000)
        assert viewer.layers[CURRENT].data.any()
        widget.commit()
        app.processEvents()

    gaps: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000)
        last[0] = now

    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(tick)
    timer.start()
    t0 = time.perf_counter()
    widget.segment_automatically()
    _wait(app, widget)
    auto_s = time.perf_counter() - t0
    timer.stop()
    result = {
        "model": args.model, "image": [args.size, args.size], "clicks": len(picks),
        "torch_threads": torch.get_num_threads(), "embeddings_s": round(embed_s, 2),
        "decode_and_layer_ms_median": round(statistics.median(decode), 1),
        "visible_ms_median": round(statistics.median(visible), 1),
        "visible_ms_max": round(max(visible), 1),
        "automatic_s": round(auto_s, 2),
        "automatic_objects": int(widget.automatic.n) if widget.automatic is not None else 0,
        "ui_longest_gap_ms_during_automatic": round(max(gaps), 1) if gaps else None,
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)
    viewer.close()
    if display is not None:
        display.stop()


if __name__ == "__main__":
    main()
