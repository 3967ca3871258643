"""Low-rank adaptation (LoRA) of the image encoder's attention, through ``peft``.

:func:`add_lora` wraps the ``qkv`` projection of every image-encoder block (samscope's
:class:`~samscope.models.attention.RelPosAttention` keeps it an ``nn.Linear``) in a ``peft`` LoRA
layer: ``W x + (alpha / r) · B A x`` with ``A`` (r × in) random, ``B`` (out × r) zero, so the
wrapped model starts out computing exactly what it did. Only ``A`` and ``B`` are trainable in
the encoder afterwards.

For inference the update is folded into the weights (:func:`merge_lora`): the model is again a
plain ``SamModel`` with the original state-dict keys, as fast as before and loadable anywhere.
Checkpoints written during training keep the base weights and the LoRA factors apart
(:func:`split_lora_state`); :func:`merge_lora_state` folds them with tensor arithmetic alone, so
loading such a checkpoint for inference does not need ``peft``.

``peft`` is in the ``train`` extra (``pip install samscope[train]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from samscope.errors import InputError

__all__ = [
    "LoraSettings",
    "add_lora",
    "has_lora",
    "join_lora_state",
    "lora_parameters",
    "lora_settings_of",
    "merge_lora",
    "merge_lora_state",
    "split_lora_state",
]

_ADAPTER = "default"
_BASE = re.compile(r"^(?P<module>.+)\.base_layer\.(?P<param>weight|bias)$")
_FACTOR = re.compile(r"^(?P<module>.+)\.lora_(?P<which>[AB])\.(?P<adapter>[^.]+)\.weight$")


@dataclass(frozen=True)
class LoraSettings:
    """How LoRA was (or is to be) applied.

    Attributes
    ----------
    rank : int
        Rank ``r`` of the update.
    alpha : float
        Scaling numerator: the update is multiplied by ``alpha / rank``.
    dropout : float
        Dropout on the LoRA branch's input (training only).
    targets : tuple of str
        Names of the linear layers wrapped inside the image encoder.
    """

    rank: int
    alpha: float
    dropout: float = 0.0
    targets: tuple[str, ...] = ("qkv",)

    @property
    def scaling(self) -> float:
        """``alpha / rank``."""
        return self.alpha / self.rank


def _peft():
    try:
        import peft
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "LoRA needs peft: pip install 'samscope[train]' (or pip install peft)"
        ) from err
    return peft


def add_lora(
    sam: nn.Module, *, rank: int, alpha: float | None = None, dropout: float = 0.0,
    targets: tuple[str, ...] = ("qkv",), seed: int | None = None,
) -> LoraSettings:  # fmt: skip
    """Wrap the image encoder's attention projections of ``sam`` in LoRA layers (in place).

    Parameters
    ----------
    sam : transformers.SamModel
    rank : int
        LoRA rank (>= 1).
    alpha : float, optional
        Scaling numerator; default ``rank`` (scale 1).
    dropout : float
        Dropout on the LoRA input.
    targets : tuple of str
        Linear-layer names inside ``sam.vision_encoder`` to wrap.
    seed : int, optional
        Seed for the random ``A`` factors (the global torch RNG is left untouched).

    Returns
    -------
    LoraSettings

    Notes
    -----
    Afterwards only the LoRA factors of the image encoder require gradients; prompt encoder and
    mask decoder keep their ``requires_grad`` flags.
    """
    if rank < 1:
        raise InputError(f"LoRA rank must be >= 1, got {rank}")
    if has_lora(sam):
        raise InputError("this model already has LoRA layers")
    settings = LoraSettings(int(rank), float(alpha if alpha else rank), float(dropout), tuple(targets))
    peft = _peft()
    config = peft.LoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.targets),
        bias="none",
    )
    if seed is None:
        peft.inject_adapter_in_model(config, sam.vision_encoder, adapter_name=_ADAPTER)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            peft.inject_adapter_in_model(config, sam.vision_encoder, adapter_name=_ADAPTER)
    wrapped = [m for m in sam.vision_encoder.modules() if _is_lora_layer(m)]
    if not wrapped:  # pragma: no cover - guarded by peft raising first
        raise InputError(f"no layer named {settings.targets} in the image encoder")
    return settings


def _is_lora_layer(module: nn.Module) -> bool:
    return hasattr(module, "lora_A") and hasattr(module, "base_layer")


def has_lora(model: nn.Module) -> bool:
    """Whether ``model`` contains LoRA layers."""
    return any(_is_lora_layer(m) for m in model.modules())


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The LoRA factors of ``model``."""
    return [p for n, p in model.named_parameters() if ".lora_A." in n or ".lora_B." in n]


def merge_lora(sam: nn.Module) -> nn.Module:
    """Fold every LoRA update into its base weights and remove the LoRA layers (in place).

    The state dict has the plain ``transformers`` keys again. Returns ``sam``.
    """
    for parent in list(sam.modules()):
        for name, child in list(parent.named_children()):
            if _is_lora_layer(child):
                child.merge(safe_merge=True)
                setattr(parent, name, child.get_base_layer())
    return sam


def split_lora_state(
    state: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Separate a state dict of a LoRA-wrapped model into base weights and LoRA factors.

    Parameters
    ----------
    state : mapping
        ``model.state_dict()`` with peft's keys (``….qkv.base_layer.weight``,
        ``….qkv.lora_A.default.weight``, ``….qkv.lora_B.default.weight``).

    Returns
    -------
    base : dict
        The plain keys (``….qkv.weight``): the *unmerged* original weights.
    factors : dict
        ``"….qkv.lora_A"`` → ``(r, in)``, ``"….qkv.lora_B"`` → ``(out, r)``.
    """
    base: dict[str, torch.Tensor] = {}
    factors: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if m := _BASE.match(key):
            base[f"{m['module']}.{m['param']}"] = value
        elif m := _FACTOR.match(key):
            factors[f"{m['module']}.lora_{m['which']}"] = value
        else:
            base[key] = value
    return base, factors


def join_lora_state(
    base: Mapping[str, torch.Tensor], factors: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Inverse of :func:`split_lora_state`: peft's keys for a LoRA-wrapped model.

    Weights and biases of the layers that have factors move under ``base_layer``; the factors
    get peft's adapter name.
    """
    out: dict[str, torch.Tensor] = {}
    wrapped = {k.rsplit(".lora_", 1)[0] for k in factors}
    for key, value in base.items():
        module, _, param = key.rpartition(".")
        if module in wrapped and param in ("weight", "bias"):
            out[f"{module}.base_layer.{param}"] = value
        else:
            out[key] = value
    for key, value in factors.items():
        module, which = key.rsplit(".lora_", 1)
        out[f"{module}.lora_{which}.{_ADAPTER}.weight"] = value
    return out


def merge_lora_state(
    base: Mapping[str, torch.Tensor], factors: Mapping[str, torch.Tensor], scaling: float
) -> dict[str, torch.Tensor]:
    """Fold LoRA factors into plain weights: ``W + scaling · B @ A`` (no ``peft`` needed).

    Raises
    ------
    InputError
        If a factor has no partner or its module has no weight in ``base``.
    """
    out = dict(base)
    modules = {k.rsplit(".lora_", 1)[0] for k in factors}
    for module in sorted(modules):
        a, b = factors.get(f"{module}.lora_A"), factors.get(f"{module}.lora_B")
        weight = out.get(f"{module}.weight")
        if a is None or b is None or weight is None:
            raise InputError(f"incomplete LoRA factors for {module!r}")
        delta = (b.float() @ a.float()) * float(scaling)
        out[f"{module}.weight"] = (weight.float() + delta).to(weight.dtype)
    return out


def lora_settings_of(model: nn.Module) -> LoraSettings | None:
    """Rank, alpha and targets of the LoRA layers in ``model`` (None without LoRA)."""
    for module in model.modules():
        if _is_lora_layer(module):
            rank = int(module.r[_ADAPTER])
            scaling = float(module.scaling[_ADAPTER])
            drop = module.lora_dropout[_ADAPTER]
            p = float(getattr(drop, "p", 0.0))
            targets = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if _is_lora_layer(m)})
            return LoraSettings(rank, scaling * rank, p, tuple(targets))
    return None
