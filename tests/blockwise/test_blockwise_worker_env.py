"""Local Dask workers run without the nanny's fixed glibc trim threshold (it made the model 1.23x slower)."""

import os

import pytest

pytest.importorskip("distributed")

from samscope.blockwise.cluster import _spawn_environ_without_trim, dask_client  # noqa: E402


def _worker_environ():
    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")


def test_spawn_environ_drops_the_trim_threshold_and_adds_one_arena():
    import dask

    environ = _spawn_environ_without_trim()["distributed.nanny.pre-spawn-environ"]
    assert "MALLOC_TRIM_THRESHOLD_" not in environ
    assert environ.pop("MALLOC_ARENA_MAX") == 1  # one malloc arena (test_blockwise_malloc.py)
    default = dask.config.get("distributed.nanny.pre-spawn-environ")
    assert {k: v for k, v in default.items() if k != "MALLOC_TRIM_THRESHOLD_"} == environ


def test_local_workers_have_no_trim_threshold_but_keep_one_thread():
    import dask

    before = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    with dask_client(workers=1) as client:
        (trim, omp), = client.run(_worker_environ).values()
        saturation = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.WORKER_SATURATION)
    assert saturation == 1.0  # one block per one-thread worker: a dead worker blames only it
    assert trim is None
    assert omp == "1"
    assert dict(dask.config.get("distributed.nanny.pre-spawn-environ")) == before  # restored
