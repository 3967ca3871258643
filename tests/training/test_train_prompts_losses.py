"""Simulated prompts and the losses: corrective clicks in the error regions, overlap-aware minima."""

from __future__ import annotations

import torch

from samscope.training import losses, prompts


def disk(size, cy, cx, r):
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_corrective_points_lie_in_the_error_regions():
    g = torch.Generator().manual_seed(0)
    target = torch.stack([disk(64, 30, 30, 12), disk(64, 20, 40, 8), disk(64, 40, 20, 10)])
    pred = torch.stack([disk(64, 34, 34, 12), disk(64, 20, 40, 8) | disk(64, 50, 50, 5),
                        disk(64, 40, 20, 6)])  # shifted; extra blob; too small
    for _ in range(20):
        pts, labels = prompts.corrective_points(pred, target, generator=g)
        assert labels.tolist() == [[1, 0]] * 3
        for i in range(3):
            (py, px), (ny, nx) = pts[i].tolist()
            missed = target[i] & ~pred[i]
            wrong = pred[i] & ~target[i]
            if missed.any():
                assert missed[py, px], (i, py, px)
            else:  # object 1 is fully found: positive inside the object
                assert target[i][py, px]
            if wrong.any():
                assert wrong[ny, nx], (i, ny, nx)
            else:  # nothing wrongly predicted: negative in the ring around the object
                assert not target[i][ny, nx]
                assert abs(ny - 40) <= 10 + 3 and abs(nx - 20) <= 10 + 3


def test_corrective_points_fallbacks_for_a_perfect_prediction():
    target = disk(32, 16, 16, 5)[None]
    pts, _ = prompts.corrective_points(target.clone(), target, generator=torch.Generator().manual_seed(1))
    (py, px), (ny, nx) = pts[0].tolist()
    assert target[0, py, px] and not target[0, ny, nx]
    assert 16 - 5 - 3 <= ny <= 16 + 5 + 3 and 16 - 5 - 3 <= nx <= 16 + 5 + 3


def test_random_points_and_boxes():
    masks = torch.stack([disk(40, 10, 10, 4), disk(40, 30, 25, 6), torch.zeros(40, 40, dtype=torch.bool)])
    g = torch.Generator().manual_seed(0)
    pts, valid = prompts.random_points(masks, generator=g)
    assert valid.tolist() == [True, True, False]
    assert masks[0, pts[0, 0], pts[0, 1]] and masks[1, pts[1, 0], pts[1, 1]]
    boxes = prompts.boxes_from_masks(masks[:2])
    assert boxes.tolist() == [[6, 6, 15, 15], [24, 19, 37, 32]]
    loose = prompts.boxes_from_masks(masks[:2], distortion=0.5, generator=g)
    assert (loose[:, :2] <= boxes[:, :2]).all() and (loose[:, 2:] >= boxes[:, 2:]).all()
    assert (loose >= 0).all() and (loose <= 40).all()
    centre = prompts.central_points(masks[:2])
    assert centre.tolist() == [[10, 10], [30, 25]]


def test_overlap_aware_loss_takes_the_minimum():
    a, b = disk(32, 12, 12, 6).float(), disk(32, 18, 18, 6).float()
    pred = b[None, None].clone()  # the model segmented b
    result = losses.prompt_mask_loss(pred, torch.stack([a, b])[None])
    assert int(result.candidate) == 1 and float(result.loss) < 1e-6
    only_a = losses.prompt_mask_loss(pred, a[None, None])
    assert float(only_a.loss) > 0.3
    # padding candidates are ignored even when they would fit
    masked = losses.prompt_mask_loss(pred, torch.stack([a, b])[None], torch.tensor([[True, False]]))
    assert int(masked.candidate) == 0 and torch.isclose(masked.loss, only_a.loss)


def test_best_of_multimask_outputs():
    t = disk(32, 16, 16, 7).float()
    outputs = torch.stack([torch.zeros(32, 32), t, torch.ones(32, 32)])[None]  # (1, 3, H, W)
    result = losses.prompt_mask_loss(outputs, t[None, None])
    assert int(result.output) == 1 and float(result.loss) < 1e-6


def test_dice_and_iou():
    t = disk(16, 8, 8, 4)
    assert float(losses.dice_loss(t.float(), t.float())) < 1e-6
    assert float(losses.dice_loss(torch.zeros(16, 16), t.float())) == 1.0
    iou = losses.mask_iou(torch.stack([t, ~t, t & (torch.arange(16) < 8)[:, None]])[None], t[None])
    assert iou[0, 0] == 1 and iou[0, 1] == 0 and 0.4 < iou[0, 2] < 0.7


def test_instance_distance_loss_is_zero_for_the_target():
    from samscope.instance.targets import instance_distance_targets

    labels = torch.zeros(32, 32, dtype=torch.int32)
    labels[4:12, 4:12] = 1
    labels[16:28, 10:20] = 2
    target = torch.from_numpy(instance_distance_targets(labels.numpy()))[None]
    assert float(losses.instance_distance_loss(target, target)) < 1e-5
    assert float(losses.instance_distance_loss(1 - target, target)) > 1.0
