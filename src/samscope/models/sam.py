"""The SAM backbone wrapper: encode images to embeddings, decode prompts to masks.

:class:`SamscopeModel` holds a ``transformers.SamModel`` (image encoder, prompt encoder, mask
decoder) — or, for samscope's compact models, :class:`samscope.models.sam_lite.SamLite`, the
same modules and state-dict keys without importing ``transformers`` — its :class:`~samscope.models.card.ModelCard` and, when the checkpoint has one, an
instance-distance head for automatic segmentation. Coordinates here are in *encoder input* pixels
(x, y order, as SAM expects); :mod:`samscope.prompting` maps user coordinates (y, x, original
image) to them through :class:`samscope.image.Transform`.

Precision (:data:`PRECISIONS`): ``fp32`` (the CPU default, unless the card's
``default_precision`` says otherwise: :func:`default_precision`), ``bf16`` (autocast for the image
encoder and the mask decoder; the CUDA default) or ``int8`` (CPU only: the image encoder's
``nn.Linear`` layers dynamically quantised to int8 with
``torch.ao.quantization.quantize_dynamic``; the decoder stays fp32, its cost is in products with
the image tokens, which dynamic quantisation does not touch). Prompt encoding and the extra heads
always run in fp32, and embeddings and logits are always returned as float32.
:meth:`SamscopeModel.with_precision` gives a view of the same weights at another precision;
``benchmarks/bench_precision.py`` measures masks against fp32.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from typing import TYPE_CHECKING

import torch

from samscope.errors import InputError
from samscope.models.architectures import SamArchitecture, get_architecture
from samscope.models.card import ModelCard

if TYPE_CHECKING:  # pragma: no cover
    from transformers import SamModel

#: The arithmetic a model can run in (see the module docstring).
PRECISIONS = ("fp32", "bf16", "int8")

log = logging.getLogger(__name__)
_warned_slow_bf16 = False


def native_bf16_cpu() -> bool:
    """Whether this CPU has native bf16 dot products (AVX512-BF16 or AMX), per oneDNN."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - torch without mkldnn
        return False


def _warn_if_slow_bf16(precision: str, device: torch.device) -> None:
    global _warned_slow_bf16
    if precision == "bf16" and device.type == "cpu" and not _warned_slow_bf16:
        if not native_bf16_cpu():
            _warned_slow_bf16 = True
            log.warning(
                "precision bf16 on a CPU without native bf16 instructions (AVX512-BF16/AMX) is "
                "emulated and much slower than fp32 (≈20× per matrix product measured on an AVX2 "
                "CPU); use fp32 or int8 here"
            )


def check_precision(precision: str | None, device: str | torch.device = "cpu") -> str:
    """The precision to run in: ``precision`` checked, or the device's default when None.

    Parameters
    ----------
    precision : {"fp32", "bf16", "int8"} or None
        None: ``bf16`` on CUDA, ``fp32`` elsewhere.
    device : str or torch.device

    Returns
    -------
    str

    Raises
    ------
    InputError
        An unknown name, or ``int8`` on a device other than the CPU.

    >>> check_precision(None), check_precision("BF16")
    ('fp32', 'bf16')
    """
    kind = torch.device(device).type
    if precision is None:
        return "bf16" if kind == "cuda" else "fp32"
    name = str(precision).strip().lower()
    if name not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if name == "int8" and kind != "cpu":
        raise InputError(f"precision int8 runs on the CPU only, not on {kind}; use bf16 there")
    return name


def default_precision(card: ModelCard | None, device: str | torch.device = "cpu") -> str:
    """The precision a model runs in when none is asked for.

    On the CPU, the card's :attr:`~samscope.models.card.ModelCard.default_precision` (chosen by
    measurement per model: ``benchmarks/bench_encoder.py``), else fp32; elsewhere the device's
    default (bf16 on CUDA), since int8 runs on the CPU only.

    Parameters
    ----------
    card : ModelCard or None
    device : str or torch.device

    Returns
    -------
    str

    >>> from samscope.models.card import ModelCard
    >>> card = ModelCard("m", "vit_b", default_precision="int8")
    >>> default_precision(card, "cpu"), default_precision(card, "cuda"), default_precision(None)
    ('int8', 'bf16', 'fp32')
    """
    kind = torch.device(device).type
    wanted = getattr(card, "default_precision", None)
    if kind != "cpu" or wanted is None:
        return check_precision(None, device)
    return check_precision(wanted, device)


class SamscopeModel:
    """A loaded SAM with its card.

    Parameters
    ----------
    sam : transformers.SamModel or samscope.models.sam_lite.SamLite
        The network (eval mode).
    card : ModelCard
        What the model is.
    instance_head : torch.nn.Module, optional
        Instance-distance decoder on the image encoder (foreground, centre and boundary distance).
    distance_head : torch.nn.Module, optional
        Distance-map head (SAMCell-style), when the checkpoint has one.
    device : str or torch.device
        Where to run.
    precision : {"fp32", "bf16", "int8"}, optional
        Arithmetic of the encoder and decoder (see the module docstring); None: the card's
        :func:`default_precision` (on the CPU the card's ``default_precision`` or fp32; bf16 on
        CUDA).
    """

    def __new__(cls, *args, **kwargs):
        # a SAM2 card (Hiera encoder) makes a samscope.models.sam2_model.Sam2ScopeModel
        card = args[1] if len(args) > 1 else kwargs.get("card")
        if cls is SamscopeModel and card is not None and get_architecture(card.architecture).encoder == "hiera":
            from samscope.models.sam2_model import Sam2ScopeModel

            cls = Sam2ScopeModel
        return super().__new__(cls)

    def __init__(
        self,
        sam: SamModel,
        card: ModelCard,
        *,
        instance_head: torch.nn.Module | None = None,
        distance_head: torch.nn.Module | None = None,
        device: str | torch.device = "cpu",
        precision: str | None = None,
    ) -> None:
        self.card = card
        self.arch: SamArchitecture = get_architecture(card.architecture)
        self.device = torch.device(device)
        self.precision = (
            default_precision(card, self.device)
            if precision is None
            else check_precision(precision, self.device)
        )
        _warn_if_slow_bf16(self.precision, self.device)
        self._quantised: dict[str, torch.nn.Module] = {}  # shared by with_precision views
        self.sam = sam.to(self.device).eval()
        self.instance_head = (
            instance_head.to(self.device).eval() if instance_head is not None else None
        )
        self.distance_head = (
            distance_head.to(self.device).eval() if distance_head is not None else None
        )

    @property
    def name(self) -> str:
        """Registry name of the model."""
        return self.card.name

    @property
    def image_size(self) -> int:
        """Side of the square encoder input."""
        return self.arch.image_size

    def __repr__(self) -> str:
        head = ", instance head" if self.instance_head is not None else ""
        prec = f", precision={self.precision}" if self.precision != "fp32" else ""
        return (
            f"SamscopeModel({self.card.name!r}, arch={self.arch.name}{head}, "
            f"device={self.device}{prec})"
        )

    # -- precision ---------------------------------------------------------------------------
    def with_precision(self, precision: str | None) -> SamscopeModel:
        """This model at another precision: a view sharing the weights (and the int8 encoder).

        Parameters
        ----------
        precision : {"fp32", "bf16", "int8"} or None
            None: the model's :func:`default_precision` (its card's, on this device).

        Returns
        -------
        SamscopeModel
            ``self`` when the precision is already that one.

        Raises
        ------
        InputError
            An unknown precision, or int8 off the CPU.
        """
        name = (
            default_precision(self.card, self.device)
            if precision is None
            else check_precision(precision, self.device)
        )
        if name == self.precision:
            return self
        view = copy.copy(self)  # shallow: same modules, card, weight hash and int8 encoder cache
        view.precision = name
        _warn_if_slow_bf16(name, self.device)
        return view

    def autocast(self, precision: str | None = None):
        """A context running the decoder (or encoder) arithmetic at ``precision`` (default: the
        model's): bf16 autocast on the model's device, else nothing."""
        name = self.precision if precision is None else check_precision(precision, self.device)
        if name == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _vision_encoder(self, precision: str) -> torch.nn.Module:
        """The image encoder for ``precision`` (int8: a quantised copy, built once)."""
        if precision != "int8":
            return self.sam.vision_encoder
        encoder = self._quantised.get("encoder")
        if encoder is None:
            import warnings

            from torch.ao import quantization as tq

            with warnings.catch_warnings():  # torch.ao.quantization's deprecation notices
                warnings.simplefilter("ignore")
                # int8 weights with one scale per output channel (fbgemm; the per-tensor default
                # loses more), activations quantised per call from their own range
                encoder = tq.quantize_dynamic(
                    self.sam.vision_encoder,
                    {torch.nn.Linear: tq.per_channel_dynamic_qconfig},
                    dtype=torch.qint8,
                )
            self._quantised["encoder"] = encoder.eval()
        return encoder

    # -- encoder ---------------------------------------------------------------------------
    def encode(self, pixels: torch.Tensor, *, precision: str | None = None) -> torch.Tensor:
        """Image embeddings of prepared encoder input.

        Parameters
        ----------
        pixels : torch.Tensor
            ``(B, 3, S, S)`` normalised, padded input (see :func:`samscope.image.prepare_input`).
        precision : {"fp32", "bf16", "int8"}, optional
            Default: the model's :attr:`precision`.

        Returns
        -------
        torch.Tensor
            ``(B, C, g, g)`` float32 embeddings on the model's device.
        """
        name = self.precision if precision is None else check_precision(precision, self.device)
        size = self.image_size
        if pixels.ndim != 4 or pixels.shape[1] != 3 or pixels.shape[-2:] != (size, size):
            raise ValueError(
                f"expected encoder input (B, 3, {size}, {size}), got {tuple(pixels.shape)}"
            )
        pixels = pixels.to(self.device, non_blocking=True)
        encoder = self._vision_encoder(name)
        with torch.inference_mode(), self.autocast(name):
            out = encoder(pixels).last_hidden_state
        return out.float()

    # -- prompts -----------------------------------------------------------------------------
    def embed_prompts(
        self,
        *,
        points: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        boxes: torch.Tensor | None = None,
        masks: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sparse and dense embeddings of ``P`` prompts (one object each).

        Parameters
        ----------
        points : torch.Tensor, optional
            ``(P, N, 2)`` (x, y) in encoder-input pixels.
        labels : torch.Tensor, optional
            ``(P, N)`` 1 positive, 0 negative, -10 padding.
        boxes : torch.Tensor, optional
            ``(P, 4)`` (x0, y0, x1, y1) in encoder-input pixels.
        masks : torch.Tensor, optional
            ``(P, 1, 4g, 4g)`` low-resolution mask logits.

        Returns
        -------
        sparse : torch.Tensor
            ``(P, T, C)``.
        dense : torch.Tensor or None
            ``(P, C, g, g)`` when masks are given.
        """
        enc = self.sam.prompt_encoder
        with torch.inference_mode():
            pts = points[:, None].to(self.device, torch.float32) if points is not None else None
            lab = labels[:, None].to(self.device, torch.long) if labels is not None else None
            box = boxes[:, None].to(self.device, torch.float32) if boxes is not None else None
            if pts is None and box is None:
                raise ValueError("a prompt needs points or a box")
            sparse, _ = enc(input_points=pts, input_labels=lab, input_boxes=box, input_masks=None)
            dense = (
                enc.mask_embed(masks.to(self.device, torch.float32)) if masks is not None else None
            )
        return sparse[:, 0], dense

    def prepare_decoder(self, embedding: torch.Tensor):
        """Prompt-independent decoder state of one ``(1, C, g, g)`` embedding (see :mod:`.decoder`)."""
        from samscope.models.decoder import prepare_decoder

        with torch.inference_mode(), self.autocast():
            return prepare_decoder(self.sam, embedding.to(self.device))

    def decode(
        self,
        cache,
        sparse: torch.Tensor,
        dense: torch.Tensor | None = None,
        *,
        multimask: bool = False,
    ):
        """Low-resolution logits ``(P, K, 4g, 4g)`` and predicted IoU ``(P, K)`` for ``P`` prompts."""
        from samscope.models.decoder import decode

        with torch.inference_mode(), self.autocast():
            logits, iou = decode(self.sam, cache, sparse, dense=dense, multimask=multimask)
        return logits.float(), iou.float()

    # -- identity ----------------------------------------------------------------------------
    @property
    def weights_hash(self) -> str:
        """xxh3-128 of every parameter and buffer (names, shapes, bytes), memoised.

        Part of the embeddings-cache signature, so a cache can never be reused with other weights,
        whatever the model is called.
        """
        cached = getattr(self, "_weights_hash", None)
        if cached is None:
            import xxhash

            digest = xxhash.xxh3_128()
            for name, tensor in sorted(self.sam.state_dict().items()):
                digest.update(name.encode())
                digest.update(str(tuple(tensor.shape)).encode())
                digest.update(
                    tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
                )
            cached = digest.hexdigest()
            self._weights_hash = cached
        return cached
