"""One glibc malloc arena per blockwise process (zarr's codec threads' arenas made memory creep)."""

import os
import subprocess
import sys
import textwrap

import pytest

from samscope.blockwise.executors import malloc_arena_count

pytestmark = pytest.mark.skipif(malloc_arena_count() is None, reason="needs glibc")

def _image(path):
    import numpy as np
    import zarr

    arr = zarr.create_array(str(path), shape=(256, 256), chunks=(64, 64), dtype="uint8",
                            zarr_format=2)
    arr[...] = (np.arange(256 * 256).reshape(256, 256) % 7 == 0) * 200
    return path


def _fresh(code: str, *args: str) -> str:
    """Run ``code`` in a fresh interpreter (a process that has not started zarr's threads)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                          capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def test_a_single_process_run_keeps_every_thread_in_the_main_arena(tmp_path):
    img, out = _image(tmp_path / "img.zarr"), tmp_path / "out.zarr"
    run = _fresh("""
import sys
from samscope.blockwise import BlockwiseRequest, ThresholdSegmenter, segment_blockwise
from samscope.blockwise.executors import malloc_arena_count
segment_blockwise(BlockwiseRequest(sys.argv[1], sys.argv[2], block_size=64, halo=8),
                  segmenter=ThresholdSegmenter(100))
print(malloc_arena_count())
""", img, out)
    assert (out / "0").is_dir()
    assert run == "1"
    # without it, the same zarr reads give zarr's codec threads arenas of their own
    plain = _fresh("""
import sys, zarr
arr = zarr.open_array(sys.argv[1], mode="r")
for _ in range(20):
    arr[...]
from samscope.blockwise.executors import malloc_arena_count
print(malloc_arena_count())
""", img)
    assert int(plain) > 1


def _zarr_arenas(path):
    """On a worker: arenas before and after zarr reads and writes in new codec threads."""
    import numpy as np
    import zarr

    from samscope.blockwise.executors import malloc_arena_count

    before = malloc_arena_count()
    arr = zarr.create_array(path, shape=(256, 256), chunks=(64, 64), dtype="uint8",
                            zarr_format=2, overwrite=True)
    for _ in range(5):
        arr[...] = np.ones((256, 256), np.uint8)
        arr[...]
    return before, malloc_arena_count(), os.environ.get("MALLOC_ARENA_MAX")


def test_dask_workers_share_one_arena(tmp_path):
    pytest.importorskip("distributed")
    import distributed

    from samscope.blockwise.cluster import dask_client

    saved = dict(os.environ)  # Dask's nannies leave their pre-spawn variables in os.environ
    try:
        with dask_client(workers=1) as client:  # a local cluster: MALLOC_ARENA_MAX=1 from start
            (before, after, env), = client.run(_zarr_arenas, str(tmp_path / "a.zarr")).values()
        assert env == "1" and before == after == 1
        # workers of an existing scheduler (their own environment): the plugin, for new threads
        os.environ.pop("MALLOC_ARENA_MAX", None)
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as cluster, \
                dask_client(scheduler=cluster.scheduler_address) as client:
            (before, after, env), = client.run(_zarr_arenas, str(tmp_path / "b.zarr")).values()
        assert env is None and after == before  # without the plugin: 4 -> 10
    finally:
        os.environ.clear()
        os.environ.update(saved)
