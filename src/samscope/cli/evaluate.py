"""``samscope evaluate`` and ``samscope evaluate-interactive``: thin commands over
:mod:`samscope.evaluation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from samscope.errors import InputError
from samscope.models.registry import DEFAULT_MODEL

METRIC_GROUPS = ("sa", "dice", "ctc", "tra", "det", "seg")

OutputOpt = Annotated[
    Path,
    typer.Option("--output", "-o", help="Folder for the CSV, JSON and plot files."),
]
OverwriteOpt = Annotated[bool, typer.Option(help="Replace existing result files.")]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _parse_metrics(text: str, overlapping: bool) -> list[str]:
    groups = [m.strip().lower() for m in text.replace(";", ",").split(",") if m.strip()]
    unknown = [m for m in groups if m not in METRIC_GROUPS]
    if unknown or not groups:
        raise InputError(
            f"unknown metrics {unknown or text!r}; choose from {', '.join(METRIC_GROUPS)}"
        )
    if overlapping and {"ctc", "tra", "det", "seg"} & set(groups):
        raise InputError(
            "the CTC measures need non-overlapping predictions; drop ctc/tra/det/seg or --overlapping"
        )
    return list(dict.fromkeys(groups))


def _check_outputs(paths: Sequence[Path], overwrite: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise InputError(f"{existing[0]} exists; pass --overwrite to replace it")


def _read_prediction(path: Path, gt_shape: tuple[int, ...], overlapping: bool):
    from samscope.evaluation.metrics import MaskStack
    from samscope.io import read_labels

    if not overlapping:
        return read_labels(path)
    # the first axis indexes the masks (three 2-D masks must not be read as an RGB image)
    axes = {2: "ZYX", 3: "TZYX"}.get(len(gt_shape))
    try:
        pred = read_labels(path, axes=axes)
    except InputError:  # e.g. one mask stored without its mask axis
        pred = read_labels(path)
    if pred.shape == gt_shape:  # a single mask (a size-1 mask axis is dropped on reading)
        return MaskStack.from_dense(pred[None])
    if pred.shape[1:] == gt_shape:
        return MaskStack.from_dense(pred)
    raise InputError(
        f"'{path}': overlapping masks must have shape (n, {', '.join(map(str, gt_shape))}) "
        f"to match the ground truth, got {pred.shape}"
    )


def evaluate_pair(gt: Any, pred: Any, groups: Sequence[str], *, min_size: int) -> tuple[dict, Any]:
    """The metric row of one image and its SA curve (None without ``sa``)."""
    from samscope.evaluation.ctc import ctc_scores
    from samscope.evaluation.metrics import dice_protocol, segmentation_accuracy

    row: dict[str, Any] = {}
    curve = None
    if "sa" in groups:
        sa = segmentation_accuracy(gt, pred)
        i = sa.at(0.5)
        row.update(
            n_gt=sa.n_gt,
            n_pred=sa.n_pred,
            msa=sa.msa,
            sa50=sa.sa50,
            sa75=sa.sa75,
            precision50=float(sa.precision[i]),
            recall50=float(sa.recall[i]),
            f1_50=float(sa.f1[i]),
        )
        curve = sa
    if "dice" in groups:
        d = dice_protocol(gt, pred, min_size=min_size)
        row.update(
            dice_tp=d.tp,
            dice_fp=d.fp,
            dice_fn=d.fn,
            dice_precision=d.precision,
            dice_recall=d.recall,
            mean_dice=d.mean_dice,
            nonzero_dice=d.nonzero_dice,
        )
    if "ctc" in groups:
        c = ctc_scores(gt, pred)
        row.update(seg=c.seg, det=c.det, op_csb=c.op_csb)
    elif "det" in groups or "seg" in groups:
        c = ctc_scores(gt, pred)
        row.update({k: getattr(c, k) for k in ("seg", "det") if k in groups})
    return row, curve


def _evaluate_tracking(prediction, ground_truth, groups, pred_tracks, gt_tracks, files) -> None:
    """One tracked series (CTC folders or label series): TRA, DET, SEG."""
    from samscope.evaluation.report import format_table, write_csv, write_json
    from samscope.evaluation.tracking import TRACKING_GROUPS, evaluate_series

    wanted = tuple(g for g in groups if g in TRACKING_GROUPS)
    other = [g for g in groups if g not in TRACKING_GROUPS]
    if other:
        raise InputError(
            f"a tracked series is scored with tra, det and seg; drop {', '.join(other)} "
            "(or evaluate single images for sa/dice/ctc)"
        )
    scores = evaluate_series(prediction, ground_truth, groups=wanted, pred_tracks=pred_tracks,
                             gt_tracks=gt_tracks)  # fmt: skip
    row = {"series": Path(prediction).name, **scores.row()}
    row = {k: v for k, v in row.items() if k not in TRACKING_GROUPS or k in wanted}
    write_csv(files["csv"], [row])
    write_json(files["json"], {
        "prediction": str(prediction), "ground_truth": str(ground_truth), "metrics": list(wanted),
        "seg_reference": scores.seg_reference, "series": row,
    })  # fmt: skip
    shown = ["series", *wanted, "n_frames", "n_gt_tracks", "n_pred_tracks", "n_gt_divisions",
             "n_pred_divisions"]  # fmt: skip
    typer.echo(format_table([row], columns=shown))
    typer.echo(f"wrote {files['csv']}, {files['json']}")


# --------------------------------------------------------------------------------------------
# samscope evaluate
# --------------------------------------------------------------------------------------------


def evaluate(
    prediction: Annotated[
        Path, typer.Argument(help="Predicted label image, or a folder of them.", show_default=False)
    ],
    ground_truth: Annotated[
        Path, typer.Argument(help="Ground-truth label image, or a folder (paired by file name).")
    ],
    metrics: Annotated[
        str,
        typer.Option(
            "--metrics",
            "-m",
            help="Comma-separated groups: sa (mSA, SA50, SA75, precision/recall/F1 at IoU 0.5), "
            "dice (the dice protocol of Jadhav et al. 2026), ctc (SEG, DET, OP_CSB); for a "
            "tracked series (CTC folders, or label series with --metrics tra): tra, det, seg. "
            "Default: all that apply.",
        ),
    ] = "",
    pred_tracks: Annotated[
        Path | None,
        typer.Option("--pred-tracks", help="L B E P track table of a predicted label series (res_track.txt)."),
    ] = None,
    gt_tracks: Annotated[
        Path | None,
        typer.Option("--gt-tracks", help="L B E P track table of a ground-truth label series (man_track.txt)."),
    ] = None,
    overlapping: Annotated[
        bool,
        typer.Option(
            "--overlapping",
            help="Predictions are stacks of possibly overlapping masks, shape (n, y, x).",
        ),
    ] = False,
    min_size: Annotated[
        int, typer.Option(help="Dice protocol: drop predictions smaller than this (pixels).")
    ] = 10,
    output: OutputOpt = Path("samscope-evaluation"),
    overwrite: OverwriteOpt = False,
) -> None:
    """Compare predicted instance segmentations with ground truth.

    Writes metrics.csv (one row per image and their mean), metrics.json (the same plus the SA
    curves) and sa_vs_iou.png (segmentation accuracy against the IoU threshold).

    Examples:

        samscope evaluate predictions/ annotations/ -o results

        samscope evaluate pred.tif gt.tif --metrics sa,ctc

        samscope evaluate masks.tif gt.tif --overlapping --metrics sa,dice

        samscope evaluate 01_RES/ 01_GT/ --metrics tra,det,seg

        samscope evaluate tracked.tif gt_series.tif --metrics tra --gt-tracks man_track.txt
    """
    import numpy as np
    from tqdm.auto import tqdm

    from samscope.evaluation.metrics import DEFAULT_THRESHOLDS
    from samscope.evaluation.report import (
        format_table,
        mean_row,
        plot_curves,
        write_csv,
        write_json,
    )
    from samscope.evaluation.tracking import is_ctc_folder
    from samscope.io import read_labels

    series = is_ctc_folder(prediction) or is_ctc_folder(ground_truth)
    default = "tra,det,seg" if series else ("sa,dice" if overlapping else "sa,dice,ctc")
    from samscope.blockwise.evaluate import is_zarr

    if not series and not overlapping and (is_zarr(prediction) or is_zarr(ground_truth)):
        default = "sa"  # zarr labels of any size: the metric counted chunk by chunk
    groups = _parse_metrics(metrics or default, overlapping)
    if series or "tra" in groups or pred_tracks is not None or gt_tracks is not None:
        tfiles = {"csv": output / "tracking.csv", "json": output / "tracking.json"}
        _check_outputs(list(tfiles.values()), overwrite)
        output.mkdir(parents=True, exist_ok=True)
        _evaluate_tracking(prediction, ground_truth, groups, pred_tracks, gt_tracks, tfiles)
        return
    files = {
        k: output / f
        for k, f in (("csv", "metrics.csv"), ("json", "metrics.json"), ("png", "sa_vs_iou.png"))
    }
    _check_outputs(list(files.values()), overwrite)
    from samscope.pipeline.interactive import pair_files

    pairs = pair_files(prediction, ground_truth, names=("prediction", "ground-truth"))
    rows, curves = [], {}
    for name, pred_path, gt_path in tqdm(
        pairs, desc="evaluating", unit="image", disable=len(pairs) < 2
    ):
        from samscope.blockwise.evaluate import is_zarr, sa_row

        if groups == ["sa"] and not overlapping and (is_zarr(pred_path) or is_zarr(gt_path)):
            row, curve = sa_row(pred_path, gt_path)  # zarr labels of any size, chunk by chunk
            rows.append({"image": name, **row})
            curves[name] = curve.accuracy
            continue
        gt = read_labels(gt_path)
        pred = _read_prediction(pred_path, gt.shape, overlapping)
        if not overlapping and pred.shape != gt.shape:
            raise InputError(f"'{pred_path}' has shape {pred.shape} but '{gt_path}' has {gt.shape}")
        row, curve = evaluate_pair(gt, pred, groups, min_size=min_size)
        rows.append({"image": name, **row})
        if curve is not None:
            curves[name] = curve.accuracy
    summary = mean_row(rows, label_key="image")
    table = [*rows, summary] if len(rows) > 1 else rows
    write_csv(files["csv"], table)
    doc: dict[str, Any] = {
        "prediction": str(prediction),
        "ground_truth": str(ground_truth),
        "metrics": groups,
        "overlapping": overlapping,
        "min_size": min_size,
        "images": rows,
        "mean": summary,
    }
    if curves:
        mean_curve = np.mean(list(curves.values()), axis=0)
        doc["sa_curve"] = {
            "thresholds": list(DEFAULT_THRESHOLDS),
            "mean": mean_curve,
            "images": curves,
        }
        lines = {k: (DEFAULT_THRESHOLDS, v) for k, v in curves.items()} if len(curves) <= 8 else {}
        if len(curves) > 1:
            lines["mean"] = (DEFAULT_THRESHOLDS, mean_curve)
        plot_curves(
            files["png"],
            lines,
            xlabel="IoU threshold",
            ylabel="segmentation accuracy",
            title=f"mSA {summary.get('msa', float('nan')):.3f} over {len(rows)} image(s)",
        )
    write_json(files["json"], doc)
    shown = [
        "image",
        *[
            c
            for c in (
                "n_gt",
                "n_pred",
                "msa",
                "sa50",
                "sa75",
                "f1_50",
                "dice_precision",
                "dice_recall",
                "mean_dice",
                "nonzero_dice",
                "seg",
                "det",
                "op_csb",
            )
            if c in rows[0]
        ],
    ]
    typer.echo(format_table(table, columns=shown))
    written = [files["csv"], files["json"]] + ([files["png"]] if curves else [])
    typer.echo("wrote " + ", ".join(str(p) for p in written))


# --------------------------------------------------------------------------------------------
# samscope evaluate-interactive
# --------------------------------------------------------------------------------------------


def evaluate_interactive(
    images: Annotated[Path, typer.Argument(help="Image file, or a folder of images.")],
    ground_truth: Annotated[
        Path, typer.Argument(help="Ground-truth label image, or a folder (paired by file name).")
    ],
    model: Annotated[
        str, typer.Option("--model", help="Registered model name or checkpoint file.")
    ] = DEFAULT_MODEL,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="Weights for --model's architecture.")
    ] = None,
    mode: Annotated[
        str, typer.Option(help="First prompt: 'point' (interior centre) or 'box'.")
    ] = "point",
    iterations: Annotated[
        int, typer.Option("--iterations", "-n", help="Correction rounds after the first prompt.")
    ] = 8,
    prompts: Annotated[
        Path | None,
        typer.Option(
            "--prompts",
            help="Prompts file: used when it exists, else derived from the ground truth and "
            "saved there (default: OUTPUT/prompts.json). Share it to evaluate every model on "
            "the same prompts.",
        ),
    ] = None,
    feed_logits: Annotated[
        bool, typer.Option(help="Feed each object's previous logits back to the model.")
    ] = False,
    corrections: Annotated[
        str,
        typer.Option(
            "--corrections",
            help="'usam': re-decode each object from all its prompts at the image's own size "
            "(µSAM's protocol, comparable with published figures). 'samscope': what the napari "
            "annotator does: embed at the object-size scale, previous logits fed, each correction "
            "changes the mask only near its clicks.",
        ),
    ] = "usam",
    tile_shape: Annotated[
        str | None, typer.Option("--tile-shape", help="Tile size for large images, e.g. 1024.")
    ] = None,
    halo: Annotated[str | None, typer.Option("--halo", help="Tile overlap per side.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu or cuda.")] = None,
    output: OutputOpt = Path("samscope-interactive"),
    overwrite: OverwriteOpt = False,
) -> None:
    """Run the interactive-segmentation protocol (µSAM) and report mSA and SA50 per iteration.

    Each object gets its first prompt from the ground truth (interior centre point, or its box),
    then per iteration one positive point in the largest missed region and one negative point in
    the largest spurious region. Writes interactive.csv / .json (per iteration), run_MODEL.json
    (every point each object received), prompts.json and interactive.png.

    Examples:

        samscope evaluate-interactive images/ labels/ --model vit_b_lm -o results

        samscope evaluate-interactive cells.tif cells_gt.tif --model vit_b --mode box -n 4

        samscope evaluate-interactive images/ labels/ --model vit_b --prompts results/prompts.json

        samscope evaluate-interactive cells.tif cells_gt.tif --corrections samscope -n 3
    """
    from samscope.cli._common import parse_shape
    from samscope.evaluation.report import format_table
    from samscope.pipeline import InteractiveRequest, interactive_batch

    request = InteractiveRequest(
        images,
        ground_truth,
        output=output,
        model=model,
        checkpoint=checkpoint,
        device=device,
        mode=mode,
        iterations=iterations,
        prompts=prompts,
        feed_logits=feed_logits,
        corrections=corrections,
        tile_shape=parse_shape(tile_shape, "tile shape"),
        halo=parse_shape(halo, "halo"),
        overwrite=overwrite,
    )
    result = interactive_batch(request, bars=True)
    typer.echo(format_table(result.rows))
    typer.echo("wrote " + ", ".join(str(p) for p in result.files.values()))


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` and ``evaluate-interactive`` to the application."""
    app.command("evaluate")(evaluate)
    app.command("evaluate-interactive")(evaluate_interactive)
