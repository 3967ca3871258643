"""Range and combination checks of a training configuration (what its types cannot say).

:func:`validate` runs when a :class:`~samscope.training.config.TrainConfig` is built; each
section has its own check, and every error is an InputError naming the field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from samscope.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from samscope.training.config import (
        AugmentConfig,
        DataConfig,
        ModelConfig,
        ObjectiveConfig,
        OptimConfig,
        RunConfig,
        TrainConfig,
    )

__all__ = ["FREEZABLE", "validate"]

#: Parts of SAM that ``model.freeze`` may name.
FREEZABLE = ("image_encoder", "prompt_encoder", "mask_decoder")


def _choice(value: str, choices: tuple[str, ...], where: str) -> None:
    if value not in choices:
        raise InputError(f"{where} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def _positive(value: float, where: str, *, zero: bool = False) -> None:
    if value < 0 or (value == 0 and not zero):
        raise InputError(f"{where} must be {'>= 0' if zero else '> 0'}, got {value!r}")


def validate(config: TrainConfig) -> None:
    """Check ranges and combinations that the types cannot express (InputError naming the field)."""
    _check_data(config.data)
    _check_augment(config.augment)
    _check_model(config.model)
    _check_objectives(config.objectives)
    _check_optim(config.optim, config.objectives)
    _check_run(config.run)


def _check_data(d: DataConfig) -> None:
    """The [data] section."""
    if d.simulate:
        from samscope.simulate.dataset import KINDS

        _choice(d.simulate, KINDS, "data.simulate")
    for name in ("patch_size", "n_val"):
        _positive(getattr(d, name), f"data.{name}")
    _positive(d.min_objects, "data.min_objects", zero=True)
    _positive(d.min_object_size, "data.min_object_size")
    _positive(d.simulate_size, "data.simulate_size", zero=True)
    if not 0 <= d.val_fraction < 1:
        raise InputError(f"data.val_fraction must be in [0, 1), got {d.val_fraction}")
    if len(d.train_labels) and len(d.train_labels) != len(d.train_images):
        raise InputError(
            f"data.train_labels has {len(d.train_labels)} entries but train_images has "
            f"{len(d.train_images)}; give one label path (file/folder/glob) per image path"
        )


def _check_augment(a: AugmentConfig) -> None:
    """The [augment] section."""
    _choice(a.rotation, ("any", "90", "none"), "augment.rotation")
    if not 0 < a.scale_min <= a.scale_max:
        raise InputError(
            f"augment.scale_min/scale_max must satisfy 0 < min <= max, got {a.scale_min}, {a.scale_max}"
        )
    for name in ("invert_prob", "noise_prob"):
        if not 0 <= getattr(a, name) <= 1:
            raise InputError(f"augment.{name} must be in [0, 1], got {getattr(a, name)}")
    for name in ("brightness", "contrast", "noise_std"):
        _positive(getattr(a, name), f"augment.{name}", zero=True)


def _check_model(m: ModelConfig) -> None:
    """The [model] section."""
    _choice(m.init, ("pretrained", "random"), "model.init")
    for part in m.freeze:
        _choice(part, FREEZABLE, "model.freeze entries")
    _positive(m.lora_rank, "model.lora_rank", zero=True)
    if m.lora_rank and "image_encoder" in m.freeze:
        raise InputError(
            "model.lora_rank > 0 trains LoRA adapters inside the image encoder; do not also list "
            "image_encoder in model.freeze (LoRA already freezes the encoder's own weights)"
        )
    if not 0 <= m.lora_dropout < 1:
        raise InputError(f"model.lora_dropout must be in [0, 1), got {m.lora_dropout}")


def _check_objectives(o: ObjectiveConfig) -> None:
    """The [objectives] section."""
    if o.instance_head_kind not in ("unetr", "light"):
        raise InputError(
            f"objectives.instance_head_kind must be 'unetr' or 'light', got {o.instance_head_kind!r}"
        )
    if not (o.prompt or o.instance_head or o.distance_head):
        raise InputError(
            "nothing to train: enable at least one of objectives.prompt, objectives.instance_head, "
            "objectives.distance_head"
        )
    _positive(o.n_objects, "objectives.n_objects")
    _positive(o.n_sub_iterations, "objectives.n_sub_iterations")
    for name in ("mask_prob", "box_prob"):
        if not 0 <= getattr(o, name) <= 1:
            raise InputError(f"objectives.{name} must be in [0, 1], got {getattr(o, name)}")
    for name in ("box_distortion", "iou_weight", "prompt_weight", "instance_weight", "distance_weight"):
        _positive(getattr(o, name), f"objectives.{name}", zero=True)


def _check_optim(p: OptimConfig, o: ObjectiveConfig) -> None:
    """The [optim] section, and its monitor against the objectives."""
    _positive(p.lr, "optim.lr")
    _positive(p.weight_decay, "optim.weight_decay", zero=True)
    _choice(p.scheduler, ("plateau", "linear", "constant"), "optim.scheduler")
    if not 0 < p.plateau_factor < 1:
        raise InputError(f"optim.plateau_factor must be in (0, 1), got {p.plateau_factor}")
    for name in ("max_steps", "batch_size", "grad_accum", "val_every"):
        _positive(getattr(p, name), f"optim.{name}")
    for name in ("warmup_steps", "early_stopping", "plateau_patience", "clip_grad", "min_delta"):
        _positive(getattr(p, name), f"optim.{name}", zero=True)
    _choice(p.monitor, ("auto", "dice", "msa", "loss"), "optim.monitor")
    if p.monitor == "dice" and not o.prompt:
        raise InputError("optim.monitor = 'dice' needs objectives.prompt = true")
    if p.monitor == "msa" and not (o.instance_head or o.distance_head):
        raise InputError("optim.monitor = 'msa' needs a head (instance_head or distance_head)")
    _choice(p.amp, ("auto", "bf16", "fp16", "off"), "optim.amp")


def _check_run(r: RunConfig) -> None:
    """The [run] section."""
    _positive(r.checkpoint_every, "run.checkpoint_every")
    _positive(r.threads, "run.threads", zero=True)
    if not r.name:
        raise InputError("run.name must not be empty")
