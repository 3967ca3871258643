"""Simulated nuclei time-lapses with lineage ground truth."""

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.multidim import Lineage
from samscope.simulate.timelapse import TimelapseConfig, nuclei_timelapse, write_timelapse


def test_series_with_divisions_and_a_valid_lineage():
    cfg = TimelapseConfig(frames=12, cycle_frames=(6, 12))
    [s] = nuclei_timelapse(1, (128, 128), rng=3, config=cfg)
    assert s.image.shape == s.labels.shape == (12, 128, 128)
    lin = s.lineage
    assert lin.n_divisions >= 2
    Lineage.from_table(lin.table())  # parents end before their children start
    # ids are tracks: every id appears exactly in the frames its row says, without gaps
    for t in lin.tracks:
        present = [k for k in range(12) if (s.labels[k] == t.id).any()]
        assert present == list(range(t.start, t.end + 1))
    # daughters start next to where their mother ended
    for parent, kids in lin.divisions().items():
        p = np.argwhere(s.labels[lin.get(parent).end] == parent).mean(0)
        for k in kids:
            c = np.argwhere(s.labels[lin.get(k).start] == k).mean(0)
            assert np.hypot(*(p - c)) < 30
    again = nuclei_timelapse(1, (128, 128), rng=3, config=cfg)[0]
    assert np.array_equal(again.labels, s.labels)


def test_write_timelapse(tmp_path):
    files = write_timelapse(tmp_path / "sim", 1, shape=(64, 64), seed=1, config=TimelapseConfig(frames=3))
    assert files[0].exists() and (tmp_path / "sim" / "tracks" / "000000.txt").exists()
    with pytest.raises(InputError, match="another dataset"):
        write_timelapse(tmp_path / "sim", 2, shape=(64, 64), seed=1, config=TimelapseConfig(frames=3))


def test_bad_config():
    with pytest.raises(InputError, match="frames"):
        TimelapseConfig(frames=1)
    with pytest.raises(InputError, match="persistence"):
        TimelapseConfig(persistence=1.0)
