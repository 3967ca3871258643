"""``samscope models list|info|fetch|import``: the model registry on the command line.

Thin over :mod:`samscope.models.registry`; nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer


def _status(name: str) -> str:
    from samscope.models.registry import cached_path, get_card, model_files

    if get_card(name).shipped:
        return "shipped"
    files = model_files(name)
    if not files:
        return "built-in"
    present = [cached_path(f).is_file() for f in files]
    return "cached" if all(present) else "partial" if any(present) else "-"


def list_models_command() -> None:
    """List the registered models and whether they are in the cache.

    Example:

      samscope models list
    """
    from samscope.models.registry import list_models

    rows = [("NAME", "ARCH", "SOURCE", "HEAD", "CACHE", "DESCRIPTION")]
    for card in list_models():
        head = "yes" if card.has_instance_head else "no"
        rows.append(
            (card.name, card.architecture, card.source, head, _status(card.name), card.description)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)]
        typer.echo("  ".join([*cells, row[-1]]))


def info_command(
    name: str = typer.Argument(..., help="A registered model name or a checkpoint file."),
) -> None:
    """Show a model's card: architecture, files (URLs, hashes, cache paths), licence, defaults.

    Examples:

      samscope models info vit_b_lm

      samscope models info runs/a/model.pt
    """
    from samscope.models.registry import (
        cache_dir,
        get_card,
        looks_like_path,
        resolve_checkpoint,
    )

    if looks_like_path(name):
        card, path = resolve_checkpoint(name)
        _print_card(card)
        typer.echo(f"file:           {path} ({path.stat().st_size / 1e6:.1f} MB, {card.known_hash})")
        return
    card = get_card(name)
    _print_card(card)
    _print_files(name, card)
    typer.echo(f"cache dir:      {cache_dir()} (set SAMSCOPE_CACHE_DIR to move it)")


def _print_card(card) -> None:
    typer.echo(f"name:           {card.name}")
    typer.echo(f"description:    {card.description}")
    typer.echo(f"architecture:   {card.architecture}")
    typer.echo(f"source:         {card.source}")
    typer.echo(f"licence:        {card.licence or '-'}")
    typer.echo(f"instance head:  {'yes' if card.has_instance_head else 'no'}")
    if card.pixel_size_nm is not None:
        typer.echo(f"pixel size:     {card.pixel_size_nm} nm")
    norm = asdict(card.normalisation)
    typer.echo("normalisation:  " + ", ".join(f"{k}={v}" for k, v in norm.items()))
    typer.echo("automatic:      " + ", ".join(f"{k}={v}" for k, v in asdict(card.automatic).items()))
    if card.default_mode:
        typer.echo(f"default mode:   {card.default_mode}")
    if card.tile_shape:
        typer.echo(f"tiling:         {card.tile_shape} px tiles, {card.halo or 0} px halo (native resolution)")


def _print_files(name: str, card) -> None:
    from samscope.models.registry import cached_path, model_files

    files = model_files(name)
    if card.shipped:
        from samscope.models.registry import shipped_path

        path = shipped_path(card)
        size = f"{path.stat().st_size / 1e6:.1f} MB" if path.is_file() else "MISSING"
        typer.echo(f"weights:        shipped with samscope: {path} ({size}, {card.known_hash})")
        report = path.with_suffix(".md")
        if report.is_file():
            typer.echo("")
            typer.echo(report.read_text().rstrip())
            typer.echo("")
    elif not files:
        typer.echo("files:          none (weights are generated, see the description)")
    for f in files:
        path = cached_path(f)
        typer.echo(f"{f.role} file:")
        for url in f.urls:
            typer.echo(f"  url:          {url}")
        typer.echo(f"  hash:         {f.known_hash or '-'}")
        typer.echo(f"  cache:        {path} ({'present' if path.is_file() else 'missing'})")


def fetch_command(
    name: str = typer.Argument(..., help="A registered model name."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Download a model's files into the cache, checking the published hashes.

    Offline? Download the URLs of `samscope models info NAME` elsewhere, then import them.

    Example:

      samscope models fetch vit_b_lm
    """
    from samscope.models.registry import cached_path, fetch_model, model_files

    fetch_model(name, progress=not quiet)
    for f in model_files(name):
        typer.echo(f"{name} {f.role}: {cached_path(f)}")


def import_command(
    file: Path = typer.Argument(..., help="The downloaded (or your own) checkpoint file."),
    name: str = typer.Option(
        ..., "--name", "-n", help="The registered model it belongs to, or a new name for yours."
    ),
    replace: bool = typer.Option(False, "--replace", help="Replace a model you imported before."),
) -> None:
    """Put a model file into the cache (works offline).

    With a registered name the file's hash must match a file of that model (µSAM models have
    two files, weights and decoder: import each; the hash tells which is which). With a new
    name the file becomes a model of that name: copied into the cache with its hash recorded,
    so `--model NAME` works offline from then on.

    Examples:

      samscope models import ~/Downloads/vit_b.pt --name vit_b_lm

      samscope models import runs/a/model.pt --name my-nuclei
    """
    from samscope.models.registry import cached_path, get_card, import_model, model_files

    dest = import_model(file, name, replace=replace)
    card = get_card(name)
    if card.source == "user":
        typer.echo(
            f"registered {file} as model {name} ({card.architecture}, {card.known_hash}): {dest}; "
            f"use it with --model {name}"
        )
        return
    role = next((f.role for f in model_files(name) if cached_path(f) == dest), "model")
    typer.echo(f"imported {file} as the {role} file of {name}: {dest}")


def export_command(
    checkpoint: Path = typer.Argument(..., help="A training checkpoint (best.pt, last.pt) or any model file."),
    output: Path = typer.Argument(..., help="The file to write."),
    format: str = typer.Option("samscope", "--format", help="samscope, micro-sam or safetensors."),
    name: str | None = typer.Option(None, "--name", help="Model name stored in the card."),
    as_registered: str | None = typer.Option(
        None, "--as", help="Store the card of this registered model (e.g. samscope-lm)."
    ),
    half: bool = typer.Option(False, "--half", help="float16 weights (half the size)."),
) -> None:
    """Write an inference model from a checkpoint (LoRA merged, training state dropped).

    Prints the file's xxh128 hash, which a registered card checks on every load.

    Examples:

      samscope models export runs/x/checkpoints/best.pt x.pt

      samscope models export runs/samscope-lm/checkpoints/best.pt lm.pt --as samscope-lm --half
    """
    from samscope.models.registry import file_hash, get_card
    from samscope.training.export import export_model

    card = get_card(as_registered) if as_registered else None
    path = export_model(checkpoint, output, format=format, name=name, half=half, card=card)  # type: ignore[arg-type]
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB, {file_hash(path)})")


def register(app: typer.Typer) -> None:
    """Add the ``models`` command group to ``app``."""
    models = typer.Typer(
        name="models",
        help=(
            "List, inspect, download and import models.\n\n"
            "Examples:\n\n"
            "  samscope models list\n\n"
            "  samscope models fetch vit_b_lm\n\n"
            "  samscope models import vit_b.pt --name vit_b_lm"
        ),
        no_args_is_help=True,
    )
    models.command("list")(list_models_command)
    models.command("info")(info_command)
    models.command("fetch")(fetch_command)
    models.command("import")(import_command)
    models.command("export")(export_command)
    app.add_typer(models, name="models")
