"""``samscope train``: a thin command over :mod:`samscope.training`.

Every field of the training configuration is also a flag (``patch_size`` ↔ ``--patch-size``);
flags override the TOML file. The flags are generated from the configuration dataclasses, so the
two cannot drift apart.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Annotated, Any

import typer

HELP = (
    "Train or fine-tune a model: iterative-prompt SAM training, instance-distance and "
    "distance-map heads, partial and LoRA fine-tuning, from scratch or from a checkpoint.\n\n"
    "CONFIG is a TOML file with \\[data], \\[augment], \\[model], \\[objectives], \\[optim] "
    "and \\[run] tables; every field is also a flag below, and flags win. Shipped recipes "
    "(--list-recipes) hold the seeds' settings: microsam_finetune, microsam_lora, samcell, "
    "mitochondria, tiny_nuclei_cpu.\n\n"
    "The run folder (--out-dir) gets checkpoints/last.pt and best.pt, metrics.csv, metrics.png, "
    "config.toml and the exported model.pt, which every command loads with --model PATH. "
    "Running again with the same --out-dir resumes from the last checkpoint.\n\n"
    "Examples:\n\n"
    "  samscope train my_config.toml\n\n"
    "  samscope train --recipe microsam_finetune --train-images imgs/ --train-labels labels/ "
    "--out-dir runs/a\n\n"
    "  samscope train --recipe tiny_nuclei_cpu --out-dir runs/tiny\n\n"
    "  samscope train cfg.toml --lora-rank 4 --freeze prompt_encoder --max-steps 2000\n\n"
    "  samscope train cfg.toml --check\n\n"
    "  torchrun --nproc-per-node 4 -m samscope.cli.main train cfg.toml"
)


def _field_help() -> dict[str, str]:
    """One line of help per field, from the numpydoc ``Attributes`` of the config sections."""
    from samscope.training.config import SECTIONS

    out: dict[str, str] = {}
    for cls in SECTIONS.values():
        doc = inspect.getdoc(cls) or ""
        lines = doc.splitlines()
        i = 0
        while i < len(lines):
            m = re.match(r"^([a-z_][a-z_0-9, ]*) : (.+)$", lines[i])
            if m:
                names = [n.strip() for n in m.group(1).split(",")]
                desc = []
                i += 1
                while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                    if lines[i].strip():
                        desc.append(lines[i].strip())
                    elif desc:
                        break
                    i += 1
                for n in names:
                    out[n] = " ".join(desc).replace("``", "").replace("[", "\\[")
                continue
            i += 1
    return out


def _command():
    from samscope.training.config import flag_fields, flag_type

    helps = _field_help()
    params = [
        inspect.Parameter(
            "config",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=None,
            annotation=Annotated[
                Path | None,
                typer.Argument(
                    metavar="CONFIG",
                    help="TOML configuration (optional: defaults + flags otherwise).",
                ),
            ],
        ),
        inspect.Parameter(
            "recipe",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option(help="Start from a shipped recipe instead of a file (see --list-recipes)."),
            ],
        ),
        inspect.Parameter(
            "list_recipes",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[bool, typer.Option(help="List the shipped recipes and exit.")],
        ),
        inspect.Parameter(
            "check",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation=Annotated[
                bool,
                typer.Option(help="Check the configuration, data and model, print the config, exit."),
            ],
        ),
    ]
    for name, section in flag_fields().items():
        kind = flag_type(name)
        text = helps.get(name, "")
        if kind is str and section in ("data", "model") and name in (
            "train_images", "train_labels", "train_masks", "val_images", "val_labels",
            "val_masks", "freeze",
        ):  # fmt: skip
            text += " (comma-separated)"
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[
                    kind | None, typer.Option(help=text, rich_help_panel=f"\\[{section}]")
                ],
            )
        )

    def train_command(**kwargs: Any) -> None:
        from samscope.training import recipes
        from samscope.training.config import TrainConfig, load_config

        if kwargs.pop("list_recipes"):
            for name in recipes.RECIPES:
                typer.echo(f"{name:24s} {recipes.describe(name)}")
            raise typer.Exit(0)
        config_path = kwargs.pop("config")
        recipe = kwargs.pop("recipe")
        check = kwargs.pop("check")
        overrides = {k: v for k, v in kwargs.items() if v is not None}
        if config_path is not None and recipe is not None:
            from samscope.errors import InputError

            raise InputError("give either CONFIG or --recipe, not both")
        if recipe is not None:
            config = recipes.load_recipe(recipe, **overrides)
        elif config_path is not None:
            try:
                config = load_config(config_path, **overrides)
            except UnicodeDecodeError:
                from samscope.errors import InputError

                raise InputError(
                    f"{config_path} is not a text file; CONFIG is a TOML configuration "
                    "(see samscope train --help)"
                ) from None
        else:
            config = TrainConfig().replace(**overrides)
        if check:
            from samscope.training.setup import build_networks, build_sources

            sources = build_sources(config)
            nets = build_networks(config)
            n = len(sources.train) if isinstance(sources.train, list) else "simulated"
            trainable = sum(
                p.numel()
                for m in (nets.sam, nets.instance_head, nets.distance_head)
                if m is not None
                for p in m.parameters()
                if p.requires_grad
            )
            typer.echo(config.to_toml())
            typer.echo(f"# ok: {n} training sample(s), architecture {nets.arch.name}, "
                       f"{trainable:,} trainable parameters")  # fmt: skip
            raise typer.Exit(0)
        from samscope.training.trainer import train

        result = train(config)
        if result.model_path is not None:
            typer.echo(
                f"done: {result.step} steps, {result.metric_name} {result.initial_metric:.4f} → "
                f"best {result.best_metric:.4f}; model: {result.model_path}"
            )

    train_command.__signature__ = inspect.Signature(params)
    train_command.__doc__ = HELP
    return train_command


def register(app: typer.Typer) -> None:
    """Add ``samscope train`` to ``app``."""
    app.command("train", help=HELP, no_args_is_help=False)(_command())
