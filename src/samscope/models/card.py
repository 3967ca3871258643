"""Model cards: one frozen, typed description per named model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: SAM's pixel statistics (ImageNet mean/std × 255), applied after scaling the image to 0–255.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class Normalisation:
    """How raw microscopy intensities become encoder input.

    The image is first mapped to 0–255 by percentiles (``low``/``high``, per image, clipped), never by
    casting, then standardised with ``mean``/``std`` per RGB channel. Grey images are repeated to
    three channels. ``pad`` is how an input smaller than the encoder's square is filled
    (:func:`samscope.image.prepare_input`: ``"zero"`` as SAM, ``"reflect"`` for models trained
    without padding).
    """

    low_percentile: float = 1.0
    high_percentile: float = 99.8
    mean: tuple[float, float, float] = SAM_PIXEL_MEAN
    std: tuple[float, float, float] = SAM_PIXEL_STD
    pad: str = "zero"


@dataclass(frozen=True)
class AutomaticDefaults:
    """Default thresholds of the automatic modes for this model (fine-tuned models are calibrated lower).

    ``point_iou_thresh`` and ``mask_overlap_thresh`` are the foreground mode's predicted-IoU cut
    and overlap filter (Jadhav et al. 2026: 0 and 0.5); the others are µSAM's AMG/AIS settings.
    ``mode_settings`` holds values calibrated for one mode only, as ``(mode, field, value)``
    triples (e.g. ``("apg", "min_size", 50)``); they win over the shared fields for that mode
    (:func:`samscope.instance.settings.resolve_settings`).
    """

    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    box_nms_thresh: float = 0.7
    center_distance_thresh: float = 0.5
    boundary_distance_thresh: float = 0.5
    foreground_thresh: float = 0.5
    foreground_smoothing: float = 1.0
    distance_smoothing: float = 1.6
    min_size: int = 0
    border_min_size: int = 0
    point_iou_thresh: float = 0.0
    mask_overlap_thresh: float = 0.5
    mode_settings: tuple[tuple[str, str, float], ...] = ()


@dataclass(frozen=True)
class ModelCard:
    """Everything samscope knows about a named model.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"vit_b"`` or ``"vit_b_lm"``.
    architecture : str
        Name in :data:`samscope.models.architectures.ARCHITECTURES`.
    description : str
        One line for ``samscope models list``.
    urls : tuple of str
        Where the checkpoint can be downloaded (first that works wins).
    known_hash : str or None
        ``"<algorithm>:<hex>"`` as pooch accepts it (``sha256``, ``md5``, ``xxh128``), or None.
    filename : str
        File name in the cache.
    licence : str
        Licence of the weights.
    source : str
        Who published the weights (``meta``, ``micro-sam``, ``samscope``, ``test``).
    has_instance_head : bool
        Whether the checkpoint carries an instance-distance decoder (AIS/APG).
    normalisation : Normalisation
        Input normalisation.
    automatic : AutomaticDefaults
        Default thresholds of the automatic modes.
    pixel_size_nm : float or None
        Pixel size of the training data, when the model expects one (foreground mode rescales to it).
    shipped : str or None
        Path relative to ``samscope/data/models`` for weights the package ships.
    default_mode : str or None
        The automatic mode ``segment(..., mode="auto")`` uses for this model (when it supports it).
    tile_shape, halo : int or None
        Default tiling for images larger than ``tile_shape + 2 * halo``: a model with a small
        encoder input (samscope's compact models) works at the image's own resolution, tile by
        tile, instead of shrinking the image into one input. None: no tiling unless asked.
    working_diameter : float or None
        Object diameter (px) the model segments best. When set, automatic segmentation estimates
        each image's object size and rescales the image to it
        (:mod:`samscope.instance.scale`); None: images are segmented as they are.
    default_precision : {"fp32", "int8"} or None
        The encoder's precision on the CPU when none is asked for (``--precision``), chosen by
        measurement (``benchmarks/bench_encoder.py``: faster, and masks at IoU ≥ 0.98 against
        fp32 with ``benchmarks/bench_precision.py``). None: fp32. Other devices keep their own
        default (bf16 on CUDA); see :func:`samscope.models.sam.default_precision`.
    """

    name: str
    architecture: str
    description: str = ""
    urls: tuple[str, ...] = ()
    known_hash: str | None = None
    filename: str = ""
    licence: str = ""
    source: str = ""
    has_instance_head: bool = False
    normalisation: Normalisation = field(default_factory=Normalisation)
    automatic: AutomaticDefaults = field(default_factory=AutomaticDefaults)
    pixel_size_nm: float | None = None
    shipped: str | None = None
    default_mode: str | None = None
    tile_shape: int | None = None
    halo: int | None = None
    working_diameter: float | None = None
    default_precision: str | None = None

    def default_tiling(self, plane_shape: tuple[int, ...]) -> tuple[int | None, int | None]:
        """``(tile_shape, halo)`` for an image plane of this shape (``(None, None)``: untiled)."""
        if self.tile_shape is None:
            return None, None
        halo = int(self.halo or 0)
        if max(int(s) for s in plane_shape) <= self.tile_shape + 2 * halo:
            return None, None
        return int(self.tile_shape), halo


def card_to_dict(card: ModelCard) -> dict:
    """A card as nested plain values (JSON- and checkpoint-safe)."""
    from dataclasses import asdict

    return asdict(card)


def card_from_dict(values: Mapping, *, strict: bool = True) -> ModelCard:
    """The card :func:`card_to_dict` wrote (lists back to tuples).

    ``strict`` (a checkpoint's card): unknown fields are a
    :class:`~samscope.errors.CheckpointError`; otherwise (the record of imported models, perhaps
    written by another samscope version) they are ignored.
    """
    from dataclasses import fields

    from samscope.errors import CheckpointError

    def build(cls, data):
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown and strict:
            raise CheckpointError(f"model card: unknown field(s) {unknown} for {cls.__name__}")
        return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}

    data = build(ModelCard, values)
    if isinstance(data.get("normalisation"), Mapping):
        data["normalisation"] = Normalisation(**build(Normalisation, data["normalisation"]))
    if isinstance(data.get("automatic"), Mapping):
        auto = build(AutomaticDefaults, data["automatic"])
        if "mode_settings" in auto:
            auto["mode_settings"] = tuple(tuple(t) for t in auto["mode_settings"])
        data["automatic"] = AutomaticDefaults(**auto)
    try:
        return ModelCard(**data)
    except TypeError as err:
        raise CheckpointError(f"invalid model card{' in checkpoint' if strict else ''}: {err}") from None
