"""Building what a run trains from its configuration: networks, freezing, LoRA, data sources.

Kept apart from the loop (:mod:`samscope.training.trainer`) so each piece can be checked — and
every bad input reported — before the first step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from samscope.errors import InputError
from samscope.models.architectures import SamArchitecture
from samscope.models.card import ModelCard
from samscope.models.lora import LoraSettings
from samscope.training.config import TrainConfig
from samscope.training.data import (
    LabelledImage,
    SimulatedSource,
    WeightedSamples,
    load_labelled,
    split_samples,
)

__all__ = [
    "DataSources",
    "Networks",
    "apply_freeze",
    "build_networks",
    "build_sources",
    "initialise_weights",
    "trained_card",
]


def initialise_weights(sam: nn.Module) -> nn.Module:
    """Give a freshly built SAM the initialisation segment-anything's modules get (in place).

    ``transformers`` initialises SAM's image encoder with a standard deviation of 1e-10 (its
    ``SamVisionConfig.initializer_range``: the weights are meant to be overwritten by a
    checkpoint), so its output is ~0 and it barely trains; and it draws the prompt encoder's
    random Fourier matrix with a standard deviation of ``hidden_size / 2`` where segment-anything
    uses 1, which turns nearby clicks into unrelated codes. From scratch, samscope therefore
    resets every linear, convolution, embedding and normalisation layer to PyTorch's defaults
    (what ``segment_anything.build_sam`` gets without a checkpoint), zeroes the absolute and
    relative position embeddings (as segment-anything), and draws the Fourier matrix from N(0, 1).
    """
    for module in sam.modules():
        if isinstance(module, nn.Linear | nn.Conv2d | nn.ConvTranspose2d | nn.Embedding | nn.LayerNorm):
            module.reset_parameters()
        elif type(module).__name__.endswith("LayerNorm") and hasattr(module, "weight"):
            with torch.no_grad():
                module.weight.fill_(1.0)
                module.bias.zero_()
        elif hasattr(module, "rel_pos_h"):
            with torch.no_grad():
                module.rel_pos_h.zero_()
                module.rel_pos_w.zero_()
    with torch.no_grad():
        if getattr(sam.vision_encoder, "pos_embed", None) is not None:
            sam.vision_encoder.pos_embed.zero_()
        pe = sam.shared_image_embedding.positional_embedding
        pe.copy_(torch.randn(pe.shape, dtype=pe.dtype))
    return sam


@dataclass
class Networks:
    """The modules a run trains.

    Attributes
    ----------
    sam : transformers.SamModel
    instance_head, distance_head : nn.Module or None
    arch : SamArchitecture
    base_card : ModelCard or None
        Card of the model training started from (None for random initialisation).
    lora : LoraSettings or None
    """

    sam: nn.Module
    instance_head: nn.Module | None
    distance_head: nn.Module | None
    arch: SamArchitecture
    base_card: ModelCard | None
    lora: LoraSettings | None


def _architecture(config: TrainConfig) -> SamArchitecture:
    from samscope.models.architectures import (
        architecture_from_dict,
        get_architecture,
        register_architecture,
    )

    if config.architecture:
        try:
            arch = architecture_from_dict(config.architecture)
        except (TypeError, ValueError) as err:
            raise InputError(f"[architecture]: {err}") from None
        if arch.name != config.model.model and config.model.init == "random":
            raise InputError(
                f"[architecture] name {arch.name!r} differs from model.model "
                f"{config.model.model!r}; set model = {arch.name!r}"
            )
        try:
            return register_architecture(arch)
        except ValueError as err:
            raise InputError(str(err)) from None
    name = config.model.model
    try:
        return get_architecture(name)
    except KeyError:
        pass
    from samscope.models.registry import get_card

    try:
        return get_architecture(get_card(name).architecture)
    except Exception:
        raise InputError(
            f"model.init = 'random' needs an architecture: {name!r} is neither a known "
            "architecture nor a registered model; add an [architecture] table or use one of "
            "vit_b, vit_l, vit_h, vit_test"
        ) from None


def _new_instance_head(arch: SamArchitecture, kind: str) -> nn.Module:
    """A random instance head: µSAM's UNETR or the light three-output head at input resolution."""
    if kind == "light":
        from samscope.models.distance_head import DistanceMapHead

        steps = max(2, int(arch.patch_size).bit_length() - 1)
        return DistanceMapHead.for_architecture(arch, upsample_steps=steps, out_channels=3)
    from samscope.models.heads import InstanceDistanceHead

    return InstanceDistanceHead.for_architecture(arch)


def build_networks(config: TrainConfig) -> Networks:
    """Create (random init) or load (pretrained) the networks, then freeze and add LoRA.

    Raises
    ------
    InputError, ModelNotFoundError, CheckpointError
        Unknown model, weights not available offline, or nothing left to train.
    """
    from samscope.models.architectures import build_sam
    from samscope.models.distance_head import DistanceMapHead

    m, o = config.model, config.objectives
    seed = config.optim.seed
    instance = distance = None
    base_card = None
    if m.init == "random":
        arch = _architecture(config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            sam = initialise_weights(build_sam(arch))
            if o.instance_head:
                instance = _new_instance_head(arch, o.instance_head_kind)
            if o.distance_head:
                distance = DistanceMapHead.for_architecture(arch)
    else:
        from samscope.models.registry import load_model

        if config.architecture:
            _architecture(config)  # registered so a checkpoint of it can be rebuilt
        loaded = load_model(m.model, device="cpu")
        sam, base_card = loaded.sam, loaded.card
        arch = loaded.arch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if o.instance_head:
                instance = loaded.instance_head or _new_instance_head(arch, o.instance_head_kind)
            if o.distance_head:
                distance = getattr(loaded, "distance_head", None) or DistanceMapHead.for_architecture(arch)
    sam.train()
    for head in (instance, distance):
        if head is not None:
            head.train()
            for p in head.parameters():
                p.requires_grad_(True)
    apply_freeze(sam, config.model.freeze, prompt_objective=o.prompt)
    lora = None
    if m.lora_rank:
        from samscope.models.lora import add_lora

        lora = add_lora(
            sam, rank=m.lora_rank, alpha=m.lora_alpha or None, dropout=m.lora_dropout, seed=seed
        )
    from samscope.training.attention import use_training_attention

    use_training_attention(sam)
    trainable = sum(
        p.numel()
        for module in (sam, instance, distance)
        if module is not None
        for p in module.parameters()
        if p.requires_grad
    )
    if trainable == 0:
        raise InputError(
            "nothing left to train: every part is frozen; unfreeze a part, add a head or LoRA"
        )
    return Networks(sam, instance, distance, arch, base_card, lora)


def apply_freeze(sam: nn.Module, parts: tuple[str, ...], *, prompt_objective: bool = True) -> None:
    """Set ``requires_grad`` per part (``image_encoder``, ``prompt_encoder``, ``mask_decoder``).

    The prompt encoder's random Fourier matrix (``shared_image_embedding``) is always fixed: it
    is a buffer in segment-anything, never trained. Without the prompt objective the prompt
    encoder and mask decoder receive no gradient, so they are frozen too.
    """
    modules = {
        "image_encoder": sam.vision_encoder,
        "prompt_encoder": sam.prompt_encoder,
        "mask_decoder": sam.mask_decoder,
    }
    frozen = set(parts)
    if not prompt_objective:
        frozen |= {"prompt_encoder", "mask_decoder"}
    for name, module in modules.items():
        for p in module.parameters():
            p.requires_grad_(name not in frozen)
    for p in sam.shared_image_embedding.parameters():
        p.requires_grad_(False)


def trained_card(config: TrainConfig, nets: Networks) -> ModelCard:
    """The card of the model a run produces."""
    parts = [k for k in ("prompt", "instance_head", "distance_head") if getattr(config.objectives, k)]
    origin = "random initialisation" if config.model.init == "random" else config.model.model
    description = f"samscope train ({', '.join(parts)}) from {origin}"
    base = nets.base_card
    if base is None:
        return ModelCard(
            name=config.run.name,
            architecture=nets.arch.name,
            description=description,
            source="samscope",
            has_instance_head=nets.instance_head is not None,
        )
    return replace(
        base,
        name=config.run.name,
        description=description,
        urls=(),
        known_hash=None,
        filename="",
        source="samscope",
        has_instance_head=nets.instance_head is not None,
        shipped=None,
    )


@dataclass
class DataSources:
    """Training and validation data of a run."""

    train: list[LabelledImage] | SimulatedSource
    val: list[LabelledImage] | SimulatedSource
    n_val: int


def _weighted_samples(d) -> WeightedSamples:
    """Read each ``train_images`` entry on its own and weight it by ``train_weights``."""
    n = len(d.train_images)
    if len(d.train_weights) != n:
        raise InputError(
            f"data.train_weights has {len(d.train_weights)} weight(s) for {n} train_images "
            "entries; give one weight per entry (or none)"
        )
    if any(not float(w) >= 0 for w in d.train_weights) or not sum(d.train_weights) > 0:
        raise InputError(f"data.train_weights must be >= 0 and not all 0, got {list(d.train_weights)}")
    for what, paths in (("train_labels", d.train_labels), ("train_masks", d.train_masks)):
        if paths and len(paths) != n:
            raise InputError(
                f"with data.train_weights, {what} must have one entry per train_images entry "
                f"({n}), got {len(paths)}"
            )
    groups = []
    for i in range(n):
        groups.append(
            load_labelled(
                [d.train_images[i]],
                [d.train_labels[i]] if d.train_labels else (),
                [d.train_masks[i]] if d.train_masks else (),
                slices=d.slices,
            )
        )
    return WeightedSamples(groups, [float(w) for w in d.train_weights])


def build_sources(config: TrainConfig) -> DataSources:
    """Read and check the data (every bad input is reported here, before training)."""
    d = config.data
    if d.simulate:
        size = d.simulate_size or d.patch_size
        if d.train_images:
            raise InputError("give either data.simulate or data.train_images, not both")
        from samscope.simulate.dataset import config_for

        try:
            config_for(d.simulate)  # the simulator exists and its defaults are valid
        except ImportError as err:
            raise InputError(
                f"data.simulate = {d.simulate!r}: this simulator is not available ({err})"
            ) from None
        train = SimulatedSource(d.simulate, seed=d.simulate_seed, size=size, offset=d.n_val)
        val = SimulatedSource(d.simulate, seed=d.simulate_seed, size=size, offset=0)
        return DataSources(train, val, d.n_val)
    if not d.train_images:
        raise InputError(
            "no training data: set data.train_images and data.train_labels (or train_masks), "
            "or data.simulate"
        )
    if d.train_weights:
        samples = _weighted_samples(d)
    else:
        samples = load_labelled(d.train_images, d.train_labels, d.train_masks, slices=d.slices)
    if d.val_images:
        val = load_labelled(d.val_images, d.val_labels, d.val_masks, slices=d.val_slices)
        train = samples
    else:
        rng = np.random.default_rng(d.split_seed)
        train, val = split_samples(samples, d.val_fraction, rng)
    from samscope.training.data import check_has_objects

    check_has_objects(train, "training split")
    check_has_objects(val, "validation split")
    return DataSources(train, val, d.n_val)
