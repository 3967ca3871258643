"""Helpers the training tests import by name (a module of its own: every test folder has a
``conftest`` module, so ``from conftest import …`` picks whichever was imported last)."""

from __future__ import annotations

from pathlib import Path


def tiny_config(data_dir: Path, out: Path, **sections):
    """A vit_test configuration on ``data_dir`` writing to ``out`` (sections override)."""
    from samscope.training.config import TrainConfig

    table = {
        "data": {"train_images": [str(data_dir / "images")], "train_labels": [str(data_dir / "labels")],
                 "patch_size": 128, "n_val": 2, "val_fraction": 0.25, "min_objects": 2},
        "augment": {"rotation": "90", "scale_min": 1.0, "scale_max": 1.0},
        "model": {"model": "vit_test", "init": "random"},
        "objectives": {"n_objects": 4, "n_sub_iterations": 2},
        "optim": {"lr": 1e-3, "weight_decay": 0.0, "max_steps": 4, "batch_size": 1,
                  "val_every": 1000, "scheduler": "constant", "early_stopping": 0},
        "run": {"out_dir": str(out), "checkpoint_every": 2, "progress": False, "threads": 1},
    }
    for name, values in sections.items():
        table.setdefault(name, {}).update(values)
    return TrainConfig.from_dict(table)
