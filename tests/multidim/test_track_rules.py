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
    mother = disc((80, 80), 40, 40, 14)
    mask = disc((80, 80), 40, 29, 8) | disc((80, 80), 40, 51, 8)
    parts = division_pieces(mask, mother, cfg=cfg)
    assert parts is not None and parts[0].sum() == parts[1].sum() == disc((80, 80), 40, 29, 8).sum()
    # the same two objects, but one of them outside the mother: a neighbour caught by the box
    assert division_pieces(disc((80, 80), 40, 34, 8) | disc((80, 80), 40, 66, 8), mother, cfg) is None


def test_fragments_of_one_nucleus_are_not():
    cfg = TrackingConfig()
    whole = disc((80, 80), 40, 40, 15)
    cracked = whole.copy()
    cracked[:, 40] = False  # a one-pixel crack: no gap worth the name
    assert division_pieces(cracked, whole, cfg) is None
    # two small pieces far apart but adding up to a fraction of the mother: not plausible
    small = disc((80, 80), 40, 15, 4) | disc((80, 80), 40, 65, 4)
    assert division_pieces(small, whole, cfg) is None
    # a very uneven split
    uneven = disc((80, 80), 40, 30, 12) | disc((80, 80), 40, 62, 4)
    assert division_pieces(uneven, whole, cfg) is None


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
