"""The background worker: one thread that segments queued images with models loaded once.

The worker claims the oldest queued image from the store, runs
:func:`samscope.pipeline.segment_batch` on it (the same call as ``samscope segment``), reports the
plane-by-plane progress, and marks the image done with its object count, or failed with the
reason. It never dies on a bad image: every error becomes that image's reason. Stopping it
(:meth:`Worker.stop`) cancels between planes; the image in progress is put back in the queue and
the next start does it again (the pipeline writes an image's outputs only when all its planes
are done).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from samscope.errors import SamscopeError
from samscope.web.config import ServerConfig
from samscope.web.sessions import SessionFiles
from samscope.web.store import ImageRow, Store

__all__ = ["ModelPool", "Worker"]

log = logging.getLogger(__name__)


class ModelPool:
    """Models loaded once and shared by the worker and the click-to-add requests.

    Parameters
    ----------
    device : str, optional
    keep : int
        Most models kept in memory (the least recently used one is dropped).
    """

    def __init__(self, device: str | None = None, keep: int = 2) -> None:
        self.device = device
        self.keep = keep
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str) -> Any:
        """The loaded model ``name`` (loaded on first use)."""
        with self._lock:
            model = self._models.pop(name, None)
            if model is None:
                from samscope.models.registry import load_model

                model = load_model(name, device=self.device)
            self._models[name] = model
            while len(self._models) > self.keep:
                self._models.popitem(last=False)
            return model

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._models)


class Worker:
    """Segments queued images one at a time in a background thread.

    Parameters
    ----------
    store : Store
    config : ServerConfig
    pool : ModelPool
    """

    def __init__(self, store: Store, config: ServerConfig, pool: ModelPool) -> None:
        self.store = store
        self.config = config
        self.pool = pool
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: str | None = None

    def start(self) -> int:
        """Requeue what a stopped server left unfinished and start the thread; returns how many
        images were requeued."""
        n = self.store.requeue_unfinished()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="samscope-web-worker",
                                        daemon=True)
        self._thread.start()
        return n

    def wake(self) -> None:
        """New work is queued."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current plane; the image in progress goes back to the queue."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.store.requeue_unfinished()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _loop(self) -> None:
        while not self._stop.is_set():
            row = self.store.claim_next()
            if row is None:
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            self.current = row.id
            try:
                self._process(row)
            except Exception:  # noqa: BLE001 - the worker outlives any one image
                log.exception("samscope web worker: image %s", row.id)
                self.store.fail(row.id, "internal error (see the server log)")
            finally:
                self.current = None

    def _process(self, row: ImageRow) -> None:
        from samscope.pipeline import SegmentRequest, segment_batch

        job = self.store.job(row.job)
        files = SessionFiles(self.config.sessions_dir, row.session)
        path = files.upload(row.stem, row.filename)
        start = time.perf_counter()
        last = [0.0]

        def progress(event) -> None:
            if event.stage == "image":
                value = 0.05
            elif event.stage == "plane":
                value = 0.05 + 0.9 * (event.plane + 1) / max(1, event.n_planes)
            else:
                return
            if value - last[0] >= 0.01:
                last[0] = value
                self.store.set_progress(row.id, value)

        try:
            self._check_size(path)
            request = SegmentRequest(
                [path], output=files.results(row.stem), model=self.pool.get(job.model),
                mode=job.mode, diameter=job.diameter, settings=job.settings or None,
            )
            result = segment_batch(request, progress=progress, cancel=self._stop)
        except SamscopeError as err:
            self.store.fail(row.id, str(err))
            return
        except MemoryError:
            self.store.fail(row.id, "out of memory: the image is too large for this server")
            return
        except OSError as err:
            self.store.fail(row.id, f"cannot read or write a file: {err.strerror or err}")
            return
        if result.cancelled or not result.records:
            return  # stopping: requeued by stop()
        record = result.records[0]
        n_objects, n_planes = record.n_objects, record.n_planes
        if record.status == "skipped":  # done before a restart; its record has the counts
            import json

            doc = json.loads(record.outputs.record.read_text(encoding="utf-8"))
            n_objects, n_planes = int(doc.get("n_objects", 0)), len(doc.get("planes", [1]))
        self.store.finish(row.id, n_objects=n_objects, n_planes=max(1, n_planes),
                          seconds=time.perf_counter() - start)

    def _check_size(self, path) -> None:
        from samscope.errors import InputError
        from samscope.io import read_image

        image = read_image(path, lazy=True)
        shape = tuple(int(s) for s in image.data.shape)
        n = 1
        for axis, size in zip(image.axes, shape, strict=False):
            if axis != "C":
                n *= size
        if n > self.config.max_pixels:
            raise InputError(f"the image has {n:,} pixels ({'×'.join(map(str, shape))}); this "
                             f"server takes at most {self.config.max_pixels:,}")
