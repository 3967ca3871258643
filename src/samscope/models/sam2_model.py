"""SAM2 behind samscope's model interface: :class:`Sam2ScopeModel`.

``SamscopeModel(sam, card)`` with a card whose architecture has ``encoder="hiera"`` (the SAM2
presets of :mod:`samscope.models.sam2_specs`) *is* a :class:`Sam2ScopeModel` — the base class
dispatches — so every caller (prompting, AMG, APG, the foreground mode, AIS, training, export)
gets SAM2 without knowing it. What differs from SAM1:

- :meth:`~Sam2ScopeModel.encode` returns SAM2's three feature maps packed into one
  ``(B, 4C, g, g)`` tensor (:func:`samscope.models.sam2_decoder.pack_features`: the embedding,
  then the stride-8 and stride-4 maps folded into the grid), so embeddings, tiles and the cache
  store and check them like SAM1's (:attr:`~Sam2ScopeModel.feature_channels`,
  :attr:`~Sam2ScopeModel.feature_layout`, which the cache signature records);
- :meth:`~Sam2ScopeModel.prepare_decoder` / :meth:`~Sam2ScopeModel.decode` run SAM2's decoder
  (:mod:`samscope.models.sam2_decoder`);
- the instance and distance heads read the embedding part (the first ``C`` channels) of what
  they are given.

Prompt encoding is SAM1's (:meth:`SamscopeModel.embed_prompts`: ``transformers``' SAM2 prompt
encoder has the same interface).
"""

from __future__ import annotations

import types

import torch

from samscope.models.sam import SamscopeModel, check_precision
from samscope.models.sam2_specs import Sam2Spec, sam2_config, spec_of_architecture

#: Version of the packed feature layout (recorded in the cache signature).
FEATURE_LAYOUT_VERSION = 1


def build_random_sam2(arch) -> torch.nn.Module:
    """A randomly initialised ``transformers.Sam2Model`` of a SAM2 architecture (eval mode)."""
    from transformers import Sam2Model

    config = sam2_config(spec_of_architecture(arch.name))
    config._attn_implementation = "sdpa"
    return Sam2Model(config).eval()


def build_sam2_with_weights(arch_name: str, state) -> torch.nn.Module:
    """``transformers.Sam2Model`` of ``arch_name`` with ``state`` (its keys), loaded strictly."""
    from transformers import Sam2Model

    from samscope.models.sam2_convert import build_checked

    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    config = sam2_config(spec_of_architecture(arch_name))
    config._attn_implementation = "sdpa"
    return build_checked(Sam2Model, config, state, f"{arch_name} model")


def _embedding_part(hidden: int):
    """A forward pre-hook giving a head the embedding channels of packed SAM2 features."""

    def hook(module, args):
        x = args[0]
        if x.ndim == 4 and x.shape[1] == 4 * hidden:
            return (x[:, :hidden], *args[1:])
        return None

    return hook


class Sam2ScopeModel(SamscopeModel):
    """A loaded SAM2 (``transformers.Sam2Model``) with its card; see the module docstring."""

    def __init__(self, sam, card, **kwargs) -> None:
        super().__init__(sam, card, **kwargs)
        self.spec: Sam2Spec = spec_of_architecture(card.architecture)
        adapt_heads(self.sam, self.instance_head, self.distance_head)
        self.memory_state: dict | None = None  # Meta's memory modules, set by load_model
        self._video = None

    @property
    def feature_channels(self) -> int:
        """Channels of :meth:`encode`'s output (``4 C``)."""
        return 4 * self.spec.hidden

    @property
    def feature_layout(self) -> str:
        """What the channels of :meth:`encode` hold (part of the embeddings-cache signature)."""
        c = self.spec.hidden
        return (
            f"sam2-multiscale-v{FEATURE_LAYOUT_VERSION}: embedding {c} + s1 {c // 4}x2x2 "
            f"+ s0 {c // 8}x4x4"
        )

    def encode(self, pixels: torch.Tensor, *, precision: str | None = None) -> torch.Tensor:
        """Packed multi-scale features ``(B, 4C, g, g)`` of prepared encoder input (float32)."""
        from samscope.models.sam2_decoder import pack_features

        return pack_features(*self.encode_features(pixels, precision=precision, packed=False))

    def encode_features(self, pixels: torch.Tensor, *, precision: str | None = None, packed=None):
        """``(embedding, s0, s1)`` (``packed=False``) or a dict of them (default)."""
        from samscope.models.sam2_decoder import image_features

        name = self.precision if precision is None else check_precision(precision, self.device)
        size = self.image_size
        if pixels.ndim != 4 or pixels.shape[1] != 3 or pixels.shape[-2:] != (size, size):
            raise ValueError(
                f"expected encoder input (B, 3, {size}, {size}), got {tuple(pixels.shape)}"
            )
        pixels = pixels.to(self.device, non_blocking=True)
        encoder = self._vision_encoder(name)
        with torch.inference_mode(), self.autocast(name):
            emb, s0, s1 = image_features(self.sam, pixels, encoder)
        out = (emb.float(), s0.float(), s1.float())
        if packed is False:
            return out
        return dict(zip(("embedding", "s0", "s1"), out, strict=True))

    def prepare_decoder(self, embedding):
        """SAM2's prompt-independent decoder state of one image: packed features ``(1, 4C, g, g)``
        (what :meth:`encode` and the embeddings give) or the dict of :meth:`encode_features`."""
        from samscope.models.sam2_decoder import Sam2DecoderCache, positional_encoding
        from samscope.models.sam2_decoder import prepare_decoder as prepare

        with torch.inference_mode(), self.autocast():
            if isinstance(embedding, dict):
                emb = embedding["embedding"].to(self.device)
                grid = emb.shape[-1]
                pos = positional_encoding(self.sam, grid).to(emb.dtype)
                return Sam2DecoderCache(
                    emb, embedding["s0"].to(self.device), embedding["s1"].to(self.device), pos, grid
                )
            return prepare(self.sam, embedding.to(self.device))

    def decode(self, cache, sparse, dense=None, *, multimask: bool = False):
        """Low-resolution logits ``(P, K, 4g, 4g)`` and predicted IoU ``(P, K)`` for ``P`` prompts."""
        from samscope.models.sam2_decoder import decode

        with torch.inference_mode(), self.autocast():
            logits, iou = decode(self.sam, cache, sparse, dense=dense, multimask=multimask)
        return logits.float(), iou.float()

    def video_model(self):
        """``transformers.Sam2VideoModel`` for the ``sam2-memory`` propagator, built once.

        Its image parts are this model's weights (fine-tuned or LoRA-folded ones included); its
        memory modules come from the Meta checkpoint the model was loaded from.

        Raises
        ------
        InputError
            The model was loaded without SAM2's memory modules (e.g. a samscope training export,
            which keeps the image model only).
        """
        if self._video is None:
            from transformers import Sam2VideoModel

            from samscope.errors import InputError
            from samscope.models.sam2_convert import build_checked
            from samscope.models.sam2_specs import sam2_video_config

            if not self.memory_state:
                raise InputError(
                    f"model {self.card.name!r} was loaded without SAM2's memory modules (only Meta's "
                    "SAM2 .pt files have them), so it cannot run the 'sam2-memory' propagator; load "
                    "the Meta checkpoint, or use --propagator projection"
                )
            state = {**self.sam.state_dict(), **self.memory_state}
            state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
            self._video = build_checked(Sam2VideoModel, sam2_video_config(self.spec), state, f"{self.card.name} video model")
            self._video.to(self.device)
        return self._video


def samscope_sam2_model(sam, spec: Sam2Spec, *, name: str = "sam2", device: str = "cpu"):
    """A :class:`Sam2ScopeModel` around a converted ``Sam2Model`` (no registry card needed)."""
    from samscope.models.card import ModelCard
    from samscope.models.sam2_specs import ARCH_PREFIX

    card = ModelCard(name=name, architecture=ARCH_PREFIX + spec.name, source="user")
    return Sam2ScopeModel(sam, card, device=device)


def adapt_heads(sam, *heads) -> None:
    """Make the heads of a SAM2 read the embedding part of packed features (no-op for SAM1).

    Both ``forward`` (a pre-hook) and ``logits`` (an instance attribute wrapping the method)
    take the first ``C`` channels of a ``(B, 4C, g, g)`` input; the state dicts are unchanged.
    """
    from samscope.models.sam2_decoder import is_sam2

    if not is_sam2(sam):
        return
    hidden = int(sam.mask_decoder.hidden_size)
    hook = _embedding_part(hidden)
    for head in heads:
        if head is None or getattr(head, "_sam2_hooked", False):
            continue
        head.register_forward_pre_hook(hook)
        if hasattr(type(head), "logits"):  # a bound method: deep copies rebind it to the copy
            head.logits = types.MethodType(_sliced_logits, head)
        head._sam2_hidden = hidden
        head._sam2_hooked = True


def _sliced_logits(head, x, *args, **kwargs):
    hidden = head._sam2_hidden
    x = x[:, :hidden] if x.ndim == 4 and x.shape[1] == 4 * hidden else x
    return type(head).logits(head, x, *args, **kwargs)
