"""A compact, CPU-trainable SAM image encoder: convolutional stem + a few global-attention blocks.

SAM's ViT spends its work on many tokens (64² at 1024² input) through 12–32 blocks; trained from
random initialisation on a 2-core CPU that is days per useful model. samscope's own models keep
SAM's prompt encoder and mask decoder (so prompting, caching and every automatic mode work
unchanged) and replace the image encoder with :class:`CompactEncoder`:

    pixels (B, 3, S, S)
      └ stem: stride-2 stages, each 3×3 conv (stride 2) → GroupNorm → GELU → residual 3×3 conv,
              until the stride equals ``patch_size``                          (S / p)
      └ 1×1 projection to ``hidden_size`` tokens
      └ ``num_layers`` blocks: depth-wise 3×3 conv positional encoding (residual),
              pre-norm global multi-head self-attention (fused SDPA), pre-norm MLP
      └ neck (as SAM's): 1×1 conv → LayerNorm2d → 3×3 conv → LayerNorm2d   (embed_dim, g, g)

Why this shape (measured on this project's 2-core CPU, see the model cards):

- the convolutional stem replaces the patch embedding: it gives the tokens local detail a linear
  patch projection cannot learn quickly, and it is cheap (≈0.3 GMAC at 256² input);
- positions come from depth-wise convolutions, not an absolute embedding: no position in a tile
  is special beyond its distance to the tile's edge, which suits tiled whole-slide work;
- 32² tokens (256² input, stride 8) keep global attention cheap (no windows or relative-position
  tables needed) while giving the mask decoder 128² low-resolution logits (2 px per logit).

The module answers like ``transformers``' ``SamVisionEncoder`` (an object with
``last_hidden_state``), so :class:`~samscope.models.sam.SamscopeModel` and training use it as is.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn
from torch.nn import functional as F

from samscope.models.sam_lite import LayerNorm2d

__all__ = ["CompactEncoder", "stem_channels"]


def _groups(channels: int) -> int:
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


def stem_channels(patch_size: int, hidden_size: int) -> list[int]:
    """Channels after each stride-2 stem stage (the last is ``hidden_size // 2``, at least 16).

    ``patch_size`` must be a power of two ≥ 2; stage ``i`` has ``hidden // 2**(n - i)`` channels
    (at least 16), so compute stays roughly even across stages.
    """
    n = int(patch_size).bit_length() - 1
    if patch_size < 2 or 2**n != patch_size:
        raise ValueError(f"the compact encoder needs a power-of-two patch_size ≥ 2, got {patch_size}")
    return [max(16, hidden_size // 2 ** (n - i)) for i in range(n)]


class _StemStage(nn.Module):
    """3×3 stride-2 conv → GN → GELU, then a residual 3×3 conv → GN → GELU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.down = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.norm1 = nn.GroupNorm(_groups(cout), cout)
        self.conv = nn.Conv2d(cout, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(_groups(cout), cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(self.down(x)))
        return x + F.gelu(self.norm2(self.conv(x)))


class _Block(nn.Module):
    """Conditional positional encoding, global self-attention and MLP on ``(B, g, g, C)`` tokens."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.heads = heads
        self.pos = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        x = x + self.pos(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        t = self.norm1(x).reshape(b, h * w, c)
        qkv = self.qkv(t).reshape(b, h * w, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        x = x + self.proj(att.transpose(1, 2).reshape(b, h * w, c)).reshape(b, h, w, c)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class CompactEncoder(nn.Module):
    """Convolutional stem + global-attention blocks + SAM neck (see the module docstring).

    Parameters
    ----------
    image_size, patch_size : int
        Encoder input side and total stem stride (a power of two); the grid is their ratio.
    hidden_size, num_layers, num_heads : int
        Token width, number of attention blocks and heads.
    embed_dim : int
        Output channels (the prompt encoder's and mask decoder's width).
    mlp_ratio : float
        MLP width over ``hidden_size``.
    """

    def __init__(
        self,
        *,
        image_size: int,
        patch_size: int,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        embed_dim: int,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not a multiple of num_heads {num_heads}")
        self.image_size, self.patch_size = int(image_size), int(patch_size)
        channels = stem_channels(patch_size, hidden_size)
        self.stem = nn.ModuleList(
            _StemStage(cin, cout) for cin, cout in zip([3, *channels[:-1]], channels, strict=True)
        )
        self.proj = nn.Conv2d(channels[-1], hidden_size, 1)
        self.layers = nn.ModuleList(_Block(hidden_size, num_heads, mlp_ratio) for _ in range(num_layers))
        self.neck_conv1 = nn.Conv2d(hidden_size, embed_dim, 1, bias=False)
        self.neck_norm1 = LayerNorm2d(embed_dim, eps=1e-6)
        self.neck_conv2 = nn.Conv2d(embed_dim, embed_dim, 3, padding=1, bias=False)
        self.neck_norm2 = LayerNorm2d(embed_dim, eps=1e-6)

    def forward(self, pixel_values: torch.Tensor, **_: object) -> SimpleNamespace:
        """Embeddings ``(B, embed_dim, S/p, S/p)`` as ``.last_hidden_state``."""
        x = pixel_values
        for stage in self.stem:
            x = stage(x)
        x = self.proj(x).permute(0, 2, 3, 1)
        for block in self.layers:
            x = block(x)
        x = x.permute(0, 3, 1, 2)
        x = self.neck_norm2(self.neck_conv2(self.neck_norm1(self.neck_conv1(x))))
        return SimpleNamespace(last_hidden_state=x)
