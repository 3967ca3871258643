"""Distance-map head: SAMCell's per-cell normalised distance to the border, from SAM's embedding.

SAMCell (VandeLoo et al., PLOS One 2025) fine-tunes SAM's *prompt* decoder to emit a distance map from the default
(empty) prompt. samscope instead puts a small convolutional decoder on the image embedding, as
it does for AIS (:class:`~samscope.models.heads.InstanceDistanceHead`):

- the prompt decoder stays SAM's (or µSAM's), so the same model still segments interactively;
- one pass per image (the prompt decoder would attend over the 4096 image tokens for nothing);
- it runs on cached embeddings, so changing thresholds or re-blending never re-encodes.

Design (≈0.39 M parameters for a 256-channel embedding, most in the stem)::

    embedding (B, C, g, g)
      └ stem: 3×3 conv C→h, GroupNorm, GELU                      (g)
      └ up × n: ×2 bilinear, 3×3 conv (halving channels), GroupNorm, GELU   (2g, 4g, …)
      └ out: 1×1 conv → 1 logit                                  (2ⁿ g)

GroupNorm (not batch norm) so training with the small batches a CPU allows behaves as inference.
The default ``upsample_steps=2`` gives ``4 g`` pixels per side — 256² for SAM's 64² grid, which
is exactly the resolution of SAMCell's 256-px windows (each is up-sampled 4× to the 1024² encoder
input), so the output is pixel-aligned with the window and nothing finer exists to predict; use
``upsample_steps=4`` for the full encoder-input resolution ``16 g``. The output covers the whole
padded encoder input; crop and resize it as :func:`samscope.models.heads.to_original` does.

The target and its decoder are :func:`samscope.instance.targets.distance_map_target` and
:func:`samscope.instance.targets.watershed_from_distance_map`; SAMCell trains with an L2 loss on
the sigmoid output.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from samscope.errors import CheckpointError
from samscope.models.architectures import SamArchitecture, get_architecture

__all__ = ["DistanceMapHead"]


def _groups(channels: int) -> int:
    """Largest of 8, 4, 2, 1 that divides ``channels``."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class _ConvNormAct(nn.Sequential):
    """3×3 conv → GroupNorm → GELU; keys ``0.*`` (conv), ``1.*`` (norm)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.GroupNorm(_groups(out_channels), out_channels),
            nn.GELU(),
        )


class _Up(nn.Module):
    """×2 bilinear up-sampling, then :class:`_ConvNormAct`; keys ``block.*``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = _ConvNormAct(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.block(x)


class DistanceMapHead(nn.Module):
    """Per-pixel normalised distance to the cell border (0–1) from SAM's image embedding.

    Parameters
    ----------
    embed_dim : int
        Channels of the image embedding (256 for every Meta SAM).
    hidden : int
        Channels after the stem; each up-sampling stage halves them (down to 8).
    upsample_steps : int
        Number of ×2 stages: the output has ``2**upsample_steps × g`` pixels per side.
    out_channels : int
        Output maps: 1 for the distance map. With 3 the same decoder is a light alternative to
        :class:`~samscope.models.heads.InstanceDistanceHead` for AIS/APG (foreground, centre and
        boundary distance at ``4 g``, bilinearly up-sampled by
        :func:`samscope.instance.ais.predict_ais_maps`): on a 2-core CPU it takes ≈0.2 s where
        the µSAM-compatible UNETR head takes ≈15 s at 1024² (``benchmarks/bench_ais.py``).

    State-dict keys: ``stem.*``, ``ups.<i>.block.*``, ``out.*``.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        *,
        hidden: int = 128,
        upsample_steps: int = 2,
        out_channels: int = 1,
    ) -> None:
        super().__init__()
        if upsample_steps < 0 or hidden < 1 or out_channels < 1:
            raise ValueError(
                "need upsample_steps >= 0, hidden >= 1 and out_channels >= 1, got "
                f"{upsample_steps}, {hidden}, {out_channels}"
            )
        self.embed_dim = embed_dim
        self.hidden = hidden
        self.upsample_steps = upsample_steps
        self.out_channels = out_channels
        self.stem = _ConvNormAct(embed_dim, hidden)
        channels = [hidden]
        for _ in range(upsample_steps):
            channels.append(max(min(8, channels[-1]), channels[-1] // 2))
        self.ups = nn.ModuleList(
            [_Up(cin, cout) for cin, cout in zip(channels[:-1], channels[1:], strict=True)]
        )
        self.out = nn.Conv2d(channels[-1], out_channels, kernel_size=1)

    def config(self) -> dict[str, int]:
        """Constructor keywords that rebuild this head (stored beside its state in checkpoints)."""
        return {
            "embed_dim": self.embed_dim,
            "hidden": self.hidden,
            "upsample_steps": self.upsample_steps,
            "out_channels": self.out_channels,
        }

    @property
    def scale(self) -> int:
        """Output pixels per embedding cell (``2**upsample_steps``)."""
        return 2**self.upsample_steps

    @classmethod
    def for_architecture(
        cls, arch: SamArchitecture | str, *, upsample_steps: int = 2, out_channels: int = 1
    ) -> DistanceMapHead:
        """A randomly initialised head for an architecture (``hidden = embed_dim // 2``)."""
        if isinstance(arch, str):
            arch = get_architecture(arch)
        return cls(
            arch.embed_dim,
            hidden=max(8, arch.embed_dim // 2),
            upsample_steps=upsample_steps,
            out_channels=out_channels,
        )

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> DistanceMapHead:
        """Build a head whose shape matches ``state`` (keys without prefix), then load it strictly.

        Raises
        ------
        CheckpointError
            If the state is not a distance-map head or does not load strictly.
        """
        from samscope.models.checkpoint import load_state_dict_strict

        if "stem.0.weight" not in state or "out.weight" not in state:
            raise CheckpointError(
                "not a distance-map head state: it needs 'stem.0.weight' and 'out.weight' "
                f"(first keys: {sorted(state)[:5]})"
            )
        hidden, embed_dim = state["stem.0.weight"].shape[:2]
        steps = len({k.split(".")[1] for k in state if k.startswith("ups.")})
        out_channels = int(state["out.weight"].shape[0])
        head = cls(
            int(embed_dim), hidden=int(hidden), upsample_steps=steps, out_channels=out_channels
        )
        load_state_dict_strict(head, state, what="distance head")
        return head.eval()

    def logits(self, image_embeddings: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid output ``(B, out_channels, s g, s g)`` with ``s = 2**upsample_steps``."""
        x = self.stem(image_embeddings)
        for up in self.ups:
            x = up(x)
        return self.out(x)

    def forward(self, image_embeddings: torch.Tensor) -> torch.Tensor:
        """Distance map in 0–1.

        Parameters
        ----------
        image_embeddings : torch.Tensor
            ``(B, embed_dim, g, g)``.

        Returns
        -------
        torch.Tensor
            ``(B, out_channels, s g, s g)``, ``s = 2**upsample_steps``, covering the padded
            encoder input.
        """
        return torch.sigmoid(self.logits(image_embeddings))
