"""Shared pieces of the web app's tests: configs, uploads, waiting for the worker."""

from __future__ import annotations

import time
from pathlib import Path

import pytest


def need_web_extra() -> None:
    """Skip the calling module when the web extra is not installed."""
    for module in ("starlette", "multipart", "httpx"):
        pytest.importorskip(module, reason=f"{module} is missing: pip install 'samscope[web]' "
                                           "httpx (both in samscope[dev])")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NUCLEI = EXAMPLES / "nuclei.tif"
#: The shipped default model at a given object size: ≈1 s for examples/nuclei.tif on a CPU
#: (the automatic size estimate costs ≈10 s more, which these tests do not need).
MODEL = "samscope-generalist"
DIAMETER = "30"
BASE_URL = "http://127.0.0.1:8000"


def wait_for(client, sid: str, iid: str, *, timeout: float = 180.0) -> dict:
    """Poll an image until it is done or failed; returns its JSON."""
    deadline = time.monotonic() + timeout
    while True:
        data = client.get(f"/api/sessions/{sid}/images/{iid}").json()
        if data["state"] in ("done", "failed"):
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"image still {data['state']} after {timeout} s")
        time.sleep(0.1)


def upload(client, sid: str, files, **fields):
    """POST a job: ``files`` are (name, bytes) pairs."""
    data = {"model": MODEL, "diameter": DIAMETER, **fields}
    return client.post(f"/api/sessions/{sid}/jobs", data=data,
                       files=[("files", (name, content, "application/octet-stream"))
                              for name, content in files])


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one thread while a module's server runs (restored after): the server's worker
    and its requests share the process, and on a busy 2-core machine more threads only fight."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def nuclei_bytes() -> bytes:
    return NUCLEI.read_bytes()
