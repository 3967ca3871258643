"""Segment 2-D images with Nellie (comparison baseline) and write instance labels for `samscope evaluate`.

usage:
    /tmp/peers/bin/python benchmarks/peers/nellie_segment.py INPUT_DIR OUTPUT_DIR --pixel-size-nm 80

For every ``*.tif`` 2-D (YX) image in INPUT_DIR (for instance the float32 images written by
``samscope simulate mitochondria``: 512x512 at 80 nm/pixel) this script

1. writes the image as an OME-TIFF with physical pixel sizes in micrometres into a scratch folder
   (Nellie sizes its filters in µm, so the pixel size matters: 80 nm -> 0.08 µm);
2. runs Nellie's first two pipeline steps on the CPU through its Python API --
   ``FileInfo`` -> ``find_metadata()`` / ``load_metadata()`` -> ``ImInfo`` ->
   ``Filter(device="cpu").run()`` (multi-scale Frangi-like filter) ->
   ``Label(device="cpu").run()`` (thresholding + connected components);
   the network / tracking / feature steps are not run;
3. reads Nellie's instance label image (``im_info.pipeline_paths["im_instance_label"]``), drops
   its singleton T axis and writes it as a 2-D uint32 TIFF ``OUTPUT_DIR/<stem>.tif`` with the
   input's stem, so ``samscope evaluate`` pairs predictions with ground truth by name;
4. writes ``OUTPUT_DIR/timing.json`` with per-image seconds (OME-TIFF conversion and metadata,
   filter, label, total) and the number of instances found.

If Nellie fails on an image, the error is logged, an all-zero label image is written in its
place (so evaluation still covers every image, scored as all misses) and the failure is
recorded in timing.json (``"ok": false`` plus the error text); the run then exits 1 unless
``--keep-going`` is given.

Nellie's command line is broken in 1.0.4, hence the Python API. A 2-D YX OME-TIFF is accepted
as is: ``FileInfo.save_ome_tiff`` / ``ImInfo`` add a singleton T axis internally and treat the
image as 2-D (``no_z``), so no T or Z resolution is needed.

Installing the peers venv (Nellie 1.0.4 and micro-sam on the CPU torch, about 2 minutes):

    bash /work/shared/peers/install-peers.sh /tmp/peers

(see /work/shared/peers/README.md). Nellie is a comparison baseline only; it is never a samscope
dependency, and this script deliberately imports nothing from samscope (the peers venv does not
have it): only numpy, tifffile and nellie.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import tifffile

log = logging.getLogger("nellie_segment")


def write_ome_tiff(image: np.ndarray, path: Path, pixel_size_um: float) -> None:
    """Write a 2-D image as a YX OME-TIFF with physical pixel sizes in µm."""
    tifffile.imwrite(
        path,
        np.ascontiguousarray(image),
        ome=True,
        photometric="minisblack",
        metadata={
            "axes": "YX",
            "PhysicalSizeX": pixel_size_um,
            "PhysicalSizeXUnit": "µm",
            "PhysicalSizeY": pixel_size_um,
            "PhysicalSizeYUnit": "µm",
        },
    )


def segment_one(ome_path: Path, work_dir: Path, pixel_size_um: float, timing: dict) -> np.ndarray:
    """Run Nellie's filter + label steps on one OME-TIFF; return a 2-D uint32 label image."""
    from nellie.im_info.verifier import FileInfo, ImInfo
    from nellie.segmentation.filtering import Filter
    from nellie.segmentation.labelling import Label

    # `nellie_s` (setup + filter + label) is the figure to compare; imports happen once, in main.
    t0 = time.perf_counter()
    fi = FileInfo(str(ome_path), output_dir=str(work_dir), output_naming="stable")
    fi.find_metadata()
    fi.load_metadata()
    # Guard against a metadata read that lost the pixel size (Nellie would then size its
    # filters in pixels, silently): set it explicitly if it is missing or differs.
    for axis in ("X", "Y"):
        got = fi.dim_res.get(axis)
        if got is None or abs(float(got) - pixel_size_um) > 1e-9:
            log.warning("%s: Nellie read %s pixel size %r, setting %g µm", ome_path.name, axis, got, pixel_size_um)
            fi.change_dim_res(axis, pixel_size_um)
    if not (fi.good_axes and fi.good_dims):
        raise ValueError(f"Nellie rejected the metadata: {fi.get_validation_errors()}")
    im = ImInfo(fi)
    t1 = time.perf_counter()
    Filter(im, device="cpu").run()
    t2 = time.perf_counter()
    Label(im, device="cpu").run()
    t3 = time.perf_counter()
    timing.update(setup_s=t1 - t0, filter_s=t2 - t1, label_s=t3 - t2)

    labels = tifffile.imread(im.pipeline_paths["im_instance_label"])
    labels = np.asarray(labels)
    while labels.ndim > 2 and labels.shape[0] == 1:  # (T=1, Y, X) -> (Y, X)
        labels = labels[0]
    if labels.ndim != 2:
        raise ValueError(f"unexpected label shape {labels.shape}")
    return labels.astype(np.uint32, copy=False)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input_dir", type=Path, help="folder of 2-D *.tif images")
    ap.add_argument("output_dir", type=Path, help="folder for <stem>.tif uint32 labels and timing.json")
    ap.add_argument("--pixel-size-nm", type=float, required=True, help="pixel size in nm (e.g. 80)")
    ap.add_argument("--scratch", type=Path, default=None,
                    help="folder for OME-TIFFs and Nellie's intermediates (default: a temporary folder, deleted)")
    ap.add_argument("--keep-scratch", action="store_true", help="keep the scratch folder")
    ap.add_argument("--keep-going", action="store_true",
                    help="exit 0 even when Nellie failed on some images (they score as all misses)")
    ap.add_argument("--limit", type=int, default=None, help="process only the first N images")
    args = ap.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("xmlschema").setLevel(logging.WARNING)

    paths = sorted(p for p in args.input_dir.glob("*.tif") if p.is_file())
    if args.limit is not None:
        paths = paths[: args.limit]
    if not paths:
        log.error("no *.tif images in %s", args.input_dir)
        return 1
    args.output_dir.mkdir(parents=True, exist_ok=True)
    pixel_size_um = args.pixel_size_nm / 1000.0

    if args.scratch is None:
        scratch = Path(tempfile.mkdtemp(prefix="nellie_scratch_"))
    else:
        scratch = args.scratch
        scratch.mkdir(parents=True, exist_ok=True)

    # Import Nellie once up front (about 1 s), so it neither counts in the first image's time
    # nor is mistaken for a per-image failure if the venv is broken.
    import nellie.im_info.verifier  # noqa: F401
    import nellie.segmentation.filtering  # noqa: F401
    import nellie.segmentation.labelling  # noqa: F401

    try:
        from importlib.metadata import version
        nellie_version = version("nellie")
    except Exception:
        nellie_version = "unknown"

    records = {}
    n_failed = 0
    try:
        for path in paths:
            stem = path.stem
            rec: dict = {}
            t_start = time.perf_counter()
            image = tifffile.imread(path)
            shape = image.shape
            try:
                image = np.squeeze(image)
                if image.ndim != 2:
                    raise ValueError(f"expected a 2-D image, got shape {shape}")
                work_dir = scratch / stem
                if work_dir.exists():
                    shutil.rmtree(work_dir)  # Nellie reuses existing intermediates; start clean
                work_dir.mkdir(parents=True)
                ome_path = work_dir / f"{stem}.ome.tif"
                t_w = time.perf_counter()
                write_ome_tiff(image, ome_path, pixel_size_um)
                rec["write_ome_s"] = time.perf_counter() - t_w
                labels = segment_one(ome_path, work_dir, pixel_size_um, rec)
                rec["ok"] = True
            except Exception as exc:  # keep going: an all-zero image scores as all misses
                n_failed += 1
                log.error("Nellie failed on %s: %s\n%s", path.name, exc, traceback.format_exc())
                labels = np.zeros(shape[-2:] if len(shape) >= 2 else (0, 0), dtype=np.uint32)
                rec.update(ok=False, error=f"{type(exc).__name__}: {exc}")
            tifffile.imwrite(args.output_dir / f"{stem}.tif", labels, photometric="minisblack")
            rec["nellie_s"] = sum(rec.get(k, 0.0) for k in ("setup_s", "filter_s", "label_s"))
            rec["total_s"] = time.perf_counter() - t_start
            rec["n_instances"] = int(len(np.unique(labels)) - (1 if (labels == 0).any() else 0))
            records[stem] = rec
            log.info("%s: %s, %d instances, %.2f s (filter %.2f s, label %.2f s)", stem,
                     "ok" if rec["ok"] else "FAILED", rec["n_instances"], rec["total_s"],
                     rec.get("filter_s", float("nan")), rec.get("label_s", float("nan")))
    finally:
        if args.scratch is None and not args.keep_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
        elif records:
            log.info("Nellie intermediates kept in %s", scratch)

    ok = [r for r in records.values() if r["ok"]]
    summary = {
        "tool": "nellie",
        "nellie_version": nellie_version,
        "steps": "Filter + Label (device=cpu)",
        "pixel_size_nm": args.pixel_size_nm,
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "n_images": len(records),
        "n_failed": n_failed,
        "mean_nellie_s": float(np.mean([r["nellie_s"] for r in ok])) if ok else None,
        "mean_total_s": float(np.mean([r["total_s"] for r in ok])) if ok else None,
        "images": records,
    }
    (args.output_dir / "timing.json").write_text(json.dumps(summary, indent=2) + "\n")
    log.info("wrote %d label images and timing.json to %s (%d failed)", len(records), args.output_dir, n_failed)
    # Failures are in timing.json with all-zero labels; the exit status says so, unless asked to
    # score them as misses (--keep-going), so a broken Nellie never passes as a weak one.
    return 1 if n_failed and not args.keep_going else 0


if __name__ == "__main__":
    sys.exit(main())
