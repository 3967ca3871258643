"""Bacteria colony time-lapses (simulate.colony): growing, dividing rods with lineage truth."""

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.simulate.colony import ColonyConfig, colony_timelapse


@pytest.fixture(scope="module")
def colony():
    [s] = colony_timelapse(1, (128, 128), rng=3, config=ColonyConfig(frames=16, doubling_frames=(5.0, 6.0)))
    return s


def test_rods_grow_and_divide_into_two_daughters(colony):
    lab, lin = colony.labels, colony.lineage
    assert lab.shape == (16, 128, 128) and colony.image.shape == lab.shape
    counts = [len(np.unique(f)) - 1 for f in lab]
    assert counts[-1] > counts[0] and lin.n_divisions >= 3
    for mother, kids in lin.divisions().items():
        assert len(kids) == 2
        m = lin.get(mother)
        for k in kids:
            assert lin.get(k).start == m.end + 1
        # the daughters take the place of the mother: together about her area
        before = (lab[m.end] == mother).sum()
        after = sum((lab[m.end + 1] == k).sum() for k in kids)
        assert 0.6 * before < after < 1.6 * before
    # every id in the labels is in the lineage, present from its start to its end
    for t in lin.tracks:
        assert all((lab[f] == t.id).any() for f in range(t.start, t.end + 1))


def test_rods_are_bright_on_a_dim_background(colony):
    img, lab = colony.image[0], colony.labels[0]
    assert img[lab > 0].mean() > img[lab == 0].mean() + 20


def test_same_seed_same_colony_and_bad_config():
    a = colony_timelapse(1, (64, 64), rng=1, config=ColonyConfig(frames=3))[0]
    b = colony_timelapse(1, (64, 64), rng=1, config=ColonyConfig(frames=3))[0]
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.image, b.image)
    with pytest.raises(InputError, match="look"):
        ColonyConfig(look="sepia")
    with pytest.raises(InputError, match="frames"):
        ColonyConfig(frames=0)


def test_cli_writes_a_colony_with_ctc_tracks(tmp_path, capsys):
    from samscope.cli.main import main
    from samscope.io.tracks import read_track_table

    out = tmp_path / "col"
    try:
        main(["simulate", "bacteria", "--frames", "6", "--shape", "96", "-o", str(out)])
    except SystemExit as exc:
        assert exc.code == 0, capsys.readouterr().err
    import tifffile

    labels = tifffile.imread(out / "labels" / "000000.tif")
    assert labels.shape == (6, 96, 96) and tifffile.imread(out / "images" / "000000.tif").shape == (6, 96, 96)
    table = read_track_table(out / "tracks" / "000000.txt")
    assert set(np.unique(labels)[1:].tolist()) == {int(t.id) for t in table.tracks}
