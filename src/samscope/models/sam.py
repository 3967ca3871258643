"""The SAM backbone wrapper: encode images to embeddings, decode prompts to masks.

:class:`SamscopeModel` holds a ``transformers.SamModel`` (image encoder, prompt encoder, mask
decoder) — or, for samscope's compact models, :class:`samscope.models.sam_lite.SamLite`, the
same modules and state-dict keys without importing ``transformers`` — its :class:`~samscope.models.card.ModelCard` and, when the checkpoint has one, an
instance-distance head for automatic segmentation. Coordinates here are in *encoder input* pixels
(x, y order, as SAM expects); :mod:`samscope.prompting` maps user coordinates (y, x, original
image) to them through :class:`samscope.image.Transform`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from samscope.models.architectures import SamArchitecture, get_architecture
from samscope.models.card import ModelCard

if TYPE_CHECKING:  # pragma: no cover
    from transformers import SamModel


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
    """

    def __init__(
        self,
        sam: SamModel,
        card: ModelCard,
        *,
        instance_head: torch.nn.Module | None = None,
        distance_head: torch.nn.Module | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.card = card
        self.arch: SamArchitecture = get_architecture(card.architecture)
        self.device = torch.device(device)
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
        return (
            f"SamscopeModel({self.card.name!r}, arch={self.arch.name}{head}, device={self.device})"
        )

    # -- encoder ---------------------------------------------------------------------------
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Image embeddings of prepared encoder input.

        Parameters
        ----------
        pixels : torch.Tensor
            ``(B, 3, S, S)`` normalised, padded input (see :func:`samscope.image.prepare_input`).

        Returns
        -------
        torch.Tensor
            ``(B, C, g, g)`` float32 embeddings on the model's device. On CUDA the encoder runs in
            bfloat16 autocast.
        """
        size = self.image_size
        if pixels.ndim != 4 or pixels.shape[1] != 3 or pixels.shape[-2:] != (size, size):
            raise ValueError(
                f"expected encoder input (B, 3, {size}, {size}), got {tuple(pixels.shape)}"
            )
        pixels = pixels.to(self.device, non_blocking=True)
        with torch.inference_mode():
            if self.device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out = self.sam.vision_encoder(pixels).last_hidden_state
            else:
                out = self.sam.vision_encoder(pixels).last_hidden_state
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

        with torch.inference_mode():
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

        with torch.inference_mode():
            return decode(self.sam, cache, sparse, dense=dense, multimask=multimask)

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
