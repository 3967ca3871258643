"""Training configuration: typed, frozen sections read from TOML; every field is also a CLI flag.

A configuration file has one table per section (``[data]``, ``[augment]``, ``[model]``,
``[objectives]``, ``[optim]``, ``[run]``) and optionally ``[architecture]`` (the fields of
:class:`~samscope.models.architectures.SamArchitecture`, for a network that is not built in).
Field names are unique across sections, so each is also a flag of ``samscope train``
(``patch_size`` ↔ ``--patch-size``). Unknown sections and fields are errors that name them and
list the valid ones; so are values of the wrong type.

Example
-------
.. code-block:: toml

    [data]
    train_images = ["hela/images.tif"]
    train_labels = ["hela/masks.tif"]
    slices = "0:14"          # frames 0-13 of the stacks
    patch_size = 512

    [model]
    model = "vit_b_lm"       # a registered name, a checkpoint file, or an architecture
    freeze = ["prompt_encoder"]

    [objectives]
    prompt = true
    instance_head = true

    [optim]
    lr = 1e-5
    max_steps = 5000

    [run]
    out_dir = "runs/hela"
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from samscope.errors import InputError
from samscope.training.config_checks import FREEZABLE, validate  # validate runs in TrainConfig

__all__ = [
    "AugmentConfig",
    "DataConfig",
    "FREEZABLE",
    "ModelConfig",
    "ObjectiveConfig",
    "OptimConfig",
    "RunConfig",
    "SECTIONS",
    "TrainConfig",
    "flag_fields",
    "load_config",
]


@dataclass(frozen=True)
class DataConfig:
    """Where training data comes from and how patches are drawn.

    Attributes
    ----------
    train_images, train_labels : tuple of str
        Image files/folders/globs and their label images (paired in natural order). A file may be
        a stack ``(n, y, x)``: each slice is one sample.
    train_masks : tuple of str
        Optional stacks of overlapping instance masks ``(n_objects, y, x)``, one file per image,
        instead of (or besides) labels; objects then come from the masks.
    val_images, val_labels, val_masks : tuple of str
        Explicit validation data; when empty, ``val_fraction`` of the training samples is held out.
    train_weights : tuple of float
        Optional share of the training patches drawn from each ``train_images`` entry (one
        weight per entry, normalised to sum 1; samples within an entry are equally likely).
        Empty: every sample is equally likely, so large entries dominate.
    slices, val_slices : str
        Python-style slice of stack samples to use (``"0:14"``); empty = all.
    simulate : str
        ``"nuclei"``, ``"cells"`` or ``"mitochondria"``: draw training samples from the simulator
        on the fly (validation samples are simulated too, from indices the training never uses).
    simulate_seed : int
        Root seed of the simulated samples.
    simulate_size : int
        Side of simulated images; 0 = ``patch_size``.
    n_val : int
        Validation patches (fixed for the whole run).
    val_fraction : float
        Share of the training samples held out when no validation data is given.
    patch_size : int
        Side of the square training patches (before the encoder's resize).
    min_objects : int
        A patch is redrawn (up to 20 times) until it holds this many objects.
    min_object_size : int
        Pixels an object needs inside a patch to count (and to be prompted).
    split_seed : int
        Seed of the train/validation split and of the validation patches.
    num_workers : int
        Data-loader processes; -1 = 0 on the CPU (the 2 cores train), 4 on a GPU.
    """

    train_images: tuple[str, ...] = ()
    train_labels: tuple[str, ...] = ()
    train_masks: tuple[str, ...] = ()
    train_weights: tuple[float, ...] = ()
    val_images: tuple[str, ...] = ()
    val_labels: tuple[str, ...] = ()
    val_masks: tuple[str, ...] = ()
    slices: str = ""
    val_slices: str = ""
    simulate: str = ""
    simulate_seed: int = 0
    simulate_size: int = 0
    n_val: int = 8
    val_fraction: float = 0.2
    patch_size: int = 512
    min_objects: int = 1
    min_object_size: int = 25
    split_seed: int = 0
    num_workers: int = -1


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentations, applied identically to the image and every label map.

    Attributes
    ----------
    flip : bool
        Random horizontal/vertical flips.
    rotation : str
        ``"any"`` (uniform angle), ``"90"`` (multiples of 90°, lossless) or ``"none"``.
    scale_min, scale_max : float
        Range of the random zoom (1 = none).
    brightness : float
        Additive shift drawn from ±``brightness`` (intensities are in 0–1).
    contrast : float
        Multiplicative contrast factor drawn from 1 ± ``contrast``.
    invert_prob : float
        Probability of inverting intensities (bright ↔ dark).
    noise_prob, noise_std : float
        Probability of adding Gaussian noise, and its largest standard deviation.
    """

    flip: bool = True
    rotation: str = "any"
    scale_min: float = 0.8
    scale_max: float = 1.2
    brightness: float = 0.05
    contrast: float = 0.1
    invert_prob: float = 0.0
    noise_prob: float = 0.0
    noise_std: float = 0.03


@dataclass(frozen=True)
class ModelConfig:
    """The network to train.

    Attributes
    ----------
    model : str
        A registered model name (``vit_b``, ``vit_b_lm``…), a checkpoint file, or — with
        ``init = "random"`` — an architecture name (or one given in ``[architecture]``).
    init : str
        ``"pretrained"`` (weights of ``model``) or ``"random"`` (train from scratch).
    freeze : tuple of str
        Parts kept fixed: ``image_encoder``, ``prompt_encoder``, ``mask_decoder``.
    lora_rank : int
        > 0: LoRA of this rank on the image encoder's attention (``qkv``); the encoder's own
        weights are then frozen.
    lora_alpha : float
        LoRA scaling numerator (0 = ``lora_rank``, i.e. scale 1).
    lora_dropout : float
        Dropout on the LoRA input.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``…
    checkpoint_encoder : bool
        Activation checkpointing of the image-encoder blocks: each block keeps only its input
        for the backward pass and runs its forward again there (same losses and gradients,
        less memory, one more encoder forward per step). Off by default: the chunked training
        attention already keeps a ViT-B step at 512² patches within a few GB.
    """

    model: str = "vit_b"
    init: str = "pretrained"
    freeze: tuple[str, ...] = ()
    lora_rank: int = 0
    lora_alpha: float = 0.0
    lora_dropout: float = 0.0
    device: str = "auto"
    checkpoint_encoder: bool = False


@dataclass(frozen=True)
class ObjectiveConfig:
    """What is trained, and the iterative-prompting settings (defaults: µSAM's).

    Attributes
    ----------
    prompt : bool
        Iterative prompt training of SAM's prompt encoder and mask decoder (µSAM: Archit et al. 2025).
    instance_head : bool
        Train the instance-distance head (foreground, centre and boundary distance).
    instance_head_kind : str
        ``"unetr"`` (µSAM's decoder, compatible with its checkpoints) or ``"light"`` (a
        :class:`~samscope.models.distance_head.DistanceMapHead` with three outputs at the encoder
        input's resolution: ≈50× cheaper, what samscope's own models use).
    distance_head : bool
        Train the distance-map head (SAMCell: VandeLoo et al. 2025).
    n_objects : int
        Objects prompted per image and step.
    n_sub_iterations : int
        Decoder passes per object and step: the first prompt, then corrections.
    mask_prob : float
        Probability of feeding the previous low-resolution logits back as a mask prompt.
    box_prob : float
        Probability that a step starts from boxes instead of one positive point.
    box_distortion : float
        Each box side is pushed out by up to this fraction of the box size.
    overlap_aware : bool
        When a point lies on several overlapping objects, the loss is the minimum over them
        (Jadhav et al. 2026, §3.2); needs ``train_masks`` or simulated mitochondria.
    iou_weight, prompt_weight, instance_weight, distance_weight : float
        Loss weights.
    """

    prompt: bool = True
    instance_head: bool = False
    instance_head_kind: str = "unetr"
    distance_head: bool = False
    n_objects: int = 25
    n_sub_iterations: int = 8
    mask_prob: float = 0.5
    box_prob: float = 0.5
    box_distortion: float = 0.025
    overlap_aware: bool = True
    iou_weight: float = 1.0
    prompt_weight: float = 1.0
    instance_weight: float = 1.0
    distance_weight: float = 1.0


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser, schedule, validation and stopping.

    Attributes
    ----------
    lr, weight_decay : float
        AdamW learning rate and weight decay.
    scheduler : str
        ``"plateau"`` (ReduceLROnPlateau on the validation metric), ``"linear"`` (warm-up, then
        linear decay to 0 at ``max_steps``) or ``"constant"``.
    plateau_factor : float
        Learning-rate factor of the plateau scheduler.
    plateau_patience : int
        Validations without improvement before the plateau scheduler lowers the rate.
    warmup_steps : int
        Linear warm-up steps (``linear`` scheduler).
    max_steps : int
        Optimiser steps of the run.
    batch_size : int
        Images per micro-batch (per process under DDP).
    grad_accum : int
        Micro-batches accumulated per optimiser step.
    val_every : int
        Validate every this many steps (and at the end).
    early_stopping : int
        Stop after this many validations without improvement; 0 = never.
    min_delta : float
        Smallest change of the metric that counts as an improvement.
    monitor : str
        ``"auto"`` (dice if prompting is trained, else mSA of the heads), ``"dice"``, ``"msa"``,
        ``"loss"``.
    amp : str
        ``"auto"`` (bf16 on CUDA, off on CPU), ``"bf16"``, ``"fp16"``, ``"off"``.
    clip_grad : float
        Gradient-norm clip; 0 = off.
    seed : int
        Seed of everything random in the run (weights, patches, prompts).
    """

    lr: float = 1e-5
    weight_decay: float = 0.01
    scheduler: str = "plateau"
    plateau_factor: float = 0.9
    plateau_patience: int = 3
    warmup_steps: int = 0
    max_steps: int = 10000
    batch_size: int = 2
    grad_accum: int = 1
    val_every: int = 500
    early_stopping: int = 10
    min_delta: float = 0.0
    monitor: str = "auto"
    amp: str = "auto"
    clip_grad: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class RunConfig:
    """Where the run writes, and how often.

    Attributes
    ----------
    name : str
        Name of the trained model (its card's name).
    out_dir : str
        Run folder: ``checkpoints/last.pt``, ``checkpoints/best.pt``, ``metrics.csv``,
        ``metrics.png``, ``config.toml`` and the exported ``model.pt``.
    checkpoint_every : int
        Write ``last.pt`` every this many steps (an interruption loses at most these).
    resume : bool
        Continue from ``out_dir/checkpoints/last.pt`` when it exists.
    progress : bool
        Show a progress bar.
    threads : int
        CPU threads torch uses during the run (0 = torch's default, restored afterwards). Small
        models on a busy or 2-core machine run many times faster with 1 (no OpenMP spin-waits).
    """

    name: str = "samscope-model"
    out_dir: str = "runs/samscope-model"
    checkpoint_every: int = 100
    resume: bool = True
    progress: bool = True
    threads: int = 0


#: TOML table name → section dataclass.
SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "augment": AugmentConfig,
    "model": ModelConfig,
    "objectives": ObjectiveConfig,
    "optim": OptimConfig,
    "run": RunConfig,
}


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run (see the module docstring for the file format)."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    objectives: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    architecture: dict | None = None

    def __post_init__(self) -> None:
        validate(self)

    # -- conversions ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Plain dict (tuples as lists), TOML-ready and safe to store in a checkpoint."""
        out: dict[str, Any] = {}
        for name in SECTIONS:
            section = getattr(self, name)
            out[name] = {
                f.name: list(v) if isinstance(v := getattr(section, f.name), tuple) else v
                for f in fields(section)
            }
        if self.architecture:
            out["architecture"] = {
                k: list(v) if isinstance(v, tuple) else v for k, v in self.architecture.items()
            }
        return out

    @classmethod
    def from_dict(cls, table: dict, *, source: str = "configuration") -> TrainConfig:
        """Build from nested dicts (as TOML parses), checking every section, field and type."""
        if not isinstance(table, dict):
            raise InputError(f"{source}: expected a table, got {type(table).__name__}")
        valid = [*SECTIONS, "architecture"]
        unknown = sorted(set(table) - set(valid))
        if unknown:
            raise InputError(
                f"{source}: unknown section(s) {', '.join(map(repr, unknown))}; valid sections: "
                f"{', '.join(valid)} (every field belongs to one of them, e.g. [optim] lr = 1e-5)"
            )
        kwargs: dict[str, Any] = {}
        for name, section_cls in SECTIONS.items():
            values = table.get(name, {})
            if not isinstance(values, dict):
                raise InputError(f"{source}: [{name}] must be a table")
            kwargs[name] = _build_section(section_cls, values, f"{source} [{name}]")
        arch = table.get("architecture")
        if arch is not None:
            kwargs["architecture"] = _check_architecture(arch, source)
        return cls(**kwargs)

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with fields changed by *flat* field name (``patch_size=256``), as the CLI does."""
        owners = flag_fields()
        per_section: dict[str, dict[str, Any]] = {}
        for key, value in overrides.items():
            if key not in owners:
                raise InputError(
                    f"unknown training option {key!r}; valid options: {', '.join(sorted(owners))}"
                )
            section = owners[key]
            cls_field = {f.name: f for f in fields(SECTIONS[section])}[key]
            per_section.setdefault(section, {})[key] = _coerce(
                value, _field_type(SECTIONS[section], cls_field), f"{section}.{key}"
            )
        sections = {
            name: dataclasses.replace(getattr(self, name), **per_section.get(name, {}))
            for name in SECTIONS
        }
        return TrainConfig(**sections, architecture=self.architecture)

    def to_toml(self) -> str:
        """The configuration as TOML text (what ``load_config`` reads back)."""
        lines: list[str] = []
        for name, values in self.to_dict().items():
            lines.append(f"[{name}]")
            for key, value in values.items():
                lines.append(f"{key} = {_toml_value(value)}")
            lines.append("")
        return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _field_type(cls: type, f: dataclasses.Field) -> Any:
    return typing.get_type_hints(cls)[f.name]


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """Check/convert one value to its field's type (strings from the CLI are parsed), with the
    one settings parser every ``--set`` uses (:func:`samscope.settings.coerce_value`)."""
    from samscope.settings import coerce_value

    return coerce_value(value, kind, where)


def _build_section(cls: type, values: dict, where: str) -> Any:
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise InputError(
            f"{where}: unknown field(s) {', '.join(map(repr, unknown))}; valid fields: "
            f"{', '.join(names)}"
        )
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(v, hints[k], f"{where} {k}") for k, v in values.items()})


def _check_architecture(arch: Any, source: str) -> dict:
    from samscope.models.architectures import SamArchitecture

    if not isinstance(arch, dict):
        raise InputError(f"{source}: [architecture] must be a table")
    names = [f.name for f in fields(SamArchitecture) if f.name != "extra"]
    unknown = sorted(set(arch) - set(names))
    if unknown:
        raise InputError(
            f"{source} [architecture]: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"valid fields: {', '.join(names)}"
        )
    if "name" not in arch:
        raise InputError(f"{source} [architecture]: 'name' is required")
    out = dict(arch)
    if "global_attn_indexes" in out:
        out["global_attn_indexes"] = tuple(int(i) for i in out["global_attn_indexes"])
    return out


def flag_fields() -> dict[str, str]:
    """Field name → section name, for every field (the CLI flags)."""
    out: dict[str, str] = {}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            if f.name in out:  # pragma: no cover - guarded by a test
                raise RuntimeError(f"field {f.name!r} is in [{out[f.name]}] and [{section}]")
            out[f.name] = section
    return out


def load_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a TOML configuration, then apply flat ``overrides`` (``patch_size=256``…).

    Raises
    ------
    InputError
        Missing file, TOML syntax error, unknown section or field (named, with the valid ones),
        wrong type or out-of-range value.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"configuration file not found: {path}")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{path}: not valid TOML: {err}") from None
    config = TrainConfig.from_dict(table, source=str(path))
    return config.replace(**overrides) if overrides else config


# typing helpers used by the CLI to build flags
def flag_type(name: str) -> Any:
    """Python type of flag ``name`` (tuple fields are written as comma-separated strings)."""
    section = flag_fields()[name]
    kind = typing.get_type_hints(SECTIONS[section])[name]
    if typing.get_origin(kind) is tuple or isinstance(kind, types.GenericAlias):
        return str
    return kind
