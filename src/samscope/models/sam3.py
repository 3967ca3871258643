"""SAM3 (Meta, "Segment Anything with Concepts"): text prompts that find every instance of a concept.

SAM3 adds to SAM2's promptable segmentation a *detector*: given a short noun phrase ("nucleus"),
it returns every object of that concept in the image (DETR-style queries, each with a mask, a box
and a score, and one *presence* score saying whether the concept is in the image at all).
samscope runs it with ``transformers.Sam3Model`` as one more automatic mode, ``concept``
(:mod:`samscope.instance.concept`).

Weights: SAM3's are gated (Meta's licence must be accepted on https://huggingface.co/facebook/sam3),
so samscope never downloads them. The user fetches the Hugging Face folder (``config.json``,
``model.safetensors``, the tokenizer files) and imports it or names it directly::

    samscope models import ~/Downloads/sam3 sam3        # then --model sam3
    samscope segment cells.tif -o out/ --model ~/Downloads/sam3 --mode concept -s text=nucleus

Meta's own ``sam3.pt`` is not mapped here (its key layout differs from transformers' and no
strict mapping was written): load the Hugging Face folder instead, which Meta publishes beside it.

Nothing here imports torch or transformers at import time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from samscope.errors import CheckpointError, InputError
from samscope.models.card import ModelCard

__all__ = [
    "SAM3_SOURCE",
    "ConceptDetections",
    "ConceptModel",
    "cached_sam3_folder",
    "import_sam3_folder",
    "is_sam3_folder",
    "load_sam3",
    "sam3_cards",
    "sam3_or_none",
]

#: Where SAM3's weights officially come from (gated: accept Meta's licence there first).
SAM3_SOURCE = "https://huggingface.co/facebook/sam3"

_SAM3_TYPES = ("sam3", "sam3_video")
_TEXT_LENGTH = 32  # the Sam3Processor pads text to 32 tokens


def sam3_cards() -> list[ModelCard]:
    """The SAM3 card: weights obtained by the user (``samscope models import``), never downloaded."""
    return [
        ModelCard(
            name="sam3",
            architecture="sam3",
            description=(
                "SAM3 (Meta, 848 M): concept prompts — every object of a text phrase ('nucleus'), "
                f"mode 'concept'; gated weights: get the Hugging Face folder from {SAM3_SOURCE} "
                "yourself, then `samscope models import FOLDER sam3`"
            ),
            urls=(),
            known_hash=None,
            filename="sam3",
            licence="SAM License (Meta)",
            source=SAM3_SOURCE,
            default_mode="concept",
        )
    ]


@dataclass(frozen=True)
class ConceptDetections:
    """SAM3's raw answer for one image and one phrase.

    Attributes
    ----------
    scores : ndarray of float32, (Q,)
        Per query: sigmoid of its logit, times the presence probability when ``presence`` is used.
    mask_logits : ndarray of float32, (Q, h, w)
        Low-resolution mask logits in the model's square input frame.
    boxes : ndarray of float32, (Q, 4)
        ``(x0, y0, x1, y1)`` normalised to [0, 1].
    presence : float
        Probability that the concept is in the image at all.
    """

    scores: np.ndarray
    mask_logits: np.ndarray
    boxes: np.ndarray
    presence: float


@dataclass(repr=False)
class ConceptModel:
    """A SAM3 detector with its tokenizer: ``detect(image, text)``.

    Parameters
    ----------
    model : transformers.Sam3Model
    tokenizer : callable
        ``tokenizer(text) -> (input_ids, attention_mask)`` as lists of int (padded).
    card : ModelCard, optional
    mean, std : (float, float, float)
        Normalisation of the [0, 1] RGB input (SAM3's processor: 0.5, 0.5).
    """

    model: Any
    tokenizer: Callable[[str], tuple[list[int], list[int]]]
    card: ModelCard | None = None
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    _text_cache: dict = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The card's name (``sam3``)."""
        return self.card.name if self.card is not None else "sam3"

    def __repr__(self) -> str:
        return f"ConceptModel({self.name!r})"

    @property
    def concept_model(self) -> ConceptModel:
        """This model (the attribute :mod:`samscope.instance.modes` looks for)."""
        return self

    @property
    def image_size(self) -> int:
        size = self.model.config.vision_config.backbone_config.image_size
        return int(size[0] if isinstance(size, (list, tuple)) else size)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def text_inputs(self, text: str) -> tuple[Any, Any]:
        """``(input_ids, attention_mask)`` tensors ``(1, L)`` of ``text``."""
        import torch

        if not isinstance(text, str) or not text.strip():
            raise InputError("a concept prompt needs a text, e.g. text='nucleus'")
        got = self._text_cache.get(text)
        if got is None:
            ids, mask = self.tokenizer(text.strip())
            got = (torch.tensor([ids], dtype=torch.long), torch.tensor([mask], dtype=torch.long))
            self._text_cache[text] = got
        return tuple(t.to(self.device) for t in got)

    def pixels(self, image: np.ndarray) -> Any:
        """``(1, 3, S, S)`` input of a 2-D (or RGB) image: percentile-normalised, stretched to S."""
        import torch
        import torch.nn.functional as F

        from samscope.image import normalize_percentile, to_rgb

        x = normalize_percentile(np.asarray(image))
        rgb = torch.from_numpy(np.ascontiguousarray(to_rgb(x), dtype=np.float32)).permute(2, 0, 1)[None]
        s = self.image_size
        rgb = F.interpolate(rgb, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return ((rgb - mean) / std).to(self.device)

    def detect(self, image: np.ndarray, text: str, *, use_presence: bool = True) -> ConceptDetections:
        """Every query's score, mask logits and box for the phrase ``text`` on ``image``."""
        import torch

        ids, mask = self.text_inputs(text)
        with torch.inference_mode():
            out = self.model(pixel_values=self.pixels(image), input_ids=ids, attention_mask=mask)
        scores = out.pred_logits[0].float().sigmoid()
        presence = float(out.presence_logits[0].float().sigmoid().reshape(-1)[0]) if out.presence_logits is not None else 1.0
        if use_presence:
            scores = scores * presence
        return ConceptDetections(
            scores.cpu().numpy().astype(np.float32),
            out.pred_masks[0].float().cpu().numpy(),
            out.pred_boxes[0].float().cpu().numpy(),
            presence,
        )


def is_sam3_folder(path: str | Path) -> bool:
    """Whether ``path`` is a Hugging Face folder of a SAM3 model (``config.json`` says so)."""
    p = Path(path)
    cfg = p / "config.json"
    if not (p.is_dir() and cfg.is_file()):
        return False
    try:
        return json.loads(cfg.read_text()).get("model_type") in _SAM3_TYPES
    except (OSError, ValueError):
        return False


def _hf_tokenizer(folder: Path) -> Callable[[str], tuple[list[int], list[int]]]:
    from transformers import AutoTokenizer

    if not ((folder / "tokenizer.json").is_file() or (folder / "vocab.json").is_file()):
        raise CheckpointError(
            f"{folder}: no tokenizer files (tokenizer.json or vocab.json + merges.txt) beside the "
            f"SAM3 weights; copy the whole folder from {SAM3_SOURCE}"
        )
    try:
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as err:
        raise CheckpointError(
            f"{folder}: no tokenizer files (tokenizer.json or vocab.json + merges.txt) beside the "
            f"SAM3 weights; copy the whole folder from {SAM3_SOURCE}"
        ) from err

    def tokenize(text: str) -> tuple[list[int], list[int]]:
        enc = tok(text, padding="max_length", max_length=_TEXT_LENGTH, truncation=True)
        return list(enc["input_ids"]), list(enc["attention_mask"])

    return tokenize


def load_sam3(
    path: str | Path,
    *,
    device: str | None = None,
    card: ModelCard | None = None,
    tokenizer: Callable[[str], tuple[list[int], list[int]]] | None = None,
) -> ConceptModel:
    """Load SAM3 from its Hugging Face folder.

    Parameters
    ----------
    path : path
        Folder with ``config.json`` (``model_type`` sam3 or sam3_video), the safetensors weights
        and the tokenizer files.
    device : str, optional
        ``cpu`` (default) or ``cuda``.
    card : ModelCard, optional
        Defaults to the ``sam3`` card.
    tokenizer : callable, optional
        Instead of the folder's tokenizer (tests).

    Raises
    ------
    CheckpointError
        Not a SAM3 folder (Meta's ``sam3.pt`` included), weights that do not fit, no tokenizer.
    """
    p = Path(path).expanduser()
    if p.is_file() and p.suffix in (".pt", ".pth"):
        raise CheckpointError(
            f"{p}: Meta's SAM3 .pt checkpoint is not supported; use the Hugging Face folder "
            f"(config.json, model.safetensors, tokenizer files) from {SAM3_SOURCE}"
        )
    if p.is_file() and p.name == "config.json":
        p = p.parent
    if not is_sam3_folder(p):
        raise CheckpointError(
            f"{p}: not a SAM3 model folder (need config.json with model_type 'sam3' beside the "
            f"weights, as on {SAM3_SOURCE})"
        )
    from transformers import Sam3Model

    try:
        model, info = Sam3Model.from_pretrained(str(p), local_files_only=True, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{p}: the SAM3 weights could not be loaded: {err}") from err
    missing = sorted(info.get("missing_keys") or ())
    if missing or info.get("mismatched_keys"):
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        raise CheckpointError(
            f"{p}: the weights do not fit SAM3's architecture: {len(missing)} missing key(s) {shown}"
            f"{', mismatched shapes' if info.get('mismatched_keys') else ''}"
        )
    model = model.eval().to(device or "cpu")
    if card is None:
        card = sam3_cards()[0]
    return ConceptModel(model, tokenizer or _hf_tokenizer(p), card)


# -- the registry's hooks: `--model sam3`, `--model FOLDER`, `samscope models import FOLDER --name sam3`


def cached_sam3_folder() -> Path:
    """Where ``samscope models import FOLDER --name sam3`` puts SAM3's folder."""
    from samscope.models.cache import models_dir

    return models_dir() / "sam3"


def sam3_or_none(name_or_path: str | Path, *, device: str | None = None) -> ConceptModel | None:
    """SAM3 when ``name_or_path`` is ``sam3`` or a SAM3 folder; None for anything else.

    Raises
    ------
    ModelNotFoundError
        ``sam3`` was asked for but has not been imported (the message says how).
    """
    from samscope.errors import ModelNotFoundError

    if str(name_or_path) == "sam3":
        folder = cached_sam3_folder()
        if not is_sam3_folder(folder):
            raise ModelNotFoundError(
                f"model 'sam3' is not in the cache: its weights are gated, so samscope never "
                f"downloads them. Accept Meta's licence on {SAM3_SOURCE}, download the folder "
                "(config.json, model.safetensors, tokenizer files), then run "
                "`samscope models import FOLDER --name sam3` (or pass --model FOLDER)"
            )
        return load_sam3(folder, device=device)
    p = Path(name_or_path).expanduser()
    if is_sam3_folder(p) or (p.name == "config.json" and is_sam3_folder(p.parent)):
        return load_sam3(p, device=device)
    return None


def import_sam3_folder(folder: str | Path, *, replace: bool = False) -> Path:
    """Copy a SAM3 Hugging Face folder into the cache (atomically: copied, then renamed).

    Raises
    ------
    CheckpointError
        Not a SAM3 folder, no weights or no tokenizer in it.
    InputError
        SAM3 is already imported and ``replace`` is False.
    """
    import os
    import shutil
    import tempfile

    src = Path(folder).expanduser()
    if not is_sam3_folder(src):
        raise CheckpointError(f"{src}: not a SAM3 model folder (config.json with model_type 'sam3'; from {SAM3_SOURCE})")
    if not any(src.glob("*.safetensors")):
        raise CheckpointError(f"{src}: no .safetensors weights in the folder")
    if not ((src / "tokenizer.json").is_file() or (src / "vocab.json").is_file()):
        raise CheckpointError(f"{src}: no tokenizer files (tokenizer.json or vocab.json + merges.txt)")
    dest = cached_sam3_folder()
    if dest.exists() and not replace:
        raise InputError(f"SAM3 is already imported ({dest}); add --replace to import it again")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".sam3-", dir=dest.parent))
    try:
        for item in src.iterdir():
            if item.is_file():
                shutil.copy2(item, tmp / item.name)
        old = None
        if dest.exists():
            old = dest.with_name(f".sam3-old-{os.getpid()}")
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
