"""``samscope simulate mitochondria|nuclei|cells|generalist``: write labelled synthetic datasets.

Thin over :func:`samscope.simulate.write_dataset`. Option names are the configuration fields
(``--length-nm`` is ``MitochondriaConfig.length_nm``); ``--set FIELD=VALUE`` reaches every other
field, ``--set optics.na=1.4`` the nested optics of the mitochondria simulator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

_Out = Annotated[Path, typer.Option("--output", "-o", help="Output folder (created; resumed if it holds this run).")]
_N = Annotated[int, typer.Option("-n", "--n", help="Number of images.")]
_Seed = Annotated[int, typer.Option("--seed", help="Root seed: image i depends only on (seed, i).")]
_Format = Annotated[str, typer.Option("--format", help="Image format: tif or zarr (labels are always TIFF).")]
_Preview = Annotated[Path | None, typer.Option("--preview", help="Also write a PNG grid of the first images with outlined ground truth.")]
_Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace a different dataset in the output folder.")]
_Workers = Annotated[int, typer.Option("--workers", "-j", help="Processes simulating in parallel (results do not depend on it).")]
_Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
_Set = Annotated[list[str] | None, typer.Option("--set", "-s", help="Any configuration field FIELD=VALUE; ranges as MIN,MAX (repeatable).")]


def build_config(kind: str, options: dict[str, str | None], settings: list[str] | None) -> Any:
    """The simulator's config from named options (``None`` = default) and ``FIELD=VALUE`` strings."""
    from samscope.settings import build_settings, parse_assignments
    from samscope.simulate.dataset import config_for

    base = config_for(kind)
    raw: dict[str, str] = {k: v for k, v in options.items() if v is not None}
    raw.update(parse_assignments(settings))
    return config_for(kind, build_settings(type(base), raw, base=base))


def _run(
    kind: str, n: int, output: Path, seed: int, shape: str, fmt: str, preview: Path | None,
    overwrite: bool, workers: int, quiet: bool, options: dict[str, str | None], settings: list[str] | None,
) -> None:
    from samscope.cli._common import parse_shape
    from samscope.simulate import write_dataset

    config = build_config(kind, options, settings)
    size = parse_shape(shape, "shape")
    write_dataset(
        kind, n, output, seed=seed, config=config, shape=size, fmt=fmt, preview=preview,
        overwrite=overwrite, progress=not quiet, workers=workers,
    )
    typer.echo(f"{n} {kind} images in {output} (dataset.json has every parameter and the seed)")
    if preview is not None:
        typer.echo(f"preview: {preview}")


def mitochondria_command(
    output: _Out,
    n: _N = 100,
    seed: _Seed = 0,
    shape: Annotated[str, typer.Option("--shape", help="Image size Y,X or one side (tiled from 128-px crops).")] = "512",
    fmt: _Format = "tif",
    preview: _Preview = None,
    overwrite: _Overwrite = False,
    workers: _Workers = 1,
    quiet: _Quiet = False,
    n_per_crop: Annotated[str | None, typer.Option("--n-per-crop", help="Mitochondria per 128² crop, MIN,MAX [4,16].")] = None,
    length_nm: Annotated[str | None, typer.Option("--length-nm", help="Length tip to tip, nm, MIN,MAX [500,2500].")] = None,
    width_nm: Annotated[str | None, typer.Option("--width-nm", help="Width, nm, MIN,MAX [200,500].")] = None,
    sbr: Annotated[str | None, typer.Option("--sbr", help="Signal-to-background ratio, MIN,MAX [2,6].")] = None,
    bezier_points: Annotated[str | None, typer.Option("--bezier-points", help="Control points of the centreline [4]; 2 = straight rods.")] = None,
    bend_deg: Annotated[str | None, typer.Option("--bend-deg", help="Largest turn between control legs, degrees [45].")] = None,
    tiling: Annotated[str | None, typer.Option("--tiling", help="crops (Jadhav et al. 2026: 128² crops imaged separately) or seamless.")] = None,
    settings: _Set = None,
) -> None:
    """Simulate fluorescence images of mitochondria with overlapping instance masks (Jadhav et al. 2026, SAM for mitochondria).

    Writes OUTPUT/images/000000.tif (float32), OUTPUT/labels/000000.tif (label image),
    OUTPUT/masks/000000.tif (one uint8 mask per mitochondrion, overlaps kept),
    OUTPUT/params/000000.json and OUTPUT/dataset.json. Run it again to resume.

    Examples:

        samscope simulate mitochondria -n 10000 -o mito/ --seed 0 -j 2

        samscope simulate mitochondria -n 500 -o dots/ --length-nm 200,500 --width-nm 300,500

        samscope simulate mitochondria -n 8 -o demo/ --preview demo.png -s optics.na=1.4
    """
    options = {
        "n_per_crop": n_per_crop, "length_nm": length_nm, "width_nm": width_nm, "sbr": sbr,
        "bezier_points": bezier_points, "bend_deg": bend_deg, "tiling": tiling,
    }
    _run("mitochondria", n, output, seed, shape, fmt, preview, overwrite, workers, quiet, options, settings)


def nuclei_command(
    output: _Out,
    n: _N = 100,
    seed: _Seed = 0,
    shape: Annotated[str, typer.Option("--shape", help="Image size Y,X or one side.")] = "512",
    fmt: _Format = "tif",
    preview: _Preview = None,
    overwrite: _Overwrite = False,
    workers: _Workers = 1,
    quiet: _Quiet = False,
    diameter_px: Annotated[str | None, typer.Option("--diameter-px", help="Nucleus diameter, px, MIN,MAX [22,33].")] = None,
    density: Annotated[str | None, typer.Option("--density", help="Nuclei per 10,000 px², MIN,MAX [1.2,3.2].")] = None,
    cluster_fraction: Annotated[str | None, typer.Option("--cluster-fraction", help="Share placed touching a neighbour [0.06].")] = None,
    dividing_fraction: Annotated[str | None, typer.Option("--dividing-fraction", help="Share of mitoses [0.03].")] = None,
    apoptotic_fraction: Annotated[str | None, typer.Option("--apoptotic-fraction", help="Share of apoptotic nuclei [0.01].")] = None,
    brightness: Annotated[str | None, typer.Option("--brightness", help="Nucleus photons above background, MIN,MAX [300,1200].")] = None,
    frames: Annotated[int | None, typer.Option("--frames", help="Write N time-lapses of this many frames with lineage ground truth (moving, dividing nuclei).")] = None,
    three_d: Annotated[bool, typer.Option("--3d", help="Write N confocal-like ZYX volumes with 3-D labels (samscope.simulate.volume; --set reaches Nuclei3DConfig).")] = False,
    planes: Annotated[int, typer.Option("--planes", help="With --3d: planes per volume.")] = 16,
    settings: _Set = None,
) -> None:
    """Simulate widefield images of fluorescent nuclei with instance labels (HeLa-like defaults).

    With --3d: N volumes of touching ellipsoidal textured nuclei, an anisotropic PSF and a z step
    larger than the pixel (OUTPUT/images/000000.tif ZYX with the pixel sizes in its metadata,
    OUTPUT/labels/000000.tif 3-D labels, OUTPUT/params/, OUTPUT/dataset.json).

    With --frames T: N time-lapses (samscope.simulate.timelapse): OUTPUT/images/000000.tif (TYX),
    OUTPUT/labels/000000.tif (ids = track ids), OUTPUT/tracks/000000.txt (L B E P, as the Cell
    Tracking Challenge's man_track.txt), OUTPUT/params/, OUTPUT/dataset.json.

    Writes OUTPUT/images/000000.tif (float32 camera counts, offset ≈ 33,000),
    OUTPUT/labels/000000.tif, OUTPUT/params/000000.json and OUTPUT/dataset.json. Run it again
    to resume.

    Examples:

        samscope simulate nuclei -n 1000 -o nuclei/ --seed 1

        samscope simulate nuclei -n 200 -o small/ --shape 256 --diameter-px 12,20 --preview p.png

        samscope simulate nuclei -n 100 -o mitotic/ --dividing-fraction 0.2 -s offset=100,200

        samscope simulate nuclei -n 2 --frames 30 --shape 256 -o movies/

        samscope simulate nuclei -n 4 --3d --planes 16 --shape 256 -o volumes/ -s z_step_nm=800
    """
    options = {
        "diameter_px": diameter_px, "density": density, "cluster_fraction": cluster_fraction,
        "dividing_fraction": dividing_fraction, "apoptotic_fraction": apoptotic_fraction,
        "brightness": brightness,
    }
    if three_d:
        _volumes(n, output, seed, shape, planes, overwrite, options, settings, frames)
        return
    if frames is not None:
        _timelapse(n, output, seed, shape, frames, overwrite, options, settings)
        return
    _run("nuclei", n, output, seed, shape, fmt, preview, overwrite, workers, quiet, options, settings)


def _volumes(n, output, seed, shape, planes, overwrite, options, settings, frames) -> None:
    from samscope.cli._common import parse_shape
    from samscope.errors import InputError
    from samscope.settings import build_settings, parse_assignments
    from samscope.simulate.volume import Nuclei3DConfig, write_volumes

    given = [k for k, v in options.items() if v is not None] + (["frames"] if frames is not None else [])
    if given:
        raise InputError(f"--3d takes its settings with --set (Nuclei3DConfig fields, e.g. diameter_um=8,12), not --{given[0].replace('_', '-')}")
    if planes < 1:
        raise InputError(f"--planes must be >= 1, got {planes}")
    config = build_settings(Nuclei3DConfig, parse_assignments(settings))
    write_volumes(output, n, shape=(planes, *parse_shape(shape, "shape")), seed=seed, config=config, overwrite=overwrite)
    typer.echo(f"{n} nuclei volumes of {planes} planes in {output} (z step {config.z_step_nm:g} nm, pixel {config.pixel_size_nm:g} nm)")


def _timelapse(n, output, seed, shape, frames, overwrite, options, settings) -> None:
    from samscope.cli._common import parse_shape
    from samscope.simulate.timelapse import TimelapseConfig, write_timelapse

    look = build_config("nuclei", options, settings)
    write_timelapse(output, n, shape=parse_shape(shape, "shape"), seed=seed,
                    config=TimelapseConfig(frames=frames, nuclei=look), overwrite=overwrite)  # fmt: skip
    typer.echo(f"{n} nuclei time-lapses of {frames} frames in {output} (tracks/*.txt: lineages)")


def cells_command(
    output: _Out,
    n: _N = 100,
    seed: _Seed = 0,
    shape: Annotated[str, typer.Option("--shape", help="Image size Y,X or one side.")] = "512",
    fmt: _Format = "tif",
    preview: _Preview = None,
    overwrite: _Overwrite = False,
    workers: _Workers = 1,
    quiet: _Quiet = False,
    look: Annotated[str | None, typer.Option("--look", help="phase (mammalian cells), bacteria (rods) or mixed [mixed].")] = None,
    cell_diameter_px: Annotated[str | None, typer.Option("--cell-diameter-px", help="Cell diameter, px, MIN,MAX [28,60].")] = None,
    cell_density: Annotated[str | None, typer.Option("--cell-density", help="Cells per 10,000 px², MIN,MAX [0.6,2.5].")] = None,
    rod_length_px: Annotated[str | None, typer.Option("--rod-length-px", help="Rod length, px, MIN,MAX [14,36].")] = None,
    rod_width_px: Annotated[str | None, typer.Option("--rod-width-px", help="Rod width, px, MIN,MAX [6,9].")] = None,
    rod_density: Annotated[str | None, typer.Option("--rod-density", help="Rods per 10,000 px², MIN,MAX [4,14].")] = None,
    settings: _Set = None,
) -> None:
    """Simulate label-free (phase-contrast) images of cells or rod bacteria with instance labels.

    Dark bodies with bright halos on a textured background. Writes OUTPUT/images/000000.tif,
    OUTPUT/labels/000000.tif, OUTPUT/params/000000.json and OUTPUT/dataset.json. Run it again
    to resume.

    Examples:

        samscope simulate cells -n 1000 -o phase/ --look phase

        samscope simulate cells -n 500 -o bacteria/ --look bacteria --rod-length-px 20,60

        samscope simulate cells -n 16 -o mixed/ --format zarr --preview mixed.png
    """
    options = {
        "look": look, "cell_diameter_px": cell_diameter_px, "cell_density": cell_density,
        "rod_length_px": rod_length_px, "rod_width_px": rod_width_px, "rod_density": rod_density,
    }
    _run("cells", n, output, seed, shape, fmt, preview, overwrite, workers, quiet, options, settings)


def bacteria_command(
    output: _Out,
    n: _N = 1,
    seed: _Seed = 0,
    frames: Annotated[int, typer.Option("--frames", help="Frames per colony time-lapse.")] = 30,
    shape: Annotated[str, typer.Option("--shape", help="Image size Y,X or one side.")] = "256",
    look: Annotated[str, typer.Option("--look", help="fluorescence or phase.")] = "fluorescence",
    overwrite: _Overwrite = False,
) -> None:
    """Simulate growing, dividing rod bacteria colonies as time-lapses with lineage ground truth.

    samscope.simulate.colony: OUTPUT/images/000000.tif (TYX), OUTPUT/labels/000000.tif (track
    ids), OUTPUT/tracks/000000.txt (L B E P, the CTC's man_track.txt), OUTPUT/params/, dataset.json.

    Examples:

        samscope simulate bacteria --frames 30 -n 2 -o colonies/
    """
    from samscope.cli._common import parse_shape
    from samscope.simulate.colony import ColonyConfig, write_colony

    write_colony(output, n, shape=parse_shape(shape, "shape"), seed=seed,
                 config=ColonyConfig(frames=frames, look=look), overwrite=overwrite)  # fmt: skip
    typer.echo(f"{n} bacteria colony time-lapses of {frames} frames in {output} (tracks/*.txt: lineages)")


def generalist_command(
    output: _Out,
    n: _N = 100,
    seed: _Seed = 0,
    shape: Annotated[str, typer.Option("--shape", help="Image size Y,X or one side.")] = "320",
    fmt: _Format = "tif",
    preview: _Preview = None,
    overwrite: _Overwrite = False,
    workers: _Workers = 1,
    quiet: _Quiet = False,
    domains: Annotated[str | None, typer.Option("--domains", help="Comma-separated subset of nuclei, cocci, phase_cells, bacteria, monolayer [all].")] = None,
    looks: Annotated[str | None, typer.Option("--looks", help="Comma-separated subset of fluorescent, cytoplasm, membrane, phase, brightfield, dic [all].")] = None,
    diameter_px: Annotated[str | None, typer.Option("--diameter-px", help="Median object diameter per image, px, MIN,MAX [14,56].")] = None,
    coverage: Annotated[str | None, typer.Option("--coverage", help="Fraction of the image covered by objects, MIN,MAX [0.05,0.6].")] = None,
    settings: _Set = None,
) -> None:
    """Simulate the generalist corpus: nuclei, cells and bacteria in every look (domain randomised).

    Each image draws a domain (fluorescent nuclei, cocci, phase-contrast cells, rod bacteria,
    confluent monolayers), a look (the domain's own or a re-rendering as fluorescence, cytoplasm
    or membrane stain, phase contrast, bright-field, DIC) and an acquisition (blur, gamma,
    polarity, noise, resolution loss, 8/12/16-bit or float, JPEG). Objects are drawn at about
    the working scale of samscope's models (median diameter 14–56 px). Writes
    OUTPUT/images/000000.tif, OUTPUT/labels/000000.tif, OUTPUT/params/000000.json (domain, look,
    every drawn value) and OUTPUT/dataset.json. Run it again to resume.

    Examples:

        samscope simulate generalist -n 1500 -o corpus/ --seed 201 -j 2 --preview corpus.png

        samscope simulate generalist -n 100 -o dic/ --looks dic,phase --domains monolayer

        samscope simulate generalist -n 50 -o small/ --shape 512 --diameter-px 8,16
    """
    options = {"domains": domains, "looks": looks, "diameter_px": diameter_px, "coverage": coverage}
    _run("generalist", n, output, seed, shape, fmt, preview, overwrite, workers, quiet, options, settings)


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command group to ``app``."""
    sim = typer.Typer(
        name="simulate",
        help=(
            "Write labelled synthetic microscopy datasets (images, instance labels, parameters).\n\n"
            "Examples:\n\n"
            "  samscope simulate mitochondria -n 10000 -o mito/ --seed 0 -j 2\n\n"
            "  samscope simulate nuclei -n 1000 -o nuclei/ --preview nuclei.png\n\n"
            "  samscope simulate cells -n 500 -o bacteria/ --look bacteria\n\n"
            "  samscope simulate generalist -n 1500 -o corpus/ --preview corpus.png"
        ),
        no_args_is_help=True,
    )
    sim.command("mitochondria")(mitochondria_command)
    sim.command("nuclei")(nuclei_command)
    sim.command("cells")(cells_command)
    sim.command("bacteria")(bacteria_command)
    sim.command("generalist")(generalist_command)
    app.add_typer(sim, name="simulate")
