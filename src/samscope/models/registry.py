"""The model registry: named cards, an offline-first cache, and :func:`load_model`.

Every named model has one frozen :class:`~samscope.models.card.ModelCard`. Weights live in a
cache directory (:func:`cache_dir`: ``$SAMSCOPE_CACHE_DIR``, else a per-user cache) and get there
in one of two ways, both checked against the published hash:

- ``samscope models fetch NAME`` / :func:`fetch_model` downloads through ``pooch``;
- ``samscope models import FILE --name NAME`` / :func:`import_model` copies a file you downloaded
  elsewhere (for machines without internet).

:func:`load_model` never downloads unless asked (``download=True``): a model that is not in the
cache raises :class:`~samscope.errors.ModelNotFoundError` naming the URL and the import command.

µSAM's fine-tuned models come as two files, the SAM weights and the instance decoder for automatic
segmentation; the registry keeps the decoder's URL and hash next to the card (:func:`model_files`),
and fetch, import and load handle both.

The registry is split along its seams; every name below stays importable from here:

- :mod:`~samscope.models.builtin_cards`: the built-in cards (:data:`DEFAULT_MODEL`,
  :data:`SHIPPED_HASHES`, :class:`RemoteFile`, :func:`shipped_path`);
- :mod:`~samscope.models.cache`: the cache folders and downloads (:func:`cache_dir`);
- :mod:`~samscope.models.hashing`: file hashes (:func:`file_hash`);
- :mod:`~samscope.models.user_models`: the record of models imported under a new name;
- :mod:`~samscope.models.file_cards`: the card of a checkpoint file;
- :mod:`~samscope.models.building`: devices and building the modules (:func:`check_device`).

This module keeps the registered cards, name → file resolution and :func:`load_model`.

Nothing here imports torch until a model is loaded.
"""

from __future__ import annotations

import os
from dataclasses import replace as replace_card
from pathlib import Path
from typing import TYPE_CHECKING

from samscope.errors import CheckpointError, InputError, ModelNotFoundError
from samscope.models.architectures import get_architecture
from samscope.models.building import (
    TEST_MODEL_SEED,
    build_test_model,
    build_with_weights,
    check_device,
    default_device,
    distance_head,
)
from samscope.models.builtin_cards import (
    DEFAULT_MODEL,
    SHIPPED_HASHES,
    RemoteFile,
    builtin_cards,
    shipped_path,
)
from samscope.models.cache import (
    cache_dir,
    cached_path,
    download,
    import_command,
    missing_message,
    models_dir,
)
from samscope.models.card import ModelCard
from samscope.models.file_cards import card_for_file
from samscope.models.hashing import file_hash, hash_matches, hashed_copy, split_hash
from samscope.models.user_models import (
    USER_MODELS_FILE,
    check_new_name,
    read_user_models,
    record_user_model,
    recorded_cards,
    user_models_path,
)

if TYPE_CHECKING:  # pragma: no cover
    from samscope.models.sam import SamscopeModel

__all__ = [
    "DEFAULT_MODEL",
    "SHIPPED_HASHES",
    "TEST_MODEL_SEED",
    "USER_MODELS_FILE",
    "RemoteFile",
    "cache_dir",
    "cached_path",
    "cached_path_of",
    "check_device",
    "fetch_model",
    "file_hash",
    "get_card",
    "import_command",
    "import_model",
    "import_user_model",
    "list_models",
    "load_model",
    "looks_like_path",
    "model_files",
    "models_dir",
    "register",
    "resolve_checkpoint",
    "shipped_path",
    "user_models_path",
]

_CARDS, _DECODERS = builtin_cards()


def _shipped_file(card: ModelCard) -> Path:
    """The verified shipped weights of ``card`` (clear errors for a missing or altered file)."""
    path = shipped_path(card)
    if not path.is_file():
        raise ModelNotFoundError(
            f"model {card.name!r} should ship with samscope at {path}, but the file is missing: "
            "reinstall samscope (pip install --force-reinstall samscope) or retrain it with "
            f"`samscope train --recipe {card.name.replace('-', '_')}`"
        )
    if card.known_hash:
        ok, actual = hash_matches(path, card.known_hash)
        if not ok:
            raise CheckpointError(
                f"the shipped weights {path} of {card.name!r} are damaged or were replaced: hash "
                f"{actual}, expected {card.known_hash}; reinstall samscope"
            )
    return path


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------


def register(card: ModelCard, *, decoder: RemoteFile | None = None, replace: bool = False) -> ModelCard:
    """Add a model card to the registry.

    Parameters
    ----------
    card : ModelCard
        The card; its ``architecture`` must be a known architecture.
    decoder : RemoteFile, optional
        A separate instance-decoder file (role ``"decoder"``), as µSAM publishes.
    replace : bool
        Allow replacing a card of the same name.

    Returns
    -------
    ModelCard
        ``card``.
    """
    get_architecture(card.architecture)  # KeyError with the known names
    if card.name in _CARDS and not replace:
        raise ValueError(f"a model called {card.name!r} is already registered (pass replace=True)")
    if decoder is not None and decoder.role != "decoder":
        raise ValueError("decoder must be a RemoteFile with role 'decoder'")
    _CARDS[card.name] = card
    if decoder is not None:
        _DECODERS[card.name] = decoder
    else:
        _DECODERS.pop(card.name, None)
    return card


def get_card(name: str) -> ModelCard:
    """The card of a registered model.

    Raises
    ------
    ModelNotFoundError
        With the registered names.
    """
    _load_user_models()
    try:
        return _CARDS[name]
    except KeyError:
        raise ModelNotFoundError(
            f"unknown model {name!r}; registered models: {', '.join(_CARDS)} "
            "(or pass the path of a checkpoint file)"
        ) from None


def list_models() -> list[ModelCard]:
    """All registered cards, in registration order (models imported with ``--name`` last)."""
    _load_user_models()
    return list(_CARDS.values())


def model_files(name: str) -> tuple[RemoteFile, ...]:
    """The downloadable files of a model: its weights, then its separate decoder if any.

    Empty for models without a download (``vit_test``).
    """
    card = get_card(name)
    files = []
    if card.shipped:  # carried by the package: nothing to download
        return ()
    if card.urls or card.known_hash:
        files.append(RemoteFile("model", card.urls, card.known_hash, card.filename or f"{name}.pt"))
    if name in _DECODERS:
        files.append(_DECODERS[name])
    return tuple(files)


def fetch_model(name: str, *, progress: bool = True) -> Path:
    """Download a model's files into the cache (unless present with the right hash).

    Parameters
    ----------
    name : str
        A registered model with a download location.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Path
        The cached weights file (a separate decoder file is fetched too).

    Raises
    ------
    ModelNotFoundError
        If the download fails (no network, URL gone); the message names the URLs, the cache path
        and the import command.
    CheckpointError
        If the downloaded file does not have the published hash.
    """
    files = model_files(name)
    if not files:
        raise ModelNotFoundError(f"model {name!r} has nothing to download ({get_card(name).source})")
    paths = [download(name, file, progress=progress) for file in files]
    return paths[0]


def import_model(file: str | Path, name: str, *, replace: bool = False) -> Path:
    """Put a manually downloaded model file into the cache, after checking its hash.

    For a ``name`` that is not registered, the file is registered as a new model of that name
    (:func:`import_user_model`; ``replace`` allows re-importing one).

    The file is hashed while it is copied to a temporary file next to its destination, which then
    replaces the destination atomically. It may be either of a model's files (µSAM's weights or
    its decoder): the hash says which.

    Parameters
    ----------
    file : str or Path
        The downloaded file.
    name : str
        The registered model it belongs to.

    Returns
    -------
    Path
        Where the file now is in the cache.

    Raises
    ------
    CheckpointError
        If its hash matches none of the model's files (the message gives both hashes).
    """
    file = Path(file)
    if name == "sam3" or file.is_dir():  # SAM3's Hugging Face folder (samscope.models.sam3)
        from samscope.models.sam3 import import_sam3_folder

        return import_sam3_folder(file, replace=replace)
    if not file.is_file():
        raise InputError(f"no such file: {file}")
    _load_user_models()
    if name not in _CARDS or name in _USER_STATE["names"]:  # a new name: the user's own model
        return cached_path_of(import_user_model(file, name, replace=replace))
    candidates = [f for f in model_files(name) if f.known_hash]
    if not candidates and get_architecture(get_card(name).architecture).encoder == "hiera":
        from samscope.models.sam2_cards import import_unhashed  # Meta publishes no SAM2 hashes

        return import_unhashed(file, get_card(name), cached_path(model_files(name)[0]))
    if not candidates:
        raise CheckpointError(
            f"model {name!r} has no published hash to check a file against; load the file with "
            "load_model(FILE) or `--checkpoint FILE` instead"
        )
    algorithms = {split_hash(f.known_hash)[0] for f in candidates}
    with hashed_copy(file, models_dir(), algorithms) as (tmp, actual):
        for candidate in candidates:
            algorithm, digest = split_hash(candidate.known_hash)
            if actual[algorithm] == digest:
                dest = cached_path(candidate)
                os.replace(tmp, dest)
                return dest
    expected = "; ".join(f"{c.role} file {c.filename}: {c.known_hash}" for c in candidates)
    got = ", ".join(f"{a}:{d}" for a, d in sorted(actual.items()))
    raise CheckpointError(
        f"{file} is not a file of model {name!r}: its hash is {got}, expected {expected}. "
        "Check that you downloaded the right URL completely (`samscope models info "
        f"{name}` lists them); to register a checkpoint of your own, give it a new name "
        "(--name my-model)."
    )


# --------------------------------------------------------------------------------------------
# models imported under a new name (samscope models import FILE --name NEW)
# --------------------------------------------------------------------------------------------

_USER_STATE: dict = {"key": None, "names": set()}


def _load_user_models() -> None:
    """Register the cards of :func:`user_models_path` (re-read when the file or cache moves)."""
    path = user_models_path()
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError:
        key = (str(path), None)
    if key == _USER_STATE["key"]:
        return
    for name in _USER_STATE["names"]:
        _CARDS.pop(name, None)
    _USER_STATE["names"] = set()
    _USER_STATE["key"] = None
    if key[1] is None:
        _USER_STATE["key"] = key
        return
    records = read_user_models(path)  # a damaged record is an error on every call, never skipped
    _USER_STATE["key"] = key
    for name, card in recorded_cards(records, path):
        if name in _CARDS:  # a built-in name always wins
            continue
        _CARDS[name] = card
        _USER_STATE["names"].add(name)


def import_user_model(file: str | Path, name: str, *, replace: bool = False) -> ModelCard:
    """Register your own checkpoint under a new model name, recorded in the cache (offline).

    The file is read (any format :func:`load_model` reads; the architecture is inferred or taken
    from a samscope file), copied into :func:`models_dir` as ``NAME<suffix>`` and its xxh128
    hash recorded with its card in :func:`user_models_path`; every later
    ``load_model(NAME)`` / ``--model NAME`` (in any process) loads the copy after checking
    that hash.

    Parameters
    ----------
    file : path
        The checkpoint.
    name : str
        The new model name (letters, digits, ``._+-``); not a built-in model's name.
    replace : bool
        Replace a model imported earlier under ``name``.

    Returns
    -------
    ModelCard
        The registered card (``source="user"``).

    Raises
    ------
    InputError
        Bad name, name taken, file missing.
    CheckpointError
        The file is not a SAM checkpoint samscope can read.
    """
    from samscope.models.checkpoint import load_checkpoint

    file = Path(file)
    check_new_name(name)
    if not file.is_file():
        raise InputError(f"no such file: {file}")
    _load_user_models()
    if name in _CARDS and name not in _USER_STATE["names"]:
        raise InputError(f"{name!r} is a built-in model; register your checkpoint under another name")
    if name in _CARDS and not replace:
        raise InputError(
            f"a model called {name!r} was already imported ({cached_path_of(_CARDS[name])}); pass "
            "--replace to replace it, or choose another name"
        )
    converted = load_checkpoint(file)
    base = card_for_file(file, converted)
    suffix = ".safetensors" if file.suffix == ".safetensors" else ".pt"
    filename = f"{name}{suffix}"
    with hashed_copy(file, models_dir(), ["xxh128"]) as (tmp, digests):
        os.replace(tmp, models_dir() / filename)
    card = replace_card(
        base,
        name=name,
        description=f"imported from {file.name} ({converted.format})",
        urls=(),
        known_hash=f"xxh128:{digests['xxh128']}",
        filename=filename,
        source="user",
        shipped=None,
    )
    record_user_model(card, file)
    _load_user_models()
    return get_card(name)


def cached_path_of(card: ModelCard) -> Path:
    """Where the weights of a registered, downloadable or imported card live in the cache."""
    return models_dir() / (card.filename or f"{card.name}.pt")


# --------------------------------------------------------------------------------------------
# resolving and loading
# --------------------------------------------------------------------------------------------


def _verified(name: str, file: RemoteFile, *, download: bool) -> Path:
    path = cached_path(file)
    if not path.is_file():
        if name in _USER_STATE["names"]:
            raise ModelNotFoundError(
                f"model {name!r} was imported by you, but its file {path} is gone; import it "
                f"again: samscope models import FILE --name {name} --replace"
            )
        if not download:
            raise ModelNotFoundError(missing_message(name, file))
        fetch_model(name)
        return path
    if file.known_hash:
        ok, actual = hash_matches(path, file.known_hash)
        if not ok and name in _USER_STATE["names"]:
            raise CheckpointError(
                f"the file {path} of model {name!r} (imported by you) is damaged or was replaced: "
                f"its hash is {actual}, expected {file.known_hash}; import it again: samscope "
                f"models import FILE --name {name} --replace"
            )
        if not ok:
            raise CheckpointError(
                f"the cached file {path} of model {name!r} is corrupt or incomplete: its hash is "
                f"{actual}, expected {file.known_hash}. Delete it and run `samscope models fetch "
                f"{name}`, or `{import_command(name)}` with a good copy."
            )
    return path


def looks_like_path(name_or_path: str | Path) -> bool:
    """Whether ``--model VALUE`` names a checkpoint file rather than a registered model.

    A registered name (built-in or imported with ``--name``) always wins; otherwise an existing
    path, or anything with a path separator or a dot, is a file.
    """
    if isinstance(name_or_path, Path):
        return True
    _load_user_models()
    return name_or_path not in _CARDS and (
        os.path.exists(name_or_path) or os.sep in name_or_path or "." in name_or_path
    )


def resolve_checkpoint(
    name_or_path: str | Path, *, download: bool = False
) -> tuple[ModelCard, Path | None]:
    """Find the weights file of a model name, or describe a checkpoint file.

    Parameters
    ----------
    name_or_path : str or Path
        A registered name (which wins over a file of the same name) or a checkpoint file.
    download : bool
        Download a registered model that is not cached (otherwise that is an error).

    Returns
    -------
    card : ModelCard
        The registered card, or for a file one built from its contents (name = file stem,
        architecture inferred from the tensor shapes, ``known_hash`` = the file's xxh128).
    path : Path or None
        The verified cached file (None for ``vit_test``, which has no file).

    Raises
    ------
    ModelNotFoundError
        Unknown name, or not cached and ``download`` is False.
    CheckpointError
        Cached file with the wrong hash; unreadable file.
    """
    if looks_like_path(name_or_path):
        path = Path(name_or_path)
        from samscope.models.checkpoint import load_checkpoint

        return card_for_file(path, load_checkpoint(path)), path
    card = get_card(str(name_or_path))
    if card.shipped:
        return card, _shipped_file(card)
    files = [f for f in model_files(card.name) if f.role == "model"]
    if not files:
        return card, None
    return card, _verified(card.name, files[0], download=download)



def load_model(
    name_or_path: str | Path,
    *,
    checkpoint: str | Path | None = None,
    device: str | None = None,
    download: bool = False,
    precision: str | None = None,
) -> SamscopeModel:
    """Load a SAM (and its instance head, when it has one) by name or from a checkpoint file.

    Parameters
    ----------
    name_or_path : str or Path
        A registered model name (see :func:`list_models`) or a checkpoint file in any format
        :mod:`samscope.models.checkpoint` reads (segment-anything ``.pth``, µSAM, transformers
        safetensors); for a file the architecture is inferred from the shapes.
    checkpoint : str or Path, optional
        Weights to use instead of the registered ones (same architecture); the card keeps the
        name and thresholds, takes the file's hash, and has an instance head only if the file does.
    device : str, optional
        ``"cuda"`` if available, else ``"cpu"``.
    download : bool
        Download a registered model that is not in the cache. Off by default: nothing is ever
        downloaded implicitly.
    precision : {"fp32", "bf16", "int8"}, optional
        Arithmetic of the image encoder and mask decoder (see :mod:`samscope.models.sam`);
        default: :func:`samscope.models.sam.default_precision` (on the CPU the card's
        ``default_precision`` or fp32, bf16 on CUDA).

    Returns
    -------
    SamscopeModel

    Raises
    ------
    ModelNotFoundError
        Unknown name, or not cached (the message names the URL and ``samscope models import``).
    CheckpointError
        Wrong hash, unreadable file, or keys that do not fit (listed).
    InputError
        An unknown precision (or int8 off the CPU).

    Notes
    -----
    ``vit_test`` is built with deterministic *random* weights (``torch`` seed
    :data:`TEST_MODEL_SEED`, global RNG state left untouched) and a random instance head. It is
    untrained: use it for tests and benchmarks, never for segmentation.

    Examples
    --------
    >>> model = load_model("vit_test", device="cpu")
    >>> model.name, model.image_size, model.instance_head is not None
    ('vit_test', 256, True)
    """
    from samscope.models.checkpoint import load_checkpoint
    from samscope.models.sam import check_precision
    from samscope.models.sam3 import sam3_or_none

    if checkpoint is None and (sam3 := sam3_or_none(name_or_path, device=device)) is not None:
        return sam3  # SAM3's detector (mode 'concept', samscope.models.sam3), not a SamscopeModel
    device = check_device(device) if device else default_device()
    if precision is not None:  # checked now; None: the card's default (sam.default_precision)
        precision = check_precision(precision, device)
    decoder_state = None
    converted = None
    if checkpoint is not None:
        if looks_like_path(name_or_path):
            raise InputError("with checkpoint=FILE, give a registered model name, not a path")
        path = Path(checkpoint)
        converted = load_checkpoint(path)
        card = card_for_file(path, converted, base=get_card(str(name_or_path)))
        sam_state, decoder_state = converted.sam_state, converted.decoder_state
    elif looks_like_path(name_or_path):
        path = Path(name_or_path)
        converted = load_checkpoint(path)
        card = card_for_file(path, converted)
        sam_state, decoder_state = converted.sam_state, converted.decoder_state
    else:
        card = get_card(str(name_or_path))
        files = model_files(card.name)
        if card.shipped:
            converted = load_checkpoint(_shipped_file(card))
            sam_state, decoder_state = converted.sam_state, converted.decoder_state
        else:
            if not files:
                if card.source == "test":
                    return build_test_model(card, device).with_precision(precision)
                raise ModelNotFoundError(f"model {card.name!r} has no weights file and no download")
            paths = {f.role: _verified(card.name, f, download=download) for f in files}
            converted = load_checkpoint(paths["model"])
            if converted.sam_state is None:
                raise CheckpointError(f"{paths['model']} holds no SAM weights")
            sam_state, decoder_state = converted.sam_state, converted.decoder_state
            if "decoder" in paths:  # µSAM: the separate decoder file wins, as in micro_sam
                decoder_state = load_checkpoint(paths["decoder"]).decoder_state
        if card.has_instance_head and decoder_state is None:
            raise CheckpointError(f"model {card.name!r} should have an instance decoder; its files have none")
    from samscope.models.heads import instance_head_from_state
    from samscope.models.sam import SamscopeModel

    sam = build_with_weights(card.architecture, sam_state)
    head = instance_head_from_state(decoder_state) if decoder_state is not None else None
    distance = distance_head(converted) if converted is not None else None
    model = SamscopeModel(
        sam, card, instance_head=head, distance_head=distance, device=device, precision=precision
    )
    if converted is not None and converted.memory_state:  # SAM2: kept for the memory propagator
        model.memory_state = converted.memory_state
    return model
