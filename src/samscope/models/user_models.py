"""The record of models a user imported under their own names (``samscope models import --name``).

The cards live in ``user-models.json`` in the models cache (:func:`user_models_path`), each with
its architecture's spec, so that every later process can register and load them offline.
:mod:`samscope.models.registry` reads the record into its cards (a built-in name always wins);
this module reads and writes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from samscope.errors import InputError, ModelNotFoundError
from samscope.models.cache import models_dir
from samscope.models.card import ModelCard, card_from_dict, card_to_dict

#: The record of the models a user imported under their own names, in :func:`models_dir`.
USER_MODELS_FILE = "user-models.json"


def user_models_path() -> Path:
    """Where the cards of models imported with ``--name`` are recorded."""
    return models_dir() / USER_MODELS_FILE


def read_user_models(path: Path) -> dict:
    """The record at ``path`` (``{"models": {name: entry}}``); a damaged one is an error."""
    import json

    try:
        records = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(records, dict) or not isinstance(records.get("models"), dict):
            raise ValueError("no 'models' table")
    except (OSError, ValueError) as err:
        raise ModelNotFoundError(
            f"the record of imported models {path} is damaged ({err}); delete it and import "
            "your models again (samscope models import FILE --name NAME)"
        ) from None
    return records


def recorded_cards(records: dict, path: Path) -> Iterator[tuple[str, ModelCard]]:
    """``(name, card)`` of each entry of ``records``, registering its architecture on the way.

    An entry that cannot be read is skipped with a warning: one bad record must not hide the
    others.
    """
    from samscope.models.architectures import (
        ARCHITECTURES,
        architecture_from_dict,
        register_architecture,
    )

    for name, entry in records["models"].items():
        try:
            arch = entry.get("architecture_spec")
            if arch is not None and arch.get("name") not in ARCHITECTURES:
                register_architecture(architecture_from_dict(dict(arch)))
            card = card_from_dict(entry["card"], strict=False)
        except Exception as err:  # noqa: BLE001 - one bad record must not hide the others
            logging.getLogger(__name__).warning("skipping imported model %r in %s: %s", name, path, err)
            continue
        yield name, card


def check_new_name(name: str) -> None:
    """InputError unless ``name`` can name a model (letters, digits, ``._+-``; no path)."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}", name) or name.endswith((".pt", ".pth")):
        raise InputError(
            f"cannot register a model called {name!r}: use letters, digits and . _ + - "
            "(no path, no .pt ending), e.g. --name my-nuclei"
        )


def record_user_model(card: ModelCard, imported_from: Path) -> None:
    """Add (or replace) ``card`` in the record, atomically, with its architecture's spec."""
    import json

    from samscope.io import atomic_target
    from samscope.models.architectures import architecture_to_dict, get_architecture

    path = user_models_path()
    records = read_user_models(path) if path.is_file() else {"models": {}}
    records["models"][card.name] = {
        "card": card_to_dict(card),
        "architecture_spec": architecture_to_dict(get_architecture(card.architecture)),
        "imported_from": str(imported_from.resolve()),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path, overwrite=True) as tmp:
        tmp.write_text(json.dumps(records, indent=1), encoding="utf-8")
