"""Building a :class:`~samscope.models.sam.SamscopeModel` from weights: devices, SAM, heads.

:mod:`samscope.models.registry` decides *which* weights (name, file, cache); this module turns
them into modules on a device. Everything here imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from samscope.errors import CheckpointError, InputError
from samscope.models.card import ModelCard

if TYPE_CHECKING:  # pragma: no cover
    from samscope.models.sam import SamscopeModel

#: Seed of the deterministic random weights of ``vit_test``.
TEST_MODEL_SEED = 0


def default_device() -> str:
    """``"cuda"`` if torch sees a CUDA device, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str) -> str:
    """``device`` if torch can use it here; InputError saying what is available otherwise."""
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"unknown device {device!r}; use cpu or cuda (cuda:0, cuda:1, …)") from None
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"device {device!r}: no CUDA device is available here "
                f"(torch {torch.__version__}{'' if torch.version.cuda else ', built without CUDA'}); "
                "use --device cpu"
            )
        index = torch.device(device).index
        if index is not None and index >= torch.cuda.device_count():
            raise InputError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here"
            )
    elif kind == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {device!r} is not available here; use --device cpu")
    return device


def build_with_weights(arch_name: str, sam_state):
    """Build ``transformers.SamModel`` without a random init and load ``sam_state`` strictly."""
    import torch

    from samscope.models.architectures import build_sam, get_architecture
    from samscope.models.checkpoint import load_state_dict_strict

    if get_architecture(arch_name).encoder == "hiera":  # SAM2: transformers.Sam2Model
        from samscope.models.sam2_model import build_sam2_with_weights

        return build_sam2_with_weights(arch_name, sam_state)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in sam_state.items()}
    if get_architecture(arch_name).encoder == "compact":
        # 2 M parameters: a real (random) build costs milliseconds, whereas building on the meta
        # device routes every initialiser through torch's reference kernels (≈1 s of imports)
        sam = build_sam(arch_name)
        load_state_dict_strict(sam, state, what=f"{arch_name} SAM")
    else:
        with torch.device("meta"):
            sam = build_sam(arch_name)
        load_state_dict_strict(sam, state, what=f"{arch_name} SAM", assign=True)
    sam.tie_weights()
    left = [n for n, t in [*sam.named_parameters(), *sam.named_buffers()] if t.is_meta]
    if left:  # pragma: no cover - a transformers change added state outside the state dict
        raise CheckpointError(f"tensors left uninitialised after loading: {left[:5]}")
    return sam.eval()


def build_test_model(card: ModelCard, device: str) -> SamscopeModel:
    """``vit_test``: deterministic random weights (seed :data:`TEST_MODEL_SEED`, global RNG untouched)."""
    import torch

    from samscope.models.architectures import build_sam
    from samscope.models.heads import InstanceDistanceHead
    from samscope.models.sam import SamscopeModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TEST_MODEL_SEED)
        sam = build_sam(card.architecture)
        head = InstanceDistanceHead.for_architecture(card.architecture) if card.has_instance_head else None
    return SamscopeModel(sam, card, instance_head=head, device=device)


def distance_head(converted):
    """The distance-map head of a samscope checkpoint, or None."""
    if converted.distance_state is None:
        return None
    from samscope.models.checkpoint import load_state_dict_strict

    try:
        from samscope.models.distance_head import DistanceMapHead
    except ImportError as err:  # pragma: no cover - the module ships with samscope
        raise CheckpointError(f"this checkpoint has a distance-map head, which needs {err}") from None
    try:
        head = DistanceMapHead(**(converted.distance_config or {}))
    except TypeError as err:
        raise CheckpointError(f"cannot rebuild the distance-map head: {err}") from None
    load_state_dict_strict(head, converted.distance_state, what="distance-map head")
    return head.eval()
