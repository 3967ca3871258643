"""Wall time of ``samscope track`` on the HeLa series (issue 13: under 60 s on this CPU).

One fresh process, as a user runs it (``samscope track SERIES -o OUT``: interpreter start,
imports, model load, one size estimate for the series, every frame segmented, linking, writing
the CTC result). ``--frames N`` times the first N frames only (a quick check; the target is all
20). Prints the wall time, the stages from ``OUT/tracking.json`` (read, segment, link, write), the
per-frame segment time, the tiles per frame and the track and division counts.

    python benchmarks/bench_track.py                      # all 20 frames: the figure for the target
    python benchmarks/bench_track.py --fewer-tiles        # the opt-in fitted tiles
    python benchmarks/bench_track.py --frames 4           # quick check
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HELA = Path(__file__).resolve().parents[2] / "shared" / "data" / "hela" / "images.tif"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=Path, default=HELA)
    ap.add_argument("--frames", type=int, default=None, help="first N frames only")
    ap.add_argument("--model", default=None)
    ap.add_argument("--fewer-tiles", action="store_true", help="samscope track --fewer-tiles (opt-in)")
    args = ap.parse_args()
    if not args.series.is_file():
        print(f"no series at {args.series}")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        series = args.series
        if args.frames:
            import tifffile

            series = Path(tmp) / "series.tif"
            tifffile.imwrite(series, tifffile.imread(args.series)[: args.frames])
        import tifffile

        shape = tifffile.TiffFile(series).series[0].shape
        out = Path(tmp) / "out"
        cmd = [sys.executable, "-m", "samscope.cli.main", "track", str(series), "-o", str(out)]
        if args.model:
            cmd += ["--model", args.model]
        if args.fewer_tiles:
            cmd.append("--fewer-tiles")
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        wall = time.perf_counter() - t0
        rec = json.loads((out / "tracking.json").read_text())
    from samscope.models.registry import get_card
    from samscope.pipeline.tracking import fitted_tiles
    from samscope.tiling import TileGrid

    card = get_card(rec["model"])
    side = card.tile_shape + 2 * (card.halo or 0)
    from types import SimpleNamespace

    if rec.get("fewer_tiles"):
        kw = fitted_tiles(shape[1:3], SimpleNamespace(card=card, image_size=side), rec["diameter_px"])
    else:
        kw = {"tile_shape": (card.tile_shape,) * 2, "halo": (card.halo or 0,) * 2}
    tiles = len(TileGrid(tuple(shape[1:3]), kw["tile_shape"], kw["halo"])) if kw else 1
    n = rec["n_frames"]
    s = rec["seconds"]
    print(f"TARGET 13: samscope track {series.name} {shape} ({rec['model']}): {wall:.1f} s wall "
          f"(target < 60 s for the 20 HeLa frames)")  # fmt: skip
    print("  stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in s.items()))
    print(f"  per frame (segment / frames): {s['segment'] / n:.2f} s; tiles per frame: {tiles}; "
          f"diameter {rec['diameter_px']:.1f} px")  # fmt: skip
    print(f"  {rec['n_tracks']} tracks, {rec['n_divisions']} divisions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
