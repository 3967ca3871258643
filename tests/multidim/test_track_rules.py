"""Tracking rules (multidim.track_rules): divisions need two separated daughters of plausible size."""

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.multidim.track_rules import TrackingConfig, division_pieces, same_object


def disc(shape, cy, cx, r):
    y, x = np.indices(shape)
    return (y - cy) ** 2 + (x - cx) ** 2 <= r * r


def test_two_separated_daughters_are_a_division():
    cfg = TrackingConfig()
    mask = disc((80, 80), 40, 25, 9) | disc((80, 80), 40, 55, 9)
    parts = division_pieces(mask, prev_area=int(disc((80, 80), 40, 40, 13).sum()), cfg=cfg)
    assert parts is not None and parts[0].sum() == parts[1].sum() == disc((80, 80), 40, 25, 9).sum()


def test_fragments_of_one_nucleus_are_not():
    cfg = TrackingConfig()
    whole = disc((80, 80), 40, 40, 15)
    cracked = whole.copy()
    cracked[:, 40] = False  # a one-pixel crack: no gap worth the name
    assert division_pieces(cracked, int(whole.sum()), cfg) is None
    # two small pieces far apart but adding up to a fraction of the mother: not plausible
    small = disc((80, 80), 40, 15, 4) | disc((80, 80), 40, 65, 4)
    assert division_pieces(small, int(whole.sum()), cfg) is None
    # a very uneven split
    uneven = disc((80, 80), 40, 30, 12) | disc((80, 80), 40, 62, 4)
    assert division_pieces(uneven, int(whole.sum()), cfg) is None


def test_same_object_when_a_probe_covers_the_other_piece():
    a, b = disc((40, 40), 20, 12, 6), disc((40, 40), 20, 28, 6)
    assert same_object((a, b), (a | b, b))
    assert not same_object((a, b), (a, b))


def test_config_checks():
    with pytest.raises(InputError, match="prompt"):
        TrackingConfig(prompt="points")
    with pytest.raises(InputError, match="division_max_sum"):
        TrackingConfig(division_min_sum=0.9, division_max_sum=0.5)
    assert TrackingConfig(prompt="box+points").prompt == "box+points"
