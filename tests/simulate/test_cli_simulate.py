"""``samscope simulate mitochondria|nuclei|cells`` end to end."""

import json

import numpy as np
import pytest

from samscope.cli.main import main
from samscope.simulate import mitochondria, read_sample


def run(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def ok(args, capsys):
    try:
        main(args)
    except SystemExit as exc:  # pragma: no cover - shown on failure
        out = capsys.readouterr()
        raise AssertionError(f"exit {exc.code}: {out.err}") from None
    return capsys.readouterr()


def test_mitochondria_command_with_options(tmp_path, capsys):
    out = tmp_path / "mito"
    png = tmp_path / "grid.png"
    res = ok(
        [
            "simulate", "mitochondria", "-n", "2", "-o", str(out), "--seed", "3", "--shape", "128,256",
            "--length-nm", "300,600", "--sbr", "4", "-s", "optics.na=1.4", "-s", "bend_deg=10",
            "--preview", str(png),
        ],
        capsys,
    )
    assert "2 mitochondria images" in res.out
    assert "simulate mitochondria" in res.err  # tqdm progress
    meta = json.loads((out / "dataset.json").read_text())
    cfg = meta["config"]
    assert cfg["length_nm"] == [300.0, 600.0] and cfg["sbr"] == [4.0, 4.0]
    assert cfg["optics"]["na"] == 1.4 and cfg["bend_deg"] == 10.0
    assert meta["seed"] == 3 and meta["shape"] == [128, 256] and png.is_file()
    from samscope.simulate.optics import OpticsConfig

    expected = mitochondria(
        2, (128, 256), rng=3, length_nm=(300, 600), sbr=(4, 4), bend_deg=10, optics=OpticsConfig(na=1.4)
    )[1]
    got = read_sample(out, 1)
    assert np.array_equal(got.image, expected.image) and np.array_equal(got.masks, expected.masks)


def test_nuclei_and_cells_commands_resume(tmp_path, capsys):
    out = tmp_path / "nuc"
    args = ["simulate", "nuclei", "-n", "3", "-o", str(out), "--shape", "64", "-q", "--format", "zarr"]
    ok(args, capsys)
    before = (out / "labels" / "000001.tif").stat().st_mtime_ns
    ok(args, capsys)  # nothing to do: every sample is complete
    assert (out / "labels" / "000001.tif").stat().st_mtime_ns == before
    ok(["simulate", "cells", "-n", "2", "-o", str(tmp_path / "bac"), "--look", "bacteria",
        "--rod-length-px", "12,20", "--shape", "96", "-q"], capsys)
    assert read_sample(tmp_path / "bac", 1).params["look"] == "bacteria"


@pytest.mark.parametrize(
    "extra",
    [
        ["--length-nm", "2500,500"],
        ["--sbr", "0"],
        ["--sbr", "-2,3"],
        ["--n-per-crop", "0"],
        ["--width-nm", "abc"],
        ["-s", "no_field=1"],
        ["-s", "sbr"],
        ["-s", "optics.nope=1"],
        ["-n", "0"],
        ["--shape", "0"],
        ["--format", "png"],
    ],
)
def test_bad_parameters_exit_2_with_one_line(tmp_path, capsys, extra):
    out = tmp_path / "x"
    code, _, err = run(["simulate", "mitochondria", "-o", str(out), "-n", "2", "-q", *extra], capsys)
    assert code == 2
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("cmd", [["simulate"], ["simulate", "mitochondria"], ["simulate", "nuclei"], ["simulate", "cells"]])
def test_help_has_examples(capsys, cmd):
    try:
        main([*cmd, "--help"])
    except SystemExit as exc:
        assert exc.code in (0, None)
    out = capsys.readouterr().out
    assert "Examples" in out and "samscope simulate" in out
