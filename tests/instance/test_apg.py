"""APG: seeds from the instance maps prompt SAM's decoder (samscope.instance.apg)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from samscope.embeddings import ImageEmbeddings, compute_embeddings
from samscope.errors import InputError
from samscope.evaluation.metrics import mean_segmentation_accuracy
from samscope.instance.apg import APGConfig, seed_points, segment_apg
from samscope.instance.instances import CroppedMasks, Instances
from samscope.instance.targets import instance_distance_targets
from samscope.models.card import ModelCard


@pytest.fixture(scope="module")
def apg_model():
    from samscope.models.registry import load_model

    return load_model("vit_test", device="cpu")


def _gt(shape=(256, 256)) -> np.ndarray:
    """Discs, two pairs touching, one ring-shaped object; 256 x 256."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    gt = np.zeros(shape, np.int32)
    centres = [(40, 40), (40, 72), (120, 120), (200, 60), (200, 92), (60, 200)]
    for k, (cy, cx) in enumerate(centres, start=1):
        gt[((yy - cy) ** 2 + (xx - cx) ** 2 < 16**2) & (gt == 0)] = k
    r2 = (yy - 190) ** 2 + (xx - 190) ** 2
    gt[(r2 < 30**2) & (r2 >= 18**2)] = 7
    return gt


class OracleModel:
    """A stand-in SAM whose decoder returns the ground-truth object under each prompt.

    Encoder input = image size (256), and logits at full input resolution, so the upscaling is
    the identity and APG's own steps (seeds, points, batching, boxes, NMS) are what is tested.
    A point or box on background gives an empty mask.
    """

    def __init__(self, gt: np.ndarray, *, instance_head=None):
        self.gt = gt
        self.card = ModelCard(name="oracle", architecture="vit_test")
        self.image_size = gt.shape[0]
        self.device = torch.device("cpu")
        self.instance_head = instance_head
        self.batches: list[int] = []

    def embed_prompts(self, *, points=None, labels=None, boxes=None, masks=None):
        """ "Sparse embeddings" = the ground-truth id each prompt asks for."""
        if points is not None:
            assert points.shape[1:] == (1, 2) and (labels == 1).all()
            x, y = np.round(points[:, 0].numpy()).astype(int).T
            ids = self.gt[y, x]
        else:  # a box asks for the object whose own box it overlaps most
            ids = np.array([self._best_box_match(b) for b in boxes.numpy()])
        return torch.from_numpy(ids.astype(np.int64)), None

    def _best_box_match(self, xyxy: np.ndarray) -> int:
        from samscope.instance.postprocess import box_iou, masks_to_boxes

        ids = np.arange(1, self.gt.max() + 1)
        own = masks_to_boxes(self.gt[None] == ids[:, None, None])
        box = np.array([xyxy[1], xyxy[0], xyxy[3], xyxy[2]])
        iou = box_iou(box[None], own)[0]
        return int(ids[np.argmax(iou)]) if iou.max() > 0 else 0

    def prepare_decoder(self, embedding):
        return "cache"

    def decode(self, cache, sparse, dense=None, *, multimask=False):
        assert cache == "cache"
        self.batches.append(len(sparse))
        k = 3 if multimask else 1
        logits = torch.full((len(sparse), k, *self.gt.shape), -10.0)
        iou = torch.zeros((len(sparse), k))
        for i, label in enumerate(sparse.tolist()):
            if label:
                logits[i, -1][torch.from_numpy(self.gt == label)] = 10.0
                iou[i, -1] = 0.9 - 0.01 * label
        return logits, iou


def _embeddings(gt: np.ndarray, image=None) -> ImageEmbeddings:
    emb = ImageEmbeddings(
        features=np.zeros((1, 1, 32, 16, 16), np.float32),
        image_shape=gt.shape,
        axes="YX",
        input_size=gt.shape[0],
        tiling=None,
        model_name="oracle",
    )
    emb.source = image
    return emb


# -- config and points ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"nms_thresh": 1.2},
        {"batch_size": 0},
        {"min_size": -1},
        {"foreground_thresh": 3},
        {"multimask": "yes"},
        {"distance_smoothing": -1},
    ],
)
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(InputError):
        APGConfig(**kwargs)


def test_config_defaults_are_microsam_apg():
    cfg = APGConfig().resolve(None)
    assert (cfg.min_size, cfg.nms_thresh, cfg.batch_size, cfg.multimask, cfg.box_refinement) == (
        25,
        0.9,
        32,
        False,
        False,
    )
    assert cfg.center_distance_thresh == 0.5


def test_card_mode_settings_win_for_apg_only():
    from samscope.instance.ais import AISConfig
    from samscope.models.card import AutomaticDefaults

    auto = AutomaticDefaults(
        foreground_thresh=0.4, min_size=200,
        mode_settings=(("apg", "min_size", 60), ("apg", "foreground_thresh", 0.6)),
    )  # fmt: skip
    cfg = APGConfig().resolve(auto)
    assert (cfg.min_size, cfg.foreground_thresh, cfg.nms_thresh) == (60, 0.6, 0.9)
    assert APGConfig(min_size=7).resolve(auto).min_size == 7  # a value set by the user stays
    ais = AISConfig().resolve(auto)  # AIS keeps the shared values
    assert (ais.min_size, ais.foreground_thresh) == (200, 0.4)
    assert APGConfig().resolve(AutomaticDefaults(min_size=200)).min_size == 25  # not AIS's


def test_seed_points_are_most_interior():
    seeds = np.zeros((20, 30), np.int32)
    seeds[2:9, 3:14] = 1  # 7 x 11: distance 4 along the middle row, first of the ties
    seeds[12:20, 20:30] = 2  # at the image corner: the edge counts as border
    seeds[15, 2] = 4  # id 3 absent
    pts = seed_points(seeds)
    assert pts.tolist() == [[5, 6], [15, 23], [15, 2]]
    assert seed_points(np.zeros((4, 4), np.int32)).shape == (0, 2)


# -- pipeline with the oracle decoder ------------------------------------------------------------


@pytest.mark.parametrize("box_refinement", [False, True])
@pytest.mark.parametrize("multimask", [False, True])
def test_gt_maps_and_oracle_decoder_recover_ground_truth(box_refinement, multimask):
    gt = _gt()
    model = OracleModel(gt)
    cfg = APGConfig(batch_size=3, box_refinement=box_refinement, multimask=multimask)
    inst = segment_apg(model, _embeddings(gt), config=cfg, maps=instance_distance_targets(gt))
    assert inst.mode == "apg" and isinstance(inst.masks, CroppedMasks)
    assert inst.n == gt.max() == len(inst.masks)
    assert mean_segmentation_accuracy(gt, inst.labels) == pytest.approx(1.0)
    assert set(model.batches[: (gt.max() + 2) // 3]) <= {1, 3}  # batches of batch_size
    np.testing.assert_allclose(np.sort(inst.scores), np.sort(0.9 - 0.01 * np.arange(1, 8)))


def test_nms_removes_duplicate_prompts():
    gt = _gt()
    maps = instance_distance_targets(gt)
    # split every seed in two: cut the centre-distance map with a vertical line of high values
    maps[1][:, ::4] = 1.0
    model = OracleModel(gt)
    raw = segment_apg(model, _embeddings(gt), config=APGConfig(nms_thresh=1.0), maps=maps)
    nms = segment_apg(model, _embeddings(gt), maps=maps)
    assert raw.n > gt.max()  # duplicates decoded
    assert nms.n == gt.max()
    assert mean_segmentation_accuracy(gt, nms.labels) == pytest.approx(1.0)


def test_min_size_drops_small_masks():
    gt = _gt()
    model = OracleModel(gt)
    sizes = np.bincount(gt.ravel())[1:]
    inst = segment_apg(
        model,
        _embeddings(gt),
        config=APGConfig(min_size=int(sizes.max())),
        maps=instance_distance_targets(gt),
    )
    assert inst.n == 1


def test_no_seeds_and_constant_image_give_empty():
    gt = _gt()
    model = OracleModel(gt)
    empty = segment_apg(model, _embeddings(gt), maps=np.zeros((3, 256, 256), np.float32))
    assert empty.n == 0 and empty.labels.shape == (256, 256) and len(empty.masks) == 0
    const = segment_apg(
        model, _embeddings(gt, image=np.zeros((256, 256))), maps=instance_distance_targets(gt)
    )
    assert const.n == 0 and model.batches == []


def test_maps_shape_checked():
    gt = _gt()
    with pytest.raises(InputError, match="maps must have shape"):
        segment_apg(OracleModel(gt), _embeddings(gt), maps=np.zeros((3, 10, 10)))


def test_missing_head_without_maps_lists_modes():
    gt = _gt()
    with pytest.raises(InputError, match=r"cannot run mode 'apg'.*supports: amg, foreground"):
        segment_apg(OracleModel(gt), _embeddings(gt))


# -- end to end on the test model -----------------------------------------------------------------


def test_segment_apg_on_test_model(apg_model):
    gt = _gt((200, 240))
    rng = np.random.default_rng(0)
    image = (1000 + 300 * (gt > 0) + rng.normal(0, 10, gt.shape)).astype(np.float32)
    emb = compute_embeddings(image, apg_model)
    inst = segment_apg(apg_model, emb, config=APGConfig(foreground_thresh=0.0))
    assert isinstance(inst, Instances) and inst.labels.shape == (200, 240)
    assert len(inst.masks) == inst.n == len(inst.scores)
    # ground-truth maps: one prompt per object reaches the (random) decoder
    calls = []
    original = apg_model.decode

    def counting(cache, sparse, dense=None, *, multimask=False):
        calls.append(len(sparse))
        return original(cache, sparse, dense, multimask=multimask)

    apg_model.decode = counting
    try:
        out = segment_apg(
            apg_model,
            emb,
            config=APGConfig(min_size=0, nms_thresh=1.0, box_refinement=True),
            maps=instance_distance_targets(gt),
        )
    finally:
        del apg_model.decode
    assert sum(calls) == 2 * gt.max()  # points, then boxes of the non-empty masks
    assert out.labels.shape == (200, 240) and np.all(out.scores <= 1.5)
