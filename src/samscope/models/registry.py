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

Nothing here imports torch until a model is loaded.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, replace
from dataclasses import replace as replace_card
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from samscope.errors import CheckpointError, InputError, ModelNotFoundError
from samscope.models.architectures import get_architecture
from samscope.models.card import AutomaticDefaults, ModelCard, Normalisation

if TYPE_CHECKING:  # pragma: no cover
    from samscope.models.sam import SamscopeModel

#: Seed of the deterministic random weights of ``vit_test``.
TEST_MODEL_SEED = 0

_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One downloadable file of a named model.

    Attributes
    ----------
    role : {"model", "decoder"}
        The SAM weights, or µSAM's separate instance decoder.
    urls : tuple of str
        Download locations, tried in order.
    known_hash : str or None
        ``"<algorithm>:<hex>"`` (``xxh128``, ``sha256``, ``md5``).
    filename : str
        Name in the cache.
    """

    role: Literal["model", "decoder"]
    urls: tuple[str, ...]
    known_hash: str | None
    filename: str


# --------------------------------------------------------------------------------------------
# built-in cards
# --------------------------------------------------------------------------------------------

_META = "https://dl.fbaipublicfiles.com/segment_anything/"
_BIOIMAGEIO = "https://uk1s3.embassy.ebi.ac.uk/public-datasets/bioimage.io/"


def _meta_card(name: str, file: str, xxh: str, params: str) -> ModelCard:
    return ModelCard(
        name=name,
        architecture=name,
        description=f"Segment Anything ViT-{name[4:].upper()} ({params}), Meta, natural images",
        urls=(_META + file,),
        known_hash=f"xxh128:{xxh}",
        filename=file,
        licence="Apache-2.0",
        source="meta",
    )


def _micro_sam_card(
    name: str, folder: str, xxh: str, what: str, automatic: AutomaticDefaults
) -> ModelCard:
    arch = name[:5]
    return ModelCard(
        name=name,
        architecture=arch,
        description=f"µSAM ViT-{arch[4:].upper()} fine-tuned for {what}, with instance decoder",
        urls=(f"{_BIOIMAGEIO}{folder}/files/{arch}.pt",),
        known_hash=f"xxh128:{xxh}",
        filename=f"{name}.pt",
        licence="CC-BY-4.0",
        source="micro-sam",
        has_instance_head=True,
        automatic=automatic,
    )


# µSAM's per-model defaults (micro_sam/_model_settings.py, AMG_SETTINGS and AIS_SETTINGS): the
# fine-tuned models are calibrated lower than Meta's AMG thresholds. µSAM also smooths the distance
# maps per model (2.0, 1.6, 1.2, 1.2); ModelCard has no field for that yet.
_LM_B = AutomaticDefaults(
    pred_iou_thresh=0.65, stability_score_thresh=0.7,
    center_distance_thresh=0.4, boundary_distance_thresh=0.5, min_size=100,
)  # fmt: skip
_LM_L = AutomaticDefaults(
    pred_iou_thresh=0.65, stability_score_thresh=0.73,
    center_distance_thresh=0.4, boundary_distance_thresh=0.4, min_size=100,
)  # fmt: skip
_EM_B = AutomaticDefaults(
    pred_iou_thresh=0.75, stability_score_thresh=0.75,
    center_distance_thresh=0.3, boundary_distance_thresh=0.4, min_size=100,
)  # fmt: skip
# samscope's own models, calibrated on tuning data only (HeLa frames 12–13; simulated mitochondria
# of seed 778) by benchmarks/tune_shipped_models.py (AIS: mSA + SA50; foreground: P + R + dice).
_SAMSCOPE_LM = AutomaticDefaults(
    pred_iou_thresh=0.7, stability_score_thresh=0.8,
    center_distance_thresh=0.5, boundary_distance_thresh=0.5, foreground_thresh=0.4,
    foreground_smoothing=1.0, distance_smoothing=1.6, min_size=100, border_min_size=400,
)  # fmt: skip
# samscope-generalist: AIS thresholds tuned on the tuning split of every domain of the multi-domain
# benchmark (HeLa 12-13, CHO 12-13, simulated suites seed 301; benchmarks/tune_generalist.py),
# objects touching the border kept; min_size/border_min_size are at the working scale (28 px).
_SAMSCOPE_GENERALIST = AutomaticDefaults(
    pred_iou_thresh=0.7, stability_score_thresh=0.8,
    center_distance_thresh=0.5, boundary_distance_thresh=0.5, foreground_thresh=0.5,
    foreground_smoothing=1.0, distance_smoothing=1.6, min_size=200, border_min_size=0,
)  # fmt: skip
_SAMSCOPE_MITO = AutomaticDefaults(
    pred_iou_thresh=0.7, stability_score_thresh=0.8, point_iou_thresh=0.0, mask_overlap_thresh=0.3,
)  # fmt: skip
_EM_L = AutomaticDefaults(
    pred_iou_thresh=0.8, stability_score_thresh=0.8,
    center_distance_thresh=0.3, boundary_distance_thresh=0.4, min_size=100,
)  # fmt: skip

# (name, bioimage.io folder, model xxh128, decoder xxh128, what, defaults), from micro_sam.util.models()
_MICRO_SAM = (
    ("vit_b_lm", "diplomatic-bug/1.2", "fe9252a29f3f4ea53c15a06de471e186",
     "708b15ac620e235f90bb38612c4929ba", "light microscopy", _LM_B),
    ("vit_l_lm", "idealistic-rat/1.2", "017f20677997d628426dec80a8018f9d",
     "2faeafa03819dfe03e7c46a44aaac64a", "light microscopy", _LM_L),
    ("vit_b_em_organelles", "noisy-ox/1.2", "f3bf2ed83d691456bae2c3f9a05fb438",
     "bb6398956a6b0132c26b631c14f95ce2", "EM organelles", _EM_B),
    ("vit_l_em_organelles", "humorous-crab/1.2", "810b084b6e51acdbf760a993d8619f2d",
     "334877640bfdaaabce533e3252a17294", "EM organelles", _EM_L),
)  # fmt: skip


#: Hashes of the weights shipped in ``samscope/data/models`` (written by ``samscope train`` export,
#: checked on every load; ``tests/models/test_shipped.py`` keeps them in step with the files).
SHIPPED_HASHES = {
    "samscope-generalist": "xxh128:4f28b7a7f4faace6d4dcbbb644899ccd",
    "samscope-lm": "xxh128:87b17f25d77234f44a6e69a7d5e78340",
    "samscope-mito": "xxh128:1b25ac6c07f540d66f5b06487f17ab5e",
}

#: The model ``samscope segment`` and ``samscope.segment`` use when none is named.
DEFAULT_MODEL = "samscope-generalist"


def _shipped_cards() -> list[ModelCard]:
    """samscope's own models: compact SAMs trained from scratch, carried by the package."""
    common = dict(
        architecture="samscope_compact",
        licence="MIT",
        source="samscope",
        has_instance_head=True,
        tile_shape=224,
        halo=16,
        # trained on whole images, never on padding: mirror the image into an input's padding
        normalisation=Normalisation(pad="reflect"),
    )
    return [
        ModelCard(
            name="samscope-generalist",
            description="samscope's default model: nuclei, cells and bacteria of any size and "
            "look (fluorescence, phase contrast, bright-field, DIC); estimates each image's object "
            "size and segments at its working scale; compact SAM, shipped, works offline",
            known_hash=SHIPPED_HASHES["samscope-generalist"],
            filename="samscope-generalist.pt",
            shipped="models/samscope-generalist.pt",
            default_mode="ais",
            automatic=_SAMSCOPE_GENERALIST,
            working_diameter=28.0,
            **common,
        ),
        ModelCard(
            name="samscope-lm",
            description="samscope's own light-microscopy model (fluorescent nuclei, label-free "
            "cells), compact SAM trained from scratch; shipped, works offline",
            known_hash=SHIPPED_HASHES["samscope-lm"],
            filename="samscope-lm.pt",
            shipped="models/samscope-lm.pt",
            default_mode="ais",
            automatic=_SAMSCOPE_LM,
            **common,
        ),
        ModelCard(
            name="samscope-mito",
            description="samscope's own mitochondria model (fluorescence, trained on the seed-000 "
            "simulator, overlap-aware), foreground-prompted mode at 40 nm/px; shipped",
            known_hash=SHIPPED_HASHES["samscope-mito"],
            filename="samscope-mito.pt",
            shipped="models/samscope-mito.pt",
            default_mode="foreground",
            pixel_size_nm=40.0,
            automatic=_SAMSCOPE_MITO,
            **common,
        ),
    ]


def shipped_path(card: ModelCard) -> Path:
    """Where the package keeps the weights of a shipped model (``samscope/data/<card.shipped>``)."""
    from importlib import resources

    if not card.shipped:
        raise ModelNotFoundError(f"model {card.name!r} is not shipped with samscope")
    return Path(str(resources.files("samscope") / "data" / card.shipped))


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
        ok, actual = _hash_matches(path, card.known_hash)
        if not ok:
            raise CheckpointError(
                f"the shipped weights {path} of {card.name!r} are damaged or were replaced: hash "
                f"{actual}, expected {card.known_hash}; reinstall samscope"
            )
    return path


def _builtin() -> tuple[dict[str, ModelCard], dict[str, RemoteFile]]:
    cards = [
        _meta_card("vit_b", "sam_vit_b_01ec64.pth", "6923c33df3637b6a922d7682bfc9a86b", "91 M"),
        _meta_card("vit_l", "sam_vit_l_0b3195.pth", "a82beb3c660661e3dd38d999cc860e9a", "308 M"),
        _meta_card("vit_h", "sam_vit_h_4b8939.pth", "97698fac30bd929c2e6d8d8cc15933c2", "636 M"),
    ]
    decoders: dict[str, RemoteFile] = {}
    for name, folder, xxh, dec_xxh, what, automatic in _MICRO_SAM:
        cards.append(_micro_sam_card(name, folder, xxh, what, automatic))
        decoders[name] = RemoteFile(
            "decoder",
            (f"{_BIOIMAGEIO}{folder}/files/{name[:5]}_decoder.pt",),
            f"xxh128:{dec_xxh}",
            f"{name}_decoder.pt",
        )
    cards.extend(_shipped_cards())
    cards.append(
        ModelCard(
            name="vit_test",
            architecture="vit_test",
            description="tiny SAM with deterministic RANDOM weights, for tests and benchmarks only",
            licence="MIT",
            source="test",
            has_instance_head=True,
        )
    )
    return {c.name: c for c in cards}, decoders


_CARDS, _DECODERS = _builtin()


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


def cache_dir() -> Path:
    """samscope's cache: ``$SAMSCOPE_CACHE_DIR`` if set, else the per-user cache of ``pooch``.

    The environment variable is read on every call. Model files live in ``cache_dir() / "models"``.
    """
    env = os.environ.get("SAMSCOPE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("samscope"))


def models_dir() -> Path:
    """Where model files are cached (``cache_dir() / "models"``)."""
    return cache_dir() / "models"


def cached_path(file: RemoteFile) -> Path:
    """Where ``file`` lives in the cache (whether or not it is there)."""
    return models_dir() / file.filename


def import_command(name: str) -> str:
    """The command that puts a manually downloaded file of model ``name`` in place."""
    return f"samscope models import FILE --name {name}"


# --------------------------------------------------------------------------------------------
# hashes
# --------------------------------------------------------------------------------------------


def _split_hash(known_hash: str) -> tuple[str, str]:
    algorithm, _, digest = known_hash.rpartition(":")
    return (algorithm or "sha256").lower(), digest.lower()


def _hasher(algorithm: str):
    if algorithm.startswith("xxh"):
        import xxhash

        try:
            return getattr(xxhash, algorithm)()
        except AttributeError:
            raise ValueError(f"unknown xxhash algorithm {algorithm!r}") from None
    return hashlib.new(algorithm)


def file_hash(path: str | Path, algorithm: str = "xxh128") -> str:
    """Hash of a file, read in chunks, as ``"<algorithm>:<hex>"``."""
    h = _hasher(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return f"{algorithm}:{h.hexdigest()}"


def _hash_matches(path: Path, known_hash: str) -> tuple[bool, str]:
    algorithm, digest = _split_hash(known_hash)
    actual = file_hash(path, algorithm)
    return actual.split(":", 1)[1] == digest, actual


# --------------------------------------------------------------------------------------------
# fetch and import
# --------------------------------------------------------------------------------------------


def _what(name: str, file: RemoteFile) -> str:
    return f"the instance decoder of model {name!r}" if file.role == "decoder" else f"model {name!r}"


def _urls(file: RemoteFile) -> str:
    return " or ".join(file.urls) if file.urls else "(no download location)"


def _missing_message(name: str, file: RemoteFile) -> str:
    return (
        f"{_what(name, file)} is not in the cache ({cached_path(file)}). "
        f"Download it with `samscope models fetch {name}` (or load_model(..., download=True)) "
        f"from {_urls(file)}; offline, download that URL on another machine, then run "
        f"`{import_command(name)}`."
    )


def _download_failed_message(name: str, file: RemoteFile, errors: list[str]) -> str:
    return (
        f"could not download {_what(name, file)} from {_urls(file)} into {cached_path(file)} "
        f"({'; '.join(errors)}). Offline: download that URL on another machine, then run "
        f"`{import_command(name)}`."
    )


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
    import pooch

    files = model_files(name)
    if not files:
        raise ModelNotFoundError(f"model {name!r} has nothing to download ({get_card(name).source})")
    paths = []
    for file in files:
        if not file.urls:
            raise ModelNotFoundError(_download_failed_message(name, file, ["no URL"]))
        errors = []
        for url in file.urls:
            try:
                path = pooch.retrieve(
                    url,
                    known_hash=file.known_hash,
                    fname=file.filename,
                    path=models_dir(),
                    progressbar=progress,
                )
                paths.append(Path(path))
                break
            except ValueError as err:
                if "hash" not in str(err).lower():  # e.g. an unsupported URL scheme
                    errors.append(f"{type(err).__name__}: {err}")
                    continue
                raise CheckpointError(  # pooch: the downloaded file does not have the known hash
                    f"the file downloaded from {url} for {name!r} does not have the published hash "
                    f"{file.known_hash}: {err}"
                ) from err
            except Exception as err:  # requests' errors are OSErrors; anything else is as fatal
                errors.append(f"{type(err).__name__}: {err}")
        else:
            raise ModelNotFoundError(_download_failed_message(name, file, errors))
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
    if not file.is_file():
        raise InputError(f"no such file: {file}")
    _load_user_models()
    if name not in _CARDS or name in _USER_STATE["names"]:  # a new name: the user's own model
        return cached_path_of(import_user_model(file, name, replace=replace))
    candidates = [f for f in model_files(name) if f.known_hash]
    if not candidates:
        raise CheckpointError(
            f"model {name!r} has no published hash to check a file against; load the file with "
            "load_model(FILE) or `--checkpoint FILE` instead"
        )
    algorithms = {_split_hash(f.known_hash)[0] for f in candidates}
    hashers = {a: _hasher(a) for a in algorithms}
    dest_dir = models_dir()
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".import-", dir=dest_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, open(file, "rb") as src:
            while chunk := src.read(_CHUNK):
                for h in hashers.values():
                    h.update(chunk)
                out.write(chunk)
        actual = {a: h.hexdigest() for a, h in hashers.items()}
        for candidate in candidates:
            algorithm, digest = _split_hash(candidate.known_hash)
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
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# models imported under a new name (samscope models import FILE --name NEW)
# --------------------------------------------------------------------------------------------

#: The record of the models a user imported under their own names, in :func:`models_dir`.
USER_MODELS_FILE = "user-models.json"

_USER_STATE: dict = {"key": None, "names": set()}


def user_models_path() -> Path:
    """Where the cards of models imported with ``--name`` are recorded."""
    return models_dir() / USER_MODELS_FILE


def _card_to_json(card: ModelCard) -> dict:
    from dataclasses import asdict

    return asdict(card)


def _card_from_json(values: dict) -> ModelCard:
    from dataclasses import fields

    def build(cls, data: dict):
        names = {f.name for f in fields(cls)}
        return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}

    data = build(ModelCard, values)
    data["normalisation"] = Normalisation(**build(Normalisation, values.get("normalisation", {})))
    data["automatic"] = AutomaticDefaults(**build(AutomaticDefaults, values.get("automatic", {})))
    return ModelCard(**data)


def _read_user_models(path: Path) -> dict:
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
    records = _read_user_models(path)  # a damaged record is an error on every call, never skipped
    _USER_STATE["key"] = key
    for name, entry in records["models"].items():
        try:
            arch = entry.get("architecture_spec")
            if arch is not None and arch.get("name") not in _known_architectures():
                from samscope.models.architectures import (
                    architecture_from_dict,
                    register_architecture,
                )

                register_architecture(architecture_from_dict(dict(arch)))
            card = _card_from_json(entry["card"])
        except Exception as err:  # noqa: BLE001 - one bad record must not hide the others
            import logging

            logging.getLogger(__name__).warning("skipping imported model %r in %s: %s", name, path, err)
            continue
        if name in _CARDS:  # a built-in name always wins
            continue
        _CARDS[name] = card
        _USER_STATE["names"].add(name)


def _known_architectures() -> set[str]:
    from samscope.models.architectures import ARCHITECTURES

    return set(ARCHITECTURES)


def _valid_new_name(name: str) -> None:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}", name) or name.endswith((".pt", ".pth")):
        raise InputError(
            f"cannot register a model called {name!r}: use letters, digits and . _ + - "
            "(no path, no .pt ending), e.g. --name my-nuclei"
        )


def _copy_hashed(file: Path, dest: Path) -> str:
    """Copy ``file`` onto ``dest`` atomically; returns the copy's xxh128 hash."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".import-", dir=dest.parent)
    tmp = Path(tmp_name)
    h = _hasher("xxh128")
    try:
        with os.fdopen(fd, "wb") as out, open(file, "rb") as src:
            while chunk := src.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return f"xxh128:{h.hexdigest()}"


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
    import json

    from samscope.models.architectures import architecture_to_dict
    from samscope.models.checkpoint import load_checkpoint

    file = Path(file)
    _valid_new_name(name)
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
    base = _card_for_file(file, converted)
    suffix = ".safetensors" if file.suffix == ".safetensors" else ".pt"
    filename = f"{name}{suffix}"
    records_path = user_models_path()
    records = _read_user_models(records_path) if records_path.is_file() else {"models": {}}
    digest = _copy_hashed(file, models_dir() / filename)
    card = replace_card(
        base,
        name=name,
        description=f"imported from {file.name} ({converted.format})",
        urls=(),
        known_hash=digest,
        filename=filename,
        source="user",
        shipped=None,
    )
    from samscope.models.architectures import get_architecture

    records["models"][name] = {
        "card": _card_to_json(card),
        "architecture_spec": architecture_to_dict(get_architecture(card.architecture)),
        "imported_from": str(file.resolve()),
    }
    fd, tmp_name = tempfile.mkstemp(prefix=".user-models-", dir=records_path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(records, out, indent=1)
        os.replace(tmp_name, records_path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
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
            raise ModelNotFoundError(_missing_message(name, file))
        fetch_model(name)
        return path
    if file.known_hash:
        ok, actual = _hash_matches(path, file.known_hash)
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
    return _looks_like_path(name_or_path)


def _looks_like_path(name_or_path: str | Path) -> bool:
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
    if _looks_like_path(name_or_path):
        path = Path(name_or_path)
        from samscope.models.checkpoint import load_checkpoint

        return _card_for_file(path, load_checkpoint(path)), path
    card = get_card(str(name_or_path))
    if card.shipped:
        return card, _shipped_file(card)
    files = [f for f in model_files(card.name) if f.role == "model"]
    if not files:
        return card, None
    return card, _verified(card.name, files[0], download=download)


def _samscope_card(path: Path, converted) -> ModelCard:
    """The card stored in a samscope-format checkpoint (its architecture registered on the way)."""
    from samscope.models.architectures import register_architecture
    from samscope.models.checkpoint import card_from_dict

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


def _card_for_file(path: Path, converted, base: ModelCard | None = None) -> ModelCard:
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


def _default_device() -> str:
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


def _build_with_weights(arch_name: str, sam_state):
    """Build ``transformers.SamModel`` without a random init and load ``sam_state`` strictly."""
    import torch

    from samscope.models.architectures import build_sam, get_architecture
    from samscope.models.checkpoint import load_state_dict_strict

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


def _build_test_model(card: ModelCard, device: str) -> SamscopeModel:
    import torch

    from samscope.models.architectures import build_sam
    from samscope.models.heads import InstanceDistanceHead
    from samscope.models.sam import SamscopeModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TEST_MODEL_SEED)
        sam = build_sam(card.architecture)
        head = InstanceDistanceHead.for_architecture(card.architecture) if card.has_instance_head else None
    return SamscopeModel(sam, card, instance_head=head, device=device)


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
        default ``bf16`` on CUDA, ``fp32`` elsewhere.

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

    device = check_device(device) if device else _default_device()
    precision = check_precision(precision, device)
    decoder_state = None
    converted = None
    if checkpoint is not None:
        if _looks_like_path(name_or_path):
            raise InputError("with checkpoint=FILE, give a registered model name, not a path")
        path = Path(checkpoint)
        converted = load_checkpoint(path)
        card = _card_for_file(path, converted, base=get_card(str(name_or_path)))
        sam_state, decoder_state = converted.sam_state, converted.decoder_state
    elif _looks_like_path(name_or_path):
        path = Path(name_or_path)
        converted = load_checkpoint(path)
        card = _card_for_file(path, converted)
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
                    return _build_test_model(card, device).with_precision(precision)
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

    sam = _build_with_weights(card.architecture, sam_state)
    head = instance_head_from_state(decoder_state) if decoder_state is not None else None
    distance = _distance_head(converted) if converted is not None else None
    return SamscopeModel(
        sam, card, instance_head=head, distance_head=distance, device=device, precision=precision
    )


def _distance_head(converted):
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
