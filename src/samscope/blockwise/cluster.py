"""Dask clusters for blockwise runs: local, an existing scheduler, or SLURM/LSF/PBS via dask-jobqueue.

- **Local** (default of ``--dask``): ``distributed.LocalCluster`` with ``--workers N`` worker
  processes of one thread each (torch limited to one thread per worker, so N workers use N cores).
- **An existing scheduler**: ``--scheduler tcp://host:8786`` (workers started with
  ``dask worker tcp://host:8786``; every worker must see the input and output paths).
- **A batch system**: ``--cluster-config cluster.toml``, a small TOML file::

      [cluster]
      kind = "slurm"          # slurm, lsf, pbs or sge (dask-jobqueue)
      jobs = 4                # batch jobs to start (each runs `processes` workers)
      cores = 8
      memory = "32GB"
      processes = 1
      walltime = "02:00:00"
      queue = "normal"        # any other dask-jobqueue option: account, job_extra_directives, …

  samscope starts the jobs, waits for the first worker, and stops them when the run ends.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from samscope.errors import InputError

__all__ = ["JOBQUEUE_KINDS", "dask_client", "read_cluster_config", "share_worker_malloc_arena",
           "stop_worker_profilers"]

JOBQUEUE_KINDS = {"slurm": "SLURMCluster", "lsf": "LSFCluster", "pbs": "PBSCluster",
                  "sge": "SGECluster"}


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(
            f"--dask needs the '{module}' package: pip install 'samscope[dask]'"
        ) from None


def read_cluster_config(path: str | os.PathLike) -> tuple[str, int, dict]:
    """``(kind, jobs, dask-jobqueue keyword arguments)`` from a cluster TOML file."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"cluster config '{path}' does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise InputError(f"cannot read cluster config '{path}': {err}") from None
    section = doc.get("cluster")
    if not isinstance(section, dict):
        raise InputError(f"cluster config '{path}' needs a [cluster] table")
    options = dict(section)
    kind = str(options.pop("kind", "")).lower()
    if kind not in JOBQUEUE_KINDS:
        raise InputError(f"cluster config '{path}': kind must be one of "
                         f"{', '.join(JOBQUEUE_KINDS)}, got {kind or 'nothing'!r}")
    jobs = options.pop("jobs", 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"cluster config '{path}': jobs must be a positive integer, got {jobs!r}")
    return kind, jobs, options


def make_jobqueue_cluster(path: str | os.PathLike) -> Any:
    """The (not yet scaled) dask-jobqueue cluster a config file describes, and its job count."""
    kind, jobs, options = read_cluster_config(path)
    jobqueue = _need("dask_jobqueue")
    options = _with_one_arena(kind, options)
    try:
        cluster = getattr(jobqueue, JOBQUEUE_KINDS[kind])(**options)
    except (TypeError, ValueError) as err:  # an unknown option: dask-jobqueue's ValueError
        raise InputError(f"cluster config '{path}': {str(err).splitlines()[0]}") from None
    return cluster, jobs


def _with_one_arena(kind: str, options: dict) -> dict:
    """The jobqueue options with ``export MALLOC_ARENA_MAX=1`` added to the job script's
    prologue (the config file's, else Dask's ``jobqueue.<kind>.job-script-prologue``), unless
    it sets ``MALLOC_ARENA_MAX`` itself: the batch workers then share one malloc arena from
    their start, as local ones do (:func:`_spawn_environ_without_trim`)."""
    import dask

    prologue = options.get("job_script_prologue")
    if prologue is None:
        prologue = dask.config.get(f"jobqueue.{kind}.job-script-prologue", default=None) or []
    prologue = [str(line) for line in prologue]
    if not any("MALLOC_ARENA_MAX" in line for line in prologue):
        prologue.append("export MALLOC_ARENA_MAX=1")
    return {**options, "job_script_prologue": prologue}


def _no_profiler_plugin() -> Any:
    """A worker plugin that stops the worker's statistical profiler, on every worker present
    and every worker that joins later (a restarted or new batch worker)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class NoProfiler(WorkerPlugin):
        name = "samscope-no-profiler"

        def setup(self, worker):
            for key in ("profile", "profile-cycle"):
                callback = worker.periodic_callbacks.pop(key, None)
                if callback is not None:
                    callback.stop()

    return NoProfiler()


def _one_arena_plugin() -> Any:
    """A worker plugin that makes the worker's threads share glibc's main malloc arena
    (:func:`samscope.blockwise.executors.share_one_malloc_arena`), for workers whose
    environment lacks ``MALLOC_ARENA_MAX=1`` (an existing scheduler's, a batch system's): it
    applies to the threads started after it, i.e. zarr's codec threads, started by the first
    block."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class OneArena(WorkerPlugin):
        name = "samscope-one-malloc-arena"

        def setup(self, worker):
            from samscope.blockwise.executors import share_one_malloc_arena

            share_one_malloc_arena()

    return OneArena()


def _spawn_environ_without_trim() -> dict:
    """Dask's ``distributed.nanny.pre-spawn-environ`` without ``MALLOC_TRIM_THRESHOLD_``, with
    ``MALLOC_ARENA_MAX=1``.

    The nanny gives each worker glibc's fixed 64 kB trim threshold, which also freezes glibc's
    mmap threshold: every large tensor of the model is then mapped and unmapped by the kernel
    (a 2048² block's ``segment()``: 1.7 M page faults instead of 17–46 k, 1.23× slower in a
    quiet A/B). Local workers run without it, like a single-process run; the thread limits
    (``OMP_NUM_THREADS`` …) stay. And they share one malloc arena from their start, as a
    single-process run does (:func:`samscope.blockwise.executors.share_one_malloc_arena`: the
    memory after each block stays flat).
    """
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    environ["MALLOC_ARENA_MAX"] = 1
    return {"distributed.nanny.pre-spawn-environ": environ}


def _local_cluster_config() -> dict:
    """Dask settings while a local cluster starts: workers without the trim threshold
    (:func:`_spawn_environ_without_trim`), and a scheduler that sends a one-thread worker one
    block at a time (``worker-saturation`` 1.0, Dask's default 1.1 rounds up to two).

    A worker that dies counts as a failure of every task it holds
    (``distributed.scheduler.allowed-failures``); holding only the one it runs, a block that
    kills its workers is the one named in the error, not a queued neighbour, and losing every
    worker at once costs each unfinished block at most one of its allowed failures. The
    latency of one scheduler round trip between blocks is nothing against a block's seconds.
    """
    return {**_spawn_environ_without_trim(), "distributed.scheduler.worker-saturation": 1.0}


def _dask_config_set(values: dict):
    import dask

    return dask.config.set(values)


def stop_worker_profilers(client: Any) -> None:
    """Stop the statistical profiler of the client's workers (now and any that join later).

    A Dask worker samples its task threads' stacks every 10 ms by default
    (``distributed.worker.profile``), holding the GIL each time. The model's encoder is many
    small torch calls that each release and take back the GIL, so the sampling thread made a
    one-thread worker's ``segment()`` of a 512² image cost **6.0–6.4 CPU-s instead of 3.0–3.6**
    in a plain one-thread process (3.5–4.4 with the profiler off; measured alone, one worker,
    under load). Without it the dashboard's Profile page stays empty; everything else (task
    stream, progress, memory) works.
    """
    client.register_plugin(_no_profiler_plugin())


def share_worker_malloc_arena(client: Any) -> None:
    """Make the client's workers (now and any that join later) share one malloc arena from
    here on (:func:`_one_arena_plugin`)."""
    client.register_plugin(_one_arena_plugin())


@contextlib.contextmanager
def dask_client(
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    cluster_config: str | os.PathLike | None = None,
    timeout: float = 10.0,
) -> Iterator[Any]:
    """A ``distributed.Client`` for the run, closed (and its local or batch cluster stopped) after.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``).
    workers : int, optional
        Worker processes of a local cluster (default: the CPU count), or of a jobqueue cluster's
        total when a config file gives none.
    cluster_config : path, optional
        dask-jobqueue TOML file (see the module docstring).
    timeout : float
        Seconds to wait for the scheduler.

    Raises
    ------
    InputError
        An unreachable scheduler, a bad config, dask not installed, conflicting options.
    """
    distributed = _need("distributed")
    if scheduler and cluster_config:
        raise InputError("give --scheduler or --cluster-config, not both")
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise InputError(f"--workers must be a positive number, got {workers!r}")
    cluster = None
    try:
        if scheduler:
            try:
                client = distributed.Client(scheduler, timeout=f"{timeout}s")
            except (OSError, TimeoutError, ValueError) as err:
                raise InputError(
                    f"cannot reach the Dask scheduler at {scheduler!r} ({type(err).__name__}: "
                    f"{str(err).splitlines()[0] if str(err) else 'no answer'}); start it (dask "
                    "scheduler) or check the address"
                ) from None
        elif cluster_config:
            cluster, jobs = make_jobqueue_cluster(cluster_config)
            cluster.scale(jobs=jobs)
            client = distributed.Client(cluster)
            client.wait_for_workers(1)
        else:
            n = int(workers or os.cpu_count() or 1)
            with _dask_config_set(_local_cluster_config()):
                cluster = distributed.LocalCluster(
                    n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                )
            client = distributed.Client(cluster)
        try:
            stop_worker_profilers(client)
            share_worker_malloc_arena(client)
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
