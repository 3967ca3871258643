"""Faults on Dask: every worker lost at once, and a block that kills every worker that runs it."""

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
import tifffile
import zarr

from samscope.blockwise import BlockwiseRequest, ThresholdSegmenter, segment_blockwise
from samscope.blockwise.executors import BlockFailedError

pytest.importorskip("distributed")

from tests.blockwise import fault_helpers  # noqa: E402
from tests.blockwise.fault_helpers import SlowThreshold, blob_image  # noqa: E402


@dataclass(frozen=True)
class PoisonThreshold(ThresholdSegmenter):
    """Kills its process on the one block that holds the value 255 (a crash, an OOM kill)."""

    def segment(self, block, axes):
        if int(np.asarray(block).max()) == 255:
            os._exit(1)
        return super().segment(block, axes)


def _image(path):
    return blob_image(path, seed=3)


def _table(out):
    return (out.parent / (out.name.removesuffix(".zarr") + "_objects.csv")).read_text()


def test_losing_every_worker_at_once_gives_the_uninterrupted_result(tmp_path):
    import cloudpickle

    from samscope.blockwise.cluster import dask_client

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cloudpickle.register_pickle_by_value(fault_helpers)  # workers cannot import tests/
    path = _image(tmp_path / "img.tif")
    ref = tmp_path / "ref.zarr"
    segment_blockwise(BlockwiseRequest(path, ref, block_size=32, halo=8),
                      segmenter=ThresholdSegmenter(100))
    out = tmp_path / "killed.zarr"
    killed = []
    with dask_client(workers=2) as client:
        victims = sorted(client.run(os.getpid).values())
        assert len(victims) == 2

        def killer():  # both workers at once, after a few blocks (the nannies restart them)
            marks = out / "_blockwise" / "segmented"
            deadline = time.time() + 60
            while not killed and time.time() < deadline:
                if marks.is_dir() and len(list(marks.glob("*.json"))) >= 4:
                    for pid in victims:
                        os.kill(pid, signal.SIGKILL)
                    killed.append(time.time())
                time.sleep(0.02)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        result = segment_blockwise(BlockwiseRequest(path, out, block_size=32, halo=8),
                                   segmenter=SlowThreshold(100), client=client)
        thread.join(1)
        assert killed, "the workers were never killed"
        assert set(client.run(os.getpid).values()).isdisjoint(victims)  # new processes ran
    assert result.n_blocks == 36 and result.status == "done"
    a = zarr.open_group(str(ref), mode="r")["0"][...]
    b = zarr.open_group(str(out), mode="r")["0"][...]
    assert np.array_equal(a, b)
    assert _table(ref) == _table(out)


def test_a_block_that_kills_every_worker_ends_the_run_naming_it(tmp_path):
    import cloudpickle
    import dask

    from samscope.blockwise.cluster import dask_client

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cloudpickle.register_pickle_by_value(fault_helpers)
    path = tmp_path / "img.tif"
    img = tifffile.imread(_image(path))
    img[48, 112] = 255  # only in block 9's outer region (6×6 grid of 32² cores, 8-px halo)
    tifffile.imwrite(path, img)
    out = tmp_path / "poison.zarr"
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), \
            dask_client(workers=2) as client:
        with pytest.raises(BlockFailedError, match=r"block 9 \(y 32:64, x 96:128\)") as err:
            segment_blockwise(BlockwiseRequest(path, out, block_size=32, halo=8),
                              segmenter=PoisonThreshold(100), client=client)
    assert "2 times" in str(err.value) and "segment task" in str(err.value)
    marks = {p.stem for p in (out / "_blockwise" / "segmented").glob("*.json")}
    assert "9" not in marks and marks  # the finished ones are kept for a resumed run
