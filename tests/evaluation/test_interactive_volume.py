import numpy as np
import pytest

from samscope.errors import InputError
from samscope.evaluation.interactive_volume import first_prompts_3d, run_interactive_volume


def _volume():
    z, y, x = np.indices((6, 40, 40))
    lab = np.zeros((6, 40, 40), np.uint16)
    lab[(((z - 2) / 1.6) ** 2 + ((y - 12) / 8) ** 2 + ((x - 12) / 8) ** 2) <= 1] = 1
    lab[(((z - 3) / 1.6) ** 2 + ((y - 28) / 7) ** 2 + ((x - 28) / 7) ** 2) <= 1] = 2
    return lab


class FakePropagator:
    """Object 0: a spurious copy on plane 5 until it is marked absent there; object 1: a hole on
    its worst plane until a positive point is placed on that plane."""

    def __init__(self, labels):
        self.gt, self.objects, self.prompts = labels, [], []

    def add(self, prompt):
        self.objects.append({prompt.plane: prompt})
        return len(self.objects) - 1

    def correct(self, i, prompt):
        self.objects[i][prompt.plane] = prompt
        self.prompts.append((i, prompt))

    def run(self):
        return self

    def mask(self, i):
        m = self.gt == i + 1
        anchors = self.objects[i]
        if i == 0 and not (5 in anchors and anchors[5].mask is not None):
            m[5] = m[2]  # a ghost on plane 5
        if i == 1 and not any(k != 3 and p.labels is not None and (p.labels == 1).any() for k, p in anchors.items()):
            m[2, 26:31, 26:31] = False  # a hole on plane 2
        return m


def test_first_prompt_on_the_largest_plane_and_corrections_on_the_worst_plane():
    lab = _volume()
    first = first_prompts_3d(lab)
    assert [f.plane for f in first] == [2, 3]
    assert lab[2, int(first[0].point[0]), int(first[0].point[1])] == 1
    prop = FakePropagator(lab)
    res = run_interactive_volume(prop, lab, mode="point", n_iterations=2)
    assert res.iou.shape == (2, 3)
    assert res.iou[0, 0] < 0.9 and res.iou[1, 0] < 1.0
    assert np.allclose(res.iou[:, 1], 1.0) and np.allclose(res.iou[:, 2], 1.0)
    assert res.msa[0] < res.msa[1] == pytest.approx(1.0)
    (c0,), (c1,) = res.corrections  # one correction each, then exact: no more
    assert c0[:2].tolist() == [1, 5] and c0[4] == -1  # marked absent on the ghost plane
    assert c1[:2].tolist() == [1, 2] and c1[4] == 1  # a positive point in the hole
    assert 26 <= c1[2] < 31 and 26 <= c1[3] < 31


def test_bad_volumes():
    prop = FakePropagator(np.zeros((2, 8, 8), np.uint16))
    with pytest.raises(InputError, match="no objects"):
        run_interactive_volume(prop, np.zeros((2, 8, 8), np.uint16))
    with pytest.raises(InputError, match=r"\(z, y, x\)"):
        run_interactive_volume(prop, np.zeros((8, 8), np.uint16))
    with pytest.raises(InputError, match="mode"):
        run_interactive_volume(prop, _volume(), mode="lasso")
