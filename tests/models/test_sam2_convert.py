"""SAM2 conversion: Meta's checkpoint layout → transformers, strict, equal to Meta's outputs.

The fixture ``data/sam2_hiera_test_meta.npz`` (made by ``data/make_sam2_fixture.py`` with Meta's
``sam2`` package) holds a Meta-layout checkpoint of the tiny ``hiera_test`` preset and Meta's own
embeddings, high-resolution maps, mask logits and IoU for point, box and mask prompts; these tests
reproduce them without ``sam2``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from samscope.errors import CheckpointError

FIXTURE = Path(__file__).parent / "data" / "sam2_hiera_test_meta.npz"
TOL = 1e-4


@pytest.fixture(scope="module")
def fixture():
    return dict(np.load(FIXTURE))


@pytest.fixture(scope="module")
def meta_file(fixture, tmp_path_factory):
    path = tmp_path_factory.mktemp("sam2") / "sam2_tiny_meta.pt"
    path.write_bytes(fixture["checkpoint"].tobytes())
    return path


@pytest.fixture(scope="module")
def meta_state(fixture):
    return torch.load(io.BytesIO(fixture["checkpoint"].tobytes()), weights_only=True)["model"]


@pytest.fixture(scope="module")
def model(meta_file):
    from samscope.models import load_model

    return load_model(meta_file, device="cpu")


def test_checkpoint_is_recognised_as_sam2(meta_file):
    from samscope.models.checkpoint import detect_format, load_checkpoint, read_checkpoint

    assert detect_format(read_checkpoint(meta_file)) == "sam2"
    converted = load_checkpoint(meta_file)
    assert converted.format == "sam2"
    assert converted.architecture.name == "sam2_hiera_test"
    assert all(k.startswith(("vision_encoder.", "prompt_encoder.", "mask_decoder.",
                             "shared_image_embedding.", "no_memory_embedding"))
               for k in converted.sam_state)  # fmt: skip


def test_every_key_is_mapped(meta_state):
    from samscope.models.sam2_convert import meta_to_transformers

    out = meta_to_transformers(meta_state)
    # 4 point embeddings stacked into one, the Fourier matrix shared by two modules
    assert len(out) == len(meta_state) - 3 + 1
    assert out["prompt_encoder.point_embed.weight"].shape[0] == 4
    assert torch.equal(
        out["prompt_encoder.point_embed.weight"][1],
        meta_state["sam_prompt_encoder.point_embeddings.1.weight"][0],
    )


def test_video_model_takes_every_converted_key(meta_state):
    from samscope.models.sam2_convert import build_sam2_video_model

    video, spec = build_sam2_video_model(meta_state)
    assert spec.name == "hiera_test" and spec.version == "2.1"
    assert torch.equal(
        video.memory_temporal_positional_encoding.detach(), meta_state["maskmem_tpos_enc"].float()
    )


def test_sam2_0_layout_converts(meta_state):
    from samscope.models.sam2_convert import build_sam2_video_model, infer_spec

    old = {k: v for k, v in meta_state.items()
           if k != "no_obj_embed_spatial" and not k.startswith("obj_ptr_tpos_proj.")}  # fmt: skip
    assert infer_spec(old).version == "2.0"
    video, _ = build_sam2_video_model(old)
    assert video.occlusion_spatial_embedding_parameter is None


def test_extra_key_is_a_clear_error(meta_state):
    from samscope.models.sam2_convert import convert_meta_checkpoint

    bad = dict(meta_state)
    bad["sam_mask_decoder.surprise.weight"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match=r"no rule for keys 1: sam_mask_decoder\.surprise\.weight"):
        convert_meta_checkpoint({"model": bad})


def test_missing_key_is_a_clear_error(meta_state):
    from samscope.models.sam2_convert import convert_meta_checkpoint

    bad = {k: v for k, v in meta_state.items() if k != "memory_encoder.fuser.layers.0.gamma"}
    with pytest.raises(CheckpointError, match=r"missing keys 1: memory_encoder\.memory_fuser\.layers\.0\.scale"):
        convert_meta_checkpoint({"model": bad})


def test_shape_mismatch_is_a_clear_error(meta_state):
    from samscope.models.sam2_convert import convert_meta_checkpoint

    bad = dict(meta_state)
    bad["sam_mask_decoder.iou_token.weight"] = torch.zeros(1, 95)
    with pytest.raises(CheckpointError):
        convert_meta_checkpoint({"model": bad})
    bad = dict(meta_state)
    bad["memory_encoder.out_proj.bias"] = torch.zeros(7)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        convert_meta_checkpoint({"model": bad})


def test_unknown_hiera_is_a_clear_error(meta_state):
    from samscope.models.sam2_convert import infer_spec

    bad = dict(meta_state)
    bad["image_encoder.trunk.patch_embed.proj.weight"] = torch.zeros(40, 3, 7, 7)
    with pytest.raises(CheckpointError, match="no known SAM2 architecture"):
        infer_spec(bad)


def test_features_equal_meta(model, fixture):
    pixels = torch.from_numpy(fixture["pixels"].astype(np.float32))
    feats = model.encode_features(pixels)
    for key, ref in (("embedding", "embed"), ("s0", "s0"), ("s1", "s1")):
        np.testing.assert_allclose(feats[key].numpy(), fixture[ref], atol=TOL, rtol=0)
    from samscope.models.sam2_decoder import unpack_features

    packed = model.encode(pixels)
    assert packed.shape == (1, model.feature_channels, 16, 16)
    for got, ref in zip(unpack_features(packed, 96), (feats["embedding"], feats["s0"], feats["s1"]), strict=True):
        assert torch.equal(got, ref)


def test_masks_and_iou_equal_meta(model, fixture):
    pixels = torch.from_numpy(fixture["pixels"].astype(np.float32))
    cache = model.prepare_decoder(model.encode(pixels))
    prompts = json.loads(fixture["prompts"].tobytes())
    kinds = set()
    for i, p in enumerate(prompts):
        pts = torch.tensor(p["points"], dtype=torch.float32)[None] if "points" in p else None
        labels = torch.tensor(p["labels"])[None] if "points" in p else None
        box = torch.tensor(p["box"], dtype=torch.float32)[None] if "box" in p else None
        mask = torch.from_numpy(fixture[f"mask_{i}"]) if p["mask"] else None
        sparse, dense = model.embed_prompts(points=pts, labels=labels, boxes=box, masks=mask)
        logits, iou = model.decode(cache, sparse, dense, multimask=p["multimask"])
        assert logits.shape == (1, 3 if p["multimask"] else 1, 64, 64)
        np.testing.assert_allclose(logits[0].numpy(), fixture[f"logits_{i}"], atol=TOL, rtol=0)
        np.testing.assert_allclose(iou[0].numpy(), fixture[f"iou_{i}"], atol=TOL, rtol=0)
        kinds.add((p["kind"], p["multimask"]))
    assert len(kinds) == 10  # point, points, box, box+point, mask+point × multimask on/off


def test_a_loaded_meta_checkpoint_builds_its_video_model(model, meta_state):
    """The memory propagator gets a Sam2VideoModel from a model loaded from Meta's file."""
    from transformers import Sam2VideoModel

    from samscope.models.sam2_convert import build_sam2_video_model
    from samscope.multidim.sam2_memory import video_model_of

    video = video_model_of(model)
    assert isinstance(video, Sam2VideoModel)
    assert model.video_model() is video  # built once
    want = build_sam2_video_model(meta_state)[0].state_dict()
    got = video.state_dict()
    assert got.keys() == want.keys()
    for key, value in want.items():
        torch.testing.assert_close(got[key].float(), value.float(), rtol=0, atol=0, msg=key)


def test_a_sam2_model_without_memory_modules_says_so(model):
    from samscope.errors import InputError
    from samscope.models.sam2_model import Sam2ScopeModel

    bare = Sam2ScopeModel(model.sam, model.card, device="cpu")
    with pytest.raises(InputError, match="memory modules"):
        bare.video_model()


@pytest.mark.parametrize("method", ["reference", "reassociated"])
def test_both_decoder_evaluations_equal_meta(model, fixture, method):
    """The reassociated SAM2 decoder (cached image-side terms, high-resolution maps added in the
    channels-last up-scaling, SAM2's stability fallback) and transformers' both give Meta's masks."""
    from samscope.models.sam2_decoder import decode

    pixels = torch.from_numpy(fixture["pixels"].astype(np.float32))
    cache = model.prepare_decoder(model.encode(pixels))
    prompts = json.loads(fixture["prompts"].tobytes())
    for i, p in enumerate(prompts):
        pts = torch.tensor(p["points"], dtype=torch.float32)[None] if "points" in p else None
        labels = torch.tensor(p["labels"])[None] if "points" in p else None
        box = torch.tensor(p["box"], dtype=torch.float32)[None] if "box" in p else None
        mask = torch.from_numpy(fixture[f"mask_{i}"]) if p["mask"] else None
        sparse, dense = model.embed_prompts(points=pts, labels=labels, boxes=box, masks=mask)
        with torch.inference_mode():
            logits, iou = decode(model.sam, cache, sparse, dense, multimask=p["multimask"], method=method)
        np.testing.assert_allclose(logits[0].numpy(), fixture[f"logits_{i}"], atol=TOL, rtol=0)
        np.testing.assert_allclose(iou[0].numpy(), fixture[f"iou_{i}"], atol=TOL, rtol=0)
    assert (cache.fast is not None) == (method == "reassociated")
