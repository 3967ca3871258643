"""``samscope analyze``: tables, plots and an HTML report from ``samscope segment``'s outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def analyze(
    results: Annotated[Path, typer.Argument(
        help="Folder that samscope segment wrote (-o), or one zarr / OME-Zarr label image "
             "(a blockwise OUT.zarr), measured chunk by chunk.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Report folder (created).")],
    conditions: Annotated[
        Path | None,
        typer.Option("--conditions", "-c",
                     help="CSV with columns image,condition (default: sub-folder names)."),
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option("--images", help="Folder of the original images, for intensities (for "
                                      "zarr labels: the image file, or a folder holding it)."),
    ] = None,
    pixel_size: Annotated[
        float | None,
        typer.Option("--pixel-size", help="Pixel size in nm (default: from the files)."),
    ] = None,
    mito: Annotated[
        bool | None,
        typer.Option("--mito/--no-mito",
                     help="Dot/rod analysis of mitochondria [default: when the model was "
                          "samscope-mito]."),
    ] = None,
    dot_max_area: Annotated[
        float,
        typer.Option("--dot-max-area", help="Largest dot area, µm² (200 px at 80 nm)."),
    ] = 1.28,
    neighbour_distance: Annotated[
        float,
        typer.Option("--neighbour-distance",
                     help="Objects within this many pixels of each other are neighbours."),
    ] = 2.0,
    workers: Annotated[
        int, typer.Option("--workers", "-j", help="Processes analysing images in parallel.")
    ] = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace a report in the folder.")] = False,
) -> None:
    """Measure segmented objects and compare conditions: CSV tables, plots, an HTML report.

    Reads what samscope segment wrote under RESULTS (IMAGE_labels.tif, IMAGE_objects.csv,
    IMAGE_masks.tif for overlapping objects, IMAGE_segmentation.json) and the original images
    (found from the record, beside the labels, or under --images) for intensities. Images are
    grouped by sub-folder, or by a --conditions CSV mapping image names to conditions.

    Writes OUTPUT/objects.csv (one row per object: area, perimeter, axes, aspect ratio,
    eccentricity, solidity, intensity, centroid, border contact, neighbours; in px and µm),
    OUTPUT/images.csv (per image: count, mean area, confluency, neighbours, aspect ratio;
    with --mito the dot/rod counts, areas and proportions), OUTPUT/conditions.csv (per
    condition and metric: mean, sd and 95 % interval over images), OUTPUT/plots/*.png|svg and
    OUTPUT/report.html (self-contained).

    A zarr / OME-Zarr label image (what samscope segment BIG -o OUT.zarr writes) is measured
    region by region, never whole: area, perimeter, axes, centroid, box, neighbours and
    intensity statistics equal those of an in-memory run (solidity is not measured; NaN).
    Its intensities come from --images, else from the image the blockwise run recorded.

    Mitochondria are dots when their area is at most --dot-max-area (1.28 µm² = 200 px at
    80 nm, the rule of Jadhav et al. 2026), rods otherwise. Neighbours: objects with pixels
    within --neighbour-distance px of each other (2: touching or one pixel apart).

    Examples:

        samscope analyze out/ -o report/

        samscope analyze out/ -o report/ --conditions conditions.csv --mito

        samscope analyze out/ -o report/ --images data/ --pixel-size 80

        samscope analyze slide_labels.zarr -o report/ --images slide.ome.tif
    """
    from tqdm.auto import tqdm

    from samscope.analysis import AnalysisConfig, analyze_results

    config = AnalysisConfig(mito=mito, dot_max_area_um2=dot_max_area,
                            neighbour_distance_px=neighbour_distance, pixel_size_nm=pixel_size)
    bar = tqdm(desc="analyze", unit="image", disable=None)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        report = analyze_results(results, output, conditions=conditions, images=images,
                                 config=config, overwrite=overwrite, workers=workers,
                                 progress=progress)
    finally:
        bar.close()
    for name, reason in report.skipped:
        typer.secho(f"skipped {name}: {reason}", err=True, fg=typer.colors.YELLOW)
    for note in report.notes:
        typer.secho(f"note: {note}", err=True, fg=typer.colors.YELLOW)
    typer.echo(f"{report.n_images} image(s), {report.n_objects} object(s), "
               f"{len(report.conditions)} condition(s) ({', '.join(report.conditions)})")
    typer.echo(f"report: {report.files['report']}")


def register(app: typer.Typer) -> None:
    """Add ``analyze`` to the application."""
    app.command("analyze")(analyze)
