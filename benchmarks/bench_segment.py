"""End-to-end time of ``samscope segment`` on a 1024² image with the default model.

Targets: issue 21.3, ≤ 2 s median of 5 fresh processes (process start included); issue 11,
< 5 s on this CPU, size estimation included.

Each repeat is a fresh process, as a user runs it: interpreter start, imports, model load,
reading the image, the object-size estimate, tiled embeddings, the automatic mode, and writing
labels, table, record and overlay. The image is simulated (HeLa-like nuclei, 1024², uint16 with
a camera offset), written once.

Usage::

    python benchmarks/bench_segment.py [--model samscope-generalist] [--size 1024] [--repeats 5]

Prints each wall time and the median (the figure for both targets), then where the time goes:

* floors, each the fastest of a few fresh processes: interpreter start, ``import torch`` alone
  (a cost no change to samscope can remove) and every import ``samscope segment`` makes;
* one in-process run stage by stage, wall and CPU seconds, with the count of encoder passes
  of each stage (size estimate, tiles), so that a loaded machine's figures can still be read
  as counts;
* an A/B in the same process (alternating, ``--ab-rounds`` each): the 2-D image's tiles
  encoded one per forward pass (the default) or ``--ab-batch`` per pass, which only a quiet
  machine can decide (threading overhead on 256² inputs).

About 1.5 min on an idle 2-core machine (5 repeats).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: What a ``samscope segment`` process imports before it computes (its stages import the rest).
IMPORTS = (
    "import samscope.cli.main, samscope.pipeline.segmentation, samscope.instance.segment, "
    "samscope.models.registry, samscope.models.checkpoint, samscope.models.sam, "
    "samscope.models.heads, samscope.models.distance_head, samscope.embeddings, "
    "samscope.instance.ais, samscope.instance.scale, samscope.analysis, samscope.evaluation.report, "
    "torch, skimage.segmentation, skimage.transform; skimage.segmentation.watershed; "
    "skimage.transform.resize"
)


def _image(folder: Path, size: int) -> Path:
    import numpy as np

    from samscope.io import write_image
    from samscope.simulate import stream

    sample = next(stream("nuclei", seed=4242, shape=(size, size)))
    path = folder / f"nuclei_{size}.tif"
    write_image(path, np.clip(sample.image, 0, 65535).astype(np.uint16), overwrite=True)
    return path


def _fresh(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t0


class _Clock:
    """Wall and CPU seconds of consecutive stages."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float]] = []
        self._w, self._c = time.perf_counter(), time.process_time()

    def lap(self, name: str) -> None:
        w, c = time.perf_counter(), time.process_time()
        self.rows.append((name, w - self._w, c - self._c))
        self._w, self._c = w, c


def _count_encodes(model) -> list[int]:
    """Count encoder passes (images through the encoder) of ``model`` from now on."""
    calls = [0]
    encode = model.encode

    def counted(pixels, **kwargs):
        calls[0] += int(pixels.shape[0])
        return encode(pixels, **kwargs)

    model.encode = counted
    return calls


def _stages(path: Path, model_name: str, out: Path) -> _Clock:
    """One in-process run, stage by stage, doing what ``samscope segment`` does in AIS mode."""
    clock = _Clock()
    # this process has not imported torch yet: pay every import here, so that 'load model' is the
    # load alone (earlier versions counted 'import torch' as part of the model load)
    exec(IMPORTS.replace("; ", "\n"), {})  # noqa: S102
    clock.lap("imports not yet made by this process (torch, …)")
    from samscope.analysis import write_overlay
    from samscope.embeddings import compute_embeddings
    from samscope.evaluation.report import write_csv
    from samscope.instance.ais import AISConfig, ais_from_maps, predict_image_maps
    from samscope.instance.instances import object_table
    from samscope.instance.scale import estimate_diameter, resize_plane, scale_for
    from samscope.instance.segment import ais_from_scaled_maps
    from samscope.io import read_image, write_labels
    from samscope.models.registry import load_model

    model = load_model(model_name, device="cpu")
    clock.lap("load model")
    encodes = _count_encodes(model)
    plane = read_image(path).data
    clock.lap("read image")
    working = getattr(model.card, "working_diameter", None)
    diameter, scale = None, 1.0
    if working and getattr(model, "instance_head", None) is not None:
        est = estimate_diameter(plane, model)
        if est.diameter is not None:
            diameter, scale = est.diameter, scale_for(est.diameter, working)
        d = "none" if diameter is None else f"{diameter:.1f} px"
        clock.lap(f"size estimate ({encodes[0]} encoder passes, {len(est.candidates)} zooms, d={d}, "
                  f"scale {scale:.3g})")  # fmt: skip
    work = plane if scale == 1.0 else resize_plane(plane, scale)
    before = encodes[0]
    emb = compute_embeddings(work, model)
    clock.lap(f"embeddings ({len(emb.tiles)} tiles, {encodes[0] - before} encoder passes)")
    maps = predict_image_maps(model, emb)
    clock.lap("AIS maps (instance head per tile)")
    cfg = AISConfig().resolve(model.card.automatic)
    result = ais_from_maps(maps, config=cfg) if scale == 1.0 else ais_from_scaled_maps(
        maps, plane.shape[:2], config=cfg)  # fmt: skip
    clock.lap(f"watershed ({result.n} objects)")
    out.mkdir(parents=True, exist_ok=True)
    write_labels(out / "labels.tif", result.labels, overwrite=True)
    write_csv(out / "objects.csv", object_table(result))
    clock.lap("write labels + table")
    write_overlay(out / "overlay.png", plane, result.labels, overwrite=True)
    clock.lap("write overlay (PNG)")
    model.encode_calls = encodes[0]
    return clock, model, work


def _batch_ab(model, work, batch: int, rounds: int) -> dict[int, list[float]]:
    """Wall seconds of the tiles' embeddings, one per pass vs ``batch`` per pass, alternating."""
    from samscope.embeddings import compute_embeddings

    times: dict[int, list[float]] = {1: [], batch: []}
    for _ in range(rounds):
        for b in (1, batch):
            t0 = time.perf_counter()
            compute_embeddings(work, model, batch_size=b)
            times[b].append(time.perf_counter() - t0)
    return times


def main() -> int:
    from samscope.models.registry import DEFAULT_MODEL

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5, help="fresh processes (0: only the stages)")
    ap.add_argument("--no-stages", action="store_true", help="only the fresh-process timings")
    ap.add_argument("--ab-batch", type=int, default=4, help="tiles per pass in the A/B (0: no A/B)")
    ap.add_argument("--ab-rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = _image(folder, args.size)
        walls = []
        cmd = [sys.executable, "-m", "samscope.cli.main", "segment", str(path), "-o", str(folder / "out"),
               "--model", args.model, "--overwrite"]  # fmt: skip
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            walls.append(time.perf_counter() - t0)
            print(f"samscope segment {args.size}² ({args.model}): {walls[-1]:.2f} s", flush=True)
        if walls:
            med = statistics.median(walls)
            print(f"TARGET 21.3: median of {len(walls)} fresh processes: {med:.2f} s (target <= 2 s)")
            print(f"TARGET 11:   the same median: {med:.2f} s (target < 5 s, size estimate included)",
                  flush=True)  # fmt: skip
        if args.no_stages:
            return 0
        start = min(_fresh("pass") for _ in range(3))
        torch_only = min(_fresh("import torch") for _ in range(3)) - start
        imports = min(_fresh(IMPORTS) for _ in range(2)) - start
        print(f"  interpreter start: {start:.2f} s")
        print(f"  import torch alone (fresh process): {torch_only:.2f} s  <- a floor under any change")
        print(f"  every import of samscope segment (fresh process): {imports:.2f} s "
              f"(torch + {imports - torch_only:.2f} s)")  # fmt: skip
        clock, model, work = _stages(path, args.model, folder / "stages")
        print("  stages in one process (wall s / CPU s):")
        for name, wall, cpu in clock.rows:
            print(f"    {name}: {wall:.2f} / {cpu:.2f}", flush=True)
        total = sum(w for _, w, _ in clock.rows)
        print(f"    sum: {total:.2f} s; encoder passes in all: {model.encode_calls}")
        if args.ab_batch > 1 and args.ab_rounds > 0:
            times = _batch_ab(model, work, args.ab_batch, args.ab_rounds)
            one, many = (statistics.median(times[b]) for b in (1, args.ab_batch))
            print(f"  A/B tiles' embeddings, median of {args.ab_rounds} alternating: batch 1 "
                  f"{one:.2f} s, batch {args.ab_batch} {many:.2f} s (ratio {one / many:.2f}; "
                  "only meaningful on an idle machine)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
