"""refine_to_core: blurred bright halos cut to their core; sharp or dark objects kept."""

from __future__ import annotations

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.instance.refine import refine_to_core


def _disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < radius**2


def test_blurred_halo_is_cut_and_sharp_object_kept():
    shape = (60, 120)
    core = _disc(shape, (30, 30), 8)
    sharp = _disc(shape, (30, 90), 10)
    from scipy import ndimage as ndi

    image = ndi.gaussian_filter(core.astype(float), 6) * 4 + sharp * 1.0
    labels = np.zeros(shape, np.int32)
    labels[_disc(shape, (30, 30), 18)] = 5  # the model outlined the halo
    labels[sharp] = 9
    out = refine_to_core(image, labels)
    assert out.dtype == labels.dtype and set(np.unique(out)) == {0, 5, 9}
    assert np.count_nonzero(out == 5) < 0.6 * np.count_nonzero(labels == 5)
    assert not np.any((out == 5) & ~(labels == 5))  # only loses pixels
    assert np.count_nonzero(out == 9) >= 0.95 * np.count_nonzero(sharp)


def test_dark_objects_are_left_alone():
    shape = (40, 40)
    obj = _disc(shape, (20, 20), 8)
    image = np.where(obj, 0.2, 1.0)  # dark on bright (phase contrast)
    labels = obj.astype(np.int32)
    assert (refine_to_core(image, labels) == labels).all()


def test_bad_input():
    with pytest.raises(InputError):
        refine_to_core(np.zeros((4, 4)), np.zeros((4, 5), np.int32))
    with pytest.raises(InputError):
        refine_to_core(np.zeros((4, 4)), np.zeros((4, 4), np.int32), mix=2.0)
