"""Extra decoders on SAM's image encoder.

:class:`InstanceDistanceHead` predicts three maps for automatic instance segmentation (AIS and
APG): foreground probability, distance to the object centre and distance to the object boundary
(both normalised per object, so in 0–1). It has the structure and the state-dict key names of the
decoder part of ``torch_em``'s UNETR as µSAM builds it (``micro_sam.instance_segmentation.get_unetr``:
SAM encoder with its neck, no skip connections, three sigmoid outputs), so the ``decoder_state``
that µSAM ships with its fine-tuned models loads into it unchanged and strictly:

- ``deconv1`` … ``deconv4``: a chain of ×2 up-sampling blocks on the image embedding
  (upsample → 3×3 conv → batch norm → ReLU), giving features at 2×, 4×, 8× and 16× the grid;
- ``base``: a conv block on the embedding; ``decoder``: three levels, each up-sampling and
  concatenating the matching ``deconv`` output, then a conv block (the skips have twice the
  channels of the up-sampled features and, as in ``torch_em``, only their middle half is used);
- ``deconv_out``: a last ×2 up-sampling, concatenated with ``deconv4``'s output;
- ``decoder_head`` (conv block) and ``out_conv`` (1×1 conv) → three logits → sigmoid.

Conv blocks are (instance norm → 3×3 conv → ReLU) twice, as in ``torch_em``. Up-sampling is
either bilinear interpolation followed by a 1×1 conv (the default of current µSAM) or a 2×2
transposed convolution (older µSAM decoders); :meth:`InstanceDistanceHead.from_state_dict`
recognises which from the keys.

The head reads only the image embedding (``(B, embed_dim, g, g)``, the encoder's neck output),
never the input image, so it runs on cached embeddings. Its output has 16 × g pixels per side,
which is the encoder input size for 16-pixel patches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from samscope.errors import CheckpointError
from samscope.models.architectures import SamArchitecture, get_architecture

Upsampling = Literal["bilinear", "transpose"]
#: Where the head's last level (deconv4's 3×3 conv, ``decoder_head``, ``out_conv``) runs:
#: ``"full"`` (16 g per side, as trained; the default) or ``"half"`` (8 g, then the three logit
#: maps up-sampled ×2 bilinearly: ≈ 1.5× fewer operations, a different, approximate result).
LastLevel = Literal["full", "half"]
LAST_LEVELS = ("full", "half")

#: Channels of the three output maps, in order.
OUTPUT_CHANNELS = ("foreground", "center_distance", "boundary_distance")


class _ConvBlock(nn.Module):
    """(instance norm → 3×3 conv → ReLU) × 2; keys ``block.1.*`` and ``block.4.*``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.InstanceNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.InstanceNorm2d(out_channels),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _BilinearUp(nn.Module):
    """×2 bilinear interpolation, then a 1×1 conv; key ``conv.*``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.conv(x)


class _TransposeUp(nn.Module):
    """×2 transposed convolution (kernel 2, stride 2); key ``block.*``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def _upsampler(kind: Upsampling, in_channels: int, out_channels: int) -> nn.Module:
    return _BilinearUp(in_channels, out_channels) if kind == "bilinear" else _TransposeUp(
        in_channels, out_channels
    )


class _Conv3x3(nn.Module):
    """A 3×3 conv; key ``block.*``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _UpBlock(nn.Module):
    """Up-sample ×2 → 3×3 conv → batch norm → ReLU; keys ``block.0/1/2.*``."""

    def __init__(self, in_channels: int, out_channels: int, upsampling: Upsampling) -> None:
        super().__init__()
        self.block = nn.Sequential(
            _upsampler(upsampling, in_channels, out_channels),
            _Conv3x3(out_channels, out_channels),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _Decoder(nn.Module):
    """Levels of (up-sample → concatenate the skip → conv block); keys ``blocks.i``, ``samplers.i``."""

    def __init__(self, features: list[int], upsampling: Upsampling) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [_ConvBlock(cin, cout) for cin, cout in zip(features[:-1], features[1:], strict=True)]
        )
        self.samplers = nn.ModuleList(
            [
                _upsampler(upsampling, cin, cout)
                for cin, cout in zip(features[:-1], features[1:], strict=True)
            ]
        )

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for block, sampler, skip in zip(self.blocks, self.samplers, skips, strict=True):
            x = sampler(x)
            x = block(torch.cat([x, _center_crop(skip, x.shape)], dim=1))
        return x


def _center_crop(x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Centre-crop every axis but the batch to ``shape``.

    As ``torch_em``'s decoder does, this crops the *channels* too: a skip from ``deconv1`` has
    twice the channels of the up-sampled features, and only its middle half is concatenated.
    """
    index = [slice(None)] + [
        slice((have - want) // 2, (have - want) // 2 + want)
        for have, want in zip(x.shape[1:], shape[1:], strict=True)
    ]
    return x[tuple(index)]


class InstanceDistanceHead(nn.Module):
    """Foreground, centre-distance and boundary-distance maps from SAM's image embedding.

    Parameters
    ----------
    embed_dim : int
        Channels of the image embedding (256 for every Meta SAM).
    initial_features : int
        Channels of the finest decoder level; the levels have 8×, 4×, 2×, 1× this. µSAM uses 64.
    out_channels : int
        Output maps (3: foreground, centre distance, boundary distance).
    upsampling : {"bilinear", "transpose"}
        Bilinear interpolation + 1×1 conv (current µSAM) or 2×2 transposed convolutions (older µSAM).

    Notes
    -----
    Call :meth:`eval` before inference: the up-sampling blocks use batch norm.
    """

    def __init__(
        self,
        embed_dim: int = 256,
        *,
        initial_features: int = 64,
        out_channels: int = 3,
        upsampling: Upsampling = "bilinear",
    ) -> None:
        super().__init__()
        if upsampling not in ("bilinear", "transpose"):
            raise ValueError(f"upsampling must be 'bilinear' or 'transpose', not {upsampling!r}")
        self.embed_dim = embed_dim
        self.initial_features = initial_features
        self.out_channels = out_channels
        self.upsampling: Upsampling = upsampling
        f = [initial_features * 2**i for i in range(4)][::-1]  # e.g. 512, 256, 128, 64

        self.deconv1 = _UpBlock(embed_dim, f[0], upsampling)
        self.deconv2 = _UpBlock(f[0], f[1], upsampling)
        self.deconv3 = _UpBlock(f[1], f[2], upsampling)
        self.deconv4 = _UpBlock(f[2], f[3], upsampling)
        self.base = _ConvBlock(embed_dim, f[0])
        self.decoder = _Decoder(f, upsampling)
        self.deconv_out = _upsampler(upsampling, f[-1], f[-1])
        self.decoder_head = _ConvBlock(2 * f[-1], f[-1])
        self.out_conv = nn.Conv2d(f[-1], out_channels, kernel_size=1)

    @classmethod
    def for_architecture(
        cls, arch: SamArchitecture | str, *, initial_features: int | None = None
    ) -> InstanceDistanceHead:
        """A randomly initialised head for an architecture.

        ``initial_features`` defaults to ``embed_dim // 4``: µSAM's 64 for every 256-channel SAM,
        and a small, fast head for ``vit_test``.
        """
        if isinstance(arch, str):
            arch = get_architecture(arch)
        features = arch.embed_dim // 4 if initial_features is None else initial_features
        return cls(arch.embed_dim, initial_features=features)

    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> InstanceDistanceHead:
        """Build a head whose shape matches ``state`` (a µSAM ``decoder_state``), then load it strictly.

        Raises
        ------
        CheckpointError
            If the state is not a UNETR decoder or does not load strictly.
        """
        from samscope.models.checkpoint import load_state_dict_strict

        if "out_conv.weight" not in state:
            raise CheckpointError(
                "not an instance-decoder state: it has no 'out_conv.weight' "
                f"(first keys: {sorted(state)[:5]})"
            )
        if "deconv1.block.0.conv.weight" in state:
            upsampling: Upsampling = "bilinear"
            embed_dim = state["deconv1.block.0.conv.weight"].shape[1]
        elif "deconv1.block.0.block.weight" in state:
            upsampling = "transpose"
            embed_dim = state["deconv1.block.0.block.weight"].shape[0]  # ConvTranspose: (in, out, k, k)
        else:
            raise CheckpointError("instance-decoder state lacks 'deconv1.block.0.*' (conv or block)")
        out_channels, initial_features = state["out_conv.weight"].shape[:2]
        head = cls(
            int(embed_dim),
            initial_features=int(initial_features),
            out_channels=int(out_channels),
            upsampling=upsampling,
        )
        load_state_dict_strict(head, state, what="instance head")
        return head.eval()

    def logits(
        self, image_embeddings: torch.Tensor, *, last_level: LastLevel = "full"
    ) -> torch.Tensor:
        """Pre-sigmoid output, ``(B, out_channels, 16 g, 16 g)`` for embeddings ``(B, embed_dim, g, g)``.

        In inference (eval mode, no autograd) the same arithmetic is evaluated more cheaply by
        :func:`_inference_logits` (equal up to float rounding); training runs the modules.

        ``last_level="half"`` (inference only) runs the last, full-resolution level at half
        resolution and up-samples the three logit maps ×2 bilinearly: ≈ 1.5× fewer operations
        (266 instead of 382 GMAC for a 64² embedding), but *not* the trained arithmetic: the
        last 3×3 convolutions see twice the image extent they were trained on. See
        :func:`_half_last_level`.
        """
        if last_level not in LAST_LEVELS:
            raise ValueError(f"last_level must be one of {LAST_LEVELS}, not {last_level!r}")
        inference = not self.training and not torch.is_grad_enabled() and _foldable(self)
        if last_level == "half":
            if not inference:
                raise ValueError("last_level='half' is for inference: eval mode, no autograd")
            return _inference_logits(self, image_embeddings, half_last_level=True)
        if inference:
            return _inference_logits(self, image_embeddings)
        z9 = self.deconv1(image_embeddings)
        z6 = self.deconv2(z9)
        z3 = self.deconv3(z6)
        z0 = self.deconv4(z3)
        x = self.decoder(self.base(image_embeddings), [z9, z6, z3])
        x = self.deconv_out(x)
        x = self.decoder_head(torch.cat([x, z0], dim=1))
        return self.out_conv(x)

    def forward(
        self, image_embeddings: torch.Tensor, *, last_level: LastLevel = "full"
    ) -> torch.Tensor:
        """Foreground, centre- and boundary-distance maps in 0–1.

        Parameters
        ----------
        image_embeddings : torch.Tensor
            ``(B, embed_dim, g, g)``, the image encoder's output.
        last_level : {"full", "half"}
            ``"half"``: the approximate, faster last level of :meth:`logits` (inference only).

        Returns
        -------
        torch.Tensor
            ``(B, 3, 16 g, 16 g)``, channels as in :data:`OUTPUT_CHANNELS`, at encoder-input
            resolution (the padded, resized image); crop and resize with :func:`to_original`.
        """
        return torch.sigmoid(self.logits(image_embeddings, last_level=last_level))


# -- inference: the same arithmetic with less of it ---------------------------------------------
#
# Two exact rewrites (up to float rounding) of the eval-mode head, both standard:
# - a 1×1 convolution commutes with ×2 bilinear up-sampling (every interpolated pixel is a convex
#   combination of input pixels, weights summing to one, so the bias passes through too): the 1×1
#   convolutions run on the coarse grid, 4× fewer pixels, before up-sampling;
# - eval-mode batch norm after a convolution is folded into that convolution's weights and bias.


def _foldable(head: InstanceDistanceHead) -> bool:
    """Whether every batch norm uses running statistics (so it can be folded)."""
    return all(
        m.track_running_stats and m.running_var is not None
        for m in head.modules()
        if isinstance(m, nn.BatchNorm2d)
    )


def _folded(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(conv(x))`` as one convolution (eval-mode batch norm)."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    shift = -bn.running_mean * scale
    if bn.weight is not None:
        scale, shift = scale * bn.weight, shift * bn.weight + bn.bias
    bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
    return conv.weight * scale.reshape(-1, 1, 1, 1), bias * scale + shift


def _up(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """An up-sampler: bilinear ones as 1×1 convolution on the coarse grid, then interpolation."""
    if isinstance(module, _BilinearUp):
        x = module.conv(x)
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    return module(x)


def _up_block(block: _UpBlock, x: torch.Tensor) -> torch.Tensor:
    up, conv, bn = block.block[0], block.block[1].block, block.block[2]
    weight, bias = _folded(conv, bn)
    return F.relu_(F.conv2d(_up(up, x), weight, bias, padding=conv.padding))


def _same_grid(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """An up-sampler's channel mixing without the up-sampling (for the half-resolution level).

    Bilinear: its 1×1 convolution. Transposed 2×2 convolution (stride 2): the 1×1 convolution
    with the mean of its four taps, which is exactly its output averaged over each 2×2 block.
    """
    if isinstance(module, _BilinearUp):
        return module.conv(x)
    tconv = module.block
    weight = tconv.weight.mean(dim=(2, 3), keepdim=True).transpose(0, 1)  # (out, in, 1, 1)
    return F.conv2d(x, weight, tconv.bias)


def _half_last_level(head: InstanceDistanceHead, x: torch.Tensor, z3: torch.Tensor) -> torch.Tensor:
    """The last level at 8 g instead of 16 g, logits up-sampled ×2 bilinearly (approximate).

    ``x``: the decoder's output and ``z3``: ``deconv3``'s, both at 8 g. The last level's
    up-samplers (``deconv_out``, ``deconv4``'s) keep their channel mixing and skip the ×2;
    deconv4's 3×3 conv, ``decoder_head`` and ``out_conv`` then run on 4× fewer pixels.
    """
    up, conv, bn = head.deconv4.block[0], head.deconv4.block[1].block, head.deconv4.block[2]
    weight, bias = _folded(conv, bn)
    z0 = F.relu_(F.conv2d(_same_grid(up, z3), weight, bias, padding=conv.padding))
    x = head.decoder_head(torch.cat([_same_grid(head.deconv_out, x), z0], dim=1))
    x = head.out_conv(x)
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def _inference_logits(
    head: InstanceDistanceHead, emb: torch.Tensor, *, half_last_level: bool = False
) -> torch.Tensor:
    """:meth:`InstanceDistanceHead.logits` in eval mode without autograd, rewritten as above."""
    z9 = _up_block(head.deconv1, emb)
    z6 = _up_block(head.deconv2, z9)
    z3 = _up_block(head.deconv3, z6)
    x = head.base(emb)
    decoder = head.decoder
    for block, sampler, skip in zip(decoder.blocks, decoder.samplers, [z9, z6, z3], strict=True):
        x = _up(sampler, x)
        x = block(torch.cat([x, _center_crop(skip, x.shape)], dim=1))
    if half_last_level:
        return _half_last_level(head, x, z3)
    z0 = _up_block(head.deconv4, z3)
    x = _up(head.deconv_out, x)
    x = head.decoder_head(torch.cat([x, z0], dim=1))
    return head.out_conv(x)


def to_original(
    maps: torch.Tensor, input_size: tuple[int, int], original_size: tuple[int, int]
) -> torch.Tensor:
    """Crop the padding off encoder-resolution maps and resize them to the original image.

    The same steps as ``torch_em``'s ``postprocess_masks`` (bilinear, ``align_corners=False``).

    Parameters
    ----------
    maps : torch.Tensor
        ``(B, C, S, S)`` at encoder-input resolution.
    input_size : (int, int)
        ``(h, w)`` of the resized image inside the padded square.
    original_size : (int, int)
        ``(H, W)`` of the original image.

    Returns
    -------
    torch.Tensor
        ``(B, C, H, W)``.
    """
    maps = maps[..., : input_size[0], : input_size[1]]
    if tuple(maps.shape[-2:]) == tuple(original_size):
        return maps
    return F.interpolate(maps, tuple(original_size), mode="bilinear", align_corners=False)


def instance_head_from_state(state: Mapping[str, torch.Tensor]) -> nn.Module:
    """Rebuild an instance head from its state: µSAM's UNETR, or samscope's light three-output head.

    Raises
    ------
    CheckpointError
        If the state is neither.
    """
    if "stem.0.weight" in state and "out.weight" in state:
        from samscope.models.distance_head import DistanceMapHead

        head = DistanceMapHead.from_state_dict(state)
        if head.out_channels != 3:
            raise CheckpointError(
                f"an instance head needs three outputs; this light head has {head.out_channels}"
            )
        return head
    return InstanceDistanceHead.from_state_dict(state)
