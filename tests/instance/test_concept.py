"""Concept mode (SAM3 text prompts): masks → instances, thresholds, empty results, clear errors."""

from types import SimpleNamespace

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.instance.concept import ConceptConfig, instances_from_detections, segment_concept
from samscope.instance.modes import require_mode, supported_modes


def _detections(shape=(16, 16)):
    """Three queries: two discs (scores 0.9, 0.6) and one weak (0.2); logits ±8."""
    y, x = np.indices(shape)
    a = ((y - 4) ** 2 + (x - 4) ** 2 <= 9)
    b = ((y - 10) ** 2 + (x - 10) ** 2 <= 9)
    logits = np.stack([np.where(m, 8.0, -8.0) for m in (a, b, b)]).astype(np.float32)
    return SimpleNamespace(scores=np.array([0.9, 0.6, 0.2], np.float32), mask_logits=logits,
                           boxes=np.zeros((3, 4), np.float32), presence=0.95)  # fmt: skip


def test_masks_become_instances_by_score_and_thresholds():
    inst = instances_from_detections(_detections(), (64, 64), ConceptConfig(text="x"))
    assert inst.n == 2 and inst.mode == "concept"
    np.testing.assert_allclose(inst.scores, [0.9, 0.6])
    # masks resized to the image: disc a (upper left) is object 1, b object 2
    assert inst.labels[16, 16] == 1 and inst.labels[40, 40] == 2 and inst.labels[63, 0] == 0
    assert inst.masks is not None and len(inst.masks) == 2
    strict = instances_from_detections(_detections(), (64, 64), ConceptConfig(text="x", score_threshold=0.7))
    assert strict.n == 1
    loose = instances_from_detections(_detections(), (64, 64), ConceptConfig(text="x", score_threshold=0.1))
    assert loose.n == 3  # the duplicate of b is kept as its own (overlapping) mask
    tiny = instances_from_detections(_detections(), (64, 64), ConceptConfig(text="x", min_size=10_000))
    assert tiny.n == 0 and tiny.labels.shape == (64, 64)


@pytest.fixture(scope="module")
def sam3():
    pytest.importorskip("transformers")
    from sam3_tiny import tiny_sam3_model, toy_tokenizer

    from samscope.models.sam3 import ConceptModel, sam3_cards

    return ConceptModel(tiny_sam3_model(), toy_tokenizer, sam3_cards()[0])


def test_tiny_sam3_end_to_end_through_segment(sam3):
    from samscope.instance.segment import segment

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (40, 50)).astype(np.uint8)
    det = sam3.detect(image, "nucleus")
    q = sam3.model.config.detr_decoder_config.num_queries
    assert det.scores.shape == (q,) and det.mask_logits.shape[0] == q and 0 <= det.presence <= 1
    # a threshold below every score keeps every query with a non-empty mask
    cfg = ConceptConfig(text="nucleus", score_threshold=0.0, mask_threshold=0.0)
    inst = segment(image, sam3, mode="concept", config=cfg)
    assert inst.mode == "concept" and inst.labels.shape == (40, 50) and inst.n == q
    assert segment(image, sam3, config=cfg).mode == "concept"  # auto: the card's default
    none = segment(image, sam3, mode="concept", config=ConceptConfig(text="nucleus", score_threshold=1.0))
    assert none.n == 0
    flat = segment(np.full((40, 50), 7, np.uint8), sam3, mode="concept", config=cfg)
    assert flat.n == 0
    assert supported_modes(sam3) == ("concept",)


def test_bad_input(sam3):
    image = np.arange(400, dtype=np.uint8).reshape(20, 20)
    with pytest.raises(InputError, match="needs a text"):
        segment_concept(sam3, image)
    with pytest.raises(InputError, match="needs a text"):
        segment_concept(sam3, image, "   ")
    with pytest.raises(InputError, match="2-D image"):
        segment_concept(sam3, np.zeros((3, 20, 20)), "nucleus")
    sam1 = SimpleNamespace(card=SimpleNamespace(name="vit_b"), instance_head=None, distance_head=None)
    with pytest.raises(InputError, match="no concept"):
        segment_concept(sam1, image, "nucleus")
    with pytest.raises(InputError, match="cannot run mode 'concept'"):
        require_mode(sam1, "concept")
    with pytest.raises(InputError, match="score_threshold"):
        ConceptConfig(score_threshold=2)


def test_pipeline_writes_concept_results(sam3, tmp_path):
    import json

    import tifffile

    from samscope.pipeline import SegmentRequest, segment_batch

    tifffile.imwrite(tmp_path / "img.tif", np.random.default_rng(1).integers(0, 255, (40, 50)).astype(np.uint8))
    settings = {"text": "nucleus", "score_threshold": "0.0", "mask_threshold": "0.0"}
    result = segment_batch(SegmentRequest([tmp_path / "img.tif"], output=tmp_path / "out", model=sam3,
                                          mode="concept", settings=settings))  # fmt: skip
    (record,) = result.records
    assert record.status == "done" and record.n_objects == sam3.model.config.detr_decoder_config.num_queries
    doc = json.loads((tmp_path / "out" / "img_segmentation.json").read_text())
    assert doc["mode"] == "concept" and doc["settings"]["text"] == "nucleus" and doc["model"] == "sam3"
