"""Export a training checkpoint as an inference model that every command loads by path or name.

:func:`export_model` reads any checkpoint samscope loads (a run's ``best.pt``/``last.pt`` with
its optimiser state and unmerged LoRA factors included), folds LoRA into the weights, drops the
training state and writes:

- ``samscope`` (default): the self-describing file (architecture, card, heads) that
  ``load_model(path)`` and ``--model path`` read, for custom architectures too;
- ``micro-sam``: ``{"model_state", "decoder_state"}`` with segment-anything keys, for µSAM
  (built-in architectures; no distance-map head);
- ``safetensors``: ``transformers`` keys (plus ``instance_head.*``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from samscope.errors import InputError

__all__ = ["export_model"]


def export_model(
    checkpoint: str | Path,
    output: str | Path,
    *,
    format: Literal["samscope", "micro-sam", "safetensors"] = "samscope",
    name: str | None = None,
    half: bool = False,
    card=None,
) -> Path:
    """Write an inference checkpoint from a training (or any loadable) checkpoint.

    Parameters
    ----------
    checkpoint : str or Path
        The source file.
    output : str or Path
        Where to write.
    format : {"samscope", "micro-sam", "safetensors"}
    name : str, optional
        New model name for the card (``samscope`` format).
    half : bool
        Store floating-point weights as float16 (half the size; loading restores float32).
        ``samscope`` format only.
    card : ModelCard, optional
        The card to store instead of the checkpoint's (``samscope`` format; e.g. a registered
        card, so the file describes itself as the model it ships as).

    Returns
    -------
    Path
    """
    from dataclasses import replace

    from samscope.models.checkpoint import save_checkpoint
    from samscope.models.registry import load_model

    if half and format != "samscope":
        raise InputError("half=True is supported for the 'samscope' format only")
    model = load_model(checkpoint, device="cpu")
    card = card if card is not None else model.card
    if name:
        card = replace(card, name=name)
    source = "samscope" if card.source == "local" else card.source
    card = replace(card, known_hash=None, filename="", shipped=None, source=source)
    if format == "samscope":
        sam, instance, distance = model.sam, model.instance_head, model.distance_head
        if half:
            sam, instance, distance = (
                m.half() if m is not None else None for m in (sam, instance, distance)
            )
        return save_checkpoint(
            output, sam, instance_head=instance,
            distance_head=distance, format="samscope", architecture=model.arch,
            card=card,
        )  # fmt: skip
    if model.distance_head is not None:
        raise InputError(
            f"the {format} format has no place for the distance-map head; export as 'samscope'"
        )
    return save_checkpoint(output, model.sam, instance_head=model.instance_head, format=format)
