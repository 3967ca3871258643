"""Checkpoint files: reading safely, recognising formats, converting keys, strict loading.

Formats samscope reads (:func:`detect_format` names them):

``segment-anything``
    Meta's original state dict (``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``),
    as in ``sam_vit_b_01ec64.pth`` and µSAM's published model files; a ``sam.`` prefix is removed.
``micro-sam``
    A dict with ``model_state`` (a segment-anything state dict, keys possibly prefixed ``sam.``)
    and optionally ``decoder_state`` (the UNETR instance decoder, see
    :class:`~samscope.models.heads.InstanceDistanceHead`), as ``torch_em``'s trainer and
    ``micro_sam.training`` write them; other entries (optimizer state, pickled training objects)
    are ignored.
``unetr-decoder``
    A ``decoder_state`` on its own (µSAM ships it as a second file, ``vit_b_lm_decoder.pt``).
``transformers``
    ``transformers.SamModel``'s own state dict (``vision_encoder.*``, …), optionally with
    ``instance_head.*`` keys for the head (what :func:`save_checkpoint` writes as safetensors).
``sam2``
    Meta's SAM2 / SAM2.1 file (``{"model": state}``, ``image_encoder.trunk.*`` keys), converted
    strictly to ``transformers.Sam2Model`` by :mod:`samscope.models.sam2_convert`.
``samscope``
    samscope's self-describing file (what ``samscope train`` writes)::

        {"format": "samscope", "format_version": 1,
         "architecture": {SamArchitecture fields}, "card": {ModelCard fields},
         "model_state": transformers keys,
         "instance_head_state": … | None, "distance_head_state": … | None,
         "distance_head_config": {constructor keywords} | None,
         "lora": {"rank", "alpha", "scaling", "state": {"<module>.lora_A"/"lora_B": …}} | None,
         "training": {"config", "step", "best_metric", optimiser state, …} | None}

    The architecture travels with the weights, so custom architectures rebuild without being
    registered first. ``model_state`` holds the base weights; a LoRA training checkpoint keeps its
    factors apart under ``lora`` and they are folded in on loading (``W + alpha/r · B A``).

Files are read with ``torch.load(..., weights_only=True)``: nothing in them is executed. Python
objects a training checkpoint pickles besides its weights (loss functions, datasets) are replaced
by inert placeholders (:class:`SkippedObject`) instead of being imported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from samscope.errors import CheckpointError
from samscope.models.architectures import ARCHITECTURES, SamArchitecture
from samscope.models.card import card_from_dict, card_to_dict  # noqa: F401 - card_from_dict re-exported
from samscope.models.checkpoint_keys import (
    SHARED_KEY,
    TIED_KEY,
    segment_anything_to_transformers,
    strip_prefix,  # noqa: F401 - re-exported (public since before the split)
    tie_shared_embedding,
    transformers_to_segment_anything,
)

Format = Literal["segment-anything", "micro-sam", "unetr-decoder", "transformers", "samscope", "sam2"]
StateDict = dict[str, torch.Tensor]

#: How many missing / unexpected keys an error message lists.
MAX_LISTED_KEYS = 20

HEAD_PREFIX = "instance_head."

#: Version of the ``samscope`` checkpoint layout this code writes (and the newest it reads).
SAMSCOPE_FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------
# reading files
# --------------------------------------------------------------------------------------------


class SkippedObject:
    """Stands in for a pickled Python object that is not a tensor or a plain container.

    The object's class is never imported; :attr:`qualified_name` says what it was.
    """

    qualified_name = "?"

    def __new__(cls, *args, **kwargs):  # noqa: D102 - accepts whatever pickle passes
        return object.__new__(cls)

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass

    def __repr__(self) -> str:
        return f"<skipped {self.qualified_name}>"


def _placeholders(names: list[str]) -> list[tuple[type, str]]:
    out = []
    for name in names:
        cls_name = "Skipped_" + re.sub(r"\W", "_", name)
        out.append((type(cls_name, (SkippedObject,), {"qualified_name": name}), name))
    return out


def _looks_like_torch_file(path: Path) -> bool:
    """A zip archive (torch.save since 1.6) or a legacy pickle stream (protocol 2+)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5)


def _torch_reason(err: Exception) -> str:
    """torch's error without its advice to retry with ``weights_only=False`` (never the fix here)."""
    text = str(err).strip()
    if "Weights only load failed" in text:
        for line in text.splitlines():
            if line.strip().startswith(("WeightsUnpickler error:", "Unsupported operand")):
                return line.strip()
        return f"{type(err).__name__} while unpickling"
    first = text.splitlines()[0] if text else type(err).__name__
    return first.split(". ")[0][:200]


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file without executing anything in it.

    Parameters
    ----------
    path : str or Path
        A ``.pth``/``.pt`` file written by ``torch.save`` or a ``.safetensors`` file.

    Returns
    -------
    dict
        The stored object (a state dict, or a dict holding state dicts).

    Raises
    ------
    CheckpointError
        If the file is missing, is not a checkpoint, or needs something ``weights_only``
        loading cannot provide.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as err:
            raise CheckpointError(f"cannot read {path} as safetensors: {err}") from err
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickled non-tensor objects, or not a checkpoint at all
        failure: Exception = err
    try:  # a training checkpoint: stand in inert placeholders for the pickled objects
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # not a zip-format torch file: nothing more to try
        names = []
    if names:
        try:
            with torch.serialization.safe_globals(_placeholders(names)):
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            failure = err
    if not _looks_like_torch_file(path):
        raise CheckpointError(
            f"cannot read {path}: it is not a model checkpoint (neither a torch file nor "
            "safetensors; damaged, incomplete or another kind of file). Download or export it again"
        ) from None
    first_line = str(failure).strip().splitlines()[0] if str(failure).strip() else type(failure).__name__
    if not names:  # a torch file that is damaged: re-saving it would not help
        raise CheckpointError(
            f"cannot read {path} as a torch checkpoint: {_torch_reason(failure)}; the file is "
            "damaged or incomplete. Download or export it again"
        ) from None
    raise CheckpointError(
        f"cannot read {path} as a torch checkpoint (weights_only=True): {first_line}. "
        "samscope never unpickles arbitrary code; if you trust the file, re-save its weights "
        "only: torch.save(torch.load(FILE, weights_only=False)['model_state'], 'weights.pt')"
    ) from failure


# --------------------------------------------------------------------------------------------
# formats
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvertedCheckpoint:
    """A checkpoint in samscope's layout.

    Attributes
    ----------
    format : str
        What the file was (see :func:`detect_format`).
    sam_state : dict or None
        ``transformers.SamModel`` state dict (None for a decoder-only file).
    decoder_state : dict or None
        Instance-head state dict (``torch_em`` UNETR decoder keys), if the file has one.
    architecture : SamArchitecture or None
        The architecture stored in a ``samscope`` file (None for other formats: inferred).
    card : dict or None
        The model card's fields stored in a ``samscope`` file.
    distance_state, distance_config : dict or None
        Distance-map head weights and constructor keywords (``samscope`` files).
    training : dict or None
        Training state of a ``samscope`` training checkpoint (config, step, optimiser, …).
    memory_state : dict or None
        SAM2 only: the memory modules of Meta's checkpoint (``transformers.Sam2VideoModel`` keys
        the image model does not use), for the video-memory propagator.
    """

    format: Format
    sam_state: StateDict | None
    decoder_state: StateDict | None = None
    architecture: SamArchitecture | None = None
    card: dict | None = None
    distance_state: StateDict | None = None
    distance_config: dict | None = None
    training: dict | None = None
    memory_state: StateDict | None = None


def _is_tensor_dict(obj) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def detect_format(obj) -> Format:
    """Name the format of a loaded checkpoint object.

    Raises
    ------
    CheckpointError
        If it is none of the formats samscope reads.
    """
    if isinstance(obj, Mapping) and obj.get("format") == "samscope":
        return "samscope"
    from samscope.models.sam2_convert import is_meta_sam2

    if is_meta_sam2(obj):  # Meta's SAM2 / SAM2.1 .pt: {"model": image_encoder.trunk.* …}
        return "sam2"
    if isinstance(obj, Mapping) and "model_state" in obj:
        return "micro-sam"
    if isinstance(obj, Mapping) and "decoder_state" in obj:
        return "unetr-decoder"
    if _is_tensor_dict(obj):
        keys = [k.removeprefix("sam.") for k in obj]
        if any(k.startswith("image_encoder.") for k in keys):
            return "segment-anything"
        if any(k.startswith("vision_encoder.") for k in keys):
            return "transformers"
        if "out_conv.weight" in obj and any(k.startswith("deconv1.") for k in keys):
            return "unetr-decoder"
        raise CheckpointError(
            "unrecognised state dict: expected segment-anything keys (image_encoder.*), "
            f"transformers keys (vision_encoder.*) or a UNETR decoder; first keys: {sorted(obj)[:5]}"
        )
    kind = type(obj).__name__
    extra = f" with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, Mapping) else ""
    raise CheckpointError(f"unrecognised checkpoint: a {kind}{extra}, not a state dict")


def convert_checkpoint(obj) -> ConvertedCheckpoint:
    """Convert a loaded checkpoint object (any format samscope reads) to samscope's layout."""
    fmt = detect_format(obj)
    if fmt == "samscope":
        return _convert_samscope(obj)
    if fmt == "sam2":
        from samscope.models.sam2_convert import convert_meta_checkpoint

        return convert_meta_checkpoint(obj)
    if fmt == "micro-sam":
        model_state = obj["model_state"]
        if not _is_tensor_dict(model_state):
            raise CheckpointError("'model_state' is not a state dict of tensors")
        decoder = obj.get("decoder_state")
        if decoder is not None and not _is_tensor_dict(decoder):
            raise CheckpointError("'decoder_state' is not a state dict of tensors")
        return ConvertedCheckpoint(
            fmt, segment_anything_to_transformers(model_state), dict(decoder) if decoder else None
        )
    if fmt == "segment-anything":
        return ConvertedCheckpoint(fmt, segment_anything_to_transformers(obj))
    if fmt == "unetr-decoder":
        decoder = obj.get("decoder_state", obj)
        if not _is_tensor_dict(decoder):
            raise CheckpointError("'decoder_state' is not a state dict of tensors")
        return ConvertedCheckpoint(fmt, None, dict(decoder))
    sam = {k: v for k, v in obj.items() if not k.startswith(HEAD_PREFIX)}
    tie_shared_embedding(sam)
    head = {k[len(HEAD_PREFIX):]: v for k, v in obj.items() if k.startswith(HEAD_PREFIX)}
    return ConvertedCheckpoint(fmt, sam, head or None)


def _convert_samscope(obj: Mapping) -> ConvertedCheckpoint:
    from samscope.models.architectures import architecture_from_dict

    version = obj.get("format_version")
    if not isinstance(version, int) or version > SAMSCOPE_FORMAT_VERSION:
        raise CheckpointError(
            f"samscope checkpoint format_version {version!r} is newer than this samscope reads "
            f"({SAMSCOPE_FORMAT_VERSION}); upgrade samscope"
        )
    try:
        arch = architecture_from_dict(dict(obj["architecture"]))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"samscope checkpoint has no valid 'architecture': {err}") from None
    state = obj.get("model_state")
    if not _is_tensor_dict(state):
        raise CheckpointError("samscope checkpoint: 'model_state' is not a state dict of tensors")
    sam = dict(state)
    lora = obj.get("lora")
    if lora:
        from samscope.models.lora import merge_lora_state

        try:
            sam = merge_lora_state(sam, lora["state"], float(lora["scaling"]))
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"samscope checkpoint: invalid 'lora' entry: {err}") from None
    tie_shared_embedding(sam)
    heads = {}
    for key in ("instance_head_state", "distance_head_state"):
        value = obj.get(key)
        if value is not None and not _is_tensor_dict(value):
            raise CheckpointError(f"samscope checkpoint: {key!r} is not a state dict of tensors")
        heads[key] = dict(value) if value else None
    card = obj.get("card")
    return ConvertedCheckpoint(
        "samscope",
        sam,
        heads["instance_head_state"],
        architecture=arch,
        card=dict(card) if isinstance(card, Mapping) else None,
        distance_state=heads["distance_head_state"],
        distance_config=dict(obj["distance_head_config"]) if obj.get("distance_head_config") else None,
        training=dict(obj["training"]) if isinstance(obj.get("training"), Mapping) else None,
    )


def load_checkpoint(path: str | Path) -> ConvertedCheckpoint:
    """Read ``path`` safely and convert it (see :func:`read_checkpoint`, :func:`convert_checkpoint`)."""
    try:
        return convert_checkpoint(read_checkpoint(path))
    except CheckpointError as err:
        if str(path) in str(err):
            raise
        raise CheckpointError(f"{path}: {err}") from None


# --------------------------------------------------------------------------------------------
# architecture inference and strict loading
# --------------------------------------------------------------------------------------------


def infer_architecture(sam_state: Mapping[str, torch.Tensor]) -> SamArchitecture:
    """Find the registered architecture whose shapes match a ``transformers`` SAM state dict.

    Width, depth, patch size, input size, neck channels, heads, window size and the blocks with
    global attention are read from the tensor shapes.

    Raises
    ------
    CheckpointError
        If no architecture in :data:`~samscope.models.architectures.ARCHITECTURES` matches.
    """
    try:
        proj = sam_state["vision_encoder.patch_embed.projection.weight"]
        pos = sam_state["vision_encoder.pos_embed"]
        neck = sam_state["vision_encoder.neck.conv1.weight"]
    except KeyError as err:
        raise CheckpointError(f"not a SAM state dict: missing {err.args[0]!r}") from None
    layers = sorted(
        {int(m.group(1)) for k in sam_state if (m := re.match(r"vision_encoder\.layers\.(\d+)\.", k))}
    )
    hidden, patch = int(proj.shape[0]), int(proj.shape[-1])
    grid = int(pos.shape[1])
    found = {
        "hidden_size": hidden,
        "num_layers": len(layers),
        "patch_size": patch,
        "image_size": grid * patch,
        "embed_dim": int(neck.shape[0]),
    }
    rel = {i: sam_state.get(f"vision_encoder.layers.{i}.attn.rel_pos_h") for i in layers}
    if all(r is not None for r in rel.values()) and rel:
        head_dim = int(next(iter(rel.values())).shape[1])
        found["num_heads"] = hidden // head_dim
        found["global_attn_indexes"] = tuple(i for i in layers if rel[i].shape[0] == 2 * grid - 1)
        windowed = [int(rel[i].shape[0]) for i in layers if rel[i].shape[0] != 2 * grid - 1]
        if windowed:
            found["window_size"] = (windowed[0] + 1) // 2
    for arch in ARCHITECTURES.values():
        if all(getattr(arch, k) == v for k, v in found.items()):
            return arch
    desc = ", ".join(f"{k}={v}" for k, v in found.items())
    raise CheckpointError(f"no known SAM architecture has {desc}; known: {sorted(ARCHITECTURES)}")


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED_KEYS])
    more = f", … ({len(keys) - MAX_LISTED_KEYS} more)" if len(keys) > MAX_LISTED_KEYS else ""
    return f"{len(keys)}: {shown}{more}"


def key_problems(module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str = "model") -> list[str]:
    """What keeps ``state`` from loading strictly into ``module``: missing, unexpected and
    mis-shaped keys, each kind as one line listing up to :data:`MAX_LISTED_KEYS` (empty: it fits)."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    problems = []
    if missing:
        problems.append(f"missing keys {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_listed(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches (checkpoint vs {what}) {_listed(mismatched)}")
    return problems


def load_state_dict_strict(
    module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str = "model", assign: bool = False
) -> None:
    """Load ``state`` into ``module``; any missing, unexpected or mis-shaped key is an error.

    ``assign=True`` makes the module use the given tensors (for a module built on the ``meta``
    device, to skip a random initialisation).

    Raises
    ------
    CheckpointError
        Listing up to :data:`MAX_LISTED_KEYS` keys of each kind, with their counts.
    """
    problems = key_problems(module, state, what=what)
    if problems:
        raise CheckpointError(f"checkpoint does not fit the {what}: " + "; ".join(problems))
    module.load_state_dict(dict(state), strict=True, assign=assign)


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def save_checkpoint(
    path: str | Path,
    sam: nn.Module,
    *,
    instance_head: nn.Module | None = None,
    format: Literal["micro-sam", "segment-anything", "safetensors", "samscope"] = "micro-sam",
    distance_head: nn.Module | None = None,
    architecture: SamArchitecture | None = None,
    card=None,
    training: dict | None = None,
) -> Path:
    """Write a model so that samscope — and, for the torch formats, µSAM — can load it.

    Parameters
    ----------
    path : str or Path
        Output file.
    sam : transformers.SamModel
        The network.
    instance_head : InstanceDistanceHead, optional
        Written as ``decoder_state`` (``micro-sam``) or under ``instance_head.*`` (safetensors).
    format : {"micro-sam", "segment-anything", "safetensors", "samscope"}
        ``micro-sam``: ``{"model_state": …, "decoder_state": …}`` with segment-anything keys;
        ``segment-anything``: a plain segment-anything state dict (no head); ``safetensors``:
        transformers keys; ``samscope``: the self-describing layout in the module docstring
        (written atomically: a temporary file, then a rename).
    distance_head : torch.nn.Module, optional
        Distance-map head (``samscope`` format only); its constructor keywords are taken from
        its ``config()`` method when it has one.
    architecture : SamArchitecture, optional
        ``samscope`` format: the architecture (default: the card's, else inferred from shapes).
    card : ModelCard, optional
        ``samscope`` format: the model card to store.
    training : dict, optional
        ``samscope`` format: training state (plain values and tensors only).

    Returns
    -------
    Path
    """
    path = Path(path)
    if format == "samscope":
        return _save_samscope(
            path, sam, instance_head=instance_head, distance_head=distance_head,
            architecture=architecture, card=card, training=training,
        )  # fmt: skip
    if distance_head is not None or training is not None:
        raise CheckpointError(f"the {format} format has no place for a distance head or training state")
    state = {k: v.detach().cpu().contiguous() for k, v in sam.state_dict().items()}
    head = (
        {k: v.detach().cpu().contiguous() for k, v in instance_head.state_dict().items()}
        if instance_head is not None
        else None
    )
    if format == "safetensors":
        from safetensors.torch import save_file

        state.pop(TIED_KEY, None)
        if head:
            state.update({HEAD_PREFIX + k: v for k, v in head.items()})
        save_file(state, str(path))
    elif format == "segment-anything":
        if head is not None:
            raise CheckpointError("the segment-anything format has no place for an instance head")
        torch.save(transformers_to_segment_anything(state), path)
    elif format == "micro-sam":
        out: dict = {"model_state": transformers_to_segment_anything(state)}
        if head is not None:
            out["decoder_state"] = head
        torch.save(out, path)
    else:
        raise ValueError(f"unknown format {format!r}")
    return path


def _cpu_state(module: nn.Module) -> StateDict:
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def _save_samscope(
    path: Path, sam: nn.Module, *, instance_head, distance_head, architecture, card, training
) -> Path:
    from samscope.models.architectures import architecture_to_dict, get_architecture
    from samscope.models.lora import lora_settings_of, split_lora_state

    base, factors = split_lora_state(_cpu_state(sam))
    base.pop(TIED_KEY, None)
    if architecture is None:
        architecture = (
            get_architecture(card.architecture) if card is not None
            else infer_architecture({**base, TIED_KEY: base.get(SHARED_KEY)})
        )  # fmt: skip
    lora = None
    if factors:
        settings = lora_settings_of(sam)
        if settings is None:  # pragma: no cover - factors imply LoRA layers
            raise CheckpointError("LoRA factors without LoRA layers")
        lora = {
            "rank": settings.rank, "alpha": settings.alpha, "scaling": settings.scaling,
            "dropout": settings.dropout, "targets": list(settings.targets), "state": factors,
        }  # fmt: skip
    distance_config = None
    if distance_head is not None and callable(getattr(distance_head, "config", None)):
        distance_config = dict(distance_head.config())
    out = {
        "format": "samscope",
        "format_version": SAMSCOPE_FORMAT_VERSION,
        "architecture": architecture_to_dict(architecture),
        "card": card_to_dict(card) if card is not None else None,
        "model_state": base,
        "instance_head_state": _cpu_state(instance_head) if instance_head is not None else None,
        "distance_head_state": _cpu_state(distance_head) if distance_head is not None else None,
        "distance_head_config": distance_config,
        "lora": lora,
        "training": training,
    }
    from samscope.io import atomic_target

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path, overwrite=True) as tmp:
        torch.save(out, tmp)
    return path
