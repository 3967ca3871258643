"""The SAM backbone wrapper: encode images to embeddings, decode prompts to masks.

:class:`SamscopeModel` holds a ``transformers.SamModel`` (image encoder, prompt encoder, mask
decoder), its :class:`~samscope.models.card.ModelCard` and, when the checkpoint has one, an
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
    sam : transformers.SamModel
        The network (eval mode).
    card : ModelCard
        What the model is.
    instance_head : torch.nn.Module, optional
        Instance-distance decoder on the image encoder (foreground, centre and boundary distance).
    device : str or torch.device
        Where to run.
    """

    def __init__(
        self,
        sam: SamModel,
        card: ModelCard,
        *,
        instance_head: torch.nn.Module | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.card = card
        self.arch: SamArchitecture = get_architecture(card.architecture)
        self.device = torch.device(device)
        self.sam = sam.to(self.device).eval()
        self.instance_head = instance_head.to(self.device).eval() if instance_head is not None else None

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
        return f"SamscopeModel({self.card.name!r}, arch={self.arch.name}{head}, device={self.device})"
