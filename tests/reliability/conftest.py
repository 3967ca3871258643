"""Fixtures of the reliability suite: every case runs the ``samscope`` command line for real.

``samscope(*args)`` runs one command line in its own process (a child of a fork server that
imported samscope once, see ``_cli_server.py``) and returns its exit status, stdout and stderr.
``library`` is a folder of unusual and broken input files made once per session; cases only ever
read it, and ``test_zz_library_unchanged`` checks at the end that not one byte of it changed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import _library
import pytest
from _rel import Result

HERE = Path(__file__).parent


class Server:
    """One fork-server process for the session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        env = dict(os.environ)
        env.update(
            SAMSCOPE_CACHE_DIR=str(root / "model-cache"),
            MPLCONFIGDIR=str(root / "mpl"),
            OMP_NUM_THREADS="1",
            PYTHONWARNINGS="ignore",
            TQDM_DISABLE="1",
        )
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "_cli_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=str(root),
        )
        ready = self.proc.stdout.readline()
        if not ready:
            raise RuntimeError("the samscope fork server did not start")
        self.count = 0

    def run(self, args, *, cwd, env=None, unset=(), obey_permissions=False, timeout=120) -> Result:
        self.count += 1
        out = self.root / "logs" / f"{self.count}.out"
        err = self.root / "logs" / f"{self.count}.err"
        req = {
            "args": [str(a) for a in args],
            "cwd": str(cwd),
            "env": {k: str(v) for k, v in (env or {}).items()},
            "unset": list(unset),
            "stdout": str(out),
            "stderr": str(err),
            "obey_permissions": obey_permissions,
            "timeout": timeout,
        }
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        return Result(tuple(req["args"]), reply["rc"], out.read_text(errors="replace"),
                      err.read_text(errors="replace"))  # fmt: skip

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def root():
    path = Path(tempfile.mkdtemp(prefix="samscope-reliability-"))
    (path / "logs").mkdir()
    yield path
    for sub in path.rglob("*"):  # read-only folders made by cases
        if sub.is_dir():
            sub.chmod(0o755)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def server(root):
    srv = Server(root)
    yield srv
    srv.close()


@pytest.fixture(scope="session")
def library(root):
    """The shared, read-only-by-convention inputs (see ``_library.py``)."""
    lib = root / "library"
    _library.build(lib)
    return lib


@pytest.fixture(scope="session")
def library_digest(library):
    return _library.digest(library)


@pytest.fixture()
def work(tmp_path):
    """A fresh working folder for one case (outputs go here)."""
    return tmp_path


@pytest.fixture()
def samscope(server, work, library, library_digest):
    """Run ``samscope ARGS`` in ``work`` (or ``cwd=``); returns a :class:`Result`."""

    def run(*args, cwd=None, **kwargs) -> Result:
        return server.run(args, cwd=cwd or work, **kwargs)

    return run
