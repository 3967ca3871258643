"""Real Ctrl-C (SIGINT) and SIGTERM delivered to running ``samscope`` processes.

Each interrupted run must exit 130 / 143 with one line saying what finished and that running
again resumes; what it left must never pass for finished; the same command run again must
resume (finished pieces kept, not recomputed) and complete.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile
from _library import blobs


def _command() -> list[str]:
    exe = shutil.which("samscope")
    return [exe] if exe else [sys.executable, "-m", "samscope.cli.main"]


def _start(args, cwd, root):
    env = dict(os.environ, SAMSCOPE_CACHE_DIR=str(root / "model-cache"), OMP_NUM_THREADS="1",
               PYTHONWARNINGS="ignore")  # fmt: skip
    return subprocess.Popen(
        [*_command(), *map(str, args)], cwd=cwd, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def _wait_for(condition, proc, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"finished (exit {proc.returncode}) before it could be interrupted\n{out}\n{err}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the run never reached the point to interrupt it")


@pytest.fixture()
def stack(work):
    planes = np.stack([blobs(seed=s) for s in range(24)])
    path = work / "stack.tif"
    tifffile.imwrite(path, planes, photometric="minisblack", metadata={"axes": "ZYX"})
    return path


@pytest.mark.parametrize(("sig", "code", "name"), [(signal.SIGINT, 130, "Ctrl-C"),
                                                   (signal.SIGTERM, 143, "SIGTERM")])  # fmt: skip
def test_interrupted_embed_exits_nonzero_and_resumes(work, root, stack, sig, code, name):
    from samscope.embeddings import cache_progress, load_embeddings
    from samscope.errors import CacheMismatchError

    cache = work / "stack.zarr"
    before = stack.read_bytes()
    proc = _start(["embed", stack, "-o", cache], work, root)
    _wait_for(lambda: cache.exists() and (cache_progress(cache) or (0, 0))[0] >= 2, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, (out, err)
    assert "Traceback" not in err
    line = [x for x in err.splitlines() if x.startswith("interrupted")]
    assert len(line) == 1 and f"interrupted ({name})" in line[0], err
    assert "of 24 embedding(s) stored in" in line[0] and "run the same command again to resume" in line[0]
    done, total = cache_progress(cache)
    assert 2 <= done < total == 24
    with pytest.raises(CacheMismatchError, match="incomplete"):  # never taken as finished
        load_embeddings(cache)
    kept = {p: p.stat().st_mtime_ns for p in (cache / "features/c").rglob("*") if p.is_file()}
    rerun = _start(["embed", stack, "-o", cache], work, root)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, (out, err)
    assert "wrote" in out and "repaired" not in out
    emb = load_embeddings(cache)
    assert emb.n_planes == 24
    for p, stamp in kept.items():  # finished pieces were kept, not recomputed
        assert p.stat().st_mtime_ns == stamp
    from samscope.embeddings import compute_embeddings
    from samscope.models.registry import load_model

    model = load_model(emb.model_name, device="cpu")  # the default model, whichever it is
    ref = compute_embeddings(tifffile.imread(stack)[23], model)
    np.testing.assert_allclose(emb.get(23, 0).numpy(), ref.get(0, 0).numpy(), atol=1e-4)
    assert stack.read_bytes() == before


def test_interrupted_segment_exits_130_and_resumes(work, root, library):
    (work / "in").mkdir()
    for i in range(8):
        tifffile.imwrite(work / f"in/img{i}.tif", blobs(seed=i))
    out_dir = work / "out"
    proc = _start(["segment", "in", "-o", out_dir], work, root)
    _wait_for(lambda: out_dir.is_dir() and any(out_dir.rglob("*_objects.csv")), proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    line = [x for x in err.splitlines() if x.startswith("interrupted")]
    assert len(line) == 1 and "of 8 image(s) finished and written" in line[0], err
    assert not [p for p in out_dir.rglob("*") if p.name.startswith(".")], "no temporary files left"
    finished = len(list(out_dir.rglob("*_objects.csv")))
    assert 1 <= finished < 8
    rerun = _start(["segment", "in", "-o", out_dir], work, root)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, (out, err)
    assert f"{finished} of 8 image(s) already segmented" in out
    assert len(list(out_dir.rglob("*_labels.tif"))) == len(list(out_dir.rglob("*_objects.csv"))) == 8
