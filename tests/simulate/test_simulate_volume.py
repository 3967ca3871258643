import json

import numpy as np
import pytest

from samscope.errors import InputError
from samscope.simulate.volume import Nuclei3DConfig, nuclei_volume, write_volumes

SMALL = Nuclei3DConfig(n_nuclei=(4, 4), diameter_um=(7, 8), oversample_z=2, touching_fraction=1.0)


def test_a_volume_of_touching_textured_nuclei_with_3d_labels():
    s = nuclei_volume((8, 64, 64), SMALL, seed=2)
    assert s.image.shape == s.labels.shape == (8, 64, 64) and s.image.dtype == np.float32
    ids = np.unique(s.labels)[1:]
    assert 2 <= len(ids) <= 4 and np.array_equal(ids, np.arange(1, len(ids) + 1))
    for i in ids:  # whole in 3-D: each nucleus spans several planes, smaller at its ends
        planes = np.flatnonzero((s.labels == i).any(axis=(1, 2)))
        assert len(planes) >= 3
    fg, bg = s.image[s.labels > 0].mean(), s.image[s.labels == 0].mean()
    assert fg > 3 * bg
    # touching: some pair of nuclei shares a border in a plane
    lab = s.labels
    touching = (lab[:, 1:] != lab[:, :-1]) & (lab[:, 1:] > 0) & (lab[:, :-1] > 0)
    assert touching.any()
    assert s.params["z_step_nm"] == SMALL.z_step_nm != s.pixel_size_nm
    assert "psfmodels" in s.params["psf"] or "gaussian" in s.params["psf"]
    again = nuclei_volume((8, 64, 64), SMALL, seed=2)
    assert np.array_equal(again.image, s.image)  # depends on the seed only


def test_the_psf_is_wider_in_z_than_in_xy():
    from samscope.simulate.volume import _psf

    for kind in ("psfmodels", "gaussian"):
        psf, _ = _psf(Nuclei3DConfig(psf=kind), 0.25)
        z = psf.sum(axis=(1, 2))
        x = psf.sum(axis=(0, 1))
        width = lambda p: np.sqrt((p * (np.arange(len(p)) - len(p) // 2) ** 2).sum() / p.sum())  # noqa: E731
        assert width(z) > 1.5 * width(x)


def test_written_with_pixel_sizes(tmp_path):
    from samscope.io import read_image, read_labels

    out = write_volumes(tmp_path / "vol", 1, shape=(6, 48, 48), seed=1, config=SMALL)
    img = read_image(out / "images" / "000000.tif")
    assert img.axes == "ZYX" and img.data.shape == (6, 48, 48)
    assert np.allclose(img.pixel_size, (SMALL.z_step_nm, SMALL.pixel_size_nm, SMALL.pixel_size_nm))
    assert read_labels(out / "labels" / "000000.tif").shape == (6, 48, 48)
    assert json.loads((out / "dataset.json").read_text())["kind"] == "nuclei-3d"
    with pytest.raises(InputError, match="another dataset"):
        write_volumes(out, 2, shape=(6, 48, 48), seed=1, config=SMALL)


def test_bad_settings():
    with pytest.raises(InputError, match="shape"):
        nuclei_volume((8, 8))
    with pytest.raises(InputError, match="z_step_nm"):
        Nuclei3DConfig(z_step_nm=0)
    with pytest.raises(InputError, match="psf"):
        Nuclei3DConfig(psf="airy")


def test_cli_simulate_nuclei_3d(tmp_path, capsys):
    from samscope.cli.main import main
    from samscope.io import read_image

    out = tmp_path / "v"
    main(["simulate", "nuclei", "--3d", "--planes", "6", "--shape", "48", "-n", "1", "-o", str(out),
          "-s", "n_nuclei=3,3", "-s", "oversample_z=2", "-s", "z_step_nm=800"])  # fmt: skip
    assert "z step 800 nm" in capsys.readouterr().out
    img = read_image(out / "images" / "000000.tif")
    assert img.data.shape == (6, 48, 48) and img.pixel_size[0] == pytest.approx(800)
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "nuclei", "--3d", "--diameter-px", "20,30", "-o", str(tmp_path / "w")])
    assert exc.value.code != 0 and "--set" in capsys.readouterr().err
