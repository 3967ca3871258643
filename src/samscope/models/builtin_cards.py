"""The built-in model cards: Meta's SAMs, µSAM's fine-tuned models, samscope's shipped models.

This is the one list of models samscope knows without being told (:func:`builtin_cards`);
:mod:`samscope.models.registry` starts from it and adds the cards registered at run time
(:func:`~samscope.models.registry.register`) and the models a user imported under a new name.

To add a family of built-in models, write a function returning its cards (and, for models
with a separate instance-decoder file, its :class:`RemoteFile` decoders) and call it in
:func:`builtin_cards`, where the comment says. Every card's ``architecture`` must be a name
:func:`samscope.models.architectures.get_architecture` knows.

Nothing here imports torch or pooch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from samscope.errors import ModelNotFoundError
from samscope.models.card import AutomaticDefaults, ModelCard, Normalisation


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
# Distance mode's thresholds tuned the same way (benchmarks/tune_generalist_modes.py, 2 images per
# domain: mean mSA 0.286 at the best point against 0.398 for AIS on the same images); APG and AMG
# use the shared values (not calibrated for this model yet).
_SAMSCOPE_GENERALIST = AutomaticDefaults(
    pred_iou_thresh=0.7, stability_score_thresh=0.8,
    center_distance_thresh=0.5, boundary_distance_thresh=0.5, foreground_thresh=0.5,
    foreground_smoothing=1.0, distance_smoothing=1.6, min_size=200, border_min_size=0,
    mode_settings=(("distance", "peak_thresh", 0.5), ("distance", "fill_thresh", 0.2),
                   ("distance", "min_size", 100)),
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
            description="samscope's own mitochondria model (fluorescence, trained on simulated "
            "mitochondria after Jadhav et al. 2026, overlap-aware), foreground-prompted mode at "
            "40 nm/px; shipped",
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


def builtin_cards() -> tuple[dict[str, ModelCard], dict[str, RemoteFile]]:
    """Fresh copies of the built-in cards by name (in listing order) and µSAM's decoder files.

    Returns
    -------
    cards : dict of str to ModelCard
        In the order ``samscope models list`` shows them.
    decoders : dict of str to RemoteFile
        The separate instance-decoder file of each model that has one.
    """
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
    # more built-in families go here: cards.extend(family_cards()) (decoders.update(...) if any)
    from samscope.models.sam2_cards import sam2_cards

    cards.extend(sam2_cards())  # Meta's SAM2.1 / SAM2.0 (and the tiny random sam2_hiera_test)
    from samscope.models.sam3 import sam3_cards

    cards.extend(sam3_cards())  # SAM3: concept prompts; gated weights the user imports (issue 20)
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
