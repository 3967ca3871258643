"""Tracking formats: CTC result folders, man_track.txt, napari Tracks CSV."""

import numpy as np
import pytest
import tifffile

from samscope.errors import InputError
from samscope.io.tracks import (
    read_ctc,
    read_napari_tracks,
    read_track_table,
    write_ctc,
    write_napari_tracks,
    write_track_table,
)
from samscope.multidim import Lineage, Track, TrackedSeries


def tracked(ndim=2):
    shape = (3, 6, 8) if ndim == 2 else (3, 2, 6, 8)
    labels = np.zeros(shape, np.uint16)
    labels[0, ..., 1:3, 1:3] = 1
    labels[1:, ..., 1:3, 0:2] = 2
    labels[1:, ..., 4:6, 4:6] = 3
    return TrackedSeries(labels, Lineage((Track(1, 0, 0), Track(2, 1, 2, 1), Track(3, 1, 2, 1))))


@pytest.mark.parametrize("ndim", [2, 3])
def test_ctc_result_round_trip(tmp_path, ndim):
    t = tracked(ndim)
    files = write_ctc(tmp_path / "01_RES", t)
    assert [f.name for f in files] == ["mask000.tif", "mask001.tif", "mask002.tif", "res_track.txt"]
    assert (tmp_path / "01_RES" / "res_track.txt").read_text() == "1 0 0 0\n2 1 2 1\n3 1 2 1\n"
    back = read_ctc(tmp_path / "01_RES")
    assert np.array_equal(back.labels, t.labels) and back.lineage == t.lineage
    with pytest.raises(InputError, match="already holds"):
        write_ctc(tmp_path / "01_RES", t)
    write_ctc(tmp_path / "01_RES", TrackedSeries(t.labels[:2], Lineage((Track(1, 0, 0), Track(2, 1, 1, 1),
                                                                          Track(3, 1, 1, 1)))), overwrite=True)  # fmt: skip
    assert not (tmp_path / "01_RES" / "mask002.tif").exists()  # frames of the old result removed


def test_ground_truth_folders(tmp_path):
    t = tracked()
    tra = tmp_path / "01_GT" / "TRA"
    tra.mkdir(parents=True)
    for k, f in enumerate(t.labels):
        tifffile.imwrite(tra / f"man_track{k:03d}.tif", f)
    with pytest.raises(InputError, match="no man_track.txt"):
        read_ctc(tmp_path / "01_GT")
    write_track_table(tra / "man_track.txt", t.lineage)
    for where in (tmp_path / "01_GT", tra):
        back = read_ctc(where)
        assert back.lineage.divisions() == {1: (2, 3)}
    (tra / "man_track.txt").write_text("1 0 0 0\n2 1 2\n")
    with pytest.raises(InputError, match="line 2"):
        read_track_table(tra / "man_track.txt")
    (tra / "man_track.txt").write_text("1 0 0 0\n2 1 2 1\n")  # track 3 missing
    with pytest.raises(InputError, match="label 3 in frame 1"):
        read_ctc(tra)
    with pytest.raises(InputError, match="neither"):
        read_ctc(tmp_path)


def test_napari_tracks_csv(tmp_path):
    t = tracked()
    path = write_napari_tracks(tmp_path / "tracks.csv", t)
    header = path.read_text().splitlines()[0]
    assert header == "track_id,t,y,x,parent_track_id"
    data, graph = read_napari_tracks(path)
    assert data.shape == (5, 4) and graph == {2: [1], 3: [1]}
    assert data[0].tolist() == [1.0, 0.0, 1.5, 1.5]
    assert read_napari_tracks(write_napari_tracks(tmp_path / "t3.csv", tracked(3)))[0].shape == (5, 5)
