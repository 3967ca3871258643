"""SAM's prompt encoder and mask decoder in plain torch, for models that need no ``transformers``.

samscope's compact models (:class:`samscope.models.compact.CompactEncoder` as image encoder) use
only SAM's prompt encoder and mask decoder. Importing ``transformers`` for them costs seconds
(it pulls in ``torch._dynamo``, ``torch.distributed.tensor``, …), more than a whole segmentation
of a 1024² image, so :class:`SamLite` re-implements what samscope uses of
``transformers.SamModel``:

    SamLite
      ├ shared_image_embedding   random Fourier features of (x, y)       (PositionalEmbedding)
      ├ vision_encoder           any module answering ``.last_hidden_state`` (CompactEncoder)
      ├ prompt_encoder           points, boxes → sparse tokens; masks → dense embedding
      └ mask_decoder             two-way transformer, upscaling, hypernetwork MLPs, IoU head

Module names, parameter names, shapes and the order of registration are those of
``transformers`` 5 (``models/sam/modeling_sam.py``), so a ``SamModel`` state dict loads strictly
(including the tied copy ``prompt_encoder.shared_embedding.positional_embedding``) and
:func:`samscope.training.setup.initialise_weights` draws the same numbers. The arithmetic is the
same operations in the same order (SDPA where ``transformers`` uses SDPA);
``tests/models/test_sam_lite.py`` checks prompt embeddings and decoder outputs against
``transformers`` to 1e-5 (they agree bit for bit on CPU) and a training step's losses and
gradients to 1e-4. Not carried over: ``attention_similarity`` and ``target_embedding`` (PerSAM)
and output recording, which samscope never uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from samscope.models.sam_lite_config import (
    MaskDecoderConfig,
    PromptEncoderConfig,
    SamLiteConfig,
    VisionConfig,
)

__all__ = [
    "MaskDecoder",
    "MaskDecoderConfig",
    "PromptEncoder",
    "PromptEncoderConfig",
    "SamLite",
    "SamLiteConfig",
    "SamLiteOutput",
    "VisionConfig",
]


_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


def _activation(name: str) -> nn.Module:
    try:
        return _ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unsupported activation {name!r}; known: {sorted(_ACTIVATIONS)}"
        ) from None


# --------------------------------------------------------------------------- prompt encoder


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of ``(B, C, H, W)`` (``SamLayerNorm``, channels first)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class PositionalEmbedding(nn.Module):
    """Random Fourier features: ``(…, 2)`` coordinates in [0, 1] → ``(…, 2·num_pos_feats)``."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.scale = config.scale
        self.positional_embedding = nn.Parameter(torch.empty((2, config.num_pos_feats)))

    def forward(
        self, input_coords: torch.Tensor, input_shape: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Encode ``(…, 2)`` (x, y) points, given in pixels of ``input_shape`` (h, w) if given."""
        coordinates = input_coords.clone()
        if input_shape is not None:
            coordinates[..., 0] = coordinates[..., 0] / input_shape[1]
            coordinates[..., 1] = coordinates[..., 1] / input_shape[0]
        coordinates = 2 * coordinates - 1
        coordinates = coordinates.to(self.positional_embedding.dtype) @ self.positional_embedding
        coordinates = (2 * math.pi) * coordinates
        return torch.cat([torch.sin(coordinates), torch.cos(coordinates)], dim=-1)


class MaskEmbedding(nn.Module):
    """Mask prompt ``(B, 1, 4g, 4g)`` → dense embedding ``(B, C, g, g)`` (two stride-2 convs)."""

    def __init__(self, config: PromptEncoderConfig) -> None:
        super().__init__()
        c = config.mask_input_channels
        self.mask_input_channels = c // 4
        self.activation = _activation(config.hidden_act)
        self.conv1 = nn.Conv2d(1, c // 4, kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(c // 4, c, kernel_size=2, stride=2)
        self.conv3 = nn.Conv2d(c, config.hidden_size, kernel_size=1)
        self.layer_norm1 = LayerNorm2d(c // 4, eps=config.layer_norm_eps)
        self.layer_norm2 = LayerNorm2d(c, eps=config.layer_norm_eps)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.layer_norm1(self.conv1(masks)))
        x = self.activation(self.layer_norm2(self.conv2(x)))
        return self.conv3(x)


class PromptEncoder(nn.Module):
    """Points, boxes and masks → sparse and dense prompt embeddings (``SamPromptEncoder``).

    Parameters
    ----------
    vision_config : VisionConfig
        For the Fourier features (tied to :attr:`SamLite.shared_image_embedding`).
    config : PromptEncoderConfig
    """

    def __init__(self, vision_config: VisionConfig, config: PromptEncoderConfig) -> None:
        super().__init__()
        self.shared_embedding = PositionalEmbedding(vision_config)
        self.mask_embed = MaskEmbedding(config)
        self.no_mask_embed = nn.Embedding(1, config.hidden_size)
        size = config.image_embedding_size
        self.image_embedding_size = (size, size)
        self.input_image_size = config.image_size
        self.point_embed = nn.ModuleList(
            nn.Embedding(1, config.hidden_size) for _ in range(config.num_point_embeddings)
        )
        self.hidden_size = config.hidden_size
        self.not_a_point_embed = nn.Embedding(1, config.hidden_size)

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        points = points + 0.5  # centre of the pixel
        if pad:  # a "not a point" token, as segment-anything adds when there is no box
            b, p = points.shape[:2]
            points = torch.cat([points, torch.zeros((b, p, 1, 2), device=points.device)], dim=2)
            labels = torch.cat([labels, -torch.ones((b, p, 1), device=labels.device)], dim=2)
        size = self.input_image_size
        embedding = self.shared_embedding(points, (size, size))
        embedding = torch.where(labels[..., None] == -1, self.not_a_point_embed.weight, embedding)
        embedding = torch.where(labels[..., None] != -10, embedding, torch.zeros_like(embedding))
        embedding = torch.where(
            (labels == 0)[..., None], embedding + self.point_embed[0].weight[None, None], embedding
        )
        return torch.where(
            (labels == 1)[..., None], embedding + self.point_embed[1].weight[None, None], embedding
        )

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        boxes = boxes + 0.5  # centre of the pixel
        b, n = boxes.shape[:2]
        size = self.input_image_size
        corners = self.shared_embedding(boxes.reshape(b, n, 2, 2), (size, size))
        corners[:, :, 0, :] += self.point_embed[2].weight
        corners[:, :, 1, :] += self.point_embed[3].weight
        return corners

    def forward(
        self,
        input_points: torch.Tensor | None,
        input_labels: torch.Tensor | None,
        input_boxes: torch.Tensor | None,
        input_masks: torch.Tensor | None,
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Sparse and dense embeddings.

        Parameters
        ----------
        input_points : torch.Tensor, optional
            ``(B, P, N, 2)`` (x, y) in encoder-input pixels.
        input_labels : torch.Tensor, optional
            ``(B, P, N)``: 1 positive, 0 negative, -1 "not a point", -10 padding.
        input_boxes : torch.Tensor, optional
            ``(B, P, 4)`` (x0, y0, x1, y1) in encoder-input pixels.
        input_masks : torch.Tensor, optional
            ``(B, 1, 4g, 4g)`` mask logits.

        Returns
        -------
        sparse : torch.Tensor or None
            ``(B, P, T, C)``: the points (plus a padding token when there is no box), then the
            two box corners.
        dense : torch.Tensor
            ``(B, C, g, g)``: the mask embedding, else the "no mask" embedding broadcast.
        """
        sparse = None
        batch = 1
        if input_points is not None:
            batch = input_points.shape[0]
            if input_labels is None:
                raise ValueError("If points are provided, labels must also be provided.")
            sparse = self._embed_points(input_points, input_labels, pad=input_boxes is None)
        if input_boxes is not None:
            batch = input_boxes.shape[0]
            boxes = self._embed_boxes(input_boxes)
            sparse = boxes if sparse is None else torch.cat([sparse, boxes], dim=2)
        if input_masks is not None:
            dense = self.mask_embed(input_masks)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
                batch, -1, *self.image_embedding_size
            )
        return sparse, dense


# ----------------------------------------------------------------------------- mask decoder


class Attention(nn.Module):
    """Multi-head attention with an optional down-projection of the width (``SamAttention``).

    Inputs are ``(B, P, T, C)``; queries, keys and values of one ``(b, p)`` attend together.
    """

    def __init__(self, config: MaskDecoderConfig, downsample_rate: int | None = None) -> None:
        super().__init__()
        rate = config.attention_downsample_rate if downsample_rate is None else downsample_rate
        self.hidden_size = config.hidden_size
        self.internal_dim = config.hidden_size // rate
        self.num_attention_heads = config.num_attention_heads
        if self.internal_dim % self.num_attention_heads:
            raise ValueError("num_attention_heads must divide hidden_size.")
        self.scaling = (self.internal_dim // self.num_attention_heads) ** -0.5
        self.q_proj = nn.Linear(self.hidden_size, self.internal_dim)
        self.k_proj = nn.Linear(self.hidden_size, self.internal_dim)
        self.v_proj = nn.Linear(self.hidden_size, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, self.hidden_size)

    def _separate_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, p, n, c = x.shape
        h = self.num_attention_heads
        return x.reshape(b * p, n, h, c // h).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """``(B, P, Tq, C)`` attended over ``(B', P', Tk, C)`` keys (``B·P = B'·P'``)."""
        points = query.shape[1]
        q = self._separate_heads(self.q_proj(query))
        k = self._separate_heads(self.k_proj(key))
        v = self._separate_heads(self.v_proj(value))
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scaling)
        bp, _, n, _ = out.shape
        out = out.transpose(1, 2).contiguous().reshape(bp // points, points, n, self.internal_dim)
        return self.out_proj(out)


class MLPBlock(nn.Module):
    """``lin2(act(lin1(x)))``."""

    def __init__(self, config: MaskDecoderConfig) -> None:
        super().__init__()
        self.lin1 = nn.Linear(config.hidden_size, config.mlp_dim)
        self.lin2 = nn.Linear(config.mlp_dim, config.hidden_size)
        self.act = _activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, tokens → image, token MLP, image → tokens; post-norm.

    Parameters only: :mod:`samscope.models.decoder` evaluates the block (one decoder).
    """

    def __init__(
        self, config: MaskDecoderConfig, attention_downsample_rate: int = 2,
        skip_first_layer_pe: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        eps = config.layer_norm_eps
        self.hidden_size = config.hidden_size
        self.layer_norm_eps = eps
        self.self_attn = Attention(config, downsample_rate=1)
        self.layer_norm1 = nn.LayerNorm(self.hidden_size, eps=eps)
        self.cross_attn_token_to_image = Attention(config, attention_downsample_rate)
        self.layer_norm2 = nn.LayerNorm(self.hidden_size, eps=eps)
        self.mlp = MLPBlock(config)
        self.layer_norm3 = nn.LayerNorm(self.hidden_size, eps=eps)
        self.layer_norm4 = nn.LayerNorm(self.hidden_size, eps=eps)
        self.cross_attn_image_to_token = Attention(config, attention_downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe


class TwoWayTransformer(nn.Module):
    """``num_hidden_layers`` two-way blocks and a final tokens → image attention.

    Parameters only: :mod:`samscope.models.decoder` evaluates it (one decoder).
    """

    def __init__(self, config: MaskDecoderConfig) -> None:
        super().__init__()
        self.num_hidden_layers = config.num_hidden_layers
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(config, skip_first_layer_pe=i == 0)
            for i in range(config.num_hidden_layers)
        )
        self.final_attn_token_to_image = Attention(config)
        self.layer_norm_final_attn = nn.LayerNorm(config.hidden_size)  # eps 1e-5, as transformers


class FeedForward(nn.Module):
    """``num_layers`` linear layers with ReLU between them (hypernetworks and IoU head)."""

    def __init__(
        self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int,
        sigmoid_output: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        self.num_layers = num_layers
        self.activation = nn.ReLU()
        self.proj_in = nn.Linear(input_dim, hidden_dim)
        self.proj_out = nn.Linear(hidden_dim, output_dim)
        self.layers = nn.ModuleList(
            nn.Linear(hidden_dim, hidden_dim) for _ in range(num_layers - 2)
        )
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activation(self.proj_in(x))
        for layer in self.layers:
            x = self.activation(layer(x))
        x = self.proj_out(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


class MaskDecoder(nn.Module):
    """SAM's mask decoder (``SamMaskDecoder``): masks ``(B, P, K, 4g, 4g)`` and IoU ``(B, P, K)``."""

    def __init__(self, config: MaskDecoderConfig) -> None:
        super().__init__()
        c = config.hidden_size
        self.hidden_size = c
        self.num_multimask_outputs = config.num_multimask_outputs
        self.num_mask_tokens = config.num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, c)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, c)
        self.transformer = TwoWayTransformer(config)
        self.upscale_conv1 = nn.ConvTranspose2d(c, c // 4, kernel_size=2, stride=2)
        self.upscale_conv2 = nn.ConvTranspose2d(c // 4, c // 8, kernel_size=2, stride=2)
        self.upscale_layer_norm = LayerNorm2d(c // 4, eps=1e-6)
        self.activation = nn.GELU()
        self.output_hypernetworks_mlps = nn.ModuleList(
            FeedForward(c, c, c // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = FeedForward(
            c, config.iou_head_hidden_dim, self.num_mask_tokens, config.iou_head_depth
        )

    def forward(
        self,
        image_embeddings: torch.Tensor,
        image_positional_embeddings: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor | None,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict masks from image ``(B, C, g, g)`` and prompt embeddings.

        Parameters
        ----------
        image_embeddings, image_positional_embeddings : torch.Tensor
            ``(B, C, g, g)``.
        sparse_prompt_embeddings : torch.Tensor or None
            ``(B, P, T, C)``.
        dense_prompt_embeddings : torch.Tensor
            ``(B, C, g, g)`` (or broadcastable).
        multimask_output : bool
            The three ambiguity-aware masks, else the single-mask output.

        Returns
        -------
        masks : torch.Tensor
            ``(B, P, K, 4g, 4g)`` logits, ``K`` = 3 or 1.
        iou_pred : torch.Tensor
            ``(B, P, K)``.
        """
        from samscope.models.decoder import decode_uncached

        b, c = image_embeddings.shape[:2]
        if sparse_prompt_embeddings is None:
            sparse_prompt_embeddings = image_embeddings.new_zeros((b, 1, 0, c))
        dense = dense_prompt_embeddings.expand(b, -1, -1, -1)
        masks, iou = [], []
        for i in range(b):  # the arithmetic lives in samscope.models.decoder (one decoder)
            m, s = decode_uncached(
                self, image_embeddings[i : i + 1], image_positional_embeddings[i : i + 1],
                sparse_prompt_embeddings[i].to(self.iou_token.weight.dtype), dense[i : i + 1],
                multimask=multimask_output,
            )  # fmt: skip
            masks.append(m)
            iou.append(s)
        return torch.stack(masks), torch.stack(iou)


# ---------------------------------------------------------------------------------- the model


@dataclass
class SamLiteOutput:
    """What :meth:`SamLite.forward` returns (as ``transformers``' segmentation output).

    Attributes
    ----------
    iou_scores : torch.Tensor
        ``(B, P, K)``.
    pred_masks : torch.Tensor
        ``(B, P, K, 4g, 4g)`` low-resolution logits.
    """

    iou_scores: torch.Tensor
    pred_masks: torch.Tensor


class SamLite(nn.Module):
    """A SAM without ``transformers``: any image encoder, SAM's prompt encoder and mask decoder.

    Parameters
    ----------
    config : SamLiteConfig
    vision_encoder : nn.Module
        Maps ``(B, 3, S, S)`` pixels to an object whose ``last_hidden_state`` is the
        ``(B, C, g, g)`` embedding.

    Notes
    -----
    The prompt encoder's Fourier matrix is the same parameter as ``shared_image_embedding``'s
    (both keys are in the state dict, as in ``transformers``); :meth:`tie_weights` restores the
    tie after ``load_state_dict(..., assign=True)``. Every part except the image encoder starts
    with ``transformers``' default initialisation (normal weights of standard deviation
    ``config.initializer_range``, zero biases, unit norms, a Fourier matrix of standard
    deviation ``config.vision_config.scale``).
    """

    def __init__(self, config: SamLiteConfig, vision_encoder: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.shared_image_embedding = PositionalEmbedding(config.vision_config)
        self.vision_encoder = vision_encoder
        self.prompt_encoder = PromptEncoder(config.vision_config, config.prompt_encoder_config)
        self.mask_decoder = MaskDecoder(config.mask_decoder_config)
        # on the meta device (loading weights) there is nothing to initialise, and random
        # initialisation there would import torch's reference kernels (≈1.4 s)
        if not self.shared_image_embedding.positional_embedding.is_meta:
            for part in (self.shared_image_embedding, self.prompt_encoder, self.mask_decoder):
                part.apply(self._init_weights)
        self.tie_weights()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, PositionalEmbedding):
            nn.init.normal_(module.positional_embedding, std=module.scale)

    def tie_weights(self) -> None:
        """Make the prompt encoder use ``shared_image_embedding``'s Fourier matrix (in place)."""
        self.prompt_encoder.shared_embedding.positional_embedding = (
            self.shared_image_embedding.positional_embedding
        )

    def get_image_wide_positional_embeddings(self) -> torch.Tensor:
        """``(1, C, g, g)`` positional encoding of the embedding grid's cell centres."""
        size = self.config.prompt_encoder_config.image_embedding_size
        pe = self.shared_image_embedding.positional_embedding
        grid = torch.ones((size, size), device=pe.device, dtype=pe.dtype)
        y = (grid.cumsum(dim=0) - 0.5) / size
        x = (grid.cumsum(dim=1) - 0.5) / size
        return (
            self.shared_image_embedding(torch.stack([x, y], dim=-1)).permute(2, 0, 1).unsqueeze(0)
        )

    @torch.no_grad()
    def get_image_embeddings(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, C, g, g)`` embeddings of ``(B, 3, S, S)`` encoder input (no gradients)."""
        return self.vision_encoder(pixel_values).last_hidden_state

    @torch.no_grad()
    def get_prompt_embeddings(
        self, input_points=None, input_labels=None, input_boxes=None, input_masks=None
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Sparse and dense prompt embeddings (see :meth:`PromptEncoder.forward`)."""
        return self.prompt_encoder(input_points, input_labels, input_boxes, input_masks)

    def forward(
        self,
        pixel_values: torch.Tensor | None = None,
        input_points: torch.Tensor | None = None,
        input_labels: torch.Tensor | None = None,
        input_boxes: torch.Tensor | None = None,
        input_masks: torch.Tensor | None = None,
        image_embeddings: torch.Tensor | None = None,
        multimask_output: bool = True,
    ) -> SamLiteOutput:
        """Masks and IoU for prompts on images (``SamModel.forward``'s arguments and shapes).

        Parameters
        ----------
        pixel_values : torch.Tensor, optional
            ``(B, 3, S, S)`` encoder input; exactly one of it and ``image_embeddings``.
        input_points, input_labels : torch.Tensor, optional
            ``(B, P, N, 2)`` and ``(B, P, N)`` (labels default to 1).
        input_boxes : torch.Tensor, optional
            ``(B, P, 4)``.
        input_masks : torch.Tensor, optional
            ``(B, 1, 4g, 4g)``.
        image_embeddings : torch.Tensor, optional
            ``(B, C, g, g)``.
        multimask_output : bool

        Returns
        -------
        SamLiteOutput
        """
        if (pixel_values is None) == (image_embeddings is None):
            raise ValueError("give exactly one of pixel_values and image_embeddings")
        if input_points is not None and input_points.ndim != 4:
            raise ValueError(f"input_points must be (B, P, N, 2), got {tuple(input_points.shape)}")
        if input_boxes is not None and input_boxes.ndim != 3:
            raise ValueError(f"input_boxes must be (B, P, 4), got {tuple(input_boxes.shape)}")
        if input_points is not None and input_boxes is not None:
            if input_points.shape[1] != input_boxes.shape[1]:
                raise ValueError("give as many boxes as point groups (P)")
        if pixel_values is not None:
            image_embeddings = self.vision_encoder(pixel_values).last_hidden_state
        batch = image_embeddings.shape[0]
        image_pe = self.get_image_wide_positional_embeddings().repeat(batch, 1, 1, 1)
        if input_points is not None and input_labels is None:
            input_labels = torch.ones_like(input_points[..., 0], dtype=torch.int)
        if input_points is not None and input_points.shape[0] != batch:
            raise ValueError(
                f"{batch} image embeddings but {input_points.shape[0]} images' points; give "
                "points as (B, P, N, 2) with B images"
            )
        sparse, dense = self.prompt_encoder(input_points, input_labels, input_boxes, input_masks)
        masks, iou = self.mask_decoder(image_embeddings, image_pe, sparse, dense, multimask_output)
        return SamLiteOutput(iou_scores=iou, pred_masks=masks)
