"""Shipped training recipes: the seeds' settings as TOML configurations.

========================  ======================================================================
``microsam_finetune``     µSAM (Archit et al. 2025): iterative prompting + instance-distance head,
                          AdamW 1e-5, ReduceLROnPlateau(0.9, 3), early stopping 10, 25 objects,
                          8 sub-iterations, mask fed back with p = 0.5, box distortion 0.025
``microsam_lora``         the same with the image encoder adapted by LoRA (rank 4)
``samcell``               SAMCell (VandeLoo et al. 2025): distance-map head, AdamW 1e-4, weight decay 0.1,
                          250 warm-up steps then linear decay, batch 8, patience 7, 256² patches
``mitochondria``          Jadhav et al. 2026: frozen image encoder, simulated mitochondria, single
                          foreground points, overlap-aware minimum dice loss
``tiny_nuclei_cpu``       a tiny network from scratch on simulated nuclei in minutes on a CPU
``samscope_lm``           the shipped ``samscope-lm``: compact encoder from scratch on simulated
                          nuclei and cells plus HeLa frames 0–11 (12–13 validate), light head
``samscope_mito``         the shipped ``samscope-mito``: compact encoder from scratch on the
                          mitochondria simulator of Jadhav et al. 2026, overlap-aware loss, patches zoomed to 40 nm
``samscope_generalist``   the default ``samscope-generalist``: samscope-lm continued on the
                          domain-randomised generalist corpus plus HeLa and CHO at the working
                          scale, light instance head and distance-map head
========================  ======================================================================

Each file names its data as placeholders; give yours with flags (``--train-images …``) or
``load_recipe(name, train_images=(…,), …)``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["RECIPES", "describe", "load_recipe", "recipe_path"]

#: Recipe name → file name in this package.
RECIPES: dict[str, str] = {
    "microsam_finetune": "microsam_finetune.toml",
    "microsam_lora": "microsam_lora.toml",
    "samcell": "samcell.toml",
    "mitochondria": "mitochondria.toml",
    "tiny_nuclei_cpu": "tiny_nuclei_cpu.toml",
    "samscope_lm": "samscope_lm.toml",
    "samscope_mito": "samscope_mito.toml",
    "samscope_generalist": "samscope_generalist.toml",
}


def recipe_path(name: str) -> Path:
    """Path of the recipe ``name`` (InputError listing the recipes for an unknown name)."""
    from samscope.errors import InputError

    if name not in RECIPES:
        raise InputError(f"unknown recipe {name!r}; recipes: {', '.join(RECIPES)}")
    return Path(str(resources.files(__name__).joinpath(RECIPES[name])))


def describe(name: str) -> str:
    """The first comment line of the recipe."""
    for line in recipe_path(name).read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def load_recipe(name: str, /, **overrides: Any):
    """The recipe's :class:`~samscope.training.config.TrainConfig`, with flat ``overrides``."""
    from samscope.training.config import load_config

    return load_config(recipe_path(name), **overrides)
