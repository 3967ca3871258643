"""The card of a checkpoint file: what a model loaded from a file (not a registered name) is.

A samscope-format file carries its own card and architecture; any other format (Meta's
segment-anything, µSAM, ``transformers`` safetensors) gets a card built from the file: name =
the file's stem, architecture inferred from the tensor shapes, ``known_hash`` = the file's xxh128.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from samscope.errors import CheckpointError
from samscope.models.card import ModelCard
from samscope.models.hashing import file_hash


def _samscope_card(path: Path, converted) -> ModelCard:
    """The card stored in a samscope-format checkpoint (its architecture registered on the way)."""
    from samscope.models.architectures import register_architecture
    from samscope.models.card import card_from_dict

    try:
        arch = register_architecture(converted.architecture)
    except ValueError as err:
        raise CheckpointError(f"{path}: {err}") from None
    head = converted.decoder_state is not None
    if converted.card is not None:
        card = card_from_dict(converted.card)
        if card.architecture != arch.name:
            raise CheckpointError(
                f"{path}: its card says architecture {card.architecture!r} but it stores {arch.name!r}"
            )
    else:
        card = ModelCard(name=path.stem, architecture=arch.name)
    return replace(
        card,
        description=card.description or f"local checkpoint {path.name} (samscope)",
        urls=(),
        known_hash=file_hash(path),
        filename=path.name,
        source=card.source or "local",
        shipped=None,
        has_instance_head=head,
    )


def card_for_file(path: Path, converted, base: ModelCard | None = None) -> ModelCard:
    """The card of the checkpoint ``path``, already read into ``converted``.

    Parameters
    ----------
    path : Path
        The checkpoint file (hashed for the card's ``known_hash``).
    converted : samscope.models.checkpoint.ConvertedCheckpoint
        What :func:`~samscope.models.checkpoint.load_checkpoint` read from it.
    base : ModelCard, optional
        A registered card whose weights the file replaces (``--checkpoint``): the result keeps
        its name and thresholds; the file must hold the same architecture.

    Raises
    ------
    CheckpointError
        No SAM weights in the file, an architecture that does not fit ``base``, a bad
        architecture record.
    """
    from samscope.models.checkpoint import infer_architecture

    if converted.sam_state is None:
        raise CheckpointError(
            f"{path} holds only an instance decoder, no SAM weights; load the SAM weights and "
            "pass a file that has both (µSAM's {'model_state', 'decoder_state'} format)"
        )
    if converted.format == "samscope" and base is None:
        return _samscope_card(path, converted)
    if converted.architecture is not None:
        from samscope.models.architectures import register_architecture

        try:
            arch = register_architecture(converted.architecture)
        except ValueError as err:
            raise CheckpointError(f"{path}: {err}") from None
    else:
        arch = infer_architecture(converted.sam_state)
    head = converted.decoder_state is not None
    digest = file_hash(path)
    if base is not None:
        if base.architecture != arch.name:
            raise CheckpointError(
                f"{path} holds a {arch.name} model, but {base.name!r} is a {base.architecture}"
            )
        return replace(
            base,
            description=f"{base.name} with weights from {path.name} ({converted.format})",
            urls=(),
            known_hash=digest,
            filename=path.name,
            source="local",
            has_instance_head=head,
        )
    return ModelCard(
        name=path.stem,
        architecture=arch.name,
        description=f"local checkpoint {path.name} ({converted.format})",
        known_hash=digest,
        filename=path.name,
        source="local",
        has_instance_head=head,
    )
