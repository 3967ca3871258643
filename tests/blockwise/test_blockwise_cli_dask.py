"""``samscope segment BIG.zarr -o OUT.zarr --dask``: a local cluster, an existing scheduler, a
cluster config; the dashboard link and the progress bars (blocks, rate, ETA) are printed."""

import numpy as np
import pytest
import zarr

from samscope.cli.main import main

pytest.importorskip("distributed")


def call(args, capsys):
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(autouse=True)
def _environ():
    """Dask's nannies leave their pre-spawn variables (MALLOC_TRIM_THRESHOLD_ …) in os.environ."""
    import os

    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture()
def big(tmp_path):
    """A zarr input of 2×2 blocks of 64² (the "BIG.zarr" of the issue, small)."""
    rng = np.random.default_rng(0)
    path = tmp_path / "big.zarr"
    arr = zarr.create_array(str(path), shape=(128, 128), chunks=(32, 32), dtype="uint16",
                            zarr_format=2)
    arr[...] = (rng.random((128, 128)) * 4000).astype(np.uint16)
    return path


def _check_output(out, text, err, workers):
    assert f"dask: {workers} worker(s), dashboard http" in text
    assert "done: 4 block(s) of 64×64 with halo 16×16 (4 run now, dask (tcp://127.0.0.1" in text
    for phase in ("segment", "match", "write"):  # tqdm: "segment: 100%|…| 4/4 [00:03<00:00, 1.2block/s]"
        assert f"{phase}: 100%" in err and "4/4" in err
    assert "block/s" in err or "s/block" in err
    labels = zarr.open_group(str(out), mode="r")["0"]
    assert labels.shape == (128, 128) and labels.chunks == (64, 64)
    assert (out.parent / (out.name.removesuffix(".zarr") + "_objects.csv")).exists()


def test_segment_dask_local_workers(big, tmp_path, capsys):
    out = tmp_path / "out.zarr"
    code, text, err = call(["segment", str(big), "-o", str(out), "--model", "vit_test",
                            "--block-size", "64", "--halo", "16", "--dask", "--workers", "2"],
                           capsys)
    assert code == 0, err
    _check_output(out, text, err, 2)


def test_segment_dask_existing_scheduler(big, tmp_path, capsys):
    import distributed

    out = tmp_path / "out.zarr"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0") as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        code, text, err = call(["segment", str(big), "-o", str(out), "--model", "vit_test",
                                "--block-size", "64", "--halo", "16", "--dask", "--scheduler",
                                address], capsys)
        assert code == 0, err
        assert len(cluster.scheduler.workers) == 1  # the scheduler's worker is left running
    _check_output(out, text, err, 1)


@pytest.mark.parametrize(("text", "words"), [
    (None, "does not exist"),
    ("[cluster]\nkind = 'moab'\n", "kind must be one of"),
    ("[cluster]\nkind = 'slurm'\nno_such_option = 1\n", "cluster config"),
])
def test_segment_dask_bad_cluster_config(big, tmp_path, capsys, text, words):
    cfg = tmp_path / "cluster.toml"
    if text is not None:
        cfg.write_text(text)
    out = tmp_path / "out.zarr"
    code, _, err = call(["segment", str(big), "-o", str(out), "--model", "vit_test",
                         "--dask", "--cluster-config", str(cfg)], capsys)
    assert code == 2 and words in err
    assert not out.exists()
