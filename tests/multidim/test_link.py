import numpy as np
import pytest

from samscope.errors import InputError
from samscope.multidim import LinkConfig, link_planes, trim_faded, watershed_3d
from samscope.multidim.link import object_contrast


def test_link_planes_gives_one_id_per_object_through_z(volume):
    _, labels = volume
    per_plane = np.zeros_like(labels)
    for k in range(len(labels)):  # ids restart and swap in every plane
        ids = [i for i in (1, 2) if (labels[k] == i).any()]
        for new, i in enumerate(reversed(ids), start=1):
            per_plane[k][labels[k] == i] = new
    by_iou = link_planes(per_plane, config=LinkConfig(measure="iou"))
    assert len(np.unique(by_iou)) - 1 > 2  # caps: IoU with their next plane < 0.3
    linked = link_planes(per_plane)  # overlap over the smaller object: caps lie inside
    assert len(np.unique(linked)) - 1 == 2
    for i in (1, 2):  # each true object is exactly one linked id
        assert len(np.unique(linked[labels == i])) == 1
    assert not np.array_equal(linked[labels == 1][:1], linked[labels == 2][:1])
    assert per_plane.max() == 2 and not np.shares_memory(linked, per_plane)


def test_a_split_continues_into_the_better_match_and_the_other_part_is_new():
    lab = np.zeros((2, 10, 20), int)
    lab[0, 2:8, 2:18] = 1
    lab[1, 2:8, 2:12] = 1  # the larger part (IoU 0.625)
    lab[1, 2:8, 13:18] = 2  # the smaller part (IoU 0.31)
    out = link_planes(lab, config=LinkConfig(min_overlap=0.2))
    assert out[1, 4, 5] == out[0, 4, 5] and out[1, 4, 15] not in (0, out[0, 4, 5])


def test_min_overlap_gap_and_min_planes():
    lab = np.zeros((4, 10, 10), int)
    lab[0, 2:6, 2:6] = 1
    lab[2, 2:6, 2:6] = 3  # missing in plane 1
    lab[3, 2:6, 4:8] = 1  # IoU 1/3 with plane 2
    iou = {"measure": "iou"}
    assert len(np.unique(link_planes(lab, config=LinkConfig(**iou)))) - 1 == 2  # the gap splits it
    assert len(np.unique(link_planes(lab, config=LinkConfig(gap=1, **iou)))) - 1 == 1  # 1/3 >= 0.3
    strict = link_planes(lab, config=LinkConfig(gap=1, min_overlap=0.5, **iou))
    assert len(np.unique(strict)) - 1 == 2
    assert len(np.unique(link_planes(lab, config=LinkConfig(gap=1, min_overlap=0.5)))) - 1 == 1
    one = link_planes(lab, config=LinkConfig(min_planes=3, gap=1))
    assert set(np.unique(one)) == {0, 1}
    with pytest.raises(InputError, match="min_overlap"):
        LinkConfig(min_overlap=0)
    with pytest.raises(InputError, match="stack"):
        link_planes(np.zeros((5, 5), int))


def test_link_planes_empty_and_single_plane():
    assert link_planes(np.zeros((3, 4, 4), np.uint16)).max() == 0
    one = np.zeros((1, 4, 4), int)
    one[0, 1:3, 1:3] = 7
    assert link_planes(one)[0, 1, 1] == 1


def test_watershed_3d_separates_touching_objects_and_joins_planes():
    z, y, x = np.indices((4, 30, 50))
    fg = np.zeros((4, 30, 50), np.float32)
    centre = np.ones_like(fg)
    for cx in (15, 33):  # two touching discs, in every plane
        d = np.hypot(y - 15, x - cx) / 10.0
        fg = np.maximum(fg, (d < 1).astype(np.float32))
        centre = np.minimum(centre, np.clip(d, 0, 1))
    boundary = 1 - np.clip(np.minimum(np.abs(x - 24) / 4.0, 1), 0, 1) * fg
    maps = np.stack([fg, centre, boundary], axis=1)
    lab = watershed_3d(maps, distance_smoothing=0, foreground_smoothing=0, z_scale=5)
    assert lab.shape == (4, 30, 50) and lab.max() == 2
    assert len({lab[k, 15, 15] for k in range(4)}) == 1 and lab[0, 15, 15] != lab[0, 15, 33]
    assert watershed_3d(np.zeros((2, 3, 8, 8), np.float32)).max() == 0
    with pytest.raises(InputError, match="Z, 3, H, W"):
        watershed_3d(np.zeros((3, 8, 8)))


def test_trim_faded_removes_the_ghost_planes(volume):
    image, labels = volume
    img = image.astype(np.float32)
    ghost = labels.copy()
    ghost[0][labels[3] == 1] = 1  # the object also claimed on a plane where it is dim
    img[0][labels[3] == 1] = 20.0
    out = trim_faded(ghost, img, min_contrast=0.15)
    assert not (out[0] == 1).any() and (out[3] == 1).any()
    assert np.array_equal(trim_faded(ghost, img, min_contrast=0), ghost)
    assert object_contrast(img[3], labels[3] == 1) > 150
    assert np.isnan(object_contrast(img[3], np.zeros_like(labels[3], bool)))
