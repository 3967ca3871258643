"""pipeline.tracking's per-frame segmentation: nuclei cut by the image border are kept smaller."""

import numpy as np

from samscope.pipeline.tracking import keep_border_fragments


def test_small_border_fragments_stay_small_interior_objects_go():
    lab = np.zeros((40, 40), np.uint16)
    lab[0:3, 10:15] = 1  # 15 px, on the border: a nucleus leaving the image
    lab[20:23, 20:25] = 2  # 15 px, inside: debris
    lab[5:15, 25:35] = 3  # 100 px, inside
    lab[38:40, 0:2] = 4  # 4 px, on the border: too small even there
    out = keep_border_fragments(lab, min_size=50, border_min_size=10)
    assert sorted(np.unique(out)[1:].tolist()) == [1, 3]
    assert (out[lab == 1] == 1).all() and lab[lab == 2].size and not out[lab == 2].any()
    assert keep_border_fragments(np.zeros((4, 4), np.uint16), 5, 1).shape == (4, 4)


def test_fragment_sizes_follow_the_objects_size():
    from types import SimpleNamespace

    from samscope.pipeline.tracking import fragment_sizes

    model = SimpleNamespace(card=SimpleNamespace(working_diameter=28.0, automatic=SimpleNamespace(min_size=200)))
    interior, border = fragment_sizes(model, 24.5, 1.0)  # resize skipped within tolerance
    assert abs(interior - 200 * (24.5 / 28) ** 2) < 1e-6
    assert abs(border - 0.05 * np.pi / 4 * 24.5**2) < 1e-6
    interior, _ = fragment_sizes(model, 14.0, 2.0)  # resized x2: 200 working px are 50 native px
    assert abs(interior - 50.0) < 1e-6
