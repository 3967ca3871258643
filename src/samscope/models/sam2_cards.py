"""Registry cards of Meta's SAM2.1 and SAM2.0 models (Hiera t / s / b+ / l) and a tiny test SAM2.

The URLs are Meta's (``dl.fbaipublicfiles.com/segment_anything_2/``: ``092824/`` for SAM2.1,
``072824/`` for SAM2.0, the files ``sam2.1_hiera_tiny.pt`` … as Meta's
``checkpoints/download_ckpts.sh`` fetches them). **Meta publishes no hash for these files**
(none in the ``sam2`` repository, its download script or its model cards; none found in other
public code either), and samscope does not invent one: the cards say so
(``known_hash=None``, see :data:`NO_PUBLISHED_HASH`). What that means:

- ``samscope models fetch NAME`` downloads the file unchecked (``pooch`` with no hash); every
  load then converts it *strictly* (:mod:`samscope.models.sam2_convert`: every key mapped,
  nothing missing or left over, the shapes of the card's architecture), so a truncated, damaged
  or wrong file fails loudly — but a file altered in a way that keeps its shapes would not be
  noticed;
- ``samscope models import FILE NAME`` accepts a file that converts strictly to the card's
  architecture (:func:`import_unhashed`) instead of comparing hashes.

``sam2_hiera_test`` is a tiny SAM2 with deterministic *random* weights (like ``vit_test``), for
tests and benchmarks only.

Nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path

from samscope.models.card import ModelCard

_BASE = "https://dl.fbaipublicfiles.com/segment_anything_2/"

#: What a SAM2 card's description says about its missing hash.
NO_PUBLISHED_HASH = "no published hash: checked by strict conversion only"

# (size key, Meta's file stem, parameters) — parameter counts from Meta's SAM2 README
_SIZES = (
    ("t", "tiny", "38.9 M"),
    ("s", "small", "46 M"),
    ("b+", "base_plus", "80.8 M"),
    ("l", "large", "224.4 M"),
)


def _card(version: str, key: str, stem: str, params: str) -> ModelCard:
    folder, prefix = ("092824/", "sam2.1") if version == "2.1" else ("072824/", "sam2")
    filename = f"{prefix}_hiera_{stem}.pt"
    return ModelCard(
        name=f"{prefix}_hiera_{key}",
        architecture=f"sam2_hiera_{key}",
        description=(
            f"Segment Anything {version} Hiera-{key.upper()} ({params}), Meta, natural images and "
            f"videos ({NO_PUBLISHED_HASH})"
        ),
        urls=(_BASE + folder + filename,),
        known_hash=None,
        filename=filename,
        licence="Apache-2.0",
        source="meta",
    )


def sam2_cards() -> list[ModelCard]:
    """SAM2.1 t/s/b+/l, SAM2.0 t/s/b+/l and ``sam2_hiera_test``, in listing order."""
    cards = [_card("2.1", *size) for size in _SIZES]
    cards += [_card("2.0", *size) for size in _SIZES]
    cards.append(
        ModelCard(
            name="sam2_hiera_test",
            architecture="sam2_hiera_test",
            description="tiny SAM2 with deterministic RANDOM weights, for tests and benchmarks only",
            licence="MIT",
            source="test",
            has_instance_head=True,
        )
    )
    return cards


def import_unhashed(file: str | Path, card: ModelCard, dest: Path) -> Path:
    """Copy a downloaded SAM2 file into the cache after checking it converts to ``card``.

    For cards without a published hash (every Meta SAM2 card): the file must be a SAM2 checkpoint
    whose strict conversion gives the card's architecture. Copied atomically (a temporary file
    beside ``dest``, then a rename).

    Raises
    ------
    CheckpointError
        If the file is not such a checkpoint (the conversion's message, or the architecture it
        holds).
    """
    import os
    import shutil

    from samscope.errors import CheckpointError
    from samscope.models.checkpoint import load_checkpoint

    file = Path(file)
    converted = load_checkpoint(file)
    arch = converted.architecture.name if converted.architecture is not None else None
    if converted.format != "sam2" or arch != card.architecture:
        what = f"a {arch} SAM2 model" if converted.format == "sam2" else f"a {converted.format} file"
        raise CheckpointError(
            f"{file} is not a file of model {card.name!r}: it holds {what}, expected Meta's "
            f"{card.architecture} checkpoint ({card.filename}); {card.name} has no published hash, "
            "so the file is checked by converting it"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        shutil.copyfile(file, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
