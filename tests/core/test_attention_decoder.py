"""samscope's fast attention and cached decoder compute exactly what transformers computes."""

import numpy as np
import pytest
import torch

from samscope.models.architectures import build_sam
from samscope.models.decoder import decode, prepare_decoder


@pytest.fixture(scope="module")
def random_pair():
    torch.manual_seed(3)
    ref = build_sam("vit_test", fast_attention=False)
    for p in ref.parameters():
        torch.nn.init.normal_(p, std=0.1)
    fast = build_sam("vit_test")
    fast.load_state_dict(ref.state_dict(), strict=True)
    return ref, fast


def test_fast_attention_matches_transformers(random_pair):
    ref, fast = random_pair
    x = torch.randn(2, 3, 256, 256)
    with torch.inference_mode():
        a = ref.get_image_embeddings(x)
        b = fast.get_image_embeddings(x)
    assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()
    assert type(fast.vision_encoder.layers[0].attn).__name__ == "RelPosAttention"
    assert set(fast.state_dict()) == set(ref.state_dict())


def test_fast_attention_has_gradients(random_pair):
    _, fast = random_pair
    fast.train()
    x = torch.randn(1, 3, 256, 256)
    out = fast.vision_encoder(x).last_hidden_state.sum()
    out.backward()
    grad = fast.vision_encoder.layers[1].attn.rel_pos_h.grad
    fast.eval()
    fast.zero_grad()
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.parametrize("method", ["reference", "reassociated"])
@pytest.mark.parametrize("multimask", [True, False])
def test_cached_decoder_matches_samodel(random_pair, multimask, method):
    ref, _ = random_pair
    emb = torch.randn(1, 32, 16, 16)
    pts = torch.rand(1, 4, 2, 2) * 256
    lab = torch.tensor([[[1, 0], [1, 1], [1, -10], [0, 1]]])
    with torch.inference_mode():
        want = ref(image_embeddings=emb, input_points=pts, input_labels=lab, multimask_output=multimask)
        sparse, _ = ref.prompt_encoder(input_points=pts, input_labels=lab, input_boxes=None, input_masks=None)
        logits, iou = decode(ref, prepare_decoder(ref, emb), sparse[0], multimask=multimask, method=method)
    np.testing.assert_allclose(logits.numpy(), want.pred_masks[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(iou.numpy(), want.iou_scores[0].numpy(), atol=1e-5)


@pytest.mark.parametrize("method", ["reference", "reassociated"])
def test_cached_decoder_boxes_with_mask_prompts(random_pair, method):
    ref, _ = random_pair
    emb = torch.randn(1, 32, 16, 16)
    boxes = torch.tensor([[[10.0, 20.0, 90.0, 120.0]], [[100.0, 5.0, 250.0, 60.0]]])
    masks = torch.randn(2, 1, 64, 64)
    with torch.inference_mode():
        want = ref(image_embeddings=emb.expand(2, -1, -1, -1), input_boxes=boxes, input_masks=masks, multimask_output=False)
        sparse, dense = ref.prompt_encoder(input_points=None, input_labels=None, input_boxes=boxes, input_masks=masks)
        logits, iou = decode(ref, prepare_decoder(ref, emb), sparse[:, 0], dense=dense, method=method)
    np.testing.assert_allclose(logits.numpy(), want.pred_masks[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(iou.numpy(), want.iou_scores[:, 0].numpy(), atol=1e-5)
