"""Where the tasks run: in this process one after another, or on a ``dask.distributed`` cluster.

Both yield each task's result as it finishes, so the caller can report progress and a Ctrl-C
stops the run between blocks (on Dask the queued tasks are cancelled).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from samscope.errors import SamscopeError

__all__ = ["BlockFailedError", "DaskExecutor", "SerialExecutor", "malloc_arena_count",
           "release_free_memory", "return_free_memory_promptly", "share_one_malloc_arena"]


class SerialExecutor:
    """Run tasks in this process, in order.

    Parameters
    ----------
    prompt_release : bool
        Call :func:`return_free_memory_promptly` first (glibc's fixed 64 kB trim threshold):
        the resident memory stays flat over any number of blocks (threshold segmenter, quiet
        run of 2026-12-01: peak 139 MB at 4096² vs 143 MB at 16384²), but every large tensor is
        then mapped and unmapped by the kernel (1.7 M page faults instead of 17–46 k per 2048²
        block), which made the model's ``segment()`` of a 2048² block 1.23× slower (median of 4:
        27.9 vs 22.6 s). Off by default: :func:`share_one_malloc_arena` (what every
        blockwise run does) keeps the memory flat without that cost.
    """

    name = "single process"

    def __init__(self, prompt_release: bool = False):
        self.prompt_release = prompt_release

    def run(self, fn: Callable, job: Any, items: Iterable, extra: Callable | None = None,
            describe: Callable[[Any], str] | None = None) -> Iterator[Any]:
        """``fn(job, item[, extra(item)])`` for each item, yielded as done (``describe``: unused
        here, see :meth:`DaskExecutor.run`)."""
        if self.prompt_release:
            return_free_memory_promptly()
        for item in items:
            result = fn(job, item) if extra is None else fn(job, item, extra(item))
            release_free_memory()
            yield result


def release_free_memory() -> None:
    """Give the C allocator's free pages back to the system (glibc ``malloc_trim``; else nothing).

    Each block allocates and frees hundreds of megabytes of arrays of slightly different sizes;
    glibc keeps the freed pages in its arenas, so without a trim the resident memory of a long
    single-process run creeps up block after block (the Dask workers trim their own).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def return_free_memory_promptly() -> bool:
    """Make glibc give freed memory back to the system at once, in every thread's arena.

    What Dask's nanny does for its workers (``MALLOC_TRIM_THRESHOLD_=65536`` in their
    environment), done here with ``mallopt`` for a single-process run: a fixed trim threshold
    of 64 kB, which also stops glibc from raising its mmap threshold after each large free.
    Without it the arenas of zarr's codec threads (each block's chunks are compressed and
    decompressed there) kept growing with fragmented free space — the resident memory after
    each block crept up over the first ~20 blocks of a run (89 → 165 MB with the threshold
    segmenter at 16384², 2048² blocks), which ``malloc_trim`` after each block did not undo;
    with it, 70 → 77 MB over 64 blocks. Process-wide and for the rest of the process (a
    ``samscope segment`` run is one process). Returns False where the C library is not glibc.
    """
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    m_trim_threshold = -1  # glibc's M_TRIM_THRESHOLD
    return bool(mallopt(m_trim_threshold, 64 * 1024))


@functools.cache
def share_one_malloc_arena() -> bool:
    """Make every thread started from now on allocate from glibc's main arena (``M_ARENA_MAX`` 1).

    The default (up to 8 arenas per core) gives each of zarr 3's codec threads
    (``asyncio.to_thread``: every chunk is compressed and decompressed there) an arena of its
    own. After the first large free glibc raises its mmap threshold (up to 32 MB) and its trim
    threshold to twice that, so those arenas keep a block's 2–16 MB chunk buffers and their
    free tops — out of ``malloc_trim``'s reach, which trims only the main arena's top: the
    resident memory crept up over the first ~20 blocks of a run (threshold segmenter, peak
    186 MB at 4096² vs 229 MB at 16384², +23 %). In the main arena the trim after each block
    returns them: 160 vs 171 MB (+7 %), the memory after each block flat at 72–74 MB over 64
    blocks. Unlike a fixed trim threshold (:func:`return_free_memory_promptly`) it leaves
    glibc's dynamic mmap threshold alone, so the model's large tensors are not mapped and
    unmapped by the kernel each time.

    Threads that have allocated already keep their arena, so call it before the run starts
    any (before zarr's first read: :func:`~samscope.blockwise.run.segment_blockwise` does, for
    a single-process run; local Dask workers get ``MALLOC_ARENA_MAX=1`` in their environment,
    other workers this call from a worker plugin). Process-wide, for the rest of the process.
    Returns False where the C library is not glibc.
    """
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    m_arena_max = -8  # glibc's M_ARENA_MAX
    return bool(mallopt(m_arena_max, 1))


def malloc_arena_count() -> int | None:
    """How many glibc malloc arenas this process has (``malloc_info``); None without glibc."""
    import ctypes

    info, open_memstream = _libc_function("malloc_info"), _libc_function("open_memstream")
    fclose, free = _libc_function("fclose"), _libc_function("free")
    if None in (info, open_memstream, fclose, free):
        return None
    buf, size = ctypes.c_void_p(), ctypes.c_size_t()
    open_memstream.restype = ctypes.c_void_p
    stream = ctypes.c_void_p(open_memstream(ctypes.byref(buf), ctypes.byref(size)))
    if not stream.value:
        return None
    try:
        info(0, stream)
    finally:
        fclose(stream)
    try:
        return ctypes.string_at(buf, size.value).decode().count("<heap nr=")
    finally:
        free(buf)


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS, Windows)."""
    return _libc_function("malloc_trim")


def _libc_function(name: str):
    """A function of the C library by name, or None where that library lacks it."""
    import ctypes
    import ctypes.util

    lib = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(lib), name) if lib else None
    except (OSError, AttributeError):
        return None


def _then_release(fn: Callable, *args: Any) -> Any:
    """``fn(*args)``, then the C allocator's free pages back to the system (on a Dask worker,
    after each block, as :class:`SerialExecutor` does: with one shared arena and no trim the
    worker's peak crept up over its first ~12 blocks)."""
    try:
        return fn(*args)
    finally:
        release_free_memory()


class BlockFailedError(SamscopeError):
    """A block's task killed every worker that tried to run it (a "poison" block)."""


class DaskExecutor:
    """Run tasks on a ``distributed.Client``; a lost worker's tasks are retried elsewhere.

    The job goes **by value with every task** (a :class:`~samscope.blockwise.tasks.Job` is
    paths and settings: 490–660 bytes pickled, 16384² grid, model or threshold segmenter), not
    scattered once: scattered data lives only on the workers, so losing all of them at once (a
    node reboot, a preempted batch allocation, every worker missing its heartbeats) lost the job
    for good and the run died with ``FutureCancelledError``. By value, every unfinished task
    still has what it needs, waits for workers to come back (the nanny restarts them, or the
    batch system starts new ones) and runs there. Bytes per task instead of one scatter:
    nothing against the seconds a block takes.

    Parameters
    ----------
    client : distributed.Client
    retries : int
        Times a task that *raised* is resubmitted before the run fails.

    Notes
    -----
    A worker that dies while running a task is not a raise: the scheduler re-runs the task on
    another worker, up to ``distributed.scheduler.allowed-failures`` deaths (default 3); a task
    that killed one more worker than that (a block that crashes or exhausts the memory of every
    worker that tries it) ends the run with :class:`BlockFailedError` naming the block, and the
    finished blocks stay recorded for a resumed run.
    """

    def __init__(self, client: Any, *, retries: int = 3):
        self.client = client
        self.retries = int(retries)
        self.name = f"dask ({client.scheduler.address})" if getattr(client, "scheduler", None) \
            else "dask"

    def run(self, fn: Callable, job: Any, items: Iterable, extra: Callable | None = None,
            describe: Callable[[Any], str] | None = None) -> Iterator[Any]:
        """``fn(job, item[, extra(item)])`` for each item on the cluster, yielded as done.

        ``describe(item)`` names an item in the error of a task that killed its workers.
        """
        import uuid

        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        futures = {}
        for item in items:
            args = (job, item) if extra is None else (job, item, extra(item))
            key = f"{getattr(fn, '__name__', 'task')}-{uuid.uuid4().hex}"  # the dashboard's name
            futures[self.client.submit(_then_release, fn, *args, key=key,
                                       retries=self.retries)] = item
        try:
            for future in as_completed(futures):
                try:
                    result = future.result()
                except KilledWorker as err:
                    item = futures[future]
                    what = describe(item) if describe is not None else f"item {item!r}"
                    allowed = int(getattr(err, "allowed_failures", 3))
                    raise BlockFailedError(
                        f"{what} killed every Dask worker that ran it ({allowed + 1} times, the "
                        f"scheduler's distributed.scheduler.allowed-failures={allowed}): it probably "
                        "exhausts a worker's memory or crashes the segmenter; the finished blocks "
                        "are kept (rerun to resume; smaller blocks or more memory per worker "
                        "may help)"
                    ) from err
                yield result
        finally:
            pending = [f for f in futures if not f.done()]
            if pending:
                self.client.cancel(pending)
