"""Make the fixtures that pin InstanceDistanceHead to torch_em's UNETR decoder (run once, by hand).

Run in an environment with micro-sam, torch_em and segment-anything (not samscope's)::

    python tests/models/data/make_unetr_fixture.py

It writes, next to this file:

- ``unetr_decoder_keys_vit_b.json``: key → shape of the ``decoder_state`` µSAM stores for a
  vit_b UNETR (what ``micro_sam.instance_segmentation.get_unetr`` builds), for both up-sampling
  variants (bilinear + 1×1 conv, and transposed convolutions);
- ``unetr_decoder_io.npz``: one input embedding (1, 256, 8, 8) and torch_em's decoder output for
  it, per variant, with weights set by :func:`deterministic_state` (numpy's PCG64, so the test can
  rebuild the same weights without torch_em).

The test ``tests/models/test_heads.py`` imports :func:`deterministic_state` from this file, so both
sides use one weight recipe.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
EMBED_SHAPE = (1, 256, 8, 8)


def deterministic_state(shapes: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, np.ndarray]:
    """Weights for a UNETR decoder, reproducible from key names and shapes alone.

    Convolution weights ~ N(0, 1/fan_in), biases ~ N(0, 0.1), batch-norm weight ~ U(0.5, 1.5),
    bias ~ N(0, 0.1), running mean ~ N(0, 0.1), running var ~ U(0.5, 1.5); keys in sorted order.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        if key.endswith("num_batches_tracked"):
            out[key] = np.zeros(shape, dtype=np.int64)
        elif key.endswith("running_var") or (len(shape) == 1 and _is_batch_norm(key, shapes)
                                             and key.endswith("weight")):
            out[key] = rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
        elif len(shape) == 1:
            out[key] = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            fan_in = int(np.prod(shape[1:]))
            out[key] = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    return out


def _is_batch_norm(key: str, shapes: dict) -> bool:
    return key.rsplit(".", 1)[0] + ".running_mean" in shapes


def main() -> None:  # pragma: no cover - needs torch_em
    import torch
    from micro_sam.instance_segmentation import DecoderAdapter, get_unetr
    from segment_anything import sam_model_registry
    from torch_em.model.unetr import UNETR

    torch.manual_seed(0)
    encoder = sam_model_registry["vit_b"]().image_encoder
    keys: dict[str, dict[str, list[int]]] = {}
    arrays: dict[str, np.ndarray] = {}
    embed = np.random.default_rng(1).standard_normal(EMBED_SHAPE).astype(np.float32)
    arrays["embedding"] = embed
    for variant, transpose in (("bilinear", False), ("transpose", True)):
        if transpose:  # get_unetr picks transposed convs only from a given state; build the same UNETR
            unetr = UNETR(
                backbone="sam", encoder=encoder, out_channels=3, use_sam_stats=True,
                final_activation="Sigmoid", use_skip_connection=False, resize_input=True,
                use_conv_transpose=True,
            )
        else:
            unetr = get_unetr(encoder, device="cpu")
        state = {k: v for k, v in unetr.state_dict().items() if not k.startswith("encoder")}
        if transpose:  # what get_unetr does with such a state: it must choose transposed convs
            assert get_unetr(encoder, decoder_state=state, device="cpu").use_conv_transpose
        shapes = {k: list(v.shape) for k, v in state.items()}
        keys[variant] = shapes
        weights = deterministic_state({k: tuple(s) for k, s in shapes.items()})
        decoder = DecoderAdapter(unetr)
        decoder.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
        decoder.eval()
        with torch.no_grad():
            out = decoder._forward_impl(torch.from_numpy(embed))
        arrays[f"output_{variant}"] = out.numpy().astype(np.float32)
        print(variant, len(shapes), "keys, output", tuple(out.shape), float(out.mean()))
    (HERE / "unetr_decoder_keys_vit_b.json").write_text(json.dumps(keys, indent=1, sort_keys=True))
    np.savez_compressed(HERE / "unetr_decoder_io.npz", **arrays)


if __name__ == "__main__":  # pragma: no cover
    main()
