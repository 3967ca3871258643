"""DistributedDataParallel under torchrun (two CPU processes, gloo)."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_torchrun_two_processes(blob_dir, tmp_path):
    out = tmp_path / "run"
    cfg = tmp_path / "ddp.toml"
    cfg.write_text(
        f'[data]\ntrain_images = ["{blob_dir / "images"}"]\ntrain_labels = ["{blob_dir / "labels"}"]\n'
        "patch_size = 128\nn_val = 2\nmin_objects = 2\n"
        '[model]\nmodel = "vit_test"\ninit = "random"\n'
        "[objectives]\nn_objects = 3\nn_sub_iterations = 2\ninstance_head = true\n"
        "[optim]\nlr = 1e-3\nmax_steps = 4\nbatch_size = 1\nval_every = 2\n"
        f'[run]\nout_dir = "{out}"\ncheckpoint_every = 2\nprogress = false\nthreads = 1\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-port", "29517", "-m", "samscope.cli.main", "train", str(cfg)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "model.pt").is_file() and (out / "checkpoints" / "last.pt").is_file()
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows if r["kind"] == "train"] == [1, 2, 3, 4]  # rank 0 only
    assert "done: 4 steps" in proc.stdout
