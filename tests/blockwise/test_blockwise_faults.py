"""Faults: a Dask worker killed mid-run, and a halo smaller than the objects (a warning)."""

import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest
import zarr

from samscope.blockwise import BlockwiseRequest, ThresholdSegmenter, segment_blockwise

pytest.importorskip("distributed")

from tests.blockwise import fault_helpers  # noqa: E402
from tests.blockwise.fault_helpers import SlowThreshold, blob_image  # noqa: E402


def _image(path):
    return blob_image(path, seed=2)


def test_killed_worker_gives_the_uninterrupted_result(tmp_path):
    import cloudpickle

    from samscope.blockwise.cluster import dask_client

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cloudpickle.register_pickle_by_value(fault_helpers)  # workers cannot import tests/
    path = _image(tmp_path / "img.tif")
    seg = SlowThreshold(100)
    ref = tmp_path / "ref.zarr"
    segment_blockwise(BlockwiseRequest(path, ref, block_size=32, halo=8),
                      segmenter=ThresholdSegmenter(100))
    out = tmp_path / "killed.zarr"
    killed = []
    with dask_client(workers=2) as client:
        victim = sorted(client.run(os.getpid).values())[0]

        def killer():
            marks = out / "_blockwise" / "segmented"
            deadline = time.time() + 120
            while not killed and time.time() < deadline:
                if marks.is_dir() and len(list(marks.glob("*.json"))) >= 4:
                    os.kill(victim, signal.SIGKILL)
                    killed.append(True)
                time.sleep(0.05)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        result = segment_blockwise(BlockwiseRequest(path, out, block_size=32, halo=8),
                                   segmenter=seg, client=client)
        thread.join(1)
    assert killed and result.n_blocks == 36
    a = zarr.open_group(str(ref), mode="r")["0"][...]
    b = zarr.open_group(str(out), mode="r")["0"][...]
    assert np.array_equal(a, b)


def test_halo_smaller_than_the_objects_warns(tmp_path, caplog):
    path = _image(tmp_path / "img.tif")

    @dataclass(frozen=True)
    class Sized(ThresholdSegmenter):
        diameter: float = 30.0

    with caplog.at_level(logging.WARNING, logger="samscope.blockwise.run"):
        segment_blockwise(BlockwiseRequest(path, tmp_path / "o.zarr", block_size=64, halo=8),
                          segmenter=Sized(100))
    assert "smaller than the object diameter" in caplog.text
