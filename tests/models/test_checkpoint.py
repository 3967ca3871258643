"""Checkpoint conversion: segment-anything ⇄ transformers, numerically, plus formats and strictness."""

from __future__ import annotations

import importlib.util
import sys
import types
from functools import partial

import pytest
import torch

from samscope.errors import CheckpointError
from samscope.models.architectures import build_sam
from samscope.models.checkpoint import (
    SkippedObject,
    convert_checkpoint,
    detect_format,
    infer_architecture,
    load_checkpoint,
    load_state_dict_strict,
    read_checkpoint,
    save_checkpoint,
    segment_anything_to_transformers,
    transformers_to_segment_anything,
)
from samscope.models.heads import InstanceDistanceHead

ATOL = 1e-4

#: What segment-anything imports from torchvision at package import; none of it is used here.
_TORCHVISION_NAMES = {
    "torchvision": [],
    "torchvision.ops": [],
    "torchvision.ops.boxes": ["batched_nms", "box_area"],
    "torchvision.transforms": [],
    "torchvision.transforms.functional": ["resize", "to_pil_image"],
}


@pytest.fixture(scope="module")
def sa_modeling():
    """``segment_anything.modeling`` imported without torchvision (test-only workaround).

    Minimal fake torchvision modules stand in while segment-anything is imported and are removed
    right after, so that transformers (imported first) never sees them.
    """
    if importlib.util.find_spec("segment_anything") is None:
        pytest.skip("segment-anything (dev extra) is not installed")
    import transformers  # noqa: F401  - settle its torchvision probe before the fakes exist

    saved = {name: sys.modules.get(name) for name in _TORCHVISION_NAMES}
    try:
        for name, attrs in _TORCHVISION_NAMES.items():
            if saved[name] is None:
                module = types.ModuleType(name)
                module.__path__ = []
                for attr in attrs:
                    setattr(module, attr, None)
                sys.modules[name] = module
        import segment_anything
        import segment_anything.modeling as modeling
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
    return types.SimpleNamespace(modeling=modeling, registry=segment_anything.sam_model_registry)


def _tiny_sa_sam(modeling):
    """segment-anything's Sam with the dimensions of ``vit_test``, every weight randomised."""
    m = modeling
    encoder = m.ImageEncoderViT(
        img_size=256, patch_size=16, embed_dim=64, depth=2, num_heads=2, global_attn_indexes=(1,),
        window_size=6, out_chans=32, use_rel_pos=True, mlp_ratio=4, qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
    )  # fmt: skip
    prompt = m.PromptEncoder(
        embed_dim=32, image_embedding_size=(16, 16), input_image_size=(256, 256), mask_in_chans=16
    )
    decoder = m.MaskDecoder(
        num_multimask_outputs=3,
        transformer_dim=32,
        transformer=m.TwoWayTransformer(depth=2, embedding_dim=32, mlp_dim=64, num_heads=2),
        iou_head_hidden_dim=32,
        iou_head_depth=3,
    )
    sam = m.Sam(encoder, prompt, decoder, [123.675, 116.28, 103.53], [58.395, 57.12, 57.375])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in sam.parameters():  # rel-pos tables and pos_embed start at zero: make all count
            p.add_(0.2 * torch.randn(p.shape, generator=g))
    return sam.eval()


def test_segment_anything_conversion_is_numerically_equal(sa_modeling):
    sa = _tiny_sa_sam(sa_modeling.modeling)
    hf = build_sam("vit_test")
    load_state_dict_strict(hf, segment_anything_to_transformers(sa.state_dict()))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 256, 256, generator=g)
    point = torch.tensor([[[100.0, 60.0], [20.0, 200.0]]])
    label = torch.tensor([[1, 0]])
    box = torch.tensor([[30.0, 40.0, 150.0, 200.0]])
    mask = torch.randn(1, 1, 64, 64, generator=g)
    cases = {
        "points": ({"points": (point, label)}, {"input_points": point[None], "input_labels": label[None]}),
        "box": ({"boxes": box}, {"input_boxes": box[None]}),
        "mask": ({"masks": mask}, {"input_masks": mask}),
        "point+mask": (
            {"points": (point[:, :1], label[:, :1]), "masks": mask},
            {"input_points": point[None, :, :1], "input_labels": label[None, :, :1], "input_masks": mask},
        ),
    }
    with torch.no_grad():
        emb_sa = sa.image_encoder(x)
        emb_hf = hf.get_image_embeddings(x)
        torch.testing.assert_close(emb_hf, emb_sa, atol=ATOL, rtol=0)
        emb = emb_sa[:1]
        for name, (sa_kw, hf_kw) in cases.items():
            sa_kw = {"points": None, "boxes": None, "masks": None} | sa_kw
            sparse, dense = sa.prompt_encoder(**sa_kw)
            for multimask in (True, False):
                low_res, iou = sa.mask_decoder(
                    image_embeddings=emb,
                    image_pe=sa.prompt_encoder.get_dense_pe(),
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                    multimask_output=multimask,
                )
                out = hf(image_embeddings=emb, multimask_output=multimask, **hf_kw)
                assert out.pred_masks.shape[2] == (3 if multimask else 1), name
                torch.testing.assert_close(out.pred_masks[:, 0], low_res, atol=ATOL, rtol=0, msg=name)
                torch.testing.assert_close(out.iou_scores[:, 0], iou, atol=ATOL, rtol=0, msg=name)


@pytest.mark.parametrize("arch", ["vit_b", "vit_l", "vit_h"])
def test_full_size_key_mapping_is_complete(sa_modeling, arch):
    with torch.device("meta"):
        sa_state = sa_modeling.registry[arch]().state_dict()
        hf_state = build_sam(arch).state_dict()
    converted = segment_anything_to_transformers(sa_state)
    assert set(converted) == set(hf_state)
    assert all(converted[k].shape == hf_state[k].shape for k in hf_state)
    assert infer_architecture(converted).name == arch
    back = transformers_to_segment_anything(hf_state)
    assert set(back) == set(sa_state)
    assert all(back[k].shape == sa_state[k].shape for k in sa_state)


def test_export_round_trip_is_exact():
    hf = build_sam("vit_test")
    state = hf.state_dict()
    sa_state = transformers_to_segment_anything(state)
    assert "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix" in sa_state
    assert "mask_decoder.iou_prediction_head.layers.2.weight" in sa_state
    again = segment_anything_to_transformers({"sam." + k: v for k, v in sa_state.items()})
    assert set(again) == set(state)
    assert all(torch.equal(again[k], state[k]) for k in state)


class _TrainingObject:
    """Stands for what a torch_em checkpoint pickles next to the weights (losses, datasets)."""

    def __init__(self):
        self.eps = 1e-3


def test_micro_sam_training_checkpoint_with_pickled_objects(tmp_path):
    hf = build_sam("vit_test")
    head = InstanceDistanceHead.for_architecture("vit_test")
    sa_state = transformers_to_segment_anything(hf.state_dict())
    path = tmp_path / "best.pt"
    torch.save(
        {
            "model_state": {"sam." + k: v for k, v in sa_state.items()},
            "decoder_state": head.state_dict(),
            "optimizer_state": {"param_groups": [{"lr": 1e-5, "betas": (0.9, 0.999)}]},
            "init": {"loss": _TrainingObject(), "device": torch.device("cpu")},
            "iteration": 10,
            "timestamp": "01-01-2026 (00:00:00)",
        },
        path,
    )
    raw = read_checkpoint(path)
    assert isinstance(raw["init"]["loss"], SkippedObject)
    assert "_TrainingObject" in repr(raw["init"]["loss"])
    converted = load_checkpoint(path)
    assert converted.format == "micro-sam"
    assert set(converted.sam_state) == set(hf.state_dict())
    assert set(converted.decoder_state) == set(head.state_dict())
    assert infer_architecture(converted.sam_state).name == "vit_test"


def test_formats_are_detected():
    hf_state = build_sam("vit_test").state_dict()
    sa_state = transformers_to_segment_anything(hf_state)
    head_state = InstanceDistanceHead.for_architecture("vit_test").state_dict()
    assert detect_format(sa_state) == "segment-anything"
    assert detect_format({"sam." + k: v for k, v in sa_state.items()}) == "segment-anything"
    assert detect_format(hf_state) == "transformers"
    assert detect_format({"model_state": sa_state}) == "micro-sam"
    assert detect_format(head_state) == "unetr-decoder"
    assert convert_checkpoint(head_state).sam_state is None
    with pytest.raises(CheckpointError, match="unrecognised"):
        detect_format({"foo.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="not a state dict"):
        detect_format([1, 2])


def test_safetensors_round_trip(tmp_path):
    hf = build_sam("vit_test")
    head = InstanceDistanceHead.for_architecture("vit_test")
    path = save_checkpoint(tmp_path / "m.safetensors", hf, instance_head=head, format="safetensors")
    converted = load_checkpoint(path)
    assert converted.format == "transformers"
    state = hf.state_dict()
    assert all(torch.equal(converted.sam_state[k], state[k]) for k in state)
    assert set(converted.decoder_state) == set(head.state_dict())


def test_segment_anything_export_has_no_head(tmp_path):
    hf = build_sam("vit_test")
    path = save_checkpoint(tmp_path / "sa.pth", hf, format="segment-anything")
    assert load_checkpoint(path).format == "segment-anything"
    with pytest.raises(CheckpointError, match="no place"):
        save_checkpoint(tmp_path / "x.pth", hf, instance_head=torch.nn.Linear(1, 1), format="segment-anything")


def test_strict_loading_lists_keys():
    hf = build_sam("vit_test")
    state = dict(hf.state_dict())
    for key in [k for k in state if k.startswith("mask_decoder.transformer.")][:25]:
        del state[key]
    state["extra.weight"] = torch.zeros(1)
    state["mask_decoder.iou_token.weight"] = torch.zeros(2, 32)
    with pytest.raises(CheckpointError) as info:
        load_state_dict_strict(hf, state, what="vit_test SAM")
    message = str(info.value)
    assert "missing keys 25:" in message and "(5 more)" in message
    assert "unexpected keys 1: extra.weight" in message
    assert "mask_decoder.iou_token.weight (2, 32) vs (1, 32)" in message


def test_unknown_architecture_is_an_error():
    state = dict(build_sam("vit_test").state_dict())
    state = {k: v for k, v in state.items() if not k.startswith("vision_encoder.layers.1.")}
    with pytest.raises(CheckpointError, match="no known SAM architecture has hidden_size=64, num_layers=1"):
        infer_architecture(state)


def test_unreadable_files_are_clear_errors(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        read_checkpoint(text)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError, match="safetensors"):
        read_checkpoint(bad)
