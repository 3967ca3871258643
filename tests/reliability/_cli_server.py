"""A fork server that runs ``samscope`` command lines, each in its own child process.

Started once per test session: it imports samscope and its heavy dependencies (torch, zarr,
scikit-image) once, then forks a fresh child for every command line read from stdin. The child
runs exactly what the ``samscope`` console script runs (``samscope.cli.main:main``), with its own
stdout, stderr, working directory, environment and (optionally) an unprivileged user, and exits
with the status a real process would: a SystemExit's code, or 1 and a traceback printed by
``sys.excepthook`` for an uncaught exception. The server answers one JSON line per request:
``{"rc": status}`` (negative: killed by that signal; ``"timeout"`` when it ran too long).

Each case is a real process (real exit status, real file descriptors, no state shared with
other cases) at a fraction of a second instead of the ~2-3 s of importing torch afresh.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time


def _preload() -> None:
    import numpy  # noqa: F401
    import tifffile  # noqa: F401
    import torch  # noqa: F401
    import zarr  # noqa: F401

    import samscope.cli.main as cli_main
    import samscope.embeddings  # noqa: F401
    import samscope.io  # noqa: F401
    import samscope.models.checkpoint  # noqa: F401
    import samscope.models.registry  # noqa: F401
    import samscope.prompting  # noqa: F401

    for optional in ("samscope.models.sam", "samscope.models.sam_lite", "samscope.models.compact",
                     "samscope.instance.segment", "samscope.training.config", "skimage.transform",
                     "skimage.measure", "samscope.analysis"):  # fmt: skip
        try:
            __import__(optional)
        except Exception:  # noqa: BLE001 - a module another engineer is changing: skip
            pass
    cli_main.build_app()
    # warm torch's lazy initialisation (kernels, allocator) once; every child inherits it
    import numpy as np

    from samscope.embeddings import compute_embeddings
    from samscope.models.registry import load_model

    compute_embeddings(np.zeros((64, 64), np.uint16), load_model("samscope-lm", device="cpu"))


def _drop_dac_override() -> None:
    """As root, obey file permission bits like any user: drop CAP_DAC_OVERRIDE/READ_SEARCH."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]  # fmt: skip

    libc = ctypes.CDLL(None, use_errno=True)
    header, data = Header(0x20080522, 0), (Data * 2)()  # _LINUX_CAPABILITY_VERSION_3
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    keep = ~((1 << 1) | (1 << 2)) & 0xFFFFFFFF  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    for field in ("effective", "permitted", "inheritable"):
        setattr(data[0], field, getattr(data[0], field) & keep)
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def _child(req: dict) -> None:
    code = 1
    try:
        os.chdir(req["cwd"])
        os.environ.update(req.get("env", {}))
        for var in req.get("unset", []):
            os.environ.pop(var, None)
        fd_in = os.open(os.devnull, os.O_RDONLY)
        fd_out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        fd_err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        os.dup2(fd_in, 0)
        os.dup2(fd_out, 1)
        os.dup2(fd_err, 2)
        if req.get("obey_permissions") and os.getuid() == 0:
            _drop_dac_override()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        import samscope.cli.main as cli_main

        sys.argv = ["samscope", *req["args"]]
        try:
            cli_main.main(list(req["args"]))
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # what the interpreter does for an uncaught exception
            sys.excepthook(*sys.exc_info())
            code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve() -> None:
    """Answer requests from stdin until it closes."""
    _preload()
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        req = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _child(req)
        deadline = time.monotonic() + float(req.get("timeout", 120))
        rc: int | str
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                rc = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                rc = "timeout"
                break
            time.sleep(0.005)
        sys.stdout.write(json.dumps({"rc": rc}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
