"""Blockwise on dask.distributed: a 2-process LocalCluster gives the single-process result."""

import json

import numpy as np
import pytest
import tifffile
import zarr

from samscope.blockwise import BlockwiseRequest, ThresholdSegmenter, segment_blockwise
from samscope.blockwise.cluster import dask_client, make_jobqueue_cluster, read_cluster_config
from samscope.errors import InputError

pytest.importorskip("distributed")


def test_local_cluster_with_two_processes_equals_single_process(tmp_path):
    rng = np.random.default_rng(0)
    img = (rng.random((160, 200)) > 0.6).astype(np.uint8) * 200
    from scipy import ndimage as ndi

    img = ndi.uniform_filter(img, 5)
    path = tmp_path / "img.tif"
    tifffile.imwrite(path, img)
    seg = ThresholdSegmenter(100)
    single = tmp_path / "single.zarr"
    segment_blockwise(BlockwiseRequest(path, single, block_size=40, halo=12), segmenter=seg)
    out = tmp_path / "dask.zarr"
    with dask_client(workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        assert client.dashboard_link.startswith("http")
        result = segment_blockwise(BlockwiseRequest(path, out, block_size=40, halo=12),
                                   segmenter=seg, client=client)
    assert result.executor.startswith("dask") and result.n_blocks == 20
    a = zarr.open_group(str(single), mode="r")["0"][...]
    b = zarr.open_group(str(out), mode="r")["0"][...]
    assert np.array_equal(a, b)
    pids = {json.loads(p.read_text())["pid"] for p in (out / "_blockwise" / "segmented").glob("*.json")}
    assert len(pids) == 2  # both worker processes segmented blocks


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(InputError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        with dask_client(scheduler="tcp://127.0.0.1:9", timeout=1):
            pass


def test_cluster_config_makes_a_slurm_job(tmp_path):
    cfg = tmp_path / "cluster.toml"
    cfg.write_text('[cluster]\nkind = "slurm"\njobs = 3\ncores = 4\nmemory = "16GB"\n'
                   'walltime = "01:00:00"\nqueue = "gpu"\n')
    kind, jobs, options = read_cluster_config(cfg)
    assert (kind, jobs, options["cores"]) == ("slurm", 3, 4)
    pytest.importorskip("dask_jobqueue")
    cluster, jobs = make_jobqueue_cluster(cfg)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p gpu" in script and "#SBATCH -t 01:00:00" in script
    assert "export MALLOC_ARENA_MAX=1" in script  # batch workers share one malloc arena


@pytest.mark.parametrize(("text", "words"), [
    ("[cluster]\nkind = 'moab'\n", "kind must be one of"),
    ("[cluster]\nkind = 'slurm'\njobs = 0\n", "jobs must be a positive integer"),
    ("kind = 'slurm'\n", r"needs a \[cluster\] table"),
    ("[cluster\n", "cannot read cluster config"),
])
def test_bad_cluster_configs(tmp_path, text, words):
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(InputError, match=words):
        read_cluster_config(cfg)
